//! Reminder emails for intentions, scheduled in the database.

use crate::state::AppState;
use activitypub_federation::config::FederationConfig;

/// Sends due reminder emails until the process ends.
pub async fn run_worker(_federation: FederationConfig<AppState>) {}
