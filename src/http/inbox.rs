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
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return too_large();
    }
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(response) => return response,
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

/// Bodies up to this size are read to the end even when too large, so that the sender receives
/// the 413 instead of a connection reset in the middle of its upload.
const DRAIN_LIMIT: usize = 16 * MAX_BODY_BYTES;

/// The body, if it is at most `MAX_BODY_BYTES`; otherwise (after reading and discarding the
/// rest, up to `DRAIN_LIMIT`) a 413.
async fn read_body(body: axum::body::Body) -> Result<Vec<u8>, Response> {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut total = 0usize;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(None) => break,
            Ok(Some(Ok(chunk))) => {
                total += chunk.len();
                if total > DRAIN_LIMIT {
                    return Err(too_large());
                }
                if total <= MAX_BODY_BYTES {
                    kept.extend_from_slice(&chunk);
                }
            }
            Ok(Some(Err(e))) => {
                return Err(
                    Error::BadRequest(format!("the body could not be read: {e}")).into_response(),
                )
            }
            Err(_) => {
                return Err(
                    Error::BadRequest("the body did not arrive within 30 seconds".into())
                        .into_response(),
                )
            }
        }
    }
    if total > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(kept)
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
