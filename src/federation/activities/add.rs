//! `Add` to a Group's `featured` collection: a facilitator pinned a post (a reflective
//! question). Sent by our Groups to their followers; received from remote Groups we follow,
//! it pins the post on our copy of that community. `remove.rs` is the reverse.

use super::Inbound;
use crate::{
    error::Error,
    federation::{context, json, note::DbPost, outbox, same_origin, PUBLIC},
    services::{pins, visibility::Visibility},
    state::AppState,
    store::{actor, follow, post},
};
use activitypub_federation::fetch::object_id::ObjectId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json as j, Value};
use url::Url;

pub const ADD: &str = "Add";

/// The Group's `Add` (or `Remove`) of `p` to (from) its featured collection.
pub fn build(
    state: &AppState,
    kind: &str,
    group: &actor::Model,
    featured: &str,
    p: &post::Model,
    visibility: Visibility,
) -> Value {
    let followers = group.followers_url.clone().unwrap_or_default();
    let (to, cc) = match visibility {
        Visibility::Public => (j!([PUBLIC]), j!([followers])),
        _ => (j!([followers]), j!([])),
    };
    j!({
        "@context": context(),
        "id": outbox::new_activity_id(&state.origin()),
        "type": kind,
        "actor": group.ap_id,
        "object": p.ap_id,
        "target": featured,
        "to": to,
        "cc": cc,
        "audience": group.ap_id,
        "published": chrono::Utc::now().to_rfc3339(),
    })
}

pub async fn receive(inbound: Inbound<'_>) -> Result<(), Error> {
    let group = featured_of_followed_group(&inbound)?;
    let group = followed_here(&inbound, group).await?;
    let object_id = inbound.object_id()?;
    // An embedded copy is not trusted; the post is read from its origin unless we have it.
    let pinned = ObjectId::<DbPost>::from(object_id)
        .dereference(inbound.data)
        .await?;
    pins::store_remote_pin(&inbound.data.db, group.id, pinned.0.id).await
}

/// Checks that the activity changes the sending Group's own featured collection; returns the
/// Group.
pub fn featured_of_followed_group(inbound: &Inbound<'_>) -> Result<actor::Model, Error> {
    let kind = json::kind(&inbound.raw).unwrap_or_default();
    let group = &inbound.actor;
    if !group.is_group() {
        return Err(Error::Unprocessable(format!(
            "Cairn handles {kind} only to a Group's featured collection (pinned posts); {} is a {}",
            group.0.ap_id, group.0.kind
        )));
    }
    let target: Url = inbound
        .raw
        .get("target")
        .and_then(json::id_of_ref)
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "{kind} {} has no target; Cairn handles {kind} to a Group's featured collection",
                inbound.id
            ))
        })?;
    let is_featured = target
        .path_segments()
        .and_then(|mut s| s.next_back())
        .is_some_and(|last| last == "featured");
    if !same_origin(&target, &group.ap_id()) || !is_featured {
        return Err(Error::Unprocessable(format!(
            "{kind} {}: the target {target} is not the featured collection of {}",
            inbound.id, group.0.ap_id
        )));
    }
    Ok(group.0.clone())
}

/// Pins of a remote Group matter here only if someone here follows it.
pub async fn followed_here(
    inbound: &Inbound<'_>,
    group: actor::Model,
) -> Result<actor::Model, Error> {
    let followed = follow::Entity::find()
        .filter(follow::Column::TargetId.eq(group.id))
        .filter(follow::Column::State.eq(follow::ACCEPTED))
        .one(&inbound.data.db)
        .await?
        .is_some();
    if !followed {
        return Err(Error::Forbidden(format!(
            "nobody on this instance follows {}; its pins are not accepted",
            group.ap_id
        )));
    }
    Ok(group)
}
