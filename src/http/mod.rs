//! HTTP: one module per group of routes, merged here with the shared layers.

mod actors;
mod api;
mod auth;
mod calendar;
mod discussion;
mod error;
mod events;
mod inbox;
mod intentions;
mod media;
mod negotiate;
mod objects;
mod pages;
mod profiles;
mod signed_fetch;
mod well_known;

use crate::state::AppState;
use activitypub_federation::config::{FederationConfig, FederationMiddleware};
use axum::{extract::DefaultBodyLimit, Router};
use tower_http::trace::TraceLayer;

/// Largest request body accepted anywhere (inbound activities, API calls).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn router(federation: FederationConfig<AppState>) -> Router {
    Router::new()
        .merge(well_known::router())
        .merge(actors::router())
        .merge(objects::router())
        .merge(inbox::router())
        .merge(api::router())
        .merge(pages::router())
        .merge(profiles::router())
        .merge(media::router())
        .merge(discussion::router())
        .merge(events::router())
        .merge(intentions::router())
        .merge(calendar::router())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(FederationMiddleware::new(federation))
        .layer(TraceLayer::new_for_http())
}
