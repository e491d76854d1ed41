//! iCalendar feeds: a community's events for calendar apps to subscribe to. (One event's
//! `.ics` is `GET /api/v1/events/{key}.ics`, in `events`.)

use super::{auth::MaybeMember, events::ics_response};
use crate::{
    error::Error,
    services::{calendar, follows},
    state::Ctx,
};
use axum::{extract::Path, response::Response, routing::get, Router};

pub fn router() -> Router {
    Router::new()
        .route("/c/{tag}/events.ics", get(community_feed))
        .route("/api/v1/communities/{tag}/events.ics", get(community_feed))
}

/// Calendar apps subscribe without signing in, so most see the public events only.
async fn community_feed(
    ctx: Ctx,
    MaybeMember(m): MaybeMember,
    Path(tag): Path<String>,
) -> Result<Response, Error> {
    let c = follows::resolve_community(&ctx, &tag).await?;
    let ics = calendar::community_ics(&ctx, m.as_ref(), &c).await?;
    Ok(ics_response(ics, &c.name))
}
