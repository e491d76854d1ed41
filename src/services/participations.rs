//! Taking part: joining and leaving events and intentions, locally and across instances.
//!
//! One table (`participations`) serves both: an event's or an intention's post id, the actor,
//! and a state (`pending` until the origin's Accept arrives, then `accepted`, or `rejected`).
//! The origin of the post is authoritative; other instances mirror its participant list.

use crate::{
    error::{Error, Result},
    state::AppState,
    store::{actor, participation, post},
};
use activitypub_federation::config::Data;
use serde_json::Value;

/// `member` (local) takes part in `post` (an event or an intention, local or remote): at once
/// for a local post (or `rejected` when an event is full), by a `Join` to the origin (state
/// `pending` until its `Accept`) for a remote one. Joining twice changes nothing.
pub async fn join(
    _ctx: &Data<AppState>,
    _member: &actor::Model,
    _post: &post::Model,
) -> Result<participation::Model> {
    Err(Error::Internal(
        "participations::join is not written yet".into(),
    ))
}

/// `member` (local) stops taking part (a `Leave` to the origin for a remote post).
pub async fn leave(
    _ctx: &Data<AppState>,
    _member: &actor::Model,
    _post: &post::Model,
) -> Result<()> {
    Err(Error::Internal(
        "participations::leave is not written yet".into(),
    ))
}

/// Accepted participants of `post`, searchable by name and school, paged.
pub async fn list(
    _ctx: &Data<AppState>,
    _post: &post::Model,
    _search: Option<&str>,
    _limit: u64,
    _offset: u64,
) -> Result<Vec<Value>> {
    Err(Error::Internal(
        "participations::list is not written yet".into(),
    ))
}
