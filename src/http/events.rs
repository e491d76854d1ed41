//! Events: creating and editing them, taking part, tasks, a community's upcoming events, and
//! the `participants` collection other instances mirror.

use super::{
    api::{ApiJson, ApiQuery},
    auth::{MaybeMember, Member},
    signed_fetch::SignedFetch,
};
use crate::{
    error::Error,
    services::{calendar, events, follows, participations, views, visibility::Visibility},
    state::Ctx,
    store::post,
};
use activitypub_federation::axum::json::FederationJson;
use axum::{
    extract::Path,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{delete as delete_route, get, post as post_route},
    Json, Router,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router {
    Router::new()
        .route("/api/v1/events", post_route(create))
        .route(
            "/api/v1/events/{key}",
            get(get_event).patch(edit).delete(remove),
        )
        .route("/api/v1/events/{key}/join", post_route(join).delete(leave))
        .route("/api/v1/events/{key}/participants", get(participants))
        .route("/api/v1/events/{key}/tasks", get(tasks).post(add_task))
        .route("/api/v1/events/{key}/tasks/{id}", delete_route(remove_task))
        .route(
            "/api/v1/events/{key}/tasks/{id}/done",
            axum::routing::put(tick).delete(untick),
        )
        .route("/api/v1/communities/{tag}/events", get(community_events))
        .route("/p/{key}/participants", get(participants_collection))
}

async fn create(
    ctx: Ctx,
    Member(m): Member,
    ApiJson(input): ApiJson<events::NewEvent>,
) -> Result<Response, Error> {
    let view = events::create(ctx.app_data(), &m, input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The event as JSON, or as iCalendar when the key ends in `.ics`.
async fn get_event(
    ctx: Ctx,
    MaybeMember(m): MaybeMember,
    Path(key): Path<String>,
) -> Result<Response, Error> {
    if let Some(key) = key.strip_suffix(".ics") {
        let ics = calendar::event_ics(&ctx, m.as_ref(), key).await?;
        return Ok(ics_response(ics, key));
    }
    let p = events::find_event(&ctx, m.as_ref(), &key).await?;
    let view = views::post_view(ctx.app_data(), &p).await?;
    let mut v = serde_json::to_value(view).map_err(|e| Error::Internal(e.to_string()))?;
    if let Some(m) = &m {
        v["participation"] = json!(events::my_participation(ctx.app_data(), &p, m).await?);
    }
    Ok(Json(v).into_response())
}

pub fn ics_response(ics: String, name: &str) -> Response {
    let file: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{file}.ics\""),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        ics,
    )
        .into_response()
}

async fn edit(
    ctx: Ctx,
    Member(m): Member,
    Path(key): Path<String>,
    ApiJson(input): ApiJson<events::EventEdit>,
) -> Result<Json<views::PostView>, Error> {
    Ok(Json(events::update(&ctx, &m, &key, input).await?))
}

async fn remove(ctx: Ctx, Member(m): Member, Path(key): Path<String>) -> Result<StatusCode, Error> {
    events::delete(&ctx, &m, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn join(ctx: Ctx, Member(m): Member, Path(key): Path<String>) -> Result<Json<Value>, Error> {
    Ok(Json(events::join(&ctx, &m, &key).await?))
}

async fn leave(ctx: Ctx, Member(m): Member, Path(key): Path<String>) -> Result<StatusCode, Error> {
    let p = events::find_participable(&ctx, Some(&m), &key).await?;
    participations::leave(&ctx, &m, &p).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ParticipantQuery {
    search: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
}

async fn participants(
    ctx: Ctx,
    MaybeMember(m): MaybeMember,
    Path(key): Path<String>,
    ApiQuery(q): ApiQuery<ParticipantQuery>,
) -> Result<Json<Value>, Error> {
    Ok(Json(
        events::participants(
            &ctx,
            m.as_ref(),
            &key,
            q.search.as_deref(),
            q.limit.unwrap_or(50),
            q.offset.unwrap_or(0),
        )
        .await?,
    ))
}

async fn tasks(ctx: Ctx, Member(m): Member, Path(key): Path<String>) -> Result<Json<Value>, Error> {
    Ok(Json(events::tasks(&ctx, &m, &key).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTask {
    text: String,
}

async fn add_task(
    ctx: Ctx,
    Member(m): Member,
    Path(key): Path<String>,
    ApiJson(t): ApiJson<NewTask>,
) -> Result<Response, Error> {
    let task = events::add_task(&ctx, &m, &key, &t.text).await?;
    Ok((StatusCode::CREATED, Json(task)).into_response())
}

async fn remove_task(
    ctx: Ctx,
    Member(m): Member,
    Path((key, id)): Path<(String, i64)>,
) -> Result<StatusCode, Error> {
    events::remove_task(&ctx, &m, &key, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn tick(
    ctx: Ctx,
    Member(m): Member,
    Path((key, id)): Path<(String, i64)>,
) -> Result<Json<Value>, Error> {
    Ok(Json(events::tick(&ctx, &m, &key, id, true).await?))
}

async fn untick(
    ctx: Ctx,
    Member(m): Member,
    Path((key, id)): Path<(String, i64)>,
) -> Result<Json<Value>, Error> {
    Ok(Json(events::tick(&ctx, &m, &key, id, false).await?))
}

#[derive(Deserialize)]
struct EventsQuery {
    /// Also events that have ended.
    past: Option<bool>,
}

/// A community's events, soonest first (upcoming only unless `past=true`).
async fn community_events(
    ctx: Ctx,
    MaybeMember(m): MaybeMember,
    Path(tag): Path<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<Value>, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    let state = ctx.app_data();
    let mut items = Vec::new();
    for (p, _) in
        events::upcoming_in_community(state, m.as_ref(), &c, q.past.unwrap_or(false)).await?
    {
        items.push(views::post_view(state, &p).await?);
    }
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
struct CollectionQuery {
    page: Option<u64>,
}

/// The origin's participant list, which other instances mirror. Public posts only.
async fn participants_collection(
    ctx: Ctx,
    _: SignedFetch,
    Path(key): Path<String>,
    ApiQuery(q): ApiQuery<CollectionQuery>,
) -> Result<Response, Error> {
    let not_found = || Error::NotFound(format!("no event or intention {key:?} on this instance"));
    let found = post::Entity::find()
        .filter(post::Column::Key.eq(&key))
        .filter(post::Column::Local.eq(true))
        .one(&ctx.db)
        .await?
        .ok_or_else(not_found)?;
    if found.deleted_at.is_some()
        || !participations::is_participable(&found)
        || Visibility::parse(&found.visibility) != Some(Visibility::Public)
    {
        return Err(not_found());
    }
    let collection = participations::collection(ctx.app_data(), &found, q.page).await?;
    Ok(FederationJson(collection).into_response())
}
