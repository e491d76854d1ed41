//! Events as ActivityPub `Event` objects (Mobilizon, FEP-8a8e).

use super::note::NoteJson;
use crate::{error::Error, state::AppState, store::post};
use activitypub_federation::config::Data;
use sea_orm::ConnectionTrait;

/// Adds what this kind of post carries to its wire form.
pub async fn add_to_note<C: ConnectionTrait>(
    _conn: &C,
    _state: &AppState,
    _post: &post::Model,
    _note: &mut NoteJson,
) -> Result<(), Error> {
    Ok(())
}

/// Stores what a remote post of this kind carries, once the post itself is stored.
pub async fn store_remote(
    _data: &Data<AppState>,
    _json: &NoteJson,
    _post: &post::Model,
) -> Result<(), Error> {
    Ok(())
}
