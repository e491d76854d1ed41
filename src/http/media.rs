//! Uploads (`POST /api/v1/media`, `PUT /api/v1/me/avatar`) and serving them (`GET /media/{key}`).

use super::{
    api::{ApiJson, ApiQuery},
    auth::{MaybeMember, Member},
};
use crate::{
    error::Error,
    services::{media, profiles},
    state::{AppState, Ctx},
};
use axum::{
    body::Body,
    extract::Path,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post, put},
    Json, Router,
};
use serde::Deserialize;
use serde_json::Value;

pub fn router() -> Router {
    Router::new()
        .route("/api/v1/media", post(upload))
        .route("/api/v1/media/{key}", get(own_upload).patch(edit))
        .route("/api/v1/me/avatar", put(avatar).delete(remove_avatar))
        .route("/media/{key}", get(serve))
}

const UPLOAD_FORM_ADVICE: &str = "curl --data-binary @FILE -H 'Content-Type: application/pdf' \
     (alt text and file name go in the query: ?alt=…&filename=…)";
const AVATAR_FORM_ADVICE: &str =
    "curl -X PUT --data-binary @photo.jpg -H 'Content-Type: image/jpeg' \
     (a PNG, JPEG, GIF or WebP image)";

/// Reads a raw upload body up to the configured maximum (the router's 1 MiB limit applies to
/// JSON bodies, not to this).
/// `form_advice` says how to send this endpoint's file when a form (curl -F) arrives instead.
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    form_advice: &str,
) -> Result<Vec<u8>, Error> {
    let max = state.config.media.max_upload_bytes;
    if content_type(headers).is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/")) {
        return Err(Error::UnsupportedMediaType(format!(
            "send the file itself as the body, not a form: {form_advice}"
        )));
    }
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|l| l > max as u64) {
        return Err(media::too_large(state));
    }
    let bytes = axum::body::to_bytes(body, max)
        .await
        .map_err(|_| media::too_large(state))?;
    if bytes.is_empty() {
        return Err(Error::BadRequest(
            "the body is empty: send the file itself as the body (curl --data-binary @file)".into(),
        ));
    }
    Ok(bytes.to_vec())
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    filename: Option<String>,
    /// Alt text of an image, or a short description of a document (`description` is the
    /// Mastodon API's name for it).
    #[serde(alias = "description")]
    alt: Option<String>,
}

async fn upload(
    ctx: Ctx,
    Member(m): Member,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Error> {
    let state = ctx.app_data();
    let bytes = read_body(state, &headers, body, UPLOAD_FORM_ADVICE).await?;
    let view = media::upload(
        state,
        &m,
        media::Upload {
            bytes,
            declared_type: content_type(&headers),
            filename: q.filename,
            alt: q.alt,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaEdit {
    #[serde(alias = "description")]
    alt: Option<String>,
}

async fn own_upload(
    ctx: Ctx,
    Member(m): Member,
    Path(key): Path<String>,
) -> Result<Json<Value>, Error> {
    Ok(Json(media::own_upload(ctx.app_data(), &m, &key).await?))
}

async fn edit(
    ctx: Ctx,
    Member(m): Member,
    Path(key): Path<String>,
    ApiJson(e): ApiJson<MediaEdit>,
) -> Result<Json<Value>, Error> {
    Ok(Json(
        media::set_alt(ctx.app_data(), &m, &key, e.alt.as_deref()).await?,
    ))
}

async fn avatar(
    ctx: Ctx,
    Member(m): Member,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Error> {
    let state = ctx.app_data();
    let bytes = read_body(state, &headers, body, AVATAR_FORM_ADVICE).await?;
    let saved = profiles::set_avatar(state, &m, bytes, content_type(&headers).as_deref()).await?;
    Ok(Json(profiles::me_view(&saved)))
}

async fn remove_avatar(ctx: Ctx, Member(m): Member) -> Result<Json<Value>, Error> {
    let saved = profiles::remove_avatar(ctx.app_data(), &m).await?;
    Ok(Json(profiles::me_view(&saved)))
}

/// `filename*` (RFC 5987) for any name, with an ASCII `filename` fallback.
fn disposition(inline: bool, filename: Option<&str>) -> String {
    let kind = if inline { "inline" } else { "attachment" };
    let Some(name) = filename else {
        return kind.to_owned();
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b".-_".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

async fn serve(
    ctx: Ctx,
    MaybeMember(viewer): MaybeMember,
    Path(key): Path<String>,
) -> Result<Response, Error> {
    let served = media::serve(ctx.app_data(), viewer.as_ref(), &key).await?;
    let value = |s: &str| {
        HeaderValue::from_str(s).map_err(|e| Error::Internal(format!("header value: {e}")))
    };
    let mut response = served.bytes.into_response();
    let h = response.headers_mut();
    // Text was checked to be UTF-8 at upload; saying so stops a browser guessing otherwise.
    let content_type = if served.media_type.starts_with("text/") {
        format!("{}; charset=utf-8", served.media_type)
    } else {
        served.media_type.clone()
    };
    h.insert(header::CONTENT_TYPE, value(&content_type)?);
    h.insert(header::X_CONTENT_TYPE_OPTIONS, value("nosniff")?);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        value("default-src 'none'; sandbox")?,
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        value(&disposition(served.inline, served.filename.as_deref()))?,
    );
    // A key's bytes never change; only files anyone may read go into shared caches.
    h.insert(
        header::CACHE_CONTROL,
        value(if served.public {
            "public, max-age=31536000, immutable"
        } else {
            "private, max-age=3600"
        })?,
    );

    Ok(response)
}
