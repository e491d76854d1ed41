//! Reflective questions: posts a facilitator pins at the top of a community, or an organiser at
//! the top of an event. A community's pins are its Group's `featured` collection; pinning and
//! unpinning reach the Group's followers as `Add`/`Remove` with that collection as `target`.
//! Event pins stay on the event's instance (no vocabulary federates them).

use super::{
    moderators,
    posts::readable_by,
    views::{self, PostView},
    visibility::Visibility,
};
use crate::{
    error::{Error, Result},
    federation::{
        activities::{add, remove},
        actor::GROUP,
        addressing, json,
        note::{self, DbPost},
        same_origin,
    },
    state::AppState,
    store::{actor, event, event_organiser, pin, post, post_community, thread_query},
};
use activitypub_federation::{
    config::Data,
    fetch::{fetch_object_http, object_id::ObjectId},
};
use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use serde_json::{json, Value};
use url::Url;

/// More pins than this stop being "at the top": a facilitator unpins an old question first.
pub const MAX_PINS: u64 = 20;

/// Where a Group's pins are published.
pub fn featured_url(group: &actor::Model) -> String {
    format!("{}/featured", group.ap_id.trim_end_matches('/'))
}

async fn pinned<C: ConnectionTrait>(
    conn: &C,
    scope_kind: &str,
    scope_id: i64,
) -> Result<Vec<post::Model>> {
    let pins = pin::Entity::find()
        .filter(pin::Column::ScopeKind.eq(scope_kind))
        .filter(pin::Column::ScopeId.eq(scope_id))
        .order_by_desc(pin::Column::Id)
        .all(conn)
        .await?;
    if pins.is_empty() {
        return Ok(Vec::new());
    }
    let mut posts = post::Entity::find()
        .filter(post::Column::Id.is_in(pins.iter().map(|p| p.post_id)))
        .filter(post::Column::DeletedAt.is_null())
        .all(conn)
        .await?;
    // Newest pin first, as Mastodon and Lemmy show them.
    posts.sort_by_key(|p| pins.iter().position(|pin| pin.post_id == p.id));
    Ok(posts)
}

/// The posts pinned in a community (local or remote: a remote Group's pins arrive by `Add`),
/// newest pin first, whoever may read them.
pub async fn pinned_for_community<C: ConnectionTrait>(
    conn: &C,
    community_id: i64,
) -> Result<Vec<post::Model>> {
    pinned(conn, pin::COMMUNITY, community_id).await
}

/// The posts an event's organisers pinned to it, newest pin first, whoever may read them.
pub async fn pinned_for_event<C: ConnectionTrait>(
    conn: &C,
    event_post_id: i64,
) -> Result<Vec<post::Model>> {
    pinned(conn, pin::EVENT, event_post_id).await
}

async fn readable_views(
    state: &AppState,
    viewer: Option<&actor::Model>,
    posts: Vec<post::Model>,
) -> Result<Vec<PostView>> {
    let mut out = Vec::new();
    for p in posts {
        if readable_by(state, &p, viewer).await? {
            let mut v = views::post_view(state, &p).await?;
            v.pinned = true;
            out.push(v);
        }
    }
    Ok(out)
}

/// A community's pinned posts as `viewer` may see them, flagged `pinned`.
pub async fn community_pin_views(
    state: &AppState,
    viewer: Option<&actor::Model>,
    community: &actor::Model,
) -> Result<Vec<PostView>> {
    let posts = pinned_for_community(&state.db, community.id).await?;
    readable_views(state, viewer, posts).await
}

/// An event's pinned posts as `viewer` may see them (the event must be readable to them).
pub async fn event_pin_views(
    state: &AppState,
    viewer: Option<&actor::Model>,
    event_key: &str,
) -> Result<Vec<PostView>> {
    let event_post = event_post(state, event_key).await?;
    if !readable_by(state, &event_post, viewer).await? {
        return Err(Error::NotFound(format!("no post with key {event_key:?}")));
    }
    let posts = pinned_for_event(&state.db, event_post.id).await?;
    readable_views(state, viewer, posts).await
}

async fn find_post(state: &AppState, key: &str) -> Result<post::Model> {
    let p = post::Entity::find()
        .filter(post::Column::Key.eq(key))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no post with key {key:?}")))?;
    if p.deleted_at.is_some() {
        return Err(Error::Gone(format!("post {key:?} was deleted")));
    }
    Ok(p)
}

/// A readable, undeleted post for `by` to pin.
async fn post_to_pin(state: &AppState, by: &actor::Model, key: &str) -> Result<post::Model> {
    let p = find_post(state, key).await?;
    if !readable_by(state, &p, Some(by)).await? {
        return Err(Error::NotFound(format!("no post with key {key:?}")));
    }
    Ok(p)
}

async fn pin_count<C: ConnectionTrait>(conn: &C, kind: &str, scope_id: i64) -> Result<u64> {
    Ok(pin::Entity::find()
        .filter(pin::Column::ScopeKind.eq(kind))
        .filter(pin::Column::ScopeId.eq(scope_id))
        .count(conn)
        .await?)
}

/// Inserts a pin; `false` if the post was already pinned there.
async fn insert_pin<C: ConnectionTrait>(
    conn: &C,
    kind: &str,
    scope_id: i64,
    post_id: i64,
    by: Option<i64>,
) -> Result<bool> {
    let inserted = pin::Entity::insert(pin::ActiveModel {
        scope_kind: Set(kind.to_owned()),
        scope_id: Set(scope_id),
        post_id: Set(post_id),
        pinned_by: Set(by),
        created_at: Set(Utc::now()),
        ..Default::default()
    })
    .on_conflict_do_nothing_on([
        pin::Column::ScopeKind,
        pin::Column::ScopeId,
        pin::Column::PostId,
    ])
    .exec_without_returning(conn)
    .await?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0))
}

async fn delete_pin<C: ConnectionTrait>(
    conn: &C,
    kind: &str,
    scope_id: i64,
    post_id: i64,
) -> Result<bool> {
    let deleted = pin::Entity::delete_many()
        .filter(pin::Column::ScopeKind.eq(kind))
        .filter(pin::Column::ScopeId.eq(scope_id))
        .filter(pin::Column::PostId.eq(post_id))
        .exec(conn)
        .await?;
    Ok(deleted.rows_affected > 0)
}

fn tag_of(c: &actor::Model) -> &str {
    c.local_name.as_deref().unwrap_or(&c.name)
}

/// A moderator pins a post shared in their community; its followers are sent an `Add`.
/// Returns the community's pins. Pinning a pinned post changes nothing.
pub async fn pin_in_community(
    state: &AppState,
    by: &actor::Model,
    community: &actor::Model,
    key: &str,
) -> Result<Vec<PostView>> {
    moderators::must_moderate(state, by, community, "pin posts").await?;
    let p = post_to_pin(state, by, key).await?;
    let filed = post_community::Entity::find()
        .filter(post_community::Column::PostId.eq(p.id))
        .filter(post_community::Column::CommunityId.eq(community.id))
        .one(&state.db)
        .await?;
    if filed.is_none() {
        return Err(Error::BadRequest(format!(
            "post {key:?} is not shared in #{}; share it there first (post with the hashtag), then pin it",
            tag_of(community)
        )));
    }
    let txn = state.db.begin().await?;
    let already = pin::Entity::find()
        .filter(pin::Column::ScopeKind.eq(pin::COMMUNITY))
        .filter(pin::Column::ScopeId.eq(community.id))
        .filter(pin::Column::PostId.eq(p.id))
        .one(&txn)
        .await?
        .is_some();
    if !already {
        if pin_count(&txn, pin::COMMUNITY, community.id).await? >= MAX_PINS {
            return Err(Error::Conflict(format!(
                "#{} already has {MAX_PINS} pinned posts; unpin one first",
                tag_of(community)
            )));
        }
        if insert_pin(&txn, pin::COMMUNITY, community.id, p.id, Some(by.id)).await? {
            send_featured_change(&txn, state, community, &p, add::ADD).await?;
        }
    }
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    community_pin_views(state, Some(by), community).await
}

/// A moderator unpins a post; followers are sent a `Remove`.
pub async fn unpin_in_community(
    state: &AppState,
    by: &actor::Model,
    community: &actor::Model,
    key: &str,
) -> Result<()> {
    moderators::must_moderate(state, by, community, "unpin posts").await?;
    let p = post::Entity::find()
        .filter(post::Column::Key.eq(key))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no post with key {key:?}")))?;
    let txn = state.db.begin().await?;
    if !delete_pin(&txn, pin::COMMUNITY, community.id, p.id).await? {
        return Err(Error::NotFound(format!(
            "post {key:?} is not pinned in #{}",
            tag_of(community)
        )));
    }
    send_featured_change(&txn, state, community, &p, remove::REMOVE).await?;
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    Ok(())
}

/// A post taken out of a community is no longer one of its pins: drops the pin, if any, and
/// tells the Group's followers with a `Remove` from `featured`, as unpinning does.
pub async fn unpin_removed<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    community: &actor::Model,
    p: &post::Model,
) -> Result<()> {
    if delete_pin(conn, pin::COMMUNITY, community.id, p.id).await? {
        send_featured_change(conn, state, community, p, remove::REMOVE).await?;
    }
    Ok(())
}

/// Queues the Group's `Add`/`Remove` of `p` (in its `featured` collection) to its remote
/// followers, unless the post never leaves this instance.
async fn send_featured_change<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    group: &actor::Model,
    p: &post::Model,
    kind: &str,
) -> Result<()> {
    send_group_change(conn, state, group, p, kind, &featured_url(group)).await
}

/// Queues the Group's `Add`/`Remove` of `p` with `target` (its featured collection, or the
/// Group itself when a facilitator removes a post) to its remote followers, unless the post
/// never leaves this instance.
pub(super) async fn send_group_change<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    group: &actor::Model,
    p: &post::Model,
    kind: &str,
    target: &str,
) -> Result<()> {
    let visibility = Visibility::parse(&p.visibility).unwrap_or(Visibility::Authority);
    if !visibility.federates() {
        return Ok(());
    }
    let inboxes: Vec<String> = addressing::remote_follower_inboxes(conn, group.id)
        .await?
        .into_iter()
        .map(|f| f.inbox)
        .collect();
    if inboxes.is_empty() {
        return Ok(());
    }
    let activity = add::build(state, kind, group, target, p, visibility);
    crate::federation::outbox::queue(conn, group.id, &activity, Some(&p.ap_id), inboxes).await?;
    Ok(())
}

/// A post that is an event (it has an events row).
async fn event_post(state: &AppState, key: &str) -> Result<post::Model> {
    let p = find_post(state, key).await?;
    if event::Entity::find_by_id(p.id)
        .one(&state.db)
        .await?
        .is_none()
    {
        return Err(Error::BadRequest(format!(
            "post {key:?} is not an event; pins of a community are under /api/v1/communities/TAG/pins"
        )));
    }
    Ok(p)
}

async fn must_organise(
    state: &AppState,
    by: &actor::Model,
    event_post: &post::Model,
) -> Result<()> {
    if event_post.author_id == by.id && event_post.local {
        return Ok(());
    }
    let organiser = event_organiser::Entity::find()
        .filter(event_organiser::Column::EventPostId.eq(event_post.id))
        .filter(event_organiser::Column::ActorId.eq(by.id))
        .one(&state.db)
        .await?;
    if organiser.is_none() {
        return Err(Error::Forbidden(
            "only the event's organisers may pin or unpin posts on it".into(),
        ));
    }
    Ok(())
}

/// An organiser pins a reply (at any depth) to the event. Returns the event's pins.
pub async fn pin_in_event(
    state: &AppState,
    by: &actor::Model,
    event_key: &str,
    key: &str,
) -> Result<Vec<PostView>> {
    let event_post = event_post(state, event_key).await?;
    must_organise(state, by, &event_post).await?;
    let p = post_to_pin(state, by, key).await?;
    let in_thread = thread_query::descendants(&state.db, event_post.id)
        .await?
        .iter()
        .any(|d| d.id == p.id);
    if !in_thread {
        return Err(Error::BadRequest(format!(
            "post {key:?} is not a reply to the event; only its discussion can be pinned to it"
        )));
    }
    let txn = state.db.begin().await?;
    let already = pin::Entity::find()
        .filter(pin::Column::ScopeKind.eq(pin::EVENT))
        .filter(pin::Column::ScopeId.eq(event_post.id))
        .filter(pin::Column::PostId.eq(p.id))
        .one(&txn)
        .await?
        .is_some();
    if !already {
        if pin_count(&txn, pin::EVENT, event_post.id).await? >= MAX_PINS {
            return Err(Error::Conflict(format!(
                "the event already has {MAX_PINS} pinned posts; unpin one first"
            )));
        }
        insert_pin(&txn, pin::EVENT, event_post.id, p.id, Some(by.id)).await?;
    }
    txn.commit().await?;
    event_pin_views(state, Some(by), event_key).await
}

pub async fn unpin_in_event(
    state: &AppState,
    by: &actor::Model,
    event_key: &str,
    key: &str,
) -> Result<()> {
    let event_post = event_post(state, event_key).await?;
    must_organise(state, by, &event_post).await?;
    let p = post::Entity::find()
        .filter(post::Column::Key.eq(key))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no post with key {key:?}")))?;
    if !delete_pin(&state.db, pin::EVENT, event_post.id, p.id).await? {
        return Err(Error::NotFound(format!(
            "post {key:?} is not pinned to this event"
        )));
    }
    Ok(())
}

/// A remote Group we follow pinned `post_id` (its `Add` was checked by the federation layer).
pub async fn store_remote_pin<C: ConnectionTrait>(
    conn: &C,
    group_id: i64,
    post_id: i64,
) -> Result<()> {
    insert_pin(conn, pin::COMMUNITY, group_id, post_id, None).await?;
    Ok(())
}

/// A remote Group we follow unpinned `post_id`.
pub async fn remove_remote_pin<C: ConnectionTrait>(
    conn: &C,
    group_id: i64,
    post_id: i64,
) -> Result<()> {
    delete_pin(conn, pin::COMMUNITY, group_id, post_id).await?;
    Ok(())
}

/// Reads a remote Group's `featured` collection, once we follow it, so that what was pinned
/// before then shows here too; later changes arrive as `Add`/`Remove`. Each item is read from
/// its own origin (an embedded copy is not trusted); one that cannot be read is skipped.
/// Returns how many posts are pinned here for it afterwards.
pub async fn refresh_remote_featured(data: &Data<AppState>, group: &actor::Model) -> Result<usize> {
    if group.local || group.kind != GROUP {
        return Ok(0);
    }
    let group_url: Url = group
        .ap_id
        .parse()
        .map_err(|e| Error::Internal(format!("stored actor id {}: {e}", group.ap_id)))?;
    let document = fetch_object_http::<AppState, Value>(&group_url, data).await?;
    let Some(featured) = json::ids(document.object.get("featured"))
        .into_iter()
        .next()
    else {
        return Ok(0);
    };
    if !same_origin(&featured, &group_url) {
        return Err(Error::Remote(format!(
            "{} names a featured collection on another origin",
            group.ap_id
        )));
    }
    let collection = fetch_object_http::<AppState, Value>(&featured, data)
        .await?
        .object;
    let listed = collection
        .get("orderedItems")
        .or_else(|| collection.get("items"));
    let mut posts = Vec::new();
    for id in json::ids(listed).into_iter().take(MAX_PINS as usize) {
        match ObjectId::<DbPost>::from(id.clone()).dereference(data).await {
            Ok(p) => posts.push(p.0.id),
            Err(e) => tracing::warn!("featured item {id} of {}: {e}", group.ap_id),
        }
    }
    let txn = data.db.begin().await?;
    pin::Entity::delete_many()
        .filter(pin::Column::ScopeKind.eq(pin::COMMUNITY))
        .filter(pin::Column::ScopeId.eq(group.id))
        .exec(&txn)
        .await?;
    // Oldest first, so that the newest pin has the highest id, as local pins do.
    for post_id in posts.iter().rev() {
        insert_pin(&txn, pin::COMMUNITY, group.id, *post_id, None).await?;
    }
    txn.commit().await?;
    Ok(posts.len())
}

/// The Group's `featured` collection: its public pinned posts, newest pin first. Posts from
/// here are embedded (as Mastodon and Lemmy do); others are named by id, because a receiver
/// trusts an embedded copy only from the post's origin.
pub async fn featured_json(state: &AppState, group: &actor::Model) -> Result<Value> {
    let mut items = Vec::new();
    for p in pinned_for_community(&state.db, group.id).await? {
        if Visibility::parse(&p.visibility) != Some(Visibility::Public) {
            continue;
        }
        if p.local {
            let mut v = serde_json::to_value(note::to_json(&state.db, state, &p).await?)
                .map_err(|e| Error::Internal(e.to_string()))?;
            if let Some(m) = v.as_object_mut() {
                m.remove("@context");
            }
            items.push(v);
        } else {
            items.push(Value::String(p.ap_id.clone()));
        }
    }
    Ok(json!({
        "id": featured_url(group),
        "type": "OrderedCollection",
        "totalItems": items.len(),
        "orderedItems": items,
    }))
}
