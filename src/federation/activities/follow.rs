//! `Follow`: a remote actor follows a local community (or member); answered with `Accept`.
//! Cairn's own Follow (a community following a linked instance's community, or a member
//! following a remote community) is built here too.

use super::Inbound;
use crate::{
    error::Error,
    federation::{context, outbox},
    services::follows,
    state::AppState,
    store::{actor, follow},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{json, Value};

pub async fn receive(inbound: Inbound<'_>) -> Result<(), Error> {
    let target_id = inbound.object_id()?;
    let state = inbound.data.app_data();
    let target = actor::Entity::find()
        .filter(actor::Column::ApId.eq(target_id.as_str()))
        .filter(actor::Column::Local.eq(true))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("{target_id} is not an actor on this instance")))?;
    let follower = &inbound.actor.0;
    let txn = state.db.begin().await?;
    follows::upsert_accepted(&txn, follower.id, target.id, Some(inbound.id.as_str())).await?;
    let accept = json!({
        "@context": context(),
        "id": outbox::new_activity_id(&state.origin()),
        "type": "Accept",
        "actor": target.ap_id,
        "object": inbound.raw,
        "to": [follower.ap_id],
    });
    outbox::queue(&txn, target.id, &accept, None, vec![follower.inbox.clone()]).await?;
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    Ok(())
}

/// `follower` (local) follows `target` (remote): the Follow to send.
pub fn build(state: &AppState, follower: &actor::Model, target: &actor::Model) -> Value {
    json!({
        "@context": context(),
        "id": outbox::new_activity_id(&state.origin()),
        "type": "Follow",
        "actor": follower.ap_id,
        "object": target.ap_id,
        "to": [target.ap_id],
    })
}

/// The stored follow that an Accept, Reject or Undo names: by the Follow's id, or by the pair.
pub async fn find_named(
    state: &AppState,
    follow_object: &Value,
    follower_id: Option<i64>,
    target_id: Option<i64>,
) -> Result<Option<follow::Model>, Error> {
    if let Some(id) = crate::federation::json::id_of(follow_object) {
        let found = follow::Entity::find()
            .filter(follow::Column::ActivityId.eq(id.as_str()))
            .one(&state.db)
            .await?;
        if found.is_some() {
            return Ok(found);
        }
    }
    match (follower_id, target_id) {
        (Some(f), Some(t)) => Ok(follow::Entity::find()
            .filter(follow::Column::FollowerId.eq(f))
            .filter(follow::Column::TargetId.eq(t))
            .one(&state.db)
            .await?),
        _ => Ok(None),
    }
}
