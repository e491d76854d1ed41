//! The JSON API for members (README.md documents it).

use super::auth::{MaybeMember, Member};
use crate::{
    error::Error,
    services::{communities, feed, follows, links, posts, views},
    state::Ctx,
};
use axum::{
    extract::{FromRequest, Path, Query, Request},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::de::DeserializeOwned;
use serde_json::json;

pub fn router() -> Router {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/posts", post(create_post))
        .route(
            "/api/v1/posts/{key}",
            get(get_post).patch(edit_post).delete(delete_post),
        )
        .route("/api/v1/communities", get(list_communities))
        .route("/api/v1/communities/{tag}", get(get_community))
        .route("/api/v1/communities/{tag}/posts", get(community_posts))
        .route(
            "/api/v1/communities/{tag}/follow",
            post(follow_community).delete(unfollow_community),
        )
        .route("/api/v1/links", get(list_links))
}

/// A JSON body whose rejection is a clear 400 in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;
    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let value = match Json::<serde_json::Value>::from_request(req, state).await {
            Ok(Json(v)) => v,
            Err(rejection) => {
                return Err(match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => {
                        Error::BadRequest("the body is too large".into())
                    }
                    _ => Error::BadRequest(rejection.body_text()),
                })
            }
        };
        // Serde would read a struct from an array too; the API takes objects only.
        if !value.is_object() {
            return Err(Error::BadRequest("the body must be a JSON object".into()));
        }
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(|e| Error::BadRequest(format!("invalid request body: {e}")))
    }
}

/// Query parameters whose rejection is a 400 in the API's error shape.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Error> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|rejection| Error::BadRequest(rejection.body_text()))
    }
}

async fn me(Member(m): Member) -> Json<serde_json::Value> {
    Json(crate::services::profiles::me_view(&m))
}

async fn create_post(
    ctx: Ctx,
    Member(m): Member,
    ApiJson(mut input): ApiJson<posts::NewPost>,
) -> Result<Response, Error> {
    input.in_reply_to =
        crate::services::threads::resolve_parent(&ctx, input.in_reply_to.as_deref()).await?;
    let view = posts::create(ctx.app_data(), &m, input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn get_post(
    ctx: Ctx,
    MaybeMember(m): MaybeMember,
    Path(key): Path<String>,
) -> Result<Json<views::PostView>, Error> {
    Ok(Json(posts::get(ctx.app_data(), m.as_ref(), &key).await?))
}

async fn edit_post(
    ctx: Ctx,
    Member(m): Member,
    Path(key): Path<String>,
    ApiJson(edit): ApiJson<posts::PostEdit>,
) -> Result<Json<views::PostView>, Error> {
    Ok(Json(posts::update(ctx.app_data(), &m, &key, edit).await?))
}

async fn delete_post(
    ctx: Ctx,
    Member(m): Member,
    Path(key): Path<String>,
) -> Result<StatusCode, Error> {
    posts::delete(ctx.app_data(), &m, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_communities(ctx: Ctx) -> Result<Json<serde_json::Value>, Error> {
    let state = ctx.app_data();
    let mut items = Vec::new();
    for c in communities::list_local(state).await? {
        items.push(views::community_view(state, &c).await?);
    }
    Ok(Json(json!({ "items": items })))
}

async fn get_community(
    ctx: Ctx,
    Path(tag): Path<String>,
) -> Result<Json<views::CommunityView>, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    Ok(Json(views::community_view(ctx.app_data(), &c).await?))
}

async fn community_posts(
    ctx: Ctx,
    MaybeMember(m): MaybeMember,
    Path(tag): Path<String>,
    ApiQuery(query): ApiQuery<feed::ListingQuery>,
) -> Result<Json<feed::Listing>, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    // Filters (hashtag, kind, dates) and pinned posts first: services::feed.
    let (filter, page) = query.parse()?;
    Ok(Json(
        feed::community_items(ctx.app_data(), m.as_ref(), &c, &filter, page).await?,
    ))
}

async fn follow_community(
    ctx: Ctx,
    Member(m): Member,
    Path(tag): Path<String>,
) -> Result<Json<serde_json::Value>, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    let state = follows::follow(&ctx, &m, &c).await?;
    Ok(Json(
        json!({ "state": state, "community": views::actor_view(&c) }),
    ))
}

async fn unfollow_community(
    ctx: Ctx,
    Member(m): Member,
    Path(tag): Path<String>,
) -> Result<StatusCode, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    follows::unfollow(&ctx, &m, &c).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_links(ctx: Ctx) -> Result<Json<serde_json::Value>, Error> {
    Ok(Json(json!({ "items": links::list(ctx.app_data()).await? })))
}
