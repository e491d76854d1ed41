//! One file per activity kind: how Cairn receives it and, where Cairn sends it, how it is built.

pub mod accept;
pub mod announce;
pub mod create_or_update;
pub mod delete;
pub mod follow;
pub mod join;
pub mod leave;
pub mod reject;
pub mod undo;

use super::actor::DbActor;
use crate::{error::Error, state::AppState, store::actor};
use activitypub_federation::config::Data;
use serde_json::Value;
use url::Url;

/// A verified inbound activity and what is known about its arrival.
pub struct Inbound<'a> {
    pub data: &'a Data<AppState>,
    pub id: Url,
    pub raw: Value,
    /// The actor that signed the request and is named as `actor`.
    pub actor: DbActor,
    /// The local actor whose own inbox received it (none for the shared inbox).
    pub inbox_owner: Option<actor::Model>,
}

impl Inbound<'_> {
    pub fn object(&self) -> Result<&Value, Error> {
        self.raw
            .get("object")
            .filter(|o| !o.is_null())
            .ok_or_else(|| Error::BadRequest(format!("activity {} has no object", self.id)))
    }

    pub fn object_id(&self) -> Result<Url, Error> {
        super::json::id_of(self.object()?).ok_or_else(|| {
            Error::BadRequest(format!(
                "the object of activity {} has no valid id",
                self.id
            ))
        })
    }
}

pub async fn dispatch(inbound: Inbound<'_>) -> Result<(), Error> {
    let kind = super::json::kind(&inbound.raw)
        .unwrap_or_default()
        .to_owned();
    match kind.as_str() {
        "Follow" => follow::receive(inbound).await,
        "Accept" => accept::receive(inbound).await,
        "Reject" => reject::receive(inbound).await,
        "Undo" => undo::receive(inbound).await,
        // A Mastodon vote in an event's RSVP poll is a Create of a Note; the rest are posts.
        "Create" if super::event::receive_vote(&inbound).await? => Ok(()),
        "Create" | "Update" => create_or_update::receive(inbound).await,
        "Delete" => delete::receive(inbound).await,
        "Announce" => announce::receive(inbound).await,
        "Join" => join::receive(inbound).await,
        "Leave" => leave::receive(inbound).await,
        "" => Err(Error::BadRequest("activity has no type".into())),
        other => Err(Error::Unprocessable(format!(
            "Cairn does not handle {other} activities"
        ))),
    }
}
