//! Taking part: joining and leaving events and intentions, locally and across instances.
//!
//! One table (`participations`) serves both: an event's or an intention's post id, the actor,
//! and a state (`pending` until the origin's Accept arrives, then `accepted`, or `rejected`).
//! The origin of the post is authoritative; other instances mirror its participant list.

use crate::{
    error::{Error, Result},
    federation::{actor::DbActor, context, origin_of, outbox, same_origin, PUBLIC},
    services::{directory, posts, views},
    state::AppState,
    store::{actor, event, participation, post},
};
use activitypub_federation::{config::Data, fetch::object_id::ObjectId};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, ModelTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::{json, Value};
use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};
use url::Url;

/// How long a mirrored participant list is trusted before it is read again from the origin.
pub const MIRROR_TTL: Duration = Duration::from_secs(30);
/// Participants per page of the `participants` collection.
pub const COLLECTION_PAGE: u64 = 200;
/// Most participants read from a remote collection (pages followed until then).
const MAX_MIRRORED: usize = 2_000;

/// Whether people can take part in `p`: an event or an intention that still exists.
pub fn is_participable(p: &post::Model) -> bool {
    p.deleted_at.is_none() && (p.category == post::EVENT || p.category == post::INTENTION)
}

fn check_participable(p: &post::Model) -> Result<()> {
    if p.deleted_at.is_some() {
        return Err(Error::Gone(format!("{} was deleted", p.ap_id)));
    }
    if !is_participable(p) {
        return Err(Error::Unprocessable(format!(
            "{} is a {} post: only events and intentions can be joined",
            p.ap_id, p.category
        )));
    }
    Ok(())
}

/// The number of places of an event (`None`: unlimited, or not an event); a cancelled event
/// has none left.
async fn capacity<C: ConnectionTrait>(conn: &C, p: &post::Model) -> Result<Option<i64>> {
    if p.category != post::EVENT {
        return Ok(None);
    }
    let mut query = event::Entity::find_by_id(p.id);
    if conn.get_database_backend() == DbBackend::Postgres {
        // Two joins at once must not both take the last place.
        query = query.lock_exclusive();
    }
    Ok(match query.one(conn).await? {
        Some(e) if e.status == event::CANCELLED => Some(0),
        Some(e) => e.capacity.map(i64::from),
        None => None,
    })
}

pub async fn accepted_count<C: ConnectionTrait>(conn: &C, post_id: i64) -> Result<u64> {
    Ok(participation::Entity::find()
        .filter(participation::Column::PostId.eq(post_id))
        .filter(participation::Column::State.eq(participation::ACCEPTED))
        .count(conn)
        .await?)
}

pub async fn find<C: ConnectionTrait>(
    conn: &C,
    post_id: i64,
    actor_id: i64,
) -> Result<Option<participation::Model>> {
    Ok(participation::Entity::find()
        .filter(participation::Column::PostId.eq(post_id))
        .filter(participation::Column::ActorId.eq(actor_id))
        .one(conn)
        .await?)
}

/// Whether `actor_id` takes part in `post_id` (accepted).
pub async fn is_participant<C: ConnectionTrait>(
    conn: &C,
    post_id: i64,
    actor_id: i64,
) -> Result<bool> {
    Ok(find(conn, post_id, actor_id)
        .await?
        .is_some_and(|p| p.state == participation::ACCEPTED))
}

/// The origin's decision on `actor_id` joining local post `p`: the row is written (accepted, or
/// rejected when the event is full) inside `conn`'s transaction. Returns the row and whether the
/// participant list changed.
pub async fn decide_local<C: ConnectionTrait>(
    conn: &C,
    p: &post::Model,
    actor_id: i64,
    via: &str,
    activity_id: Option<&str>,
) -> Result<(participation::Model, bool)> {
    let existing = find(conn, p.id, actor_id).await?;
    if let Some(e) = &existing {
        if e.state == participation::ACCEPTED {
            return Ok((e.clone(), false));
        }
    }
    let full = match capacity(conn, p).await? {
        Some(places) => accepted_count(conn, p.id).await? as i64 >= places,
        None => false,
    };
    let state = if full {
        participation::REJECTED
    } else {
        participation::ACCEPTED
    };
    let row = upsert(conn, p.id, actor_id, state, via, activity_id, existing).await?;
    Ok((row, !full))
}

async fn upsert<C: ConnectionTrait>(
    conn: &C,
    post_id: i64,
    actor_id: i64,
    state: &str,
    via: &str,
    activity_id: Option<&str>,
    existing: Option<participation::Model>,
) -> Result<participation::Model> {
    Ok(match existing {
        Some(e) => {
            let newly_accepted = state == participation::ACCEPTED && e.state != state;
            let mut active: participation::ActiveModel = e.into();
            if newly_accepted {
                // Listed from when they got a place, not from when they first asked.
                active.created_at = Set(Utc::now());
            }
            active.state = Set(state.into());
            active.via = Set(via.into());
            if let Some(id) = activity_id {
                active.activity_id = Set(Some(id.into()));
            }
            active.update(conn).await?
        }
        None => {
            participation::ActiveModel {
                post_id: Set(post_id),
                actor_id: Set(actor_id),
                state: Set(state.into()),
                via: Set(via.into()),
                activity_id: Set(activity_id.map(str::to_owned)),
                created_at: Set(Utc::now()),
                ..Default::default()
            }
            .insert(conn)
            .await?
        }
    })
}

/// `member` (local) takes part in `post` (an event or an intention, local or remote): at once
/// for a local post (or `rejected` when an event is full), by a `Join` to the origin (state
/// `pending` until its `Accept`) for a remote one. Joining twice changes nothing.
pub async fn join(
    ctx: &Data<AppState>,
    member: &actor::Model,
    post: &post::Model,
) -> Result<participation::Model> {
    let state = ctx.app_data();
    check_participable(post)?;
    if !member.local {
        return Err(Error::Internal("join: the member is not local".into()));
    }
    if post.local {
        let txn = state.db.begin().await?;
        let (row, changed) =
            decide_local(&txn, post, member.id, participation::VIA_LOCAL, None).await?;
        if changed {
            announce_participants(&txn, state, post).await?;
        }
        txn.commit().await?;
        state.delivery_wakeup.notify_one();
        return Ok(row);
    }
    let existing = find(&state.db, post.id, member.id).await?;
    if let Some(e) = &existing {
        if e.state != participation::REJECTED {
            return Ok(e.clone());
        }
    }
    let author = actor::Entity::find_by_id(post.author_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::Internal(format!("post {} has no author", post.ap_id)))?;
    let join = json!({
        "@context": context(),
        "id": outbox::new_activity_id(&state.origin()),
        "type": "Join",
        "actor": member.ap_id,
        "object": post.ap_id,
        "to": [author.ap_id],
        "published": Utc::now().to_rfc3339(),
    });
    let join_id = join["id"].as_str().unwrap_or_default().to_owned();
    let txn = state.db.begin().await?;
    let row = upsert(
        &txn,
        post.id,
        member.id,
        participation::PENDING,
        participation::VIA_JOIN,
        Some(&join_id),
        existing,
    )
    .await?;
    outbox::queue(
        &txn,
        member.id,
        &join,
        Some(&post.ap_id),
        vec![author.inbox],
    )
    .await?;
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    Ok(row)
}

/// `member` (local) stops taking part (a `Leave` to the origin for a remote post).
pub async fn leave(ctx: &Data<AppState>, member: &actor::Model, post: &post::Model) -> Result<()> {
    let state = ctx.app_data();
    check_participable(post)?;
    let Some(existing) = find(&state.db, post.id, member.id).await? else {
        return Ok(());
    };
    let txn = state.db.begin().await?;
    let was_accepted = existing.state == participation::ACCEPTED;
    existing.delete(&txn).await?;
    if post.local {
        if was_accepted {
            announce_participants(&txn, state, post).await?;
        }
    } else {
        let author = actor::Entity::find_by_id(post.author_id)
            .one(&txn)
            .await?
            .ok_or_else(|| Error::Internal(format!("post {} has no author", post.ap_id)))?;
        let leave = json!({
            "@context": context(),
            "id": outbox::new_activity_id(&state.origin()),
            "type": "Leave",
            "actor": member.ap_id,
            "object": post.ap_id,
            "to": [author.ap_id],
            "published": Utc::now().to_rfc3339(),
        });
        outbox::queue(
            &txn,
            member.id,
            &leave,
            Some(&post.ap_id),
            vec![author.inbox],
        )
        .await?;
    }
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    Ok(())
}

/// A "Not going" vote on local event `p`: recorded for the poll's count, and a place held is
/// given up. Returns whether the participant list changed.
pub async fn decline<C: ConnectionTrait>(
    conn: &C,
    p: &post::Model,
    actor_id: i64,
    activity_id: Option<&str>,
) -> Result<bool> {
    let existing = find(conn, p.id, actor_id).await?;
    let was_accepted = existing
        .as_ref()
        .is_some_and(|e| e.state == participation::ACCEPTED);
    upsert(
        conn,
        p.id,
        actor_id,
        crate::federation::event::DECLINED,
        participation::VIA_POLL,
        activity_id,
        existing,
    )
    .await?;
    Ok(was_accepted)
}

/// A remote actor stops taking part in a local post (Leave, or Undo of its Join).
pub async fn remove_remote(state: &AppState, p: &post::Model, actor_id: i64) -> Result<()> {
    let Some(existing) = find(&state.db, p.id, actor_id).await? else {
        return Ok(());
    };
    let txn = state.db.begin().await?;
    let was_accepted = existing.state == participation::ACCEPTED;
    existing.delete(&txn).await?;
    if was_accepted && p.local {
        announce_participants(&txn, state, p).await?;
    }
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    Ok(())
}

/// The participants of local post `p` changed: its origin sends an `Update` of it (with the
/// new counts) where the post went and to every remote participant, so that mirrors refresh.
pub async fn announce_participants<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    p: &post::Model,
) -> Result<()> {
    let inboxes = remote_participant_inboxes(conn, p.id).await?;
    posts::send_update(conn, state, p, inboxes).await
}

async fn remote_participant_inboxes<C: ConnectionTrait>(
    conn: &C,
    post_id: i64,
) -> Result<Vec<String>> {
    let ids: Vec<i64> = participation::Entity::find()
        .filter(participation::Column::PostId.eq(post_id))
        .filter(participation::Column::State.eq(participation::ACCEPTED))
        .all(conn)
        .await?
        .into_iter()
        .map(|p| p.actor_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(actor::Entity::find()
        .filter(actor::Column::Id.is_in(ids))
        .filter(actor::Column::Local.eq(false))
        .all(conn)
        .await?
        .into_iter()
        .map(|a| a.shared_inbox.unwrap_or(a.inbox))
        .collect())
}

/// Accepted participants of `post`, searchable by name and school, paged.
pub async fn list(
    ctx: &Data<AppState>,
    post: &post::Model,
    search: Option<&str>,
    limit: u64,
    offset: u64,
) -> Result<Vec<Value>> {
    let state = ctx.app_data();
    if !post.local {
        refresh_if_stale(ctx, post).await;
    }
    let rows = accepted_rows(&state.db, post).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let actors = actor::Entity::find()
        .filter(actor::Column::Id.is_in(rows.iter().map(|r| r.actor_id)))
        .filter(directory::search_condition(search))
        .all(&state.db)
        .await?;
    let by_id: HashMap<i64, actor::Model> = actors.into_iter().map(|a| (a.id, a)).collect();
    let mut out = Vec::new();
    for row in rows
        .iter()
        .filter(|r| by_id.contains_key(&r.actor_id))
        .skip(offset as usize)
        .take(limit.clamp(1, 200) as usize)
    {
        let Some(a) = by_id.get(&row.actor_id) else {
            continue;
        };
        let mut v = serde_json::to_value(views::actor_view(a))
            .map_err(|e| Error::Internal(e.to_string()))?;
        if let Some(map) = v.as_object_mut() {
            map.entry("school").or_insert(json!(a.school));
            map.entry("role").or_insert(json!(a.role));
            map.insert("via".into(), json!(row.via));
            map.insert("joined".into(), json!(row.created_at));
        }
        out.push(v);
    }
    Ok(out)
}

/// Accepted rows in list order: when they joined at the origin; for a mirror, the origin's
/// order (see `refresh`), which is the order of the rows' ids.
/// How many accepted participants `search` matches (by name, display name or school).
pub async fn matching_count<C: ConnectionTrait>(
    conn: &C,
    p: &post::Model,
    search: Option<&str>,
) -> Result<u64> {
    let ids: Vec<i64> = accepted_rows(conn, p)
        .await?
        .iter()
        .map(|r| r.actor_id)
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(actor::Entity::find()
        .filter(actor::Column::Id.is_in(ids))
        .filter(directory::search_condition(search))
        .count(conn)
        .await?)
}

async fn accepted_rows<C: ConnectionTrait>(
    conn: &C,
    p: &post::Model,
) -> Result<Vec<participation::Model>> {
    let mut query = participation::Entity::find()
        .filter(participation::Column::PostId.eq(p.id))
        .filter(participation::Column::State.eq(participation::ACCEPTED));
    if p.local {
        query = query.order_by_asc(participation::Column::CreatedAt);
    }
    Ok(query
        .order_by_asc(participation::Column::Id)
        .all(conn)
        .await?)
}

/// The ids of the accepted participants of `p`, in the order they joined.
pub async fn participant_ids<C: ConnectionTrait>(conn: &C, p: &post::Model) -> Result<Vec<String>> {
    let rows = accepted_rows(conn, p).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let actors: HashMap<i64, String> = actor::Entity::find()
        .filter(actor::Column::Id.is_in(rows.iter().map(|r| r.actor_id)))
        .all(conn)
        .await?
        .into_iter()
        .map(|a| (a.id, a.ap_id))
        .collect();
    Ok(rows
        .iter()
        .filter_map(|r| actors.get(&r.actor_id).cloned())
        .collect())
}

/// Where a post's participants are listed (Cairn's `participants` term).
pub fn collection_url(p: &post::Model) -> String {
    format!("{}/participants", p.ap_id)
}

/// The `participants` collection of local post `p`: all ids inline when few, else paged.
pub async fn collection(state: &AppState, p: &post::Model, page: Option<u64>) -> Result<Value> {
    let ids = participant_ids(&state.db, p).await?;
    let url = collection_url(p);
    let total = ids.len() as u64;
    let to = if p.visibility == "public" {
        json!([PUBLIC])
    } else {
        json!([])
    };
    match page {
        None if total <= COLLECTION_PAGE => Ok(json!({
            "@context": context(),
            "id": url,
            "type": "OrderedCollection",
            "totalItems": total,
            "orderedItems": ids,
            "to": to,
        })),
        None => Ok(json!({
            "@context": context(),
            "id": url,
            "type": "OrderedCollection",
            "totalItems": total,
            "first": format!("{url}?page=1"),
            "to": to,
        })),
        Some(n) => {
            let n = n.max(1);
            let start = ((n - 1) * COLLECTION_PAGE) as usize;
            let items: Vec<&String> = ids
                .iter()
                .skip(start)
                .take(COLLECTION_PAGE as usize)
                .collect();
            let mut page = json!({
                "@context": context(),
                "id": format!("{url}?page={n}"),
                "type": "OrderedCollectionPage",
                "partOf": url,
                "totalItems": total,
                "orderedItems": items,
            });
            if (start as u64) + COLLECTION_PAGE < total {
                page["next"] = json!(format!("{url}?page={}", n + 1));
            }
            Ok(page)
        }
    }
}

fn mirror_times() -> &'static Mutex<HashMap<i64, Instant>> {
    static TIMES: OnceLock<Mutex<HashMap<i64, Instant>>> = OnceLock::new();
    TIMES.get_or_init(Default::default)
}

/// An Update of remote post `post_id` arrived: its participants are read again on next use.
pub async fn mark_stale<C: ConnectionTrait>(conn: &C, post_id: i64) -> Result<()> {
    if let Ok(mut times) = mirror_times().lock() {
        times.remove(&post_id);
    }
    event::Entity::update_many()
        .col_expr(
            event::Column::ParticipantsRefreshedAt,
            sea_orm::sea_query::Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(event::Column::PostId.eq(post_id))
        .exec(conn)
        .await?;
    Ok(())
}

async fn is_stale(state: &AppState, p: &post::Model) -> Result<bool> {
    let ttl = chrono::Duration::from_std(MIRROR_TTL).unwrap_or_default();
    if p.category == post::EVENT {
        if let Some(e) = event::Entity::find_by_id(p.id).one(&state.db).await? {
            return Ok(e
                .participants_refreshed_at
                .is_none_or(|t| Utc::now() - t > ttl));
        }
    }
    Ok(mirror_times()
        .lock()
        .map(|t| t.get(&p.id).is_none_or(|at| at.elapsed() > MIRROR_TTL))
        .unwrap_or(true))
}

/// Reads a remote post's participant list from its origin when the copy here is old. When
/// the origin cannot be read, the list known here is shown.
async fn refresh_if_stale(ctx: &Data<AppState>, p: &post::Model) {
    let state = ctx.app_data();
    match is_stale(state, p).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!("participants of {}: {e}", p.ap_id);
            return;
        }
    }
    if let Err(e) = refresh(ctx, p).await {
        tracing::info!(
            "could not read the participants of {} from its origin: {e}",
            p.ap_id
        );
    }
}

/// Reads remote post `p`'s participants from its origin in the background, so that the
/// counts shown here follow the origin's answer or Update without waiting for someone to open
/// the list. In the background because the origin is waiting for our answer to its activity.
pub fn refresh_later(ctx: &Data<AppState>, p: post::Model) {
    if p.local {
        return;
    }
    let ctx = ctx.reset_request_count();
    tokio::spawn(async move {
        if let Err(e) = refresh(&ctx, &p).await {
            tracing::info!(
                "could not read the participants of {} from its origin: {e}",
                p.ap_id
            );
        }
    });
}

/// Mirrors the origin's participant list of remote post `p`.
pub async fn refresh(ctx: &Data<AppState>, p: &post::Model) -> Result<()> {
    // Two refreshes of one list at once (an Accept and the Update after it) would both insert
    // the same rows: they take turns.
    static TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = TURNS.lock().await;
    let state = ctx.app_data();
    let url: Url = collection_url(p)
        .parse()
        .map_err(|e| Error::Internal(format!("participants url: {e}")))?;
    let ids = fetch_collection(ctx, &url).await?;
    let mut actor_ids = Vec::new();
    for id in ids {
        if let Some(a) = local_or_fetched_actor(ctx, &id).await {
            actor_ids.push(a.id);
        }
    }
    let txn = state.db.begin().await?;
    let existing = participation::Entity::find()
        .filter(participation::Column::PostId.eq(p.id))
        .all(&txn)
        .await?;
    // The list is rewritten in the origin's order (rows are listed by id here), so that it reads
    // the same on every instance. Rows still waiting for the origin's answer stay.
    for row in &existing {
        if row.state == participation::ACCEPTED || actor_ids.contains(&row.actor_id) {
            row.clone().delete(&txn).await?;
        }
    }
    let mut seen = Vec::new();
    for actor_id in actor_ids {
        if seen.contains(&actor_id) {
            continue;
        }
        seen.push(actor_id);
        let before = existing.iter().find(|r| r.actor_id == actor_id);
        participation::ActiveModel {
            post_id: Set(p.id),
            actor_id: Set(actor_id),
            state: Set(participation::ACCEPTED.into()),
            via: Set(before.map_or(participation::VIA_JOIN.into(), |r| r.via.clone())),
            activity_id: Set(before.and_then(|r| r.activity_id.clone())),
            created_at: Set(before.map_or_else(Utc::now, |r| r.created_at)),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
    }
    event::Entity::update_many()
        .col_expr(
            event::Column::ParticipantsRefreshedAt,
            sea_orm::sea_query::Expr::value(Some(Utc::now())),
        )
        .filter(event::Column::PostId.eq(p.id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    if let Ok(mut times) = mirror_times().lock() {
        times.insert(p.id, Instant::now());
    }
    Ok(())
}

async fn local_or_fetched_actor(ctx: &Data<AppState>, id: &Url) -> Option<actor::Model> {
    if origin_of(id) == ctx.app_data().origin() {
        return actor::Entity::find()
            .filter(actor::Column::ApId.eq(id.as_str()))
            .one(&ctx.app_data().db)
            .await
            .ok()
            .flatten();
    }
    // Each actor is one fetch at most; a fresh request budget keeps long lists possible.
    match ObjectId::<DbActor>::from(id.clone())
        .dereference(&ctx.reset_request_count())
        .await
    {
        Ok(a) => Some(a.0),
        Err(e) => {
            tracing::info!("participant {id}: {e}");
            None
        }
    }
}

/// The actor ids of an `OrderedCollection` (inline, or by its pages) at `url`.
async fn fetch_collection(ctx: &Data<AppState>, url: &Url) -> Result<Vec<Url>> {
    let top: Value =
        activitypub_federation::fetch::fetch_object_http(url, &ctx.reset_request_count())
            .await?
            .object;
    let mut ids = crate::federation::json::ids(top.get("orderedItems").or(top.get("items")));
    let mut next = top
        .get("first")
        .and_then(crate::federation::json::id_of_ref);
    while let Some(page_url) = next.take() {
        if ids.len() >= MAX_MIRRORED || !same_origin(&page_url, url) {
            break;
        }
        let page: Value =
            activitypub_federation::fetch::fetch_object_http(&page_url, &ctx.reset_request_count())
                .await?
                .object;
        ids.extend(crate::federation::json::ids(
            page.get("orderedItems").or(page.get("items")),
        ));
        next = page
            .get("next")
            .and_then(crate::federation::json::id_of_ref);
    }
    ids.truncate(MAX_MIRRORED);
    ids.retain(|id| id.scheme() == "https" || id.scheme() == "http");
    Ok(ids)
}
