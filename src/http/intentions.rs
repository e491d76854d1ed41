//! "I intend": intentions, their progress, participants and lifecycle (docs/try-intentions.md).

use super::{
    api::{ApiJson, ApiQuery},
    auth::{MaybeMember, Member},
};
use crate::{
    error::Error,
    services::{intentions, views::PostView},
    state::Ctx,
};
use axum::{
    extract::Path,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router {
    Router::new()
        .route("/api/v1/intentions", post(create))
        .route("/api/v1/intentions/{key}", get(show).patch(edit))
        .route(
            "/api/v1/intentions/{key}/achieved",
            post(achieved).delete(not_achieved),
        )
        .route("/api/v1/intentions/{key}/progress", post(progress))
        .route("/api/v1/intentions/{key}/join", post(join).delete(leave))
        .route("/api/v1/intentions/{key}/participants", get(participants))
        .route("/api/v1/me/intentions", get(mine))
        .route("/api/v1/communities/{tag}/intentions", get(in_community))
        .route("/ns", get(context_document))
}

/// The JSON-LD context document of Cairn's extension terms.
async fn context_document() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/ld+json")],
        Json(crate::federation::intention::context_document()),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    limit: Option<u64>,
    offset: Option<u64>,
    /// Participants only: by name or school (`search` as in the events API).
    #[serde(alias = "search")]
    q: Option<String>,
}

impl Page {
    fn page(&self) -> intentions::Page {
        intentions::Page {
            limit: self.limit.unwrap_or(50),
            offset: self.offset.unwrap_or(0),
        }
    }
}

async fn create(
    ctx: Ctx,
    Member(m): Member,
    ApiJson(input): ApiJson<intentions::NewIntention>,
) -> Result<Response, Error> {
    let view = intentions::create(ctx.app_data(), &m, input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn show(
    ctx: Ctx,
    MaybeMember(m): MaybeMember,
    Path(key): Path<String>,
) -> Result<Json<PostView>, Error> {
    Ok(Json(
        intentions::get(ctx.app_data(), m.as_ref(), &key).await?,
    ))
}

async fn edit(
    ctx: Ctx,
    Member(m): Member,
    Path(key): Path<String>,
    ApiJson(input): ApiJson<intentions::IntentionEdit>,
) -> Result<Json<PostView>, Error> {
    Ok(Json(
        intentions::edit(ctx.app_data(), &m, &key, input).await?,
    ))
}

async fn achieved(
    ctx: Ctx,
    Member(m): Member,
    Path(key): Path<String>,
) -> Result<Json<PostView>, Error> {
    Ok(Json(
        intentions::set_achieved(ctx.app_data(), &m, &key, true).await?,
    ))
}

async fn not_achieved(
    ctx: Ctx,
    Member(m): Member,
    Path(key): Path<String>,
) -> Result<Json<PostView>, Error> {
    Ok(Json(
        intentions::set_achieved(ctx.app_data(), &m, &key, false).await?,
    ))
}

async fn progress(
    ctx: Ctx,
    Member(m): Member,
    Path(key): Path<String>,
    ApiJson(input): ApiJson<intentions::Progress>,
) -> Result<Response, Error> {
    let view = intentions::progress(ctx.app_data(), &m, &key, input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn join(ctx: Ctx, Member(m): Member, Path(key): Path<String>) -> Result<Json<Value>, Error> {
    Ok(Json(intentions::join(&ctx, &m, &key).await?))
}

async fn leave(ctx: Ctx, Member(m): Member, Path(key): Path<String>) -> Result<StatusCode, Error> {
    intentions::leave(&ctx, &m, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn participants(
    ctx: Ctx,
    MaybeMember(m): MaybeMember,
    Path(key): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Value>, Error> {
    let items = intentions::participants(
        &ctx,
        m.as_ref(),
        &key,
        page.q.as_deref(),
        page.limit.unwrap_or(50),
        page.offset.unwrap_or(0),
    )
    .await?;
    Ok(Json(json!({ "items": items })))
}

async fn mine(
    ctx: Ctx,
    Member(m): Member,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Value>, Error> {
    let items = intentions::mine(ctx.app_data(), &m, page.page()).await?;
    Ok(Json(json!({ "items": items })))
}

async fn in_community(
    ctx: Ctx,
    MaybeMember(m): MaybeMember,
    Path(tag): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Value>, Error> {
    let items = intentions::in_community(&ctx, m.as_ref(), &tag, page.page()).await?;
    Ok(Json(json!({ "items": items })))
}
