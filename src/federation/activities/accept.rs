//! `Accept` of one of our Follows: the follow becomes active. (Of one of our Joins: see
//! `join::answered`.)

use super::{follow::find_named, Inbound};
use crate::{
    error::Error,
    federation::json,
    store::{actor, follow},
};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

pub async fn receive(inbound: Inbound<'_>) -> Result<(), Error> {
    let object = inbound.object()?;
    if super::join::answered(&inbound, object, true).await? {
        return Ok(());
    }
    if let Some(kind) = json::kind(object) {
        if kind != "Follow" {
            return Err(Error::Unprocessable(format!(
                "Cairn only handles Accept of a Follow, not of {kind}"
            )));
        }
    }
    let state = inbound.data.app_data();
    // The follower is local: named in the embedded Follow, or found by the Follow's id.
    let follower_id = match object.get("actor").and_then(json::id_of_ref) {
        Some(url) => actor::Entity::find()
            .filter(actor::Column::ApId.eq(url.as_str()))
            .filter(actor::Column::Local.eq(true))
            .one(&state.db)
            .await?
            .map(|a| a.id),
        None => None,
    };
    let found = find_named(state, object, follower_id, Some(inbound.actor.0.id)).await?;
    let Some(found) = found else {
        return Err(Error::NotFound(format!(
            "no pending follow of {} matches this Accept",
            inbound.actor.0.ap_id
        )));
    };
    if found.target_id != inbound.actor.0.id {
        return Err(Error::Forbidden(format!(
            "{} may not accept a follow of another actor",
            inbound.actor.0.ap_id
        )));
    }
    if found.state != follow::ACCEPTED {
        let mut active: follow::ActiveModel = found.into();
        active.state = Set(follow::ACCEPTED.into());
        active.update(&state.db).await?;
    }
    Ok(())
}
