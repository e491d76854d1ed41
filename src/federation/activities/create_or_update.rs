//! `Create` and `Update` of a post (or, for `Update`, of the sending actor's own profile, which
//! is how a key rotation arrives).

use super::Inbound;
use crate::{
    error::Error,
    federation::{
        actor::{ActorJson, DbActor},
        json,
        note::{DbPost, NoteJson, POST_TYPES},
        same_origin,
    },
    services::filing::{self, Arrival},
};
use activitypub_federation::{fetch::object_id::ObjectId, traits::Object};
use serde_json::Value;

pub async fn receive(inbound: Inbound<'_>) -> Result<(), Error> {
    let is_update = json::kind(&inbound.raw) == Some("Update");
    let object = inbound.object()?.clone();
    let sender = inbound.actor.ap_id();
    let object_kind = json::kind(&object).map(str::to_owned);

    if is_update
        && object_kind
            .as_deref()
            .is_some_and(|k| !POST_TYPES.contains(&k))
        && json::id_of(&object).is_some_and(|id| id == sender)
    {
        return update_actor(&inbound, object).await;
    }

    let note: NoteJson = match object {
        Value::String(_) => {
            // Only an id: read the object from its origin.
            let id = inbound.object_id()?;
            if !same_origin(&id, &sender) {
                return Err(Error::Forbidden(format!(
                    "{sender} may not create or update {id}, which belongs to another origin"
                )));
            }
            let post = ObjectId::<DbPost>::from(id)
                .dereference_forced(inbound.data)
                .await?;
            return filing::file_remote_post(
                inbound.data,
                &post,
                arrival(&inbound, &post),
                &inbound.raw,
                is_update,
            )
            .await;
        }
        other => serde_json::from_value(other).map_err(|e| {
            Error::BadRequest(format!(
                "the object of {} is not a valid post: {e}",
                inbound.id
            ))
        })?,
    };
    if !POST_TYPES.contains(&note.kind_str()) {
        return Err(Error::Unprocessable(format!(
            "Cairn does not store {} objects",
            note.kind_str()
        )));
    }
    if note.author().as_ref() != Some(&sender) {
        return Err(Error::Forbidden(format!(
            "{sender} may not create or update {}, which is attributed to someone else",
            note.id
        )));
    }
    DbPost::verify(&note, &sender, inbound.data).await?;
    let post = DbPost::from_json(note, inbound.data).await?;
    let how = arrival(&inbound, &post);
    filing::file_remote_post(inbound.data, &post, how, &inbound.raw, is_update).await
}

fn arrival(inbound: &Inbound<'_>, _post: &DbPost) -> Arrival {
    let mut addressed = json::ids(inbound.raw.get("to"));
    addressed.extend(json::ids(inbound.raw.get("cc")));
    addressed.extend(json::ids(inbound.raw.get("audience")));
    if let Some(object) = inbound.raw.get("object").filter(|o| o.is_object()) {
        if let Ok(note) = serde_json::from_value::<NoteJson>(object.clone()) {
            addressed.extend(note.addressees());
        }
    }
    Arrival::Direct {
        addressed,
        inbox_owner: inbound.inbox_owner.clone(),
    }
}

async fn update_actor(inbound: &Inbound<'_>, object: Value) -> Result<(), Error> {
    let json: ActorJson = serde_json::from_value(object)
        .map_err(|e| Error::BadRequest(format!("the updated actor is not valid: {e}")))?;
    let sender = inbound.actor.ap_id();
    DbActor::verify(&json, &sender, inbound.data).await?;
    DbActor::from_json(json, inbound.data).await?;
    Ok(())
}
