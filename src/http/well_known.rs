//! WebFinger and NodeInfo.

use crate::{
    error::Error,
    federation::actor::APPLICATION,
    services::members,
    state::{AppState, Ctx},
    store::{actor, post},
};
use activitypub_federation::fetch::webfinger::build_webfinger_response_with_type;
use axum::{
    extract::Query,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde::Deserialize;
use serde_json::json;
use url::Url;

pub fn router() -> Router {
    Router::new()
        .route("/.well-known/webfinger", get(webfinger))
        .route("/.well-known/nodeinfo", get(nodeinfo_links))
        .route("/nodeinfo/2.1", get(nodeinfo))
}

#[derive(Deserialize)]
struct WebfingerQuery {
    resource: Option<String>,
}

async fn webfinger(ctx: Ctx, Query(q): Query<WebfingerQuery>) -> Result<Response, Error> {
    let resource = q
        .resource
        .ok_or_else(|| Error::BadRequest("add ?resource=acct:NAME@HOST".into()))?;
    let state = ctx.app_data();
    let found = find_actor(state, &resource).await?;
    let url: Url = found
        .ap_id
        .parse()
        .map_err(|e| Error::Internal(format!("stored actor id: {e}")))?;
    let name = if found.kind == APPLICATION {
        state.config.domain.clone()
    } else {
        found
            .local_name
            .clone()
            .unwrap_or_else(|| found.name.clone())
    };
    let mut body = build_webfinger_response_with_type(
        format!("acct:{name}@{}", state.config.domain),
        vec![(url.clone(), Some(found.kind.as_str()))],
    );
    body.aliases = vec![url];
    Ok(([(header::CONTENT_TYPE, "application/jrd+json")], Json(body)).into_response())
}

async fn find_actor(state: &AppState, resource: &str) -> Result<actor::Model, Error> {
    let not_here = || Error::NotFound(format!("no actor {resource:?} on this instance"));
    if resource.starts_with("http://") || resource.starts_with("https://") {
        return actor::Entity::find()
            .filter(actor::Column::ApId.eq(resource))
            .filter(actor::Column::Local.eq(true))
            .one(&state.db)
            .await?
            .ok_or_else(not_here);
    }
    let acct = resource.strip_prefix("acct:").unwrap_or(resource);
    let acct = acct.strip_prefix('@').unwrap_or(acct);
    let (name, host) = acct
        .rsplit_once('@')
        .ok_or_else(|| Error::BadRequest(format!("{resource:?} is not acct:NAME@HOST")))?;
    if !host.eq_ignore_ascii_case(&state.config.domain) {
        return Err(not_here());
    }
    if name.eq_ignore_ascii_case(&state.config.domain) {
        return Ok(state.instance_actor.clone());
    }
    let normalized = crate::hashtag::normalize(name).map_err(|_| not_here())?;
    members::find_local(state, &normalized)
        .await?
        .ok_or_else(not_here)
}

async fn nodeinfo_links(ctx: Ctx) -> Json<serde_json::Value> {
    Json(json!({
        "links": [{
            "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
            "href": ctx.url("/nodeinfo/2.1"),
        }]
    }))
}

async fn nodeinfo(ctx: Ctx) -> Result<Response, Error> {
    let state = ctx.app_data();
    let users = actor::Entity::find()
        .filter(actor::Column::Local.eq(true))
        .filter(actor::Column::Kind.eq(crate::federation::actor::PERSON))
        .count(&state.db)
        .await?;
    let local_posts = post::Entity::find()
        .filter(post::Column::Local.eq(true))
        .filter(post::Column::DeletedAt.is_null())
        .count(&state.db)
        .await?;
    let body = json!({
        "version": "2.1",
        "software": {
            "name": "cairn",
            "version": env!("CARGO_PKG_VERSION"),
            "homepage": ctx.url("/"),
        },
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": false,
        "usage": {
            "users": {"total": users, "activeMonth": users, "activeHalfyear": users},
            "localPosts": local_posts,
        },
        "metadata": {"nodeName": state.config.instance_name()},
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/json; profile=\"http://nodeinfo.diaspora.software/ns/schema/2.1#\"",
        )],
        Json(body),
    )
        .into_response())
}
