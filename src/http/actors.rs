//! Actor documents (members, communities, the instance) and their collections.

use super::{
    negotiate::wants_activity_json,
    pages,
    signed_fetch::{self, SignedFetch},
};
use crate::{
    error::Error,
    federation::{
        actor::{DbActor, GROUP, PERSON},
        context, json,
    },
    services::{members, views},
    state::Ctx,
    store::{actor, follow, outbox_activity},
};
use activitypub_federation::{
    axum::json::FederationJson, protocol::context::WithContext, traits::Object,
};
use axum::{
    extract::Path,
    http::{HeaderMap, Method, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{json as j, Value};

pub fn router() -> Router {
    Router::new()
        .route("/actor", get(instance_actor))
        .route("/u/{name}", get(actor_document))
        .route("/c/{name}", get(actor_document))
        .route("/u/{name}/outbox", get(outbox))
        .route("/c/{name}/outbox", get(outbox))
        .route("/u/{name}/followers", get(followers))
        .route("/c/{name}/followers", get(followers))
        .route("/c/{name}/featured", get(featured))
        .route("/c/{name}/moderators", get(moderators))
}

/// The local actor a `/u/NAME` (member) or `/c/NAME` (community) path names.
async fn local_actor(ctx: &Ctx, uri: &Uri, name: &str) -> Result<actor::Model, Error> {
    let not_found = || Error::NotFound(format!("no actor {name:?} on this instance"));
    let normalized = crate::hashtag::normalize(name).map_err(|_| not_found())?;
    let found = members::find_local(ctx.app_data(), &normalized)
        .await?
        .ok_or_else(not_found)?;
    let wanted = if uri.path().starts_with("/c/") {
        GROUP
    } else {
        PERSON
    };
    if found.kind != wanted {
        return Err(not_found());
    }
    Ok(found)
}

fn activity_json(value: impl serde::Serialize) -> Response {
    FederationJson(WithContext::new(value, context())).into_response()
}

async fn instance_actor(ctx: Ctx) -> Result<Response, Error> {
    let actor = DbActor::new(ctx.instance_actor.clone())?;
    Ok(activity_json(actor.into_json(&ctx).await?))
}

async fn actor_document(
    ctx: Ctx,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, Error> {
    let found = local_actor(&ctx, &uri, &name).await?;
    if wants_activity_json(&headers) {
        signed_fetch::check(&ctx, &method, &uri, &headers).await?;
        let actor = DbActor::new(found)?;
        return Ok(activity_json(actor.into_json(&ctx).await?));
    }
    let state = ctx.app_data();
    if found.kind == GROUP {
        let community = views::community_view(state, &found).await?;
        // Pinned posts (reflective questions) first, as in the API.
        let page = crate::services::feed::Page {
            before: None,
            limit: 30,
        };
        let filter = crate::services::feed::Filter::default();
        let items = crate::services::feed::community_items(state, None, &found, &filter, page)
            .await?
            .items;
        Ok(pages::community(state, &community, &items))
    } else {
        Ok(pages::member(state, &views::actor_view(&found)))
    }
}

/// The actor's recent public activities, newest first.
async fn outbox(
    ctx: Ctx,
    _: SignedFetch,
    uri: Uri,
    Path(name): Path<String>,
) -> Result<Response, Error> {
    let found = local_actor(&ctx, &uri, &name).await?;
    let rows = outbox_activity::Entity::find()
        .filter(outbox_activity::Column::ActorId.eq(found.id))
        .filter(outbox_activity::Column::Kind.is_in(["Create", "Announce"]))
        .order_by_desc(outbox_activity::Column::Id)
        .limit(50)
        .all(&ctx.db)
        .await?;
    let items: Vec<Value> = rows
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
        .filter(|v| json::is_public(v.get("to")) || json::is_public(v.get("cc")))
        .map(|mut v| {
            if let Some(m) = v.as_object_mut() {
                m.remove("@context");
            }
            v
        })
        .take(20)
        .collect();
    Ok(activity_json(j!({
        "id": format!("{}/outbox", found.ap_id),
        "type": "OrderedCollection",
        "totalItems": items.len(),
        "orderedItems": items,
    })))
}

/// The number of followers; who they are is not published.
async fn followers(
    ctx: Ctx,
    _: SignedFetch,
    uri: Uri,
    Path(name): Path<String>,
) -> Result<Response, Error> {
    let found = local_actor(&ctx, &uri, &name).await?;
    let total = follow::Entity::find()
        .filter(follow::Column::TargetId.eq(found.id))
        .filter(follow::Column::State.eq(follow::ACCEPTED))
        .count(&ctx.db)
        .await?;
    Ok(activity_json(j!({
        "id": format!("{}/followers", found.ap_id),
        "type": "OrderedCollection",
        "totalItems": total,
    })))
}

/// A community's pinned posts (reflective questions), newest pin first: `services::pins`.
async fn featured(
    ctx: Ctx,
    _: SignedFetch,
    uri: Uri,
    Path(name): Path<String>,
) -> Result<Response, Error> {
    let found = local_actor(&ctx, &uri, &name).await?;
    Ok(activity_json(
        crate::services::pins::featured_json(ctx.app_data(), &found).await?,
    ))
}

/// A community's moderators (Lemmy's `moderators` collection); also its `attributedTo`.
async fn moderators(
    ctx: Ctx,
    _: SignedFetch,
    uri: Uri,
    Path(name): Path<String>,
) -> Result<Response, Error> {
    let found = local_actor(&ctx, &uri, &name).await?;
    let ids = crate::services::moderators::actor_ids(&ctx.db, found.id).await?;
    Ok(activity_json(j!({
        "id": format!("{}/moderators", found.ap_id),
        "type": "OrderedCollection",
        "totalItems": ids.len(),
        "orderedItems": ids,
    })))
}
