//! CPD events: times, place, capacity, organisers, pre-event tasks.

use crate::{error::Result, state::AppState, store::post};
use serde_json::Value;

/// What the API shows of an event post's event.
pub async fn event_view(_state: &AppState, _post: &post::Model) -> Result<Option<Value>> {
    Ok(None)
}
