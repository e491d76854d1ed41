//! Who is here: profiles (`/api/v1/me`, `/api/v1/members/…`), community directories and
//! membership (joining a community is following its Group).

use super::{
    api::{ApiJson, ApiQuery},
    auth::{MaybeMember, Member},
};
use crate::{
    error::Error,
    services::{directory, follows, profiles, views},
    state::Ctx,
};
use axum::{
    extract::Path,
    http::StatusCode,
    routing::{get, patch, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router {
    Router::new()
        .route("/api/v1/me", patch(edit_me))
        .route(
            "/api/v1/me/communities",
            get(my_communities).post(join_several),
        )
        .route("/api/v1/members/{name}", get(get_member).patch(edit_member))
        .route("/api/v1/communities/{tag}/members", get(community_members))
        .route(
            "/api/v1/communities/{tag}/membership",
            post(join).delete(leave),
        )
}

async fn edit_me(
    ctx: Ctx,
    Member(m): Member,
    ApiJson(edit): ApiJson<profiles::ProfileEdit>,
) -> Result<Json<Value>, Error> {
    let saved = profiles::update(ctx.app_data(), &m, edit).await?;
    Ok(Json(profiles::me_view(&saved)))
}

/// `PATCH /api/v1/members/NAME` is `PATCH /api/v1/me` when NAME is the signed-in member.
async fn edit_member(
    ctx: Ctx,
    Member(m): Member,
    Path(name): Path<String>,
    ApiJson(edit): ApiJson<profiles::ProfileEdit>,
) -> Result<Json<Value>, Error> {
    let target = profiles::resolve_member(&ctx, &name).await?;
    if target.id != m.id {
        return Err(Error::Forbidden(format!(
            "you are signed in as {}; a member edits only their own profile",
            m.name
        )));
    }
    let saved = profiles::update(ctx.app_data(), &m, edit).await?;
    Ok(Json(profiles::me_view(&saved)))
}

async fn get_member(
    ctx: Ctx,
    MaybeMember(viewer): MaybeMember,
    Path(name): Path<String>,
) -> Result<Json<Value>, Error> {
    let found = profiles::resolve_member(&ctx, &name).await?;
    if viewer.as_ref().is_some_and(|v| v.id == found.id) {
        return Ok(Json(profiles::me_view(&found)));
    }
    let view = serde_json::to_value(views::actor_view(&found))
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Json(view))
}

async fn my_communities(ctx: Ctx, Member(m): Member) -> Result<Json<Value>, Error> {
    let items = directory::followed_communities(ctx.app_data(), &m).await?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinSeveral {
    /// Hashtags (`hwb`, `#CPDLead`) or remote communities (`hwb@national.example`).
    join: Vec<String>,
}

/// Joins several communities at once: what a new member does when choosing hashtags.
async fn join_several(
    ctx: Ctx,
    Member(m): Member,
    ApiJson(body): ApiJson<JoinSeveral>,
) -> Result<Json<Value>, Error> {
    let joined = directory::join_all(&ctx, &m, &body.join).await?;
    Ok(Json(json!({ "items": joined })))
}

async fn join(ctx: Ctx, Member(m): Member, Path(tag): Path<String>) -> Result<Json<Value>, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    let state = directory::join(&ctx, &m, &c).await?;
    let mut view = serde_json::to_value(views::community_view(ctx.app_data(), &c).await?)
        .map_err(|e| Error::Internal(e.to_string()))?;
    view["state"] = json!(state);
    Ok(Json(view))
}

async fn leave(ctx: Ctx, Member(m): Member, Path(tag): Path<String>) -> Result<StatusCode, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    follows::unfollow(&ctx, &m, &c).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryQuery {
    search: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
}

async fn community_members(
    ctx: Ctx,
    Member(viewer): Member,
    Path(tag): Path<String>,
    ApiQuery(q): ApiQuery<DirectoryQuery>,
) -> Result<Json<Value>, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(Error::BadRequest(format!(
            "limit must be 1 to 100, got {limit}"
        )));
    }
    let offset = q.offset.unwrap_or(0);
    let page = directory::community_members(
        ctx.app_data(),
        &viewer,
        &c,
        q.search.as_deref(),
        limit,
        offset,
    )
    .await?;
    Ok(Json(page))
}
