//! Who is here: profiles (`/api/v1/me`, `/api/v1/members/…`), community directories and the
//! communities a member has joined.

use super::{
    api::{ApiJson, ApiQuery},
    auth::Member,
};
use crate::{
    error::Error,
    services::{directory, follows, profiles, views},
    state::Ctx,
};
use axum::{
    extract::Path,
    routing::{get, patch},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router {
    Router::new()
        .route("/api/v1/me", patch(edit_me))
        .route("/api/v1/me/communities", get(my_communities))
        .route("/api/v1/members/{name}", get(get_member))
        .route("/api/v1/communities/{tag}/members", get(community_members))
}

async fn edit_me(
    ctx: Ctx,
    Member(m): Member,
    ApiJson(edit): ApiJson<profiles::ProfileEdit>,
) -> Result<Json<Value>, Error> {
    let saved = profiles::update(ctx.app_data(), &m, edit).await?;
    Ok(Json(profiles::me_view(&saved)))
}

async fn my_communities(ctx: Ctx, Member(m): Member) -> Result<Json<Value>, Error> {
    let items = directory::followed_communities(ctx.app_data(), &m).await?;
    Ok(Json(json!({ "items": items })))
}

async fn get_member(ctx: Ctx, Path(name): Path<String>) -> Result<Json<views::ActorView>, Error> {
    let found = profiles::resolve_member(&ctx, &name).await?;
    Ok(Json(views::actor_view(&found)))
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
    Path(tag): Path<String>,
    ApiQuery(q): ApiQuery<DirectoryQuery>,
) -> Result<Json<Value>, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    let limit = q.limit.unwrap_or(20);
    let offset = q.offset.unwrap_or(0);
    let (items, total) =
        directory::community_members(ctx.app_data(), &c, q.search.as_deref(), limit, offset)
            .await?;
    Ok(Json(json!({ "items": items, "total": total })))
}
