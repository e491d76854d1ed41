//! Uploaded files: checked by content, stored in the media store, attached to posts.

use crate::{error::Result, state::AppState, store::post};
use serde_json::Value;

/// What the API shows of a post's attachments.
pub async fn attachment_views(_state: &AppState, _post: &post::Model) -> Result<Vec<Value>> {
    Ok(Vec::new())
}
