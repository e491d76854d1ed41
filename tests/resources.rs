//! Sharing practice: resources. Uploads checked by content (not by name or header) and size,
//! served with their media type and safe headers to whoever may read their post; files and
//! links attached to posts, on the wire as `Document`/`Image`/`Link`, and read back from
//! another instance without being downloaded.
//!
//! `CAIRN_TEST_DATABASE_URL` picks SQLite (unset) or PostgreSQL (`postgres://…`).

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Cursor;
use support::*;

const MAX_UPLOAD: usize = 200_000;
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
const ODT: &str = "application/vnd.oasis.opendocument.text";

async fn start(label: &str) -> Instance {
    let dir = std::env::temp_dir().join(format!("cairn-media-{}", uuid::Uuid::new_v4().simple()));
    let dir = dir.display().to_string();
    Instance::start_with(label, move |c| {
        c.media.dir = dir.clone();
        c.media.max_upload_bytes = MAX_UPLOAD;
    })
    .await
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 3 % 256) as u8, (y * 5 % 256) as u8, 40])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("a PNG");
    out
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, _| image::Rgb([x as u8, 90, 200]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
        .expect("a JPEG");
    out
}

/// A ZIP with stored (uncompressed) entries: the shape of Office and OpenDocument files.
fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let size = (data.len() as u32).to_le_bytes();
        let name_len = (name.len() as u16).to_le_bytes();
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&size);
        out.extend_from_slice(&size);
        out.extend_from_slice(&name_len);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&[0, 0, 0, 0]);
        central.extend_from_slice(&size);
        central.extend_from_slice(&size);
        central.extend_from_slice(&name_len);
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

fn docx() -> Vec<u8> {
    zip(&[
        ("[Content_Types].xml", b"<?xml version=\"1.0\"?><Types/>"),
        ("_rels/.rels", b"<Relationships/>"),
        ("word/document.xml", b"<w:document/>"),
    ])
}

fn pptx() -> Vec<u8> {
    zip(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("ppt/presentation.xml", b"<p:presentation/>"),
    ])
}

fn odt() -> Vec<u8> {
    zip(&[
        ("mimetype", ODT.as_bytes()),
        ("content.xml", b"<office:document-content/>"),
    ])
}

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// POST /api/v1/media with `query` (already encoded) and a raw body.
async fn upload(
    a: &Instance,
    token: &str,
    query: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Reply {
    a.send(
        Method::POST,
        &format!("/api/v1/media{query}"),
        Some(token),
        &[("content-type", content_type)],
        Some(bytes),
    )
    .await
}

async fn uploaded(
    a: &Instance,
    token: &str,
    query: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Value {
    let reply = upload(a, token, query, content_type, bytes).await;
    reply.expect(
        StatusCode::CREATED,
        &format!("upload {query} as {content_type}"),
    );
    assert!(reply.json["id"].is_string(), "{}", reply.text);
    reply.json
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

fn local_path<'a>(a: &Instance, url: &'a str) -> &'a str {
    url.strip_prefix(a.origin.as_str())
        .unwrap_or_else(|| panic!("{url} is not on {}", a.origin))
}

async fn media_count(a: &Instance) -> i64 {
    use sea_orm::{EntityTrait, PaginatorTrait};
    cairn::store::media::Entity::find()
        .count(&a.state.db)
        .await
        .expect("count media") as i64
}

// ---------------------------------------------------------------------------------------------
// Uploads
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_kinds_are_recognised_by_content() {
    let a = start("upload-kinds").await;
    let alice = a.member("alice", "Alice").await;
    for (bytes, declared, query, expected, kind) in [
        (
            png(64, 32),
            "image/png",
            "?alt=A%20bar%20chart",
            "image/png",
            "image",
        ),
        (
            jpeg(40, 40),
            "application/octet-stream",
            "?alt=Class%20photo",
            "image/jpeg",
            "image",
        ),
        (
            PDF.to_vec(),
            "application/pdf",
            "?filename=handout.pdf",
            "application/pdf",
            "document",
        ),
        (docx(), DOCX, "?filename=plan.docx", DOCX, "document"),
        // A name that says PDF does not make it one: the content decides.
        (
            pptx(),
            "application/octet-stream",
            "?filename=slides.pdf",
            PPTX,
            "document",
        ),
        (odt(), ODT, "?filename=notes.odt", ODT, "document"),
        (
            b"Reflection log\nWeek 1: tried exit tickets\n".to_vec(),
            "text/plain",
            "",
            "text/plain",
            "document",
        ),
        (
            b"name,school\nAlice,Riverside\n".to_vec(),
            "text/csv",
            "?filename=list.csv",
            "text/csv",
            "document",
        ),
    ] {
        let v = uploaded(&a, &alice, query, declared, bytes.clone()).await;
        assert_eq!(v["media_type"], expected, "{v}");
        assert_eq!(v["kind"], kind, "{v}");
        assert_eq!(v["size"], bytes.len(), "{v}");
        assert_eq!(v["attached"], false);
        if kind == "image" {
            assert!(v["width"].as_u64().is_some_and(|w| w > 0), "{v}");
            assert_eq!(v["warnings"], json!([]), "an image with alt text: {v}");
        }
    }
    // An image without alt text is kept, with a warning saying what to do.
    let v = uploaded(&a, &alice, "", "image/png", png(10, 10)).await;
    let warning = v["warnings"][0].as_str().expect("a warning");
    assert!(warning.contains("alt text"), "{warning}");
    assert!(
        warning.contains(&format!("/api/v1/media/{}", id(&v))),
        "{warning}"
    );
    // Alt text is set afterwards by the uploader only.
    let bob = a.member("bob", "Bob").await;
    let path = format!("/api/v1/media/{}", id(&v));
    a.patch(&path, Some(&bob), &json!({"alt": "mine now"}))
        .await
        .client_error(StatusCode::FORBIDDEN, "bob describes alice's upload");
    let reply = a
        .patch(&path, Some(&alice), &json!({"alt": "A red square"}))
        .await;
    reply.expect(StatusCode::OK, "alice describes it");
    assert_eq!(reply.json["alt"], "A red square");
    assert_eq!(reply.json["warnings"], json!([]));
}

/// The API's 1 MiB limit on JSON bodies is not the limit on files: `media.max_upload_bytes` is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_larger_than_the_json_limit_are_accepted_up_to_the_configured_size() {
    let dir = std::env::temp_dir().join(format!("cairn-media-{}", uuid::Uuid::new_v4().simple()));
    let dir = dir.display().to_string();
    let a = Instance::start_with("upload-large", move |c| {
        c.media.dir = dir.clone();
        c.media.max_upload_bytes = 3 * ONE_MIB;
    })
    .await;
    let alice = a.member("alice", "Alice").await;
    let text: Vec<u8> = "Week 12: what changed in my questioning.\n"
        .repeat(2 * ONE_MIB / 40)
        .into_bytes();
    assert!(text.len() > ONE_MIB * 3 / 2);
    let v = uploaded(
        &a,
        &alice,
        "?filename=journal.txt",
        "text/plain",
        text.clone(),
    )
    .await;
    assert_eq!(v["size"], text.len());
    let path = local_path(&a, v["url"].as_str().expect("url")).to_owned();
    let reply = a.get(&path, Some(&alice)).await;
    reply.expect(StatusCode::OK, "the large file back");
    assert_eq!(reply.text.as_bytes(), &text[..]);
    let mut too_big = text.clone();
    too_big.resize(3 * ONE_MIB + 1, b'.');
    let reply = a
        .try_send_oversized(
            Method::POST,
            "/api/v1/media",
            Some(&alice),
            &[("content-type", "text/plain")],
            too_big,
        )
        .await
        .expect("an answer");
    reply.client_error(StatusCode::PAYLOAD_TOO_LARGE, "over the configured size");
}

/// A photo's EXIF (camera, time, often the GPS position of a classroom) is not shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_metadata_is_stripped() {
    let a = start("exif").await;
    a.community("hwb", None).await;
    let alice = a.member("alice", "Alice").await;
    let plain = jpeg(32, 24);
    // An APP1 Exif segment straight after the start-of-image marker.
    let payload = b"Exif\0\0MM\0*GPS 56.1165N 3.9369W";
    let mut with_exif = plain[..2].to_vec();
    with_exif.extend_from_slice(&[0xFF, 0xE1]);
    with_exif.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    with_exif.extend_from_slice(payload);
    with_exif.extend_from_slice(&plain[2..]);
    let v = uploaded(&a, &alice, "?alt=Display%20wall", "image/jpeg", with_exif).await;
    a.create_post(
        &alice,
        json!({"content": "Our wall #hwb", "attachments": [id(&v)]}),
    )
    .await;
    let bytes = a
        .http
        .get(format!(
            "{}{}",
            a.base,
            local_path(&a, v["url"].as_str().expect("url"))
        ))
        .send()
        .await
        .expect("the image")
        .bytes()
        .await
        .expect("bytes");
    assert!(!bytes.windows(4).any(|w| w == b"Exif"), "EXIF was served");
    assert!(
        !bytes.windows(3).any(|w| w == b"GPS"),
        "the position was served"
    );
    let img = image::load_from_memory(&bytes).expect("still an image");
    assert_eq!((img.width(), img.height()), (32, 24));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_uploads_say_why_and_store_nothing() {
    let a = start("upload-refused").await;
    let alice = a.member("alice", "Alice").await;
    let before = media_count(&a).await;
    for (bytes, declared, query, status, needle) in [
        // A Windows program calling itself a PDF.
        (
            b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff".to_vec(),
            "application/pdf",
            "?filename=notes.pdf",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not accepted",
        ),
        // A PDF sent as an image.
        (
            PDF.to_vec(),
            "image/png",
            "?filename=chart.png",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/pdf",
        ),
        // HTML and SVG are not "plain text".
        (
            b"<!DOCTYPE html><html><script>alert(1)</script></html>".to_vec(),
            "text/plain",
            "?filename=notes.txt",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not accepted",
        ),
        (
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(),
            "image/svg+xml",
            "",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not accepted",
        ),
        // A ZIP that is not an Office document.
        (
            zip(&[("payload.exe", b"MZ")]),
            "application/zip",
            "",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not accepted",
        ),
        (
            zip(&[
                ("[Content_Types].xml", b"<Types/>"),
                ("other/x.xml", b"<x/>"),
            ]),
            DOCX,
            "",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not accepted",
        ),
        // Magic bytes alone do not make an image.
        (
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRbroken".to_vec(),
            "image/png",
            "?alt=x",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "cannot be read",
        ),
        // Binary junk.
        (
            vec![0, 159, 146, 150, 0, 1],
            "application/octet-stream",
            "",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not accepted",
        ),
        (
            Vec::new(),
            "image/png",
            "",
            StatusCode::BAD_REQUEST,
            "empty",
        ),
        // A form upload (curl -F) is answered with how to send the file.
        (
            b"--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n%PDF-1.4\r\n--x--\r\n"
                .to_vec(),
            "multipart/form-data; boundary=x",
            "",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "--data-binary",
        ),
        (
            png(4, 4),
            "image/png",
            &format!("?alt={}", "a".repeat(1501)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "keep it to what the image shows",
        ),
        (
            PDF.to_vec(),
            "application/pdf",
            &format!("?alt={}", "a".repeat(1501)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "a short description of the document",
        ),
        (
            png(4, 4),
            "image/png",
            "?colour=red",
            StatusCode::BAD_REQUEST,
            "colour",
        ),
    ] {
        let reply = upload(&a, &alice, query, declared, bytes).await;
        let message = reply.client_error(status, &format!("upload {query} as {declared}"));
        assert!(message.contains(needle), "{declared} {query}: {message}");
    }
    // Too large: 413 with the limit, before or after the body is read.
    let mut big = PDF.to_vec();
    big.resize(MAX_UPLOAD + 1, b' ');
    let reply = a
        .try_send_oversized(
            Method::POST,
            "/api/v1/media",
            Some(&alice),
            &[("content-type", "application/pdf")],
            big,
        )
        .await
        .expect("an answer to an oversized upload");
    let message = reply.client_error(StatusCode::PAYLOAD_TOO_LARGE, "an oversized upload");
    assert!(message.contains(&MAX_UPLOAD.to_string()), "{message}");
    let reply = a
        .send(
            Method::POST,
            "/api/v1/media",
            None,
            &[("content-type", "application/pdf")],
            Some(PDF.to_vec()),
        )
        .await;
    reply.client_error(StatusCode::UNAUTHORIZED, "an anonymous upload");
    assert_eq!(media_count(&a).await, before, "a refused upload was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_served_with_their_type_and_safe_headers_to_who_may_read_them() {
    let a = start("serve").await;
    a.community("hwb", None).await;
    let alice = a.member("alice", "Alice").await;
    let bob = a.member("bob", "Bob").await;
    let image = uploaded(&a, &alice, "?alt=Seating%20plan", "image/png", png(30, 20)).await;
    let pdf = uploaded(
        &a,
        &alice,
        "?filename=Lesson%20plan%20%C3%A0%20Fa%C3%AClte.pdf",
        "application/pdf",
        PDF.to_vec(),
    )
    .await;
    let text = uploaded(
        &a,
        &alice,
        "?filename=log.txt",
        "text/plain",
        b"plain log".to_vec(),
    )
    .await;

    // Before it is shared, an upload is its owner's only.
    let pdf_path = local_path(&a, pdf["url"].as_str().expect("url")).to_owned();
    a.get(&pdf_path, None)
        .await
        .client_error(StatusCode::NOT_FOUND, "an unattached upload, anonymously");
    a.get(&pdf_path, Some(&bob)).await.client_error(
        StatusCode::NOT_FOUND,
        "an unattached upload, as someone else",
    );
    a.get(&pdf_path, Some(&alice))
        .await
        .expect(StatusCode::OK, "an unattached upload, as its owner");

    a.create_post(
        &alice,
        json!({"content": "Resources for #hwb", "attachments": [id(&image), id(&pdf), id(&text)]}),
    )
    .await;
    let image_path = local_path(&a, image["url"].as_str().expect("url")).to_owned();
    let reply = a.get(&image_path, None).await;
    reply.expect(StatusCode::OK, "the image");
    assert_eq!(reply.content_type, "image/png");
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    let csp = reply.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("sandbox"),
        "{csp}"
    );
    assert_eq!(reply.headers["content-disposition"], "inline");
    let cache = reply.headers["cache-control"].to_str().expect("cache");
    assert!(
        cache.contains("public") && cache.contains("max-age"),
        "{cache}"
    );

    let reply = a.get(&pdf_path, None).await;
    reply.expect(StatusCode::OK, "the PDF");
    assert_eq!(reply.content_type, "application/pdf");
    assert_eq!(reply.text.as_bytes(), PDF);
    let disposition = reply.headers["content-disposition"].to_str().expect("cd");
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(
        disposition.contains("filename=\"Lesson plan"),
        "{disposition}"
    );
    assert!(
        disposition.contains("filename*=UTF-8''Lesson%20plan%20%C3%A0%20Fa%C3%AClte.pdf"),
        "{disposition}"
    );
    let reply = a
        .get(local_path(&a, text["url"].as_str().expect("url")), None)
        .await;
    assert_eq!(reply.content_type, "text/plain; charset=utf-8");
    assert!(reply.headers["content-disposition"]
        .to_str()
        .expect("cd")
        .starts_with("attachment"));

    for bad in [
        "/media/nosuchkey",
        "/media/..%2F..%2Fetc%2Fpasswd",
        "/media/%00",
    ] {
        a.get(bad, None)
            .await
            .client_error(StatusCode::NOT_FOUND, bad);
    }

    // A members post's files: its community's followers only.
    let secret = uploaded(
        &a,
        &alice,
        "?filename=minutes.pdf",
        "application/pdf",
        PDF.to_vec(),
    )
    .await;
    a.create_post(
        &alice,
        json!({"content": "Minutes for #hwb members", "visibility": "members", "attachments": [id(&secret)]}),
    )
    .await;
    let secret_path = local_path(&a, secret["url"].as_str().expect("url")).to_owned();
    a.get(&secret_path, None)
        .await
        .client_error(StatusCode::NOT_FOUND, "a members file, anonymously");
    a.get(&secret_path, Some(&bob))
        .await
        .client_error(StatusCode::NOT_FOUND, "a members file, not a follower");
    a.post("/api/v1/communities/hwb/membership", Some(&bob), &json!({}))
        .await
        .expect(StatusCode::OK, "bob joins hwb");
    let reply = a.get(&secret_path, Some(&bob)).await;
    reply.expect(StatusCode::OK, "a members file, as a follower");
    let cache = reply.headers["cache-control"].to_str().expect("cache");
    assert!(cache.starts_with("private"), "{cache}");

    // An authority post's files: signed-in members here.
    let internal = uploaded(
        &a,
        &alice,
        "?filename=internal.pdf",
        "application/pdf",
        PDF.to_vec(),
    )
    .await;
    let post = a
        .create_post(
            &alice,
            json!({"content": "Authority only #hwb", "visibility": "authority", "attachments": [id(&internal)]}),
        )
        .await;
    let internal_path = local_path(&a, internal["url"].as_str().expect("url")).to_owned();
    a.get(&internal_path, None)
        .await
        .client_error(StatusCode::NOT_FOUND, "an authority file, anonymously");
    a.get(&internal_path, Some(&bob))
        .await
        .expect(StatusCode::OK, "an authority file, signed in");

    // Deleting the post takes its files with it.
    let before = media_count(&a).await;
    a.delete(&format!("/api/v1/posts/{}", key_of(&post)), Some(&alice))
        .await
        .expect(StatusCode::NO_CONTENT, "delete the post");
    a.get(&internal_path, Some(&alice))
        .await
        .client_error(StatusCode::NOT_FOUND, "a deleted post's file");
    assert_eq!(media_count(&a).await, before - 1);
}

// ---------------------------------------------------------------------------------------------
// Attachments on posts
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_links_attach_to_posts_and_go_out_as_documents_and_links() {
    let a = start("attach").await;
    a.community("hwb", None).await;
    let alice = a.member("alice", "Alice").await;
    let image = uploaded(
        &a,
        &alice,
        "?alt=Pupils%27%20mind%20map",
        "image/png",
        png(80, 60),
    )
    .await;
    let slides = uploaded(
        &a,
        &alice,
        "?filename=slides.pptx&alt=Slides%20from%20the%20session",
        PPTX,
        pptx(),
    )
    .await;

    let post = a
        .create_post(
            &alice,
            json!({
                "content": "What we tried in #hwb this term",
                "attachments": [id(&image), id(&slides)],
                "links": [
                    {"url": "https://education.example/wellbeing-toolkit", "name": "Wellbeing toolkit"},
                    {"url": "https://example.org/plain"}
                ],
            }),
        )
        .await;
    assert_eq!(post["category"], "resource");
    let attachments = post["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 4, "{post}");
    assert_eq!(attachments[0]["kind"], "image");
    assert_eq!(attachments[0]["alt"], "Pupils' mind map");
    assert_eq!(attachments[0]["media_type"], "image/png");
    assert_eq!(attachments[0]["width"], 80);
    assert_eq!(attachments[0]["url"], image["url"]);
    assert_eq!(attachments[1]["kind"], "document");
    assert_eq!(attachments[1]["media_type"], PPTX);
    assert_eq!(attachments[1]["filename"], "slides.pptx");
    assert_eq!(attachments[1]["alt"], "Slides from the session");
    assert_eq!(attachments[2]["kind"], "link");
    assert_eq!(
        attachments[2]["url"],
        "https://education.example/wellbeing-toolkit"
    );
    assert_eq!(attachments[2]["alt"], "Wellbeing toolkit");
    assert_eq!(attachments[3]["url"], "https://example.org/plain");
    // The same through GET and in the community.
    let key = key_of(&post);
    let reply = a.get(&format!("/api/v1/posts/{key}"), None).await;
    assert_eq!(reply.json["attachments"], post["attachments"]);
    let listed = a.community_posts("hwb", None).await;
    assert_eq!(listed[0]["attachments"], post["attachments"]);

    // On the wire.
    let note = a.get_as(&format!("/p/{key}"), AP_JSON).await;
    note.expect(StatusCode::OK, "the Note");
    let wire = note.json["attachment"]
        .as_array()
        .expect("attachment array");
    assert_eq!(wire.len(), 4, "{}", note.text);
    assert_eq!(wire[0]["type"], "Image");
    assert_eq!(wire[0]["mediaType"], "image/png");
    assert_eq!(wire[0]["url"], image["url"]);
    assert_eq!(wire[0]["name"], "Pupils' mind map");
    assert_eq!(wire[0]["width"], 80);
    assert_eq!(wire[1]["type"], "Document");
    assert_eq!(wire[1]["mediaType"], PPTX);
    assert_eq!(wire[1]["name"], "Slides from the session");
    assert_eq!(wire[2]["type"], "Link");
    assert_eq!(
        wire[2]["href"],
        "https://education.example/wellbeing-toolkit"
    );
    assert_eq!(wire[2]["name"], "Wellbeing toolkit");
    // Mastodon shows no Link attachments, so the links are in the text too.
    let content = note.json["content"].as_str().expect("content");
    assert!(
        content.contains("href=\"https://education.example/wellbeing-toolkit\""),
        "{content}"
    );

    // A post of links only is a link post; one of neither stays a discussion.
    let link_post = a
        .create_post(
            &alice,
            json!({"content": "Worth a read #hwb", "links": [{"url": "https://example.org/article"}]}),
        )
        .await;
    assert_eq!(link_post["category"], "link");
    let plain = a
        .create_post(&alice, json!({"content": "A question #hwb"}))
        .await;
    assert_eq!(plain["category"], "discussion");
    assert_eq!(plain["attachments"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_attachments_refuse_the_post_and_store_nothing() {
    let a = start("attach-bad").await;
    a.community("hwb", None).await;
    let alice = a.member("alice", "Alice").await;
    let bob = a.member("bob", "Bob").await;
    let undescribed = uploaded(&a, &alice, "", "image/png", png(8, 8)).await;
    let pdf = uploaded(&a, &alice, "", "application/pdf", PDF.to_vec()).await;
    let bobs = uploaded(&a, &bob, "", "application/pdf", PDF.to_vec()).await;
    a.create_post(
        &alice,
        json!({"content": "First #hwb", "attachments": [id(&pdf)]}),
    )
    .await;
    let fresh = uploaded(&a, &alice, "", "application/pdf", PDF.to_vec()).await;
    let before = a.snapshot().await;
    let media_before = media_count(&a).await;

    let eleven: Vec<Value> = (0..11)
        .map(|i| json!({"url": format!("https://example.org/{i}")}))
        .collect();
    for (body, status, needle) in [
        (
            json!({"content": "#hwb", "attachments": [id(&undescribed)]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "alt text",
        ),
        (
            json!({"content": "#hwb", "attachments": [id(&bobs)]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no upload of yours",
        ),
        (
            json!({"content": "#hwb", "attachments": ["nosuchid"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "POST /api/v1/media",
        ),
        (
            json!({"content": "#hwb", "attachments": ["\u{0000}"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no upload of yours",
        ),
        (
            json!({"content": "#hwb", "attachments": [id(&pdf)]}),
            StatusCode::CONFLICT,
            "already attached",
        ),
        (
            json!({"content": "#hwb", "attachments": [id(&fresh), id(&fresh)]}),
            StatusCode::CONFLICT,
            "already attached",
        ),
        (
            json!({"content": "#hwb", "links": [{"url": "javascript:alert(1)"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "links[0]: \"javascript:alert(1)\" is not an http or https URL",
        ),
        (
            json!({"content": "#hwb", "links": [{"url": "https://example.org"}, {"url": "mailto:a@b.example"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "links[1]: \"mailto:a@b.example\"",
        ),
        (
            json!({"content": "#hwb", "links": [{"url": "not a url"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "http",
        ),
        (
            json!({"content": "#hwb", "links": [{"url": "https://example.org", "name": "n".repeat(301)}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "links[0]: the name",
        ),
        (
            json!({"content": "#hwb", "links": eleven}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at most",
        ),
        (
            json!({"content": "#hwb", "links": [{"href": "https://example.org"}]}),
            StatusCode::BAD_REQUEST,
            "href",
        ),
        (
            json!({"content": "#hwb", "attachments": [{"media": id(&fresh)}]}),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        // A good file does not carry a bad link through (and is not claimed).
        (
            json!({"content": "#hwb #brandnewtag", "attachments": [id(&fresh)], "links": [{"url": "ftp://example.org"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "http",
        ),
    ] {
        let reply = a.post("/api/v1/posts", Some(&alice), &body).await;
        let message = reply.client_error(status, &format!("post {body}"));
        assert!(message.contains(needle), "{body}: {message}");
    }
    assert_eq!(
        a.snapshot().await,
        before,
        "a refused post changed something"
    );
    assert_eq!(media_count(&a).await, media_before);
    // The upload refused with the bad link is still free to use.
    let reply = a
        .get(&format!("/api/v1/media/{}", id(&fresh)), Some(&alice))
        .await;
    reply.expect(StatusCode::OK, "alice's upload");
    assert_eq!(reply.json["attached"], false);
    a.get(&format!("/api/v1/media/{}", id(&fresh)), Some(&bob))
        .await
        .client_error(StatusCode::NOT_FOUND, "alice's upload as bob");
    a.create_post(
        &alice,
        json!({"content": "Now #hwb", "attachments": [id(&fresh)]}),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Across instances
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_attachments_are_kept_as_links_to_their_origin_with_sanitised_alt_text() {
    let a = start("res-origin").await;
    let b = start("res-remote").await;
    a.community("hwb", None).await;
    let alice = a.member("alice", "Alice").await;
    let bob = b.member("bob", "Bob").await;
    let remote = format!("hwb@{}", a.domain);
    b.post(
        &format!("/api/v1/communities/{remote}/membership"),
        Some(&bob),
        &json!({}),
    )
    .await
    .expect(StatusCode::OK, "bob joins hwb on A");
    poll("A counts bob", DELIVERY_TIMEOUT, || async {
        (a.community_view("hwb").await["followers"] == 1).then_some(())
    })
    .await;

    let image = uploaded(
        &a,
        &alice,
        "?alt=Bar%20chart%3Cscript%3Ealert(1)%3C%2Fscript%3E%20of%20attendance",
        "image/png",
        png(50, 40),
    )
    .await;
    let pdf = uploaded(
        &a,
        &alice,
        "?filename=handout.pdf&alt=Handout",
        "application/pdf",
        PDF.to_vec(),
    )
    .await;
    let post = a
        .create_post(
            &alice,
            json!({
                "content": "Attendance and wellbeing #hwb",
                "attachments": [id(&image), id(&pdf)],
                "links": [{"url": "https://education.example/report", "name": "The report"}],
            }),
        )
        .await;
    let path = format!("/api/v1/communities/{remote}/posts");
    let arrived = poll("the post arrives on B", DELIVERY_TIMEOUT, || async {
        let reply = b.get(&path, Some(&bob)).await;
        items(&reply.json)
            .into_iter()
            .find(|p| p["id"] == post["id"])
    })
    .await;
    assert_eq!(arrived["category"], "resource");
    let got = arrived["attachments"].as_array().expect("attachments");
    assert_eq!(got.len(), 3, "{arrived}");
    // Kept as links to A, not copied.
    assert_eq!(got[0]["url"], image["url"]);
    assert_eq!(got[0]["kind"], "image");
    assert_eq!(got[0]["media_type"], "image/png");
    assert_eq!(got[0]["width"], 50);
    let alt = got[0]["alt"].as_str().expect("alt");
    assert!(
        alt.starts_with("Bar chart") && alt.ends_with("of attendance"),
        "{alt}"
    );
    assert!(
        !alt.contains("<script"),
        "remote alt text is sanitised: {alt}"
    );
    assert_eq!(got[1]["url"], pdf["url"]);
    assert_eq!(got[1]["kind"], "document");
    assert_eq!(got[1]["media_type"], "application/pdf");
    assert_eq!(got[1]["alt"], "Handout");
    assert_eq!(got[2]["kind"], "link");
    assert_eq!(got[2]["url"], "https://education.example/report");
    assert_eq!(got[2]["alt"], "The report");
    // The link is shown once in the text.
    let content = arrived["content"].as_str().expect("content");
    assert_eq!(
        content.matches("https://education.example/report").count(),
        1,
        "{content}"
    );
    // Better alt text later reaches B too (the post is updated).
    let path_alt = format!("/api/v1/media/{}", id(&image));
    a.patch(&path_alt, Some(&alice), &json!({"alt": ""}))
        .await
        .client_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "clearing a shared image's alt",
        );
    a.patch(
        &path_alt,
        Some(&alice),
        &json!({"alt": "Bar chart of attendance by term"}),
    )
    .await
    .expect(StatusCode::OK, "a better description");
    let key_on_b = arrived["key"].as_str().expect("key").to_owned();
    poll("the new alt text on B", DELIVERY_TIMEOUT, || async {
        let reply = b
            .get(&format!("/api/v1/posts/{key_on_b}"), Some(&bob))
            .await;
        (reply.json["attachments"][0]["alt"] == "Bar chart of attendance by term").then_some(())
    })
    .await;

    // B stored no bytes: its rows point at A.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let rows = cairn::store::media::Entity::find()
        .filter(cairn::store::media::Column::StorageKey.is_not_null())
        .all(&b.state.db)
        .await
        .expect("media rows");
    assert!(rows.is_empty(), "B copied files: {rows:?}");
}
