//! Events: creating and editing them, taking part, tasks, and the `participants` collection.

use super::{
    api::ApiQuery,
    auth::{MaybeMember, Member},
    signed_fetch::SignedFetch,
};
use crate::{
    error::Error,
    services::{events, participations, visibility::Visibility},
    state::Ctx,
    store::post,
};
use activitypub_federation::axum::json::FederationJson;
use axum::{
    extract::Path,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post as post_route},
    Json, Router,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use serde_json::Value;

pub fn router() -> Router {
    Router::new()
        .route(
            "/api/v1/events/{key}/join",
            post_route(join).delete(leave),
        )
        .route("/api/v1/events/{key}/participants", get(participants))
        .route("/p/{key}/participants", get(participants_collection))
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
