//! Posts and activities by URL. Only public posts are served to remote fetches; `members` and
//! `authority` posts answer 404 there, deleted ones 410 with a Tombstone.

use super::{
    negotiate::wants_activity_json,
    pages,
    signed_fetch::{self, SignedFetch},
};
use crate::{
    error::Error,
    federation::{context, json, note},
    services::{views, visibility::Visibility},
    state::Ctx,
    store::{outbox_activity, post},
};
use activitypub_federation::{axum::json::FederationJson, protocol::context::WithContext};
use axum::{
    extract::Path,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json as j, Value};

pub fn router() -> Router {
    Router::new()
        .route("/p/{key}", get(post_document))
        .route("/activities/{id}", get(activity_document))
}

async fn post_document(
    ctx: Ctx,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, Error> {
    let not_found = || Error::NotFound(format!("no post {key:?} on this instance"));
    let found = post::Entity::find()
        .filter(post::Column::Key.eq(&key))
        .filter(post::Column::Local.eq(true))
        .one(&ctx.db)
        .await?
        .ok_or_else(not_found)?;
    if found.deleted_at.is_some() {
        let tombstone = j!({"id": found.ap_id, "type": "Tombstone", "formerType": found.kind});
        let mut response = FederationJson(WithContext::new(tombstone, context())).into_response();
        *response.status_mut() = StatusCode::GONE;
        return Ok(response);
    }
    if Visibility::parse(&found.visibility) != Some(Visibility::Public) {
        return Err(not_found());
    }
    if wants_activity_json(&headers) {
        signed_fetch::check(&ctx, &method, &uri, &headers).await?;
        let json = note::to_json(&ctx.db, ctx.app_data(), &found).await?;
        return Ok(FederationJson(WithContext::new(json, context())).into_response());
    }
    let view = views::post_view(ctx.app_data(), &found).await?;
    Ok(pages::post(ctx.app_data(), &view))
}

async fn activity_document(
    ctx: Ctx,
    _: SignedFetch,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let ap_id = ctx.url(&format!("/activities/{id}"));
    let not_found = || Error::NotFound(format!("no public activity {id:?} on this instance"));
    let found = outbox_activity::Entity::find()
        .filter(outbox_activity::Column::ApId.eq(ap_id))
        .one(&ctx.db)
        .await?
        .ok_or_else(not_found)?;
    let body: Value = serde_json::from_str(&found.body)
        .map_err(|e| Error::Internal(format!("stored activity: {e}")))?;
    if !(json::is_public(body.get("to")) || json::is_public(body.get("cc"))) {
        return Err(not_found());
    }
    Ok(FederationJson(body).into_response())
}
