//! Inboxes: the shared one and each local actor's. 202 when accepted; 400 malformed; 401 bad
//! or missing signature; 403 refused; 413 too large; never a 5xx for bad input.

use crate::{error::Error, federation::inbox, services::members, state::Ctx, store::actor};
use axum::{
    extract::{Path, Request},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde_json::json;

use super::MAX_BODY_BYTES;

pub fn router() -> Router {
    Router::new()
        .route("/inbox", post(shared_inbox))
        .route("/actor/inbox", post(instance_inbox))
        .route("/u/{name}/inbox", post(actor_inbox))
        .route("/c/{name}/inbox", post(actor_inbox))
}

async fn shared_inbox(ctx: Ctx, request: Request) -> Response {
    handle(ctx, None, request).await
}

async fn instance_inbox(ctx: Ctx, request: Request) -> Response {
    let owner = Some(ctx.instance_actor.clone());
    handle(ctx, owner, request).await
}

async fn actor_inbox(ctx: Ctx, Path(name): Path<String>, request: Request) -> Response {
    let owner = match crate::hashtag::normalize(&name) {
        Ok(n) => members::find_local(ctx.app_data(), &n).await,
        Err(_) => Ok(None),
    };
    match owner {
        Ok(Some(owner)) => handle(ctx, Some(owner), request).await,
        Ok(None) => Error::NotFound(format!("no actor {name:?} on this instance")).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(ctx: Ctx, owner: Option<actor::Model>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    let summary = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(v) => format!(
            "{} {} from {}",
            v.get("type").and_then(|t| t.as_str()).unwrap_or("?"),
            v.get("id").and_then(|t| t.as_str()).unwrap_or("?"),
            v.get("actor")
                .and_then(crate::federation::json::id_of_ref)
                .map(|u| u.to_string())
                .unwrap_or_else(|| "?".into()),
        ),
        Err(e) => {
            return Error::BadRequest(format!("the body is not JSON: {e}")).into_response();
        }
    };
    match inbox::receive(&parts, &bytes, owner, &ctx).await {
        Ok(()) => {
            tracing::info!("inbox accepted {summary}");
            (StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response()
        }
        Err(e) => {
            let status = e.status_code();
            if matches!(e, Error::Database(_) | Error::Internal(_)) {
                return e.into_response();
            }
            // Whatever else failed was caused by what was sent (or by the sender's server).
            let status = if status.is_server_error() {
                StatusCode::BAD_REQUEST
            } else {
                status
            };
            tracing::info!("inbox refused {summary} ({status}): {e}");
            (status, Json(json!({"error": describe(&e)}))).into_response()
        }
    }
}

fn describe(e: &Error) -> String {
    match e {
        Error::Federation(other) => format!("could not accept the activity: {other}"),
        other => other.to_string(),
    }
}

fn too_large() -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        // The rest of the body is not read, so the connection cannot be reused.
        [(axum::http::header::CONNECTION, "close")],
        Json(json!({"error": format!("the body is larger than {MAX_BODY_BYTES} bytes")})),
    )
        .into_response()
}
