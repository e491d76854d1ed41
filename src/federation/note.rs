//! Posts on the wire: `Note`, or `Article` when titled, with `Hashtag` tags whose `href` is
//! the community. Remote `Page`, `Question` and similar objects are stored as posts too.

use super::{actor::DbActor, json, origin_of, same_origin, sanitize, PUBLIC};
use crate::{
    error::{ConflictExt, Error},
    hashtag,
    services::visibility::Visibility,
    state::AppState,
    store::{actor, post, post_community},
};
use activitypub_federation::{config::Data, fetch::object_id::ObjectId, traits::Object};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use serde_json::{json as j, Value};
use url::Url;

/// Object types stored as posts.
pub const POST_TYPES: &[&str] = &["Note", "Article", "Page", "Question", "Video", "Event"];

/// Longest text we store from a remote post, in bytes.
const MAX_REMOTE_CONTENT: usize = 100_000;

#[derive(Debug, Clone)]
pub struct DbPost(pub post::Model, Url);

impl DbPost {
    pub fn new(model: post::Model) -> Result<Self, Error> {
        let id = model
            .ap_id
            .parse()
            .map_err(|e| Error::Internal(format!("stored post id {}: {e}", model.ap_id)))?;
        Ok(DbPost(model, id))
    }
    pub fn ap_id(&self) -> &Url {
        &self.1
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct NoteJson {
    #[serde(rename = "type")]
    pub kind: Value,
    pub id: Url,
    #[serde(default)]
    pub attributed_to: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub to: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub cc: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub audience: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_map: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Value>,
    #[serde(
        default,
        alias = "as:sensitive",
        skip_serializing_if = "Option::is_none"
    )]
    pub sensitive: Option<Value>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub in_reply_to: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<Value>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub tag: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub attachment: Value,
    /// Everything else: what an event or an intention adds (`startTime`, `targetDate`…) on the
    /// way out, and unknown extension terms on the way in.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl NoteJson {
    pub fn kind_str(&self) -> &str {
        match &self.kind {
            Value::String(s) => s,
            Value::Array(a) => a.first().and_then(Value::as_str).unwrap_or_default(),
            _ => "",
        }
    }

    pub fn author(&self) -> Option<Url> {
        json::ids(Some(&self.attributed_to)).into_iter().next()
    }

    /// The content as HTML: `content` (or the first `contentMap` value, English preferred);
    /// Markdown (PeerTube) is shown as text with its paragraphs; a link kept only in a `Link`
    /// attachment (Lemmy link posts) is added at the end.
    pub fn content_html(&self) -> String {
        let mut html = self.raw_content();
        let media_type = self.media_type.as_ref().and_then(Value::as_str);
        if media_type.is_some_and(|m| m.starts_with("text/markdown") || m.starts_with("text/plain"))
        {
            html = sanitize::text_to_html(&html, |_| None);
        }
        for attachment in json::items(Some(&self.attachment)) {
            if json::kind(attachment) == Some("Link") {
                if let Some(href) = json::str_field(attachment, "href") {
                    if !html.contains(href) {
                        let href = sanitize::escape(href);
                        html.push_str(&format!("<p><a href=\"{href}\">{href}</a></p>"));
                    }
                }
            }
        }
        html
    }

    fn raw_content(&self) -> String {
        if let Some(Value::String(s)) = &self.content {
            return s.clone();
        }
        if let Some(Value::Object(map)) = &self.content_map {
            let preferred = map.get("en").or_else(|| map.values().next());
            if let Some(Value::String(s)) = preferred {
                return s.clone();
            }
        }
        String::new()
    }

    /// Hashtags from the `tag` array, which wins over the text for remote posts; the text
    /// is read only when there is no `tag` at all.
    pub fn hashtags(&self) -> Vec<String> {
        let mut tags = Vec::new();
        if self.tag.is_null() {
            tags = hashtag::extract(&sanitize::plain(&self.content_html()));
        }
        for t in json::items(Some(&self.tag)) {
            if json::kind(t) != Some("Hashtag") {
                continue;
            }
            if let Some(Ok(name)) = json::str_field(t, "name").map(hashtag::normalize) {
                if !tags.contains(&name) {
                    tags.push(name);
                }
            }
        }
        tags
    }

    /// Everyone named in `to`, `cc` and `audience`, and every `Mention` in `tag`.
    pub fn addressees(&self) -> Vec<Url> {
        let mut all = json::ids(Some(&self.to));
        all.extend(json::ids(Some(&self.cc)));
        all.extend(json::ids(Some(&self.audience)));
        for t in json::items(Some(&self.tag)) {
            if json::kind(t) == Some("Mention") {
                all.extend(json::str_field(t, "href").and_then(|h| h.parse().ok()));
            }
        }
        all
    }

    pub fn is_public(&self) -> bool {
        json::is_public(Some(&self.to)) || json::is_public(Some(&self.cc))
    }
}

fn text(v: &Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn time(v: &Option<Value>) -> Option<DateTime<Utc>> {
    match v {
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        _ => None,
    }
}

/// The wire form of a stored post.
pub async fn to_json<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    post: &post::Model,
) -> Result<NoteJson, Error> {
    let author = actor::Entity::find_by_id(post.author_id)
        .one(conn)
        .await?
        .ok_or_else(|| Error::Internal(format!("post {} has no author", post.ap_id)))?;
    let communities = communities_of(conn, post.id).await?;
    let group_ids: Vec<Value> = communities.iter().map(|c| j!(c.ap_id)).collect();
    let author_followers = author.followers_url.clone().map(Value::String);
    let visibility = Visibility::parse(&post.visibility).unwrap_or(Visibility::Public);
    let (to, cc) = match visibility {
        Visibility::Public => {
            let mut cc: Vec<Value> = author_followers.into_iter().collect();
            cc.extend(group_ids.iter().cloned());
            (j!([PUBLIC]), Value::Array(cc))
        }
        Visibility::Members => {
            let mut to: Vec<Value> = group_ids.clone();
            to.extend(
                communities
                    .iter()
                    .filter_map(|c| c.followers_url.clone().map(Value::String)),
            );
            (
                Value::Array(to),
                j!(author_followers.into_iter().collect::<Vec<_>>()),
            )
        }
        Visibility::Authority => (j!([]), j!([])),
    };
    let hashtags: Vec<String> = serde_json::from_str(&post.hashtags).unwrap_or_default();
    let tag: Vec<Value> = hashtags
        .iter()
        .map(|t| {
            let community = communities
                .iter()
                .find(|c| c.local && c.local_name.as_deref() == Some(t.as_str()));
            let (href, name) = match community {
                Some(c) => (c.ap_id.clone(), c.name.clone()),
                None => (state.url(&format!("/tags/{t}")), t.clone()),
            };
            j!({"type": "Hashtag", "href": href, "name": format!("#{name}")})
        })
        .collect();
    let kind = if post.kind == "Note" && post.title.is_some() {
        "Article"
    } else {
        post.kind.as_str()
    };
    let mut note = NoteJson {
        kind: j!(kind),
        id: post
            .ap_id
            .parse()
            .map_err(|e| Error::Internal(format!("stored post id: {e}")))?,
        attributed_to: j!(author.ap_id),
        to,
        cc,
        audience: group_ids.first().cloned().unwrap_or(Value::Null),
        name: post.title.clone().map(Value::String),
        content: Some(Value::String(post.content.clone())),
        content_map: None,
        media_type: Some(j!("text/html")),
        source: post
            .source
            .clone()
            .map(|s| j!({"content": s, "mediaType": "text/plain"})),
        summary: post.summary.clone().map(Value::String),
        sensitive: Some(Value::Bool(post.sensitive)),
        in_reply_to: post.in_reply_to.clone().map_or(Value::Null, Value::String),
        url: Some(j!(post.url.clone().unwrap_or_else(|| post.ap_id.clone()))),
        published: Some(j!(post.published.to_rfc3339())),
        updated: post.updated.map(|u| j!(u.to_rfc3339())),
        tag: Value::Array(tag),
        attachment: Value::Null,
        extra: serde_json::Map::new(),
    };
    // What particular kinds of post add to the wire form, each in its own module.
    super::attachments::add_to_note(conn, state, post, &mut note).await?;
    super::event::add_to_note(conn, state, post, &mut note).await?;
    super::intention::add_to_note(conn, state, post, &mut note).await?;
    Ok(note)
}

/// The communities (local and remote Groups) a post is filed under.
pub async fn communities_of<C: ConnectionTrait>(
    conn: &C,
    post_id: i64,
) -> Result<Vec<actor::Model>, Error> {
    let joins = post_community::Entity::find()
        .filter(post_community::Column::PostId.eq(post_id))
        .all(conn)
        .await?;
    if joins.is_empty() {
        return Ok(Vec::new());
    }
    Ok(actor::Entity::find()
        .filter(actor::Column::Id.is_in(joins.iter().map(|j| j.community_id)))
        .all(conn)
        .await?)
}

#[async_trait::async_trait]
impl Object for DbPost {
    type DataType = AppState;
    type Kind = NoteJson;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.1
    }

    async fn read_from_id(object_id: Url, data: &Data<AppState>) -> Result<Option<Self>, Error> {
        post::Entity::find()
            .filter(post::Column::ApId.eq(object_id.as_str()))
            .one(&data.db)
            .await?
            .map(DbPost::new)
            .transpose()
    }

    fn is_deleted(&self) -> bool {
        self.0.deleted_at.is_some()
    }

    async fn into_json(self, data: &Data<AppState>) -> Result<NoteJson, Error> {
        to_json(&data.db, data.app_data(), &self.0).await
    }

    async fn verify(json: &NoteJson, expected: &Url, _data: &Data<AppState>) -> Result<(), Error> {
        if !POST_TYPES.contains(&json.kind_str()) {
            return Err(Error::Unprocessable(format!(
                "object type {:?} is not something Cairn stores as a post",
                json.kind_str()
            )));
        }
        if !same_origin(&json.id, expected) {
            return Err(Error::BadRequest(format!(
                "object {} does not come from {}",
                json.id,
                origin_of(expected)
            )));
        }
        let author = json
            .author()
            .ok_or_else(|| Error::BadRequest(format!("object {} has no attributedTo", json.id)))?;
        if !same_origin(&author, &json.id) {
            return Err(Error::BadRequest(format!(
                "object {} is attributed to {author}, on another origin",
                json.id
            )));
        }
        Ok(())
    }

    async fn from_json(json: NoteJson, data: &Data<AppState>) -> Result<Self, Error> {
        let author_id = json
            .author()
            .ok_or_else(|| Error::BadRequest(format!("object {} has no attributedTo", json.id)))?;
        let author = ObjectId::<DbActor>::from(author_id)
            .dereference(data)
            .await?;
        let existing = post::Entity::find()
            .filter(post::Column::ApId.eq(json.id.as_str()))
            .one(&data.db)
            .await?;
        if let Some(e) = &existing {
            if e.deleted_at.is_some() || e.local {
                // A deleted post stays deleted; a local one is never replaced from outside.
                return DbPost::new(e.clone());
            }
            if e.author_id != author.0.id {
                return Err(Error::Forbidden(format!(
                    "{} may not change the author of {}",
                    author.0.ap_id, json.id
                )));
            }
        }
        let mut content = json.content_html();
        if content.len() > MAX_REMOTE_CONTENT {
            return Err(Error::BadRequest(format!(
                "content of {} is longer than {MAX_REMOTE_CONTENT} bytes",
                json.id
            )));
        }
        content = sanitize::html(&content);
        let title = text(&json.name).map(|t| sanitize::plain(&t));
        let visibility = if json.is_public() {
            Visibility::Public
        } else {
            Visibility::Members
        };
        let hashtags =
            serde_json::to_string(&json.hashtags()).map_err(|e| Error::Internal(e.to_string()))?;
        let now = Utc::now();
        let published = time(&json.published).unwrap_or(now);
        let in_reply_to = json::ids(Some(&json.in_reply_to))
            .first()
            .map(Url::to_string);
        let url = json
            .url
            .as_ref()
            .and_then(|u| json::ids(Some(u)).into_iter().next())
            .map(|u| u.to_string());
        let mut model = post::ActiveModel {
            ap_id: Set(json.id.to_string()),
            author_id: Set(author.0.id),
            kind: Set(json.kind_str().to_owned()),
            title: Set(title),
            content: Set(content),
            source: Set(None),
            summary: Set(text(&json.summary).map(|s| sanitize::plain(&s))),
            sensitive: Set(matches!(json.sensitive, Some(Value::Bool(true)))),
            visibility: Set(visibility.as_str().to_owned()),
            in_reply_to: Set(in_reply_to),
            url: Set(url),
            hashtags: Set(hashtags),
            local: Set(false),
            published: Set(published),
            updated: Set(time(&json.updated)),
            deleted_at: Set(None),
            created_at: Set(now),
            ..Default::default()
        };
        let saved = match existing {
            Some(e) => {
                model.id = Set(e.id);
                model.key = Set(e.key);
                model.created_at = Set(e.created_at);
                model.published = Set(e.published);
                // The same post arriving again by another path is not an edit.
                model.updated = Set(time(&json.updated).or(e.updated));
                model.update(&data.db).await?
            }
            None => {
                model.key = Set(uuid::Uuid::new_v4().to_string());
                match model.insert(&data.db).await.on_conflict(String::new) {
                    Ok(m) => m,
                    // The same post arrived by another path at the same moment.
                    Err(Error::Conflict(_)) => post::Entity::find()
                        .filter(post::Column::ApId.eq(json.id.as_str()))
                        .one(&data.db)
                        .await?
                        .ok_or_else(|| Error::Internal("post vanished after conflict".into()))?,
                    Err(e) => return Err(e),
                }
            }
        };
        // What particular kinds of post carry beyond a Note, each read by its own module.
        super::attachments::store_remote(data, &json, &saved).await?;
        super::event::store_remote(data, &json, &saved).await?;
        super::intention::store_remote(data, &json, &saved).await?;
        let saved = crate::services::feed::store_category(&data.db, saved).await?;
        DbPost::new(saved)
    }
}
