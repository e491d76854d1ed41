//! Uploaded files: checked by content, stored in the media store, attached to posts.

use crate::{
    error::{Error, Result},
    federation::sanitize,
    media_store,
    state::AppState,
    store::{actor, media, post},
};
use chrono::Utc;
use image::{DynamicImage, GenericImageView, ImageFormat};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::Cursor;

/// A shared link, stored as a media row with `remote_url` (kind of its own).
pub const LINK: &str = "link";

/// Largest width or height of an image we decode: larger ones are refused, whatever their size
/// in bytes, so that a small file cannot make us allocate gigabytes (a decompression bomb).
pub const MAX_IMAGE_DIMENSION: u32 = 8_000;
/// Memory the decoder may allocate for one image.
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;
pub const MAX_ALT_CHARS: usize = 1_500;
pub const MAX_ATTACHMENTS: usize = 10;
pub const MAX_LINK_TITLE_CHARS: usize = 300;
/// Avatar sizes, in pixels (square).
pub const AVATAR_SIZE: u32 = 400;
pub const AVATAR_SMALL_SIZE: u32 = 96;

/// What the content of a file says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub media_type: &'static str,
    /// `image` or `document` (`store::media`).
    pub kind: &'static str,
}

const ACCEPTED: &str = "PNG, JPEG, GIF and WebP images; PDF; Word, PowerPoint and Excel \
    (.docx, .pptx, .xlsx); OpenDocument (.odt, .odp, .ods); plain text and CSV";

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const ODF_TYPES: &[&str] = &[
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.presentation",
    "application/vnd.oasis.opendocument.spreadsheet",
];

fn image(media_type: &'static str) -> Option<Sniffed> {
    Some(Sniffed {
        media_type,
        kind: media::IMAGE,
    })
}

fn document(media_type: &'static str) -> Option<Sniffed> {
    Some(Sniffed {
        media_type,
        kind: media::DOCUMENT,
    })
}

/// The type of a file by its content (magic bytes, ZIP entry names), or `None` when it is not
/// one Cairn accepts. Text is reported as `text/plain`; the caller may say it is CSV.
pub fn sniff(bytes: &[u8]) -> Option<Sniffed> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return image("image/png");
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return image("image/jpeg");
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return image("image/gif");
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return image("image/webp");
    }
    if bytes.starts_with(b"%PDF-") {
        return document("application/pdf");
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return sniff_zip(bytes);
    }
    if !bytes.is_empty() && !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok() {
        if looks_like_markup(bytes) {
            return None;
        }
        return document("text/plain");
    }
    None
}

/// Text that a browser would treat as a page or a picture (HTML, SVG, XML) if it were ever
/// served as such: not accepted as "plain text", whatever it is called.
fn looks_like_markup(bytes: &[u8]) -> bool {
    let start: String = String::from_utf8_lossy(&bytes[..bytes.len().min(512)])
        .trim_start_matches('\u{feff}')
        .trim_start()
        .chars()
        .take(100)
        .collect::<String>()
        .to_ascii_lowercase();
    [
        "<!doctype",
        "<html",
        "<svg",
        "<?xml",
        "<script",
        "<head",
        "<body",
        "<iframe",
    ]
    .iter()
    .any(|p| start.starts_with(p))
}

/// Office documents are ZIP files: OpenDocument names its type in a first, uncompressed entry
/// `mimetype`; Office Open XML has `[Content_Types].xml` and a `word/`, `ppt/` or `xl/` folder.
fn sniff_zip(bytes: &[u8]) -> Option<Sniffed> {
    // The local header of the first entry: name at 30, content after name and extra field.
    let u16_at = |at: usize| -> Option<usize> {
        bytes
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let u32_at = |at: usize| -> Option<usize> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let name_len = u16_at(26)?;
    let extra_len = u16_at(28)?;
    let first_name = bytes.get(30..30 + name_len)?;
    if first_name == b"mimetype" && u16_at(8)? == 0 {
        let size = u32_at(18)?;
        let start = 30 + name_len + extra_len;
        let content = bytes.get(start..start + size)?;
        let named = std::str::from_utf8(content).ok()?.trim();
        return ODF_TYPES
            .iter()
            .find(|t| **t == named)
            .and_then(|t| document(t));
    }
    let names = zip_entry_names(bytes)?;
    if !names.iter().any(|n| n == "[Content_Types].xml") {
        return None;
    }
    let has = |folder: &str| names.iter().any(|n| n.starts_with(folder));
    if has("word/") {
        document(DOCX)
    } else if has("ppt/") {
        document(PPTX)
    } else if has("xl/") {
        document(XLSX)
    } else {
        None
    }
}

/// Entry names from a ZIP's central directory (read from the end-of-directory record).
fn zip_entry_names(bytes: &[u8]) -> Option<Vec<String>> {
    const EOCD: &[u8] = b"PK\x05\x06";
    // The record is 22 bytes plus a comment of at most 65535.
    let search_from = bytes.len().saturating_sub(22 + 65_535);
    let eocd = (search_from..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| bytes.get(i..i + 4) == Some(EOCD))?;
    let u16_at = |at: usize| -> Option<usize> {
        bytes
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let u32_at = |at: usize| -> Option<usize> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let count = u16_at(eocd + 10)?;
    let mut at = u32_at(eocd + 16)?;
    let mut names = Vec::new();
    for _ in 0..count.min(10_000) {
        if bytes.get(at..at + 4) != Some(b"PK\x01\x02") {
            return None;
        }
        let name_len = u16_at(at + 28)?;
        let extra_len = u16_at(at + 30)?;
        let comment_len = u16_at(at + 32)?;
        let name = bytes.get(at + 46..at + 46 + name_len)?;
        names.push(String::from_utf8_lossy(name).into_owned());
        at += 46 + name_len + extra_len + comment_len;
    }
    Some(names)
}

/// The declared Content-Type without parameters, lower-cased; `None` when it declares nothing
/// useful (absent, or the generic `application/octet-stream`).
fn declared_type(declared: Option<&str>) -> Option<String> {
    let t = declared?
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match t.as_str() {
        // What clients send when they do not know, and curl's default for --data-binary.
        "" | "application/octet-stream" | "application/x-www-form-urlencoded" => None,
        "image/jpg" => Some("image/jpeg".into()),
        _ => Some(t),
    }
}

/// Whether a declared type is a fair name for what the content is, though not its exact
/// type: Office and OpenDocument files are ZIPs; text may be called Markdown.
fn declared_loosely(declared: &str, sniffed: &Sniffed) -> bool {
    let zip_family = sniffed
        .media_type
        .starts_with("application/vnd.openxmlformats")
        || sniffed
            .media_type
            .starts_with("application/vnd.oasis.opendocument");
    (zip_family && matches!(declared, "application/zip" | "application/x-zip-compressed"))
        || (sniffed.media_type == "text/plain"
            && matches!(declared, "text/markdown" | "text/x-markdown"))
}

/// Checks the declared type against the content; returns the type to store.
pub fn check_type(bytes: &[u8], declared: Option<&str>) -> Result<Sniffed> {
    let sniffed = sniff(bytes).ok_or_else(|| {
        Error::UnsupportedMediaType(format!(
            "this kind of file is not accepted; Cairn accepts {ACCEPTED}"
        ))
    })?;
    let Some(declared) = declared_type(declared) else {
        return Ok(sniffed);
    };
    if declared == sniffed.media_type {
        return Ok(sniffed);
    }
    // Windows names CSV files after Excel.
    if sniffed.media_type == "text/plain"
        && matches!(declared.as_str(), "text/csv" | "application/vnd.ms-excel")
    {
        return document("text/csv").ok_or_else(|| Error::Internal("csv".into()));
    }
    if declared_loosely(&declared, &sniffed) {
        return Ok(sniffed);
    }
    Err(Error::UnsupportedMediaType(format!(
        "the file was sent as {declared} but its content is {}; send it with \
         Content-Type: {} (Cairn accepts {ACCEPTED})",
        sniffed.media_type, sniffed.media_type
    )))
}

/// Decoding, resizing and encoding take long enough to stall the other requests on a runtime
/// thread; they run on the blocking pool.
async fn off_the_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(format!("image task: {e}")))?
}

fn image_format(media_type: &str) -> Option<ImageFormat> {
    match media_type {
        "image/png" => Some(ImageFormat::Png),
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// Decodes an image within limits: a file that is not a decodable image, or one larger than
/// `MAX_IMAGE_DIMENSION` either way, is refused.
pub fn decode_image(bytes: &[u8], media_type: &str) -> Result<DynamicImage> {
    let format = image_format(media_type).ok_or_else(|| {
        Error::UnsupportedMediaType(format!("{media_type} is not an image Cairn can read"))
    })?;
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_DIMENSION);
    limits.max_image_height = Some(MAX_IMAGE_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => Error::UnsupportedMediaType(format!(
            "the image is too large to process; at most {MAX_IMAGE_DIMENSION}×{MAX_IMAGE_DIMENSION} pixels"
        )),
        other => Error::UnsupportedMediaType(format!(
            "the file looks like {media_type} but cannot be read as an image ({other}); \
             export it again and retry"
        )),
    })
}

/// Whether an image file carries metadata (EXIF: camera, date, often the GPS position).
fn carries_metadata(bytes: &[u8], media_type: &str) -> bool {
    let needle: &[u8] = match media_type {
        "image/jpeg" => b"Exif\0\0",
        "image/png" => b"eXIf",
        "image/webp" => b"EXIF",
        _ => return false,
    };
    bytes.windows(needle.len()).any(|w| w == needle)
}

fn encode(img: &DynamicImage, media_type: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let failed = |e: image::ImageError| Error::Internal(format!("encoding an image: {e}"));
    match media_type {
        "image/jpeg" => {
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 88);
            DynamicImage::ImageRgb8(img.to_rgb8())
                .write_with_encoder(encoder)
                .map_err(failed)?;
        }
        "image/webp" => {
            DynamicImage::ImageRgba8(img.to_rgba8())
                .write_to(&mut Cursor::new(&mut out), ImageFormat::WebP)
                .map_err(failed)?;
        }
        _ => {
            img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
                .map_err(failed)?;
        }
    }
    Ok(out)
}

/// A file name fit to show and to send back in `Content-Disposition`: the last path segment,
/// letters, digits, spaces, `.`, `-` and `_` only, at most 120 characters.
pub fn clean_filename(name: Option<&str>) -> Option<String> {
    let base = name?.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ' '))
        .take(120)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    (!cleaned.is_empty()).then_some(cleaned)
}

fn clean_alt(alt: Option<&str>, kind: &str) -> Result<Option<String>> {
    let Some(alt) = alt.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    if alt.chars().count() > MAX_ALT_CHARS {
        let advice = if kind == media::IMAGE {
            "keep it to what the image shows"
        } else {
            "keep it to a short description of the document (what it is and who it is for)"
        };
        return Err(Error::Unprocessable(format!(
            "alt text is longer than {MAX_ALT_CHARS} characters; {advice}"
        )));
    }
    Ok(Some(alt.to_owned()))
}

/// An upload as the API received it.
pub struct Upload {
    pub bytes: Vec<u8>,
    pub declared_type: Option<String>,
    pub filename: Option<String>,
    pub alt: Option<String>,
}

pub fn too_large(state: &AppState) -> Error {
    let max = state.config.media.max_upload_bytes;
    Error::PayloadTooLarge(format!(
        "the file is larger than this instance accepts ({max} bytes, {:.1} MiB); \
         make it smaller or share a link to it",
        max as f64 / (1024.0 * 1024.0)
    ))
}

/// Checks and stores an upload of `owner`'s; it is attached to a post later.
pub async fn upload(state: &AppState, owner: &actor::Model, up: Upload) -> Result<Value> {
    if up.bytes.len() > state.config.media.max_upload_bytes {
        return Err(too_large(state));
    }
    let sniffed = check_type(&up.bytes, up.declared_type.as_deref())?;
    let alt = clean_alt(up.alt.as_deref(), sniffed.kind)?;
    let filename = clean_filename(up.filename.as_deref());
    let (bytes, width, height) = if sniffed.kind == media::IMAGE {
        let media_type = sniffed.media_type;
        let bytes = up.bytes;
        off_the_runtime(move || {
            let img = decode_image(&bytes, media_type)?;
            let (w, h) = img.dimensions();
            let bytes = if carries_metadata(&bytes, media_type) {
                encode(&img, media_type)?
            } else {
                bytes
            };
            Ok((bytes, i32::try_from(w).ok(), i32::try_from(h).ok()))
        })
        .await?
    } else {
        (up.bytes, None, None)
    };
    let size = bytes.len();
    let storage_key = state.media.put(bytes).await?;
    let saved = media::ActiveModel {
        key: Set(media_store::new_key()),
        owner_id: Set(owner.id),
        post_id: Set(None),
        position: Set(0),
        kind: Set(sniffed.kind.into()),
        media_type: Set(sniffed.media_type.into()),
        byte_size: Set(i64::try_from(size).unwrap_or(i64::MAX)),
        storage_key: Set(Some(storage_key.clone())),
        remote_url: Set(None),
        alt_text: Set(alt),
        width: Set(width),
        height: Set(height),
        original_name: Set(filename),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&state.db)
    .await;
    match saved {
        Ok(m) => Ok(upload_view(state, &m)),
        Err(e) => {
            let _ = state.media.delete(&storage_key).await;
            Err(e.into())
        }
    }
}

/// What the API answers about an upload. `warnings` says what would stop it being attached.
pub fn upload_view(state: &AppState, m: &media::Model) -> Value {
    let mut warnings = Vec::new();
    if m.kind == media::IMAGE && m.alt_text.is_none() {
        warnings.push(format!(
            "this image has no alt text; add it (PATCH /api/v1/media/{} {{\"alt\": \"…\"}}) \
             before attaching it to a post",
            m.key
        ));
    }
    json!({
        "id": m.key,
        "key": m.key,
        "url": media_url(state, m),
        "media_type": m.media_type,
        "kind": m.kind,
        "size": m.byte_size,
        "alt": m.alt_text,
        "width": m.width,
        "height": m.height,
        "filename": m.original_name,
        "attached": m.post_id.is_some(),
        "warnings": warnings,
    })
}

/// Whether `key` could be one of ours (an upload's 32 hex digits, an avatar's `KEY.jpg` or
/// `KEY-96.png`). Anything else is not looked up: a NUL byte, for one, is an error to
/// PostgreSQL rather than a miss.
pub fn plausible_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'.' || b == b'-')
}

pub fn media_url(state: &AppState, m: &media::Model) -> String {
    match &m.remote_url {
        Some(u) => u.clone(),
        None => state.url(&format!("/media/{}", m.key)),
    }
}

async fn find(state: &AppState, key: &str) -> Result<media::Model> {
    if !plausible_key(key) {
        return Err(Error::NotFound(format!("no file with key {key:?}")));
    }
    media::Entity::find()
        .filter(media::Column::Key.eq(key))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no file with key {key:?}")))
}

/// One of `viewer`'s uploads, as the upload answered it.
pub async fn own_upload(state: &AppState, viewer: &actor::Model, key: &str) -> Result<Value> {
    let m = find(state, key).await?;
    if m.owner_id != viewer.id || m.storage_key.is_none() {
        return Err(Error::NotFound(format!(
            "no upload of yours with id {key:?}"
        )));
    }
    Ok(upload_view(state, &m))
}

/// Changes the alt text of one of `owner`'s uploads.
pub async fn set_alt(
    state: &AppState,
    owner: &actor::Model,
    key: &str,
    alt: Option<&str>,
) -> Result<Value> {
    let m = find(state, key).await?;
    if m.owner_id != owner.id || m.storage_key.is_none() {
        return Err(Error::Forbidden(
            "only the member who uploaded a file can change its alt text".into(),
        ));
    }
    let alt = clean_alt(alt, &m.kind)?;
    if alt.is_none() && m.kind == media::IMAGE && m.post_id.is_some() {
        return Err(Error::Unprocessable(
            "this image is shared in a post and keeps its alt text; send a better description \
             instead of an empty one"
                .into(),
        ));
    }
    let post_id = m.post_id;
    let mut active: media::ActiveModel = m.into();
    active.alt_text = Set(alt);
    let saved = active.update(&state.db).await?;
    // A shared file's description changes where the post went too: the post is updated.
    if let Some(p) = post_id {
        let p = post::Entity::find_by_id(p).one(&state.db).await?;
        if let Some(p) = p.filter(|p| p.deleted_at.is_none()) {
            super::posts::update(state, owner, &p.key, super::posts::PostEdit::default()).await?;
        }
    }
    Ok(upload_view(state, &saved))
}

/// A stored file to serve: its bytes, type and how to present it.
pub struct Served {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub inline: bool,
    pub filename: Option<String>,
    /// Whether anyone may read it (so shared caches may keep it).
    pub public: bool,
}

/// A file for `viewer`: avatars are anyone's; an upload not yet attached is only its owner's;
/// an attachment is readable by whoever may read its post. Otherwise it does not exist, so
/// that a key says nothing about a post one may not read.
pub async fn serve(state: &AppState, viewer: Option<&actor::Model>, key: &str) -> Result<Served> {
    let missing = || Error::NotFound(format!("no file with key {key:?} on this instance"));
    if !plausible_key(key) {
        return Err(missing());
    }
    let m = media::Entity::find()
        .filter(media::Column::Key.eq(key))
        .one(&state.db)
        .await?
        .ok_or_else(missing)?;
    let storage_key = m.storage_key.as_deref().ok_or_else(missing)?;
    let public = if m.kind == media::AVATAR {
        true
    } else if let Some(post_id) = m.post_id {
        let p = post::Entity::find_by_id(post_id)
            .one(&state.db)
            .await?
            .ok_or_else(missing)?;
        if p.deleted_at.is_some() {
            return Err(Error::Gone(format!(
                "the post file {key:?} was shared with has been deleted"
            )));
        }
        if !super::posts::readable_by(state, &p, viewer).await? {
            return Err(missing());
        }
        p.visibility == "public"
    } else if viewer.is_some_and(|v| v.id == m.owner_id) {
        false
    } else {
        return Err(missing());
    };
    let bytes = state.media.get(storage_key).await?.ok_or_else(missing)?;
    Ok(Served {
        bytes,
        inline: m.kind == media::IMAGE || m.kind == media::AVATAR,
        media_type: m.media_type,
        filename: m.original_name,
        public,
    })
}

/// A profile photo is an image by its content; the advice for uploads in general (which
/// Content-Type to send, the documents accepted) does not apply to it.
fn check_avatar_type(bytes: &[u8], declared: Option<&str>) -> Result<Sniffed> {
    let sniffed = match sniff(bytes) {
        Some(s) if s.kind == media::IMAGE => s,
        other => {
            let what = other.map_or_else(
                || "this file is not one of them".to_owned(),
                |s| format!("this file is {}", s.media_type),
            );
            return Err(Error::UnsupportedMediaType(format!(
                "a profile photo must be a PNG, JPEG, GIF or WebP image, whatever the \
                 Content-Type says; {what}"
            )));
        }
    };
    match declared_type(declared) {
        Some(d) if d != sniffed.media_type => Err(Error::UnsupportedMediaType(format!(
            "the photo was sent as {d} but it is {}; send it with Content-Type: {} (or none)",
            sniffed.media_type, sniffed.media_type
        ))),
        _ => Ok(sniffed),
    }
}

/// A new profile photo for `member`: centre-cropped to squares of `AVATAR_SIZE` and
/// `AVATAR_SMALL_SIZE`, stored as `avatar` media. Returns the URL of the large one, for
/// `actors.icon_url`, and the previous photos, to delete once the profile names the new one.
pub async fn store_avatar(
    state: &AppState,
    member: &actor::Model,
    bytes: Vec<u8>,
    declared: Option<&str>,
) -> Result<(String, Vec<media::Model>)> {
    if bytes.len() > state.config.media.max_upload_bytes {
        return Err(too_large(state));
    }
    let sniffed = check_avatar_type(&bytes, declared)?;
    let source_type = sniffed.media_type;
    // Photos become JPEG; anything with transparency stays PNG.
    let (media_type, ext, sizes) = off_the_runtime(move || {
        let img = decode_image(&bytes, source_type)?;
        let (media_type, ext) = if img.color().has_alpha() {
            ("image/png", "png")
        } else {
            ("image/jpeg", "jpg")
        };
        let mut sizes = Vec::new();
        for size in [AVATAR_SIZE, AVATAR_SMALL_SIZE] {
            let resized = img.resize_to_fill(size, size, image::imageops::FilterType::Triangle);
            sizes.push((size, encode(&resized, media_type)?));
        }
        Ok((media_type, ext, sizes))
    })
    .await?;
    let base = media_store::new_key();
    let old = media::Entity::find()
        .filter(media::Column::OwnerId.eq(member.id))
        .filter(media::Column::Kind.eq(media::AVATAR))
        .all(&state.db)
        .await?;
    let mut large_url = String::new();
    for (size, encoded) in sizes {
        let key = if size == AVATAR_SIZE {
            format!("{base}.{ext}")
        } else {
            format!("{base}-{size}.{ext}")
        };
        let byte_size = i64::try_from(encoded.len()).unwrap_or(i64::MAX);
        let storage_key = state.media.put(encoded).await?;
        media::ActiveModel {
            key: Set(key.clone()),
            owner_id: Set(member.id),
            post_id: Set(None),
            position: Set(0),
            kind: Set(media::AVATAR.into()),
            media_type: Set(media_type.into()),
            byte_size: Set(byte_size),
            storage_key: Set(Some(storage_key)),
            remote_url: Set(None),
            alt_text: Set(None),
            width: Set(Some(size as i32)),
            height: Set(Some(size as i32)),
            original_name: Set(None),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&state.db)
        .await?;
        if size == AVATAR_SIZE {
            large_url = state.url(&format!("/media/{key}"));
        }
    }
    Ok((large_url, old))
}

/// Removes `member`'s profile photos (both sizes).
pub async fn remove_avatars(state: &AppState, member: &actor::Model) -> Result<()> {
    let old = media::Entity::find()
        .filter(media::Column::OwnerId.eq(member.id))
        .filter(media::Column::Kind.eq(media::AVATAR))
        .all(&state.db)
        .await?;
    delete_all(state, old).await
}

/// Removes a deleted post's files: their rows, and the bytes of those uploaded here.
pub async fn delete_post_files(state: &AppState, post_id: i64) -> Result<()> {
    let rows = media::Entity::find()
        .filter(media::Column::PostId.eq(post_id))
        .all(&state.db)
        .await?;
    delete_all(state, rows).await
}

/// Removes replaced profile photos, once the profile names the new one.
pub async fn delete_old_avatars(state: &AppState, old: Vec<media::Model>) -> Result<()> {
    delete_all(state, old).await
}

/// The rows first, then the bytes: a file whose row is gone is never served, while a row
/// whose file is gone would answer 404 for a key that exists.
async fn delete_all(state: &AppState, rows: Vec<media::Model>) -> Result<()> {
    for o in rows {
        media::Entity::delete_by_id(o.id).exec(&state.db).await?;
        if let Some(k) = &o.storage_key {
            state.media.delete(k).await?;
        }
    }
    Ok(())
}

/// The small avatar of a local member: the large one's URL with `-96` before the extension.
pub fn small_avatar_url(icon_url: &str, local: bool) -> String {
    if !local {
        return icon_url.to_owned();
    }
    match icon_url.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains('/') => format!("{stem}-96.{ext}"),
        _ => icon_url.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Attachments on posts
// ---------------------------------------------------------------------------------------------

/// A link shared with a new post (`links: [{"url": …, "name"?: …}]`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkInput {
    pub url: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// An attachment checked before the post is written.
#[derive(Debug, Clone)]
pub enum Prepared {
    File(media::Model),
    Link { url: String, name: Option<String> },
}

impl Prepared {
    pub fn is_file(&self) -> bool {
        matches!(self, Prepared::File(_))
    }
}

fn http_url(s: &str) -> Option<url::Url> {
    url::Url::parse(s.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// Checks a new post's attachments before anything is written: each upload (by its id, the
/// `key` the upload answered) is `author`'s, not attached elsewhere, and an image has alt text;
/// each link is an http(s) URL.
pub async fn prepare(
    state: &AppState,
    author: &actor::Model,
    uploads: &[String],
    links: &[LinkInput],
) -> Result<Vec<Prepared>> {
    if uploads.len() + links.len() > MAX_ATTACHMENTS {
        return Err(Error::Unprocessable(format!(
            "a post carries at most {MAX_ATTACHMENTS} attachments and links together"
        )));
    }
    let mut out = Vec::new();
    for key in uploads {
        let key = key.trim();
        let found = if plausible_key(key) {
            media::Entity::find()
                .filter(media::Column::Key.eq(key))
                .one(&state.db)
                .await?
        } else {
            None
        };
        let m = found
            .filter(|m| m.owner_id == author.id && m.kind != media::AVATAR)
            .filter(|m| m.storage_key.is_some())
            .ok_or_else(|| {
                Error::Unprocessable(format!(
                    "attachments: no upload of yours with id {key:?}; upload the file first \
                     with POST /api/v1/media and use the \"id\" it answers"
                ))
            })?;
        let twice = out
            .iter()
            .any(|p| matches!(p, Prepared::File(o) if o.id == m.id));
        if m.post_id.is_some() || twice {
            return Err(Error::Conflict(format!(
                "attachments: the upload {key:?} is already attached to a post; upload the \
                 file again to share it in another"
            )));
        }
        if m.kind == media::IMAGE && m.alt_text.is_none() {
            return Err(Error::Unprocessable(format!(
                "attachments: the image {key:?} has no alt text, and colleagues who use a \
                 screen reader would miss it; describe it with PATCH /api/v1/media/{key} \
                 {{\"alt\": \"…\"}} (or upload it with ?alt=…), then post again"
            )));
        }
        out.push(Prepared::File(m));
    }
    // Positions count from 0, like the JSON path `links[0]` they name.
    for (n, link) in links.iter().enumerate() {
        let url = http_url(&link.url).ok_or_else(|| {
            Error::Unprocessable(format!(
                "links[{n}]: {:?} is not an http or https URL",
                link.url
            ))
        })?;
        let name = link
            .name
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if name
            .as_ref()
            .is_some_and(|t| t.chars().count() > MAX_LINK_TITLE_CHARS)
        {
            return Err(Error::Unprocessable(format!(
                "links[{n}]: the name is longer than {MAX_LINK_TITLE_CHARS} characters"
            )));
        }
        out.push(Prepared::Link {
            url: url.to_string(),
            name,
        });
    }
    Ok(out)
}

/// The category a plain post takes from what it carries.
pub fn category_for(prepared: &[Prepared]) -> Option<&'static str> {
    if prepared.iter().any(Prepared::is_file) {
        Some(post::RESOURCE)
    } else if !prepared.is_empty() {
        Some(post::LINK)
    } else {
        None
    }
}

/// Attaches checked attachments to a new post, inside its transaction.
pub async fn attach<C: ConnectionTrait>(
    conn: &C,
    p: &post::Model,
    prepared: Vec<Prepared>,
) -> Result<()> {
    for (position, a) in prepared.into_iter().enumerate() {
        let position = position as i32;
        match a {
            Prepared::File(m) => {
                // The update is the claim: of two posts racing for one upload, one gets it.
                let claimed = media::Entity::update_many()
                    .col_expr(media::Column::PostId, sea_orm::sea_query::Expr::value(p.id))
                    .col_expr(
                        media::Column::Position,
                        sea_orm::sea_query::Expr::value(position),
                    )
                    .filter(media::Column::Id.eq(m.id))
                    .filter(media::Column::PostId.is_null())
                    .exec(conn)
                    .await?;
                if claimed.rows_affected != 1 {
                    return Err(Error::Conflict(format!(
                        "the upload {:?} was attached to another post meanwhile",
                        m.key
                    )));
                }
            }
            Prepared::Link { url, name } => {
                insert_link(conn, p, position, url, name).await?;
            }
        }
    }
    Ok(())
}

async fn insert_link<C: ConnectionTrait>(
    conn: &C,
    p: &post::Model,
    position: i32,
    url: String,
    title: Option<String>,
) -> Result<()> {
    media::ActiveModel {
        key: Set(media_store::new_key()),
        owner_id: Set(p.author_id),
        post_id: Set(Some(p.id)),
        position: Set(position),
        kind: Set(LINK.into()),
        media_type: Set("text/html".into()),
        byte_size: Set(0),
        storage_key: Set(None),
        remote_url: Set(Some(url)),
        alt_text: Set(title),
        width: Set(None),
        height: Set(None),
        original_name: Set(None),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// A post's attachments in order.
pub async fn of_post<C: ConnectionTrait>(conn: &C, post_id: i64) -> Result<Vec<media::Model>> {
    Ok(media::Entity::find()
        .filter(media::Column::PostId.eq(post_id))
        .order_by_asc(media::Column::Position)
        .order_by_asc(media::Column::Id)
        .all(conn)
        .await?)
}

/// What the API shows of a post's attachments.
pub async fn attachment_views(state: &AppState, p: &post::Model) -> Result<Vec<Value>> {
    Ok(of_post(&state.db, p.id)
        .await?
        .iter()
        .map(|m| {
            json!({
                "kind": if m.kind == LINK { LINK } else if m.kind == media::IMAGE { media::IMAGE } else { media::DOCUMENT },
                "url": media_url(state, m),
                "media_type": (m.kind != LINK).then_some(&m.media_type),
                "alt": m.alt_text,
                "filename": m.original_name,
                "size": (m.byte_size > 0).then_some(m.byte_size),
                "width": m.width,
                "height": m.height,
            })
        })
        .collect())
}

/// One attachment of a remote post, as Cairn keeps it: plain text, http(s) URLs only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAttachment {
    /// `image`, `document` or `link`.
    pub kind: &'static str,
    pub url: String,
    pub media_type: String,
    /// Alt text of an image, or the name of a document or link.
    pub name: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
}

/// Reads one entry of a remote `attachment`: a `Link` (`href`), or a `Document`, `Image`,
/// `Video` or `Audio` (`url`, perhaps a `Link` or an array). Anything else, or anything whose
/// URL is not http(s), is skipped.
pub fn read_remote(a: &Value) -> Option<RemoteAttachment> {
    let kind = crate::federation::json::kind(a)?;
    let name = a
        .get("name")
        .and_then(Value::as_str)
        .map(|n| {
            sanitize::plain(n)
                .trim()
                .chars()
                .take(MAX_ALT_CHARS)
                .collect::<String>()
        })
        .filter(|n| !n.is_empty());
    if kind == "Link" {
        let url = first_url(a.get("href"))?;
        return Some(RemoteAttachment {
            kind: LINK,
            url: url.to_string(),
            media_type: "text/html".into(),
            name,
            width: None,
            height: None,
        });
    }
    if !matches!(kind, "Document" | "Image" | "Video" | "Audio") {
        return None;
    }
    let url = first_url(a.get("url"))?;
    let media_type = a
        .get("mediaType")
        .and_then(Value::as_str)
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| is_media_type(t))
        .unwrap_or_else(|| "application/octet-stream".into());
    let is_image = kind == "Image" || media_type.starts_with("image/");
    let dimension = |field: &str| {
        a.get(field)
            .and_then(Value::as_i64)
            .and_then(|v| i32::try_from(v).ok())
            .filter(|v| *v > 0)
    };
    Some(RemoteAttachment {
        kind: if is_image {
            media::IMAGE
        } else {
            media::DOCUMENT
        },
        url: url.to_string(),
        media_type,
        name,
        width: dimension("width"),
        height: dimension("height"),
    })
}

/// `type/subtype`, of the characters RFC 6838 allows.
fn is_media_type(t: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 100
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    t.split_once('/')
        .is_some_and(|(top, sub)| ok(top) && ok(sub))
}

/// A remote post's attachments, replacing what was stored for it before. URLs are kept, never
/// fetched. Returns the category they give the post.
pub async fn store_remote_attachments<C: ConnectionTrait>(
    conn: &C,
    p: &post::Model,
    attachments: &[Value],
) -> Result<Option<&'static str>> {
    media::Entity::delete_many()
        .filter(media::Column::PostId.eq(p.id))
        .exec(conn)
        .await?;
    let read: Vec<RemoteAttachment> = attachments
        .iter()
        .filter_map(read_remote)
        .take(MAX_ATTACHMENTS * 2)
        .collect();
    for (position, r) in read.iter().enumerate() {
        media::ActiveModel {
            key: Set(media_store::new_key()),
            owner_id: Set(p.author_id),
            post_id: Set(Some(p.id)),
            position: Set(position as i32),
            kind: Set(r.kind.into()),
            media_type: Set(r.media_type.clone()),
            byte_size: Set(0),
            storage_key: Set(None),
            remote_url: Set(Some(r.url.clone())),
            alt_text: Set(r.name.clone()),
            width: Set(r.width),
            height: Set(r.height),
            original_name: Set(None),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(conn)
        .await?;
    }
    Ok(if read.iter().any(|r| r.kind != LINK) {
        Some(post::RESOURCE)
    } else if !read.is_empty() {
        Some(post::LINK)
    } else {
        None
    })
}

/// The first http(s) URL of a `url` (a string, a `Link` with `href`, or an array of either).
pub fn first_url(v: Option<&Value>) -> Option<url::Url> {
    match v? {
        Value::String(s) => http_url(s),
        Value::Array(items) => items.iter().find_map(|i| first_url(Some(i))),
        Value::Object(o) => o
            .get("href")
            .or_else(|| o.get("url"))
            .and_then(|h| first_url(Some(h))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        // A minimal stored (uncompressed) ZIP.
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in entries {
            let offset = out.len() as u32;
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&[0, 0, 0, 0]); // crc
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&[0, 0, 0, 0]);
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    #[test]
    fn types_by_content() {
        let t = |b: &[u8]| sniff(b).map(|s| s.media_type);
        assert_eq!(t(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(t(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(t(b"name,school\nA,B\n"), Some("text/plain"));
        assert_eq!(t(b"MZ\x90\0\x03\0"), None);
        assert_eq!(t(b"text with a \0 NUL"), None);
        assert_eq!(t(b"  <!DOCTYPE html><script>alert(1)</script>"), None);
        assert_eq!(t(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), None);
        assert_eq!(t(b"\xef\xbb\xbf<?xml version='1.0'?>"), None);
        let docx = zip(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", b"<w/>"),
        ]);
        assert_eq!(t(&docx), Some(DOCX));
        let pptx = zip(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("ppt/presentation.xml", b"<p/>"),
        ]);
        assert_eq!(t(&pptx), Some(PPTX));
        let odt = zip(&[
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("content.xml", b"<x/>"),
        ]);
        assert_eq!(t(&odt), Some("application/vnd.oasis.opendocument.text"));
        let plain_zip = zip(&[("a.txt", b"hello")]);
        assert_eq!(t(&plain_zip), None);
    }

    #[test]
    fn declared_types_must_agree() {
        assert!(check_type(b"%PDF-1.4", Some("application/pdf")).is_ok());
        assert!(check_type(b"%PDF-1.4", Some("application/octet-stream")).is_ok());
        assert!(matches!(
            check_type(b"\x89PNG\r\n\x1a\n", Some("application/pdf")),
            Err(Error::UnsupportedMediaType(_))
        ));
        assert!(check_type(b"%PDF-1.4", Some("application/x-www-form-urlencoded")).is_ok());
        let docx = zip(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", b"<w/>"),
        ]);
        assert_eq!(
            check_type(&docx, Some("application/zip"))
                .map(|s| s.media_type)
                .ok(),
            Some(DOCX)
        );
        assert_eq!(
            check_type(b"# Notes\n", Some("text/markdown"))
                .map(|s| s.media_type)
                .ok(),
            Some("text/plain")
        );
        assert!(matches!(
            check_type(b"# Notes\n", Some("application/zip")),
            Err(Error::UnsupportedMediaType(_))
        ));
        assert_eq!(
            check_type(b"a,b\n", Some("application/vnd.ms-excel"))
                .map(|s| s.media_type)
                .ok(),
            Some("text/csv")
        );
        assert_eq!(
            check_type(b"a,b\n1,2\n", Some("text/csv; charset=utf-8"))
                .map(|s| s.media_type)
                .ok(),
            Some("text/csv")
        );
    }

    fn fixture(name: &str) -> Value {
        let path = format!("{}/fixtures/fediverse/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn remote_attachments_from_mastodon_and_lemmy() {
        let note = fixture("mastodon-note-image-attachment-to-lemmy-group.json");
        let read: Vec<_> = crate::federation::json::items(note.get("attachment"))
            .into_iter()
            .filter_map(read_remote)
            .collect();
        assert!(!read.is_empty(), "{note}");
        assert_eq!(read[0].kind, media::IMAGE);
        assert_eq!(read[0].media_type, "image/jpeg");
        assert!(read[0].url.starts_with("https://"), "{:?}", read[0]);

        let page = fixture("lemmy-page-link-attachment.json");
        let page = page.get("object").cloned().unwrap_or(page);
        let links: Vec<_> = crate::federation::json::items(page.get("attachment"))
            .into_iter()
            .filter_map(read_remote)
            .collect();
        assert_eq!(links.len(), 1, "{page}");
        assert_eq!(links[0].kind, LINK);
    }

    #[test]
    fn remote_attachments_are_made_safe() {
        let r = read_remote(&json!({
            "type": "Document",
            "mediaType": "image/png\"><script>",
            "url": [{"type": "Link", "href": "javascript:alert(1)"}, {"type": "Link", "href": "https://x.example/a.png"}],
            "name": "<b>A chart</b><script>alert(1)</script>",
            "width": -5,
        }))
        .expect("read");
        assert_eq!(r.url, "https://x.example/a.png");
        assert_eq!(r.media_type, "application/octet-stream");
        assert_eq!(r.kind, media::DOCUMENT);
        assert_eq!(r.name.as_deref(), Some("A chart"));
        assert_eq!(r.width, None);
        assert_eq!(
            read_remote(&json!({"type": "Link", "href": "data:text/html,hi"})),
            None
        );
        assert_eq!(
            read_remote(&json!({"type": "PropertyValue", "name": "x", "value": "y"})),
            None
        );
        assert_eq!(
            read_remote(&json!({"type": "Image", "url": "https://x.example/p.jpg", "mediaType": "IMAGE/JPEG"}))
                .map(|r| (r.kind, r.media_type)),
            Some((media::IMAGE, "image/jpeg".to_owned()))
        );
    }

    #[test]
    fn filenames_are_cleaned() {
        assert_eq!(
            clean_filename(Some("../../etc/pa\"ss wd.pdf")).as_deref(),
            Some("pass wd.pdf")
        );
        assert_eq!(clean_filename(Some("..")), None);
        assert_eq!(
            small_avatar_url("http://x:1/media/abc.jpg", true),
            "http://x:1/media/abc-96.jpg"
        );
    }
}
