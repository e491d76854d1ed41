//! `Join`: a remote actor takes part in one of our events or intentions. The origin decides:
//! the participation is recorded (accepted, or rejected when the event is full) and answered
//! with an `Accept` or a `Reject` that embeds the Join, sent by the post's author.
//! The answer to one of our own Joins (an Accept or a Reject of it) is read here too.

use super::Inbound;
use crate::{
    error::Error,
    federation::{context, json, outbox, same_origin},
    services::{participations, visibility::Visibility},
    state::AppState,
    store::{actor, participation, post},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{json as j, Value};

pub async fn receive(inbound: Inbound<'_>) -> Result<(), Error> {
    let object_id = inbound.object_id()?;
    let state = inbound.data.app_data();
    let target = local_participable(state, object_id.as_str()).await?;
    let joiner = &inbound.actor.0;
    let author = actor::Entity::find_by_id(target.author_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::Internal(format!("post {} has no author", target.ap_id)))?;
    let txn = state.db.begin().await?;
    let (row, changed) = participations::decide_local(
        &txn,
        &target,
        joiner.id,
        participation::VIA_JOIN,
        Some(inbound.id.as_str()),
    )
    .await?;
    let kind = if row.state == participation::ACCEPTED {
        "Accept"
    } else {
        "Reject"
    };
    let mut embedded = inbound.raw.clone();
    if let Some(map) = embedded.as_object_mut() {
        map.remove("@context");
        map.remove("signature");
    }
    let answer = j!({
        "@context": context(),
        "id": outbox::new_activity_id(&state.origin()),
        "type": kind,
        "actor": author.ap_id,
        "object": embedded,
        "to": [joiner.ap_id],
        "published": chrono::Utc::now().to_rfc3339(),
    });
    outbox::queue(
        &txn,
        author.id,
        &answer,
        Some(&target.ap_id),
        vec![joiner.shared_inbox.clone().unwrap_or(joiner.inbox.clone())],
    )
    .await?;
    if changed {
        participations::announce_participants(&txn, state, &target).await?;
    }
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    Ok(())
}

/// The local event or intention `ap_id` names, if a remote actor may join it.
pub async fn local_participable(state: &AppState, ap_id: &str) -> Result<post::Model, Error> {
    let not_found = || Error::NotFound(format!("{ap_id} is not an event or intention here"));
    let found = post::Entity::find()
        .filter(post::Column::ApId.eq(ap_id))
        .filter(post::Column::Local.eq(true))
        .one(&state.db)
        .await?
        .ok_or_else(not_found)?;
    if found.deleted_at.is_some() {
        return Err(Error::Gone(format!("{ap_id} was deleted")));
    }
    // Authority posts never leave the instance; to outside they do not exist.
    if Visibility::parse(&found.visibility).is_none_or(|v| !v.federates()) {
        return Err(not_found());
    }
    if !participations::is_participable(&found) {
        return Err(Error::Unprocessable(format!(
            "{ap_id} is a {} post: only events and intentions can be joined",
            found.category
        )));
    }
    Ok(found)
}

/// An Accept or Reject whose object is one of our Joins: the pending participation becomes
/// accepted or rejected. Returns `false` when the object is not a Join we sent (a Follow).
pub async fn answered(
    inbound: &Inbound<'_>,
    object: &Value,
    accepted: bool,
) -> Result<bool, Error> {
    let kind = json::kind(object);
    if kind.is_some_and(|k| k != "Join") {
        return Ok(false);
    }
    let state = inbound.data.app_data();
    let Some(join_id) = json::id_of(object) else {
        return Ok(false);
    };
    let found = participation::Entity::find()
        .filter(participation::Column::ActivityId.eq(join_id.as_str()))
        .one(&state.db)
        .await?;
    let Some(found) = found else {
        if kind == Some("Join") {
            // A repeat after we left, or a Join we never sent: nothing to change.
            return Ok(true);
        }
        return Ok(false);
    };
    let target = post::Entity::find_by_id(found.post_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::Internal("participation without its post".into()))?;
    let target_url: url::Url = target
        .ap_id
        .parse()
        .map_err(|e| Error::Internal(format!("stored post id: {e}")))?;
    if target.local || !same_origin(&target_url, &inbound.actor.ap_id()) {
        return Err(Error::Forbidden(format!(
            "{} may not answer a Join of {}, which it is not the origin of",
            inbound.actor.0.ap_id, target.ap_id
        )));
    }
    let new_state = if accepted {
        participation::ACCEPTED
    } else {
        participation::REJECTED
    };
    if found.state != new_state {
        // By the Join's id, not the row read above: a mirror refresh running at the same time
        // rewrites the rows (new ids), and an update of a vanished row would fail the inbox.
        participation::Entity::update_many()
            .col_expr(
                participation::Column::State,
                sea_orm::sea_query::Expr::value(new_state),
            )
            .filter(participation::Column::ActivityId.eq(join_id.as_str()))
            .exec(&state.db)
            .await?;
    }
    participations::mark_stale(&state.db, target.id).await?;
    participations::refresh_later(inbound.data, target);
    Ok(true)
}
