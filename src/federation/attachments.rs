//! Media attachments on the wire: `Document`/`Image` with `mediaType`, `url` and alt text (`name`),
//! `Link` with `href` and `name`; and the introduction flag (`introduction`, Cairn's term).

use super::{json, note::NoteJson, sanitize};
use crate::{
    error::Error,
    services::media::{self as media_service, LINK},
    state::AppState,
    store::{media, post},
};
use activitypub_federation::config::Data;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set, TransactionTrait};
use serde_json::{json as j, Value};

/// Adds what this kind of post carries to its wire form.
pub async fn add_to_note<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    post: &post::Model,
    note: &mut NoteJson,
) -> Result<(), Error> {
    if post.is_introduction {
        note.extra.insert("introduction".into(), Value::Bool(true));
    }
    let rows = media_service::of_post(conn, post.id).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut items: Vec<Value> = Vec::new();
    let mut link_html = String::new();
    let content = note
        .content
        .as_ref()
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    for m in &rows {
        let url = media_service::media_url(state, m);
        if m.kind == LINK {
            items.push(j!({"type": "Link", "href": url, "name": m.alt_text}));
            // Mastodon ignores Link attachments: the link is in the text too.
            if !content.contains(&url) {
                let href = sanitize::escape(&url);
                let text = sanitize::escape(m.alt_text.as_deref().unwrap_or(&url));
                link_html.push_str(&format!("<p><a href=\"{href}\">{text}</a></p>"));
            }
            continue;
        }
        let mut item = j!({
            "type": if m.kind == media::IMAGE { "Image" } else { "Document" },
            "mediaType": m.media_type,
            "url": url,
            "name": m.alt_text,
        });
        if let (Some(w), Some(h)) = (m.width, m.height) {
            item["width"] = j!(w);
            item["height"] = j!(h);
        }
        items.push(item);
    }
    if !link_html.is_empty() {
        note.content = Some(Value::String(format!("{content}{link_html}")));
    }
    note.attachment = Value::Array(items);
    Ok(())
}

/// Stores what a remote post of this kind carries, once the post itself is stored.
pub async fn store_remote(
    data: &Data<AppState>,
    json: &NoteJson,
    post: &post::Model,
) -> Result<(), Error> {
    let attachments: Vec<Value> = json::items(Some(&json.attachment))
        .into_iter()
        .cloned()
        .collect();
    // One transaction: the same post arriving twice at once must not leave its files twice.
    let txn = data.db.begin().await?;
    let category = media_service::store_remote_attachments(&txn, post, &attachments).await?;
    let introduction = json.extra.get("introduction") == Some(&Value::Bool(true));
    // Events and intentions keep their own category (their modules run after this one).
    let follows_attachments =
        [post::DISCUSSION, post::RESOURCE, post::LINK].contains(&post.category.as_str());
    let new_category = match category {
        Some(c) if follows_attachments => c,
        None if follows_attachments => post::DISCUSSION,
        _ => post.category.as_str(),
    };
    if new_category != post.category || introduction != post.is_introduction {
        let mut active: post::ActiveModel = post.clone().into();
        active.category = Set(new_category.to_owned());
        active.is_introduction = Set(introduction);
        active.update(&txn).await?;
    }
    txn.commit().await?;
    Ok(())
}
