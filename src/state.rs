//! The state every handler, service and federation callback shares.

use crate::{config::Config, store::actor};
use activitypub_federation::config::Data;
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: DatabaseConnection,
    /// Wakes the delivery worker as soon as new deliveries are queued.
    pub delivery_wakeup: Arc<Notify>,
    /// The instance's `Application` actor, which signs our outgoing fetches.
    pub instance_actor: actor::Model,
    /// The client deliveries are sent with.
    pub http: reqwest::Client,
    /// Parsed signing keys of local actors.
    pub signing_keys: crate::federation::signing::KeyCache,
    /// Where uploaded files are kept (`media_store`).
    pub media: Arc<dyn crate::media_store::MediaStore>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// What request handlers and federation callbacks receive.
pub type Ctx = Data<AppState>;

impl Inner {
    /// `scheme://domain`.
    pub fn origin(&self) -> String {
        self.config.origin()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.origin(), path)
    }
}
