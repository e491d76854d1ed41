//! Discussion routes: threads, a community's moderators and pins, an event's pins, the member's
//! feed (docs/try-discussion.md documents them).

use super::{
    api::{ApiJson, ApiQuery},
    auth::{MaybeMember, Member},
};
use crate::{
    error::Error,
    services::{feed, follows, moderators, pins, removals, threads, views},
    state::Ctx,
};
use axum::{
    extract::Path,
    http::StatusCode,
    routing::{delete, get},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router {
    Router::new()
        .route("/api/v1/posts/{key}/thread", get(thread))
        .route(
            "/api/v1/communities/{tag}/moderators",
            get(list_moderators).post(add_moderator),
        )
        .route(
            "/api/v1/communities/{tag}/moderators/{name}",
            delete(remove_moderator),
        )
        .route(
            "/api/v1/communities/{tag}/pins",
            get(community_pins).post(pin_in_community),
        )
        .route(
            "/api/v1/communities/{tag}/pins/{key}",
            delete(unpin_in_community),
        )
        .route(
            "/api/v1/posts/{key}/pins",
            get(event_pins).post(pin_in_event),
        )
        .route("/api/v1/posts/{key}/pins/{pinned}", delete(unpin_in_event))
        .route("/api/v1/feed", get(member_feed))
        .route(
            "/api/v1/communities/{tag}/posts/{key}",
            delete(remove_from_community),
        )
}

/// A facilitator takes a post out of their community (the author keeps it).
async fn remove_from_community(
    ctx: Ctx,
    Member(m): Member,
    Path((tag, key)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    removals::remove_from_community(ctx.app_data(), &m, &c, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn thread(
    ctx: Ctx,
    MaybeMember(m): MaybeMember,
    Path(key): Path<String>,
) -> Result<Json<Value>, Error> {
    Ok(Json(
        threads::thread(ctx.app_data(), m.as_ref(), &key).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewModerator {
    /// A local member's user name.
    member: String,
}

async fn list_moderators(ctx: Ctx, Path(tag): Path<String>) -> Result<Json<Value>, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    if !c.local {
        return Err(Error::BadRequest(format!(
            "{} is a community of another instance; ask there for its moderators",
            c.ap_id
        )));
    }
    let items: Vec<views::ActorView> = moderators::list(&ctx.db, c.id)
        .await?
        .iter()
        .map(views::actor_view)
        .collect();
    Ok(Json(json!({ "items": items })))
}

async fn add_moderator(
    ctx: Ctx,
    Member(m): Member,
    Path(tag): Path<String>,
    ApiJson(input): ApiJson<NewModerator>,
) -> Result<Json<Value>, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    let items = moderators::add(ctx.app_data(), &m, &c, &input.member).await?;
    Ok(Json(json!({ "items": items })))
}

async fn remove_moderator(
    ctx: Ctx,
    Member(m): Member,
    Path((tag, name)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    moderators::remove(ctx.app_data(), &m, &c, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPin {
    /// The key of the post to pin.
    post: String,
}

async fn community_pins(
    ctx: Ctx,
    MaybeMember(m): MaybeMember,
    Path(tag): Path<String>,
) -> Result<Json<Value>, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    let items = pins::community_pin_views(ctx.app_data(), m.as_ref(), &c).await?;
    Ok(Json(json!({ "items": items })))
}

async fn pin_in_community(
    ctx: Ctx,
    Member(m): Member,
    Path(tag): Path<String>,
    ApiJson(input): ApiJson<NewPin>,
) -> Result<Json<Value>, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    let items = pins::pin_in_community(ctx.app_data(), &m, &c, input.post.trim()).await?;
    Ok(Json(json!({ "items": items })))
}

async fn unpin_in_community(
    ctx: Ctx,
    Member(m): Member,
    Path((tag, key)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    pins::unpin_in_community(ctx.app_data(), &m, &c, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn event_pins(
    ctx: Ctx,
    MaybeMember(m): MaybeMember,
    Path(key): Path<String>,
) -> Result<Json<Value>, Error> {
    let items = pins::event_pin_views(ctx.app_data(), m.as_ref(), &key).await?;
    Ok(Json(json!({ "items": items })))
}

async fn pin_in_event(
    ctx: Ctx,
    Member(m): Member,
    Path(key): Path<String>,
    ApiJson(input): ApiJson<NewPin>,
) -> Result<Json<Value>, Error> {
    let items = pins::pin_in_event(ctx.app_data(), &m, &key, input.post.trim()).await?;
    Ok(Json(json!({ "items": items })))
}

async fn unpin_in_event(
    ctx: Ctx,
    Member(m): Member,
    Path((key, pinned)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    pins::unpin_in_event(ctx.app_data(), &m, &key, &pinned).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn member_feed(
    ctx: Ctx,
    Member(m): Member,
    ApiQuery(query): ApiQuery<feed::ListingQuery>,
) -> Result<Json<feed::Listing>, Error> {
    let (filter, page) = query.parse()?;
    Ok(Json(
        feed::member_feed(ctx.app_data(), &m, &filter, page).await?,
    ))
}
