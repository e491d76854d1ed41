//! Discussion routes: threads, moderators and pins (README.md documents them).

use super::auth::MaybeMember;
use crate::{error::Error, services::threads, state::Ctx};
use axum::{extract::Path, routing::get, Json, Router};
use serde_json::Value;

pub fn router() -> Router {
    Router::new().route("/api/v1/posts/{key}/thread", get(thread))
}

async fn thread(
    ctx: Ctx,
    MaybeMember(m): MaybeMember,
    Path(key): Path<String>,
) -> Result<Json<Value>, Error> {
    Ok(Json(threads::thread(ctx.app_data(), m.as_ref(), &key).await?))
}
