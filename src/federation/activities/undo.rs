//! `Undo`: of a Follow, the follow ends; of a Join, the participation ends. Undoing something Cairn never stored (a Like, a boost)
//! changes nothing and is accepted.

use super::{follow::find_named, Inbound};
use crate::{
    error::Error,
    federation::json,
    services::participations,
    state::AppState,
    store::{actor, participation, post},
};
use sea_orm::{ColumnTrait, EntityTrait, ModelTrait, QueryFilter};
use serde_json::Value;

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
    if kind == Some("Join") || kind.is_none() {
        // Undo of a Join, as Leave: the actor's participation in the joined post ends.
        if let Some(target) = joined_post(state, object).await? {
            return participations::remove_remote(state, &target, inbound.actor.0.id).await;
        }
    }
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

/// The local post an undone Join was for: named in the embedded Join, or found by its id.
async fn joined_post(state: &AppState, join: &Value) -> Result<Option<post::Model>, Error> {
    let by_object = match join.get("object").and_then(json::id_of_ref) {
        Some(url) => {
            post::Entity::find()
                .filter(post::Column::ApId.eq(url.as_str()))
                .filter(post::Column::Local.eq(true))
                .one(&state.db)
                .await?
        }
        None => None,
    };
    if by_object.is_some() {
        return Ok(by_object);
    }
    let Some(join_id) = json::id_of(join) else {
        return Ok(None);
    };
    let Some(row) = participation::Entity::find()
        .filter(participation::Column::ActivityId.eq(join_id.as_str()))
        .one(&state.db)
        .await?
    else {
        return Ok(None);
    };
    Ok(post::Entity::find_by_id(row.post_id)
        .one(&state.db)
        .await?
        .filter(|p| p.local))
}
