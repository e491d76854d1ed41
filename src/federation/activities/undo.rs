//! `Undo`: of a Follow, the follow ends. Undoing something Cairn never stored (a Like, a boost)
//! changes nothing and is accepted.

use super::{follow::find_named, Inbound};
use crate::{error::Error, federation::json, store::actor};
use sea_orm::{ColumnTrait, EntityTrait, ModelTrait, QueryFilter};

pub async fn receive(inbound: Inbound<'_>) -> Result<(), Error> {
    let object = inbound.object()?;
    let state = inbound.data.app_data();
    if let Some(inner_actor) = object.get("actor").and_then(json::id_of_ref) {
        if inner_actor.as_str() != inbound.actor.0.ap_id {
            return Err(Error::Forbidden(format!(
                "{} may not undo an activity of {inner_actor}",
                inbound.actor.0.ap_id
            )));
        }
    }
    let kind = json::kind(object);
    if kind.is_some_and(|k| k != "Follow") {
        return Ok(());
    }
    let target_id = match object.get("object").and_then(json::id_of_ref) {
        Some(url) => actor::Entity::find()
            .filter(actor::Column::ApId.eq(url.as_str()))
            .one(&state.db)
            .await?
            .map(|a| a.id),
        None => None,
    };
    if let Some(found) = find_named(state, object, Some(inbound.actor.0.id), target_id).await? {
        if found.follower_id != inbound.actor.0.id {
            return Err(Error::Forbidden(format!(
                "{} may not undo another actor's follow",
                inbound.actor.0.ap_id
            )));
        }
        found.delete(&state.db).await?;
    }
    Ok(())
}
