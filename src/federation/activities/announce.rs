//! `Announce` (FEP-1b12): how a Group redistributes what is posted in it. Received from a
//! remote Group we follow, it files the post under our communities that follow that Group;
//! sent by our Groups, it carries the post to their followers.

use super::Inbound;
use crate::{
    error::Error,
    federation::{
        addressing::{self, FollowerInbox},
        context, json,
        note::{self, DbPost, NoteJson, POST_TYPES},
        origin_of, outbox, same_origin, PUBLIC,
    },
    services::{
        filing::{self, Arrival},
        visibility::Visibility,
    },
    state::AppState,
    store::{actor, post},
};
use activitypub_federation::{fetch::object_id::ObjectId, traits::Object};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{json as j, Value};
use url::Url;

pub async fn receive(inbound: Inbound<'_>) -> Result<(), Error> {
    let object = inbound.object()?.clone();
    let announcer = inbound.actor.ap_id();
    let inner_kind = json::kind(&object).map(str::to_owned);
    match inner_kind.as_deref() {
        Some("Create") | Some("Update") => {
            let inner_object = object
                .get("object")
                .cloned()
                .ok_or_else(|| Error::BadRequest("the announced activity has no object".into()))?;
            let post = resolve_post(&inbound, &inner_object, &announcer, true).await?;
            let is_update = inner_kind.as_deref() == Some("Update");
            filing::file_remote_post(
                inbound.data,
                &post,
                Arrival::Announced {
                    by: inbound.actor.0.clone(),
                },
                &object,
                is_update,
            )
            .await
        }
        Some("Delete") => {
            let target = object
                .get("object")
                .and_then(json::id_of_ref)
                .ok_or_else(|| Error::BadRequest("the announced Delete has no object".into()))?;
            announced_delete(&inbound, &target, &object).await
        }
        Some(kind) if !POST_TYPES.contains(&kind) => Err(Error::Unprocessable(format!(
            "Cairn does not handle announced {kind} activities"
        ))),
        _ => {
            // A bare object, embedded or by id (how Mastodon boosts).
            let post = resolve_post(&inbound, &object, &announcer, false).await?;
            let create = j!({"type": "Create", "actor": post_author(inbound.data.app_data(), &post).await?, "object": post.0.ap_id});
            filing::file_remote_post(
                inbound.data,
                &post,
                Arrival::Announced {
                    by: inbound.actor.0.clone(),
                },
                &create,
                false,
            )
            .await
        }
    }
}

async fn post_author(state: &AppState, post: &DbPost) -> Result<String, Error> {
    Ok(actor::Entity::find_by_id(post.0.author_id)
        .one(&state.db)
        .await?
        .map(|a| a.ap_id)
        .unwrap_or_default())
}

/// The announced post: an embedded copy is trusted only from the post's own origin (anyone can
/// embed anything), otherwise it is read from its origin.
async fn resolve_post(
    inbound: &Inbound<'_>,
    object: &Value,
    announcer: &Url,
    refresh: bool,
) -> Result<DbPost, Error> {
    let id = json::id_of(object)
        .ok_or_else(|| Error::BadRequest("the announced object has no id".into()))?;
    if object.is_object() && same_origin(&id, announcer) {
        let note: NoteJson = serde_json::from_value(object.clone())
            .map_err(|e| Error::BadRequest(format!("the announced object is not a post: {e}")))?;
        DbPost::verify(&note, announcer, inbound.data).await?;
        return DbPost::from_json(note, inbound.data).await;
    }
    let oid = ObjectId::<DbPost>::from(id);
    if refresh {
        oid.dereference_forced(inbound.data).await
    } else {
        oid.dereference(inbound.data).await
    }
}

/// A Group tells us a post was deleted. Unless the Group is the post's origin, the origin is
/// asked; only a post that is gone there is removed here.
async fn announced_delete(inbound: &Inbound<'_>, target: &Url, inner: &Value) -> Result<(), Error> {
    let state = inbound.data.app_data();
    let Some(found) = post::Entity::find()
        .filter(post::Column::ApId.eq(target.as_str()))
        .one(&state.db)
        .await?
    else {
        return Ok(());
    };
    if !same_origin(target, &inbound.actor.ap_id()) {
        match ObjectId::<DbPost>::from(target.clone())
            .dereference_forced(inbound.data)
            .await
        {
            Ok(p) if p.0.deleted_at.is_none() => {
                return Err(Error::Forbidden(format!(
                    "{target} still exists at its origin; the Delete is not believed"
                )))
            }
            _ => {}
        }
    }
    filing::remove_remote_post(inbound.data, &found, inner).await
}

/// What a Group sends when a post is created, updated or deleted in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create,
    Update,
    Delete,
}

/// Queues the Group's Announce of `inner` (the author's Create/Update/Delete) to the Group's
/// remote followers, never back to the post's origin. Groups and other aggregators receive the
/// whole activity (FEP-1b12); people receive, for a new post, an Announce of the post itself,
/// which is what Mastodon shows as a boost.
pub async fn announce_in_group<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    group: &actor::Model,
    post: &post::Model,
    inner: &Value,
    verb: Verb,
) -> Result<usize, Error> {
    let post_id: Url = post
        .ap_id
        .parse()
        .map_err(|e| Error::Internal(format!("stored post id: {e}")))?;
    let followers = addressing::excluding_origin(
        addressing::remote_follower_inboxes(conn, group.id).await?,
        &post_id,
    );
    if followers.is_empty() && verb != Verb::Create {
        return Ok(0);
    }
    let followers_were_empty = followers.is_empty();
    let (groups, people): (Vec<FollowerInbox>, Vec<FollowerInbox>) = followers
        .into_iter()
        .partition(|f| verb != Verb::Create || f.is_group_like());
    let visibility = Visibility::parse(&post.visibility).unwrap_or(Visibility::Members);
    let followers_url = group.followers_url.clone().unwrap_or_default();
    let (to, cc) = match visibility {
        Visibility::Public => (j!([PUBLIC]), j!([followers_url])),
        _ => (j!([followers_url]), j!([])),
    };
    let mut inner = inner.clone();
    if let Some(map) = inner.as_object_mut() {
        // The embedded activity keeps its meaning without a context of its own.
        map.remove("@context");
        map.remove("signature");
    }
    let mut queued = 0;
    let announce = |object: Value| {
        j!({
            "@context": context(),
            "id": outbox::new_activity_id(&state.origin()),
            "type": "Announce",
            "actor": group.ap_id,
            "object": object,
            "to": to,
            "cc": cc,
            "audience": group.ap_id,
            "published": chrono::Utc::now().to_rfc3339(),
        })
    };
    if !groups.is_empty() {
        let activity = announce(inner.clone());
        queued += outbox::queue(
            conn,
            group.id,
            &activity,
            Some(&post.ap_id),
            groups.into_iter().map(|f| f.inbox).collect(),
        )
        .await?;
    }
    // With no followers yet, the Announce is still recorded: the Group's outbox is its history.
    if !people.is_empty() || queued == 0 && verb == Verb::Create && followers_were_empty {
        // Mastodon accepts an embedded object only from the object's own origin.
        let object = if origin_of(&post_id) == state.origin() {
            serde_json::to_value(note::to_json(conn, state, post).await?)
                .map_err(|e| Error::Internal(e.to_string()))?
        } else {
            Value::String(post.ap_id.clone())
        };
        let activity = announce(object);
        queued += outbox::queue(
            conn,
            group.id,
            &activity,
            Some(&post.ap_id),
            people.into_iter().map(|f| f.inbox).collect(),
        )
        .await?;
    }
    Ok(queued)
}
