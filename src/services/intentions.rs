//! "I intend": an intention with a target date that colleagues can share.

use crate::{error::Result, state::AppState, store::post};
use serde_json::Value;

/// What the API shows of an intention post's intention.
pub async fn intention_view(_state: &AppState, _post: &post::Model) -> Result<Option<Value>> {
    Ok(None)
}
