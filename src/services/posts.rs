//! Local posts: written once, filed in every matching community, announced by each.

use super::{
    communities, follows,
    views::{self, PostView},
    visibility::{can_read, Reader, Visibility},
};
use crate::{
    error::{Error, Result},
    federation::{
        activities::announce::{announce_in_group, Verb},
        addressing, context, note, outbox, sanitize,
    },
    hashtag,
    state::AppState,
    store::{actor, delivery_queue, post, post_community},
};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::Deserialize;
use serde_json::{json, Value};

pub const MAX_CONTENT_CHARS: usize = 20_000;
pub const MAX_TITLE_CHARS: usize = 300;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPost {
    pub content: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub communities: Vec<String>,
    #[serde(default)]
    pub in_reply_to: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    /// Files shared with the post: ids of the author's uploads (`POST /api/v1/media`).
    #[serde(default)]
    pub attachments: Vec<String>,
    /// Links shared with the post.
    #[serde(default)]
    pub links: Vec<super::media::LinkInput>,
    /// The author introduces themselves to the post's communities (only as their first post
    /// there).
    #[serde(default)]
    pub is_introduction: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostEdit {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
}

fn check_text(content: &str, title: Option<&str>) -> Result<()> {
    if content.trim().is_empty() {
        return Err(Error::BadRequest("content must not be empty".into()));
    }
    if content.chars().count() > MAX_CONTENT_CHARS {
        return Err(Error::BadRequest(format!(
            "content is longer than {MAX_CONTENT_CHARS} characters"
        )));
    }
    if title.is_some_and(|t| t.chars().count() > MAX_TITLE_CHARS) {
        return Err(Error::BadRequest(format!(
            "title is longer than {MAX_TITLE_CHARS} characters"
        )));
    }
    Ok(())
}

fn render(state: &AppState, content: &str) -> String {
    sanitize::text_to_html(content, |tag| {
        hashtag::normalize(tag)
            .ok()
            .map(|t| state.url(&format!("/c/{}", communities::urlencode(&t))))
    })
}

/// Rows written with a post inside its transaction, before it is serialised for federation,
/// so that the JSON sent out already carries them (an event's times, an intention's date).
pub type AfterInsert = Box<
    dyn for<'t> FnOnce(&'t DatabaseTransaction, &'t post::Model) -> BoxFuture<'t, Result<()>>
        + Send,
>;

/// What an event or an intention adds to a plain post.
#[derive(Default)]
pub struct Extras {
    /// The ActivityStreams type when it is not `Note`/`Article` (`Event`).
    pub kind: Option<&'static str>,
    /// The filter category when the caller knows it (`event`, `intention`).
    pub category: Option<&'static str>,
    pub after_insert: Option<AfterInsert>,
}

pub async fn create(state: &AppState, author: &actor::Model, input: NewPost) -> Result<PostView> {
    create_with(state, author, input, Extras::default()).await
}

/// Creates a post with what a particular kind of post adds to it.
pub async fn create_with(
    state: &AppState,
    author: &actor::Model,
    input: NewPost,
    extras: Extras,
) -> Result<PostView> {
    check_text(&input.content, input.title.as_deref())?;
    let visibility = match input.visibility.as_deref() {
        None => Visibility::Public,
        Some(v) => Visibility::parse(v).ok_or_else(|| {
            Error::BadRequest(format!(
                "visibility {v:?} is not one of public, members, authority"
            ))
        })?,
    };
    let mut written = hashtag::extract_as_written(&input.content);
    for requested in &input.communities {
        let tag = hashtag::normalize(requested).map_err(|e| Error::BadRequest(e.to_string()))?;
        if !written.iter().any(|(t, _)| *t == tag) {
            written.push((tag, requested.trim().trim_start_matches('#').to_owned()));
        }
    }
    let tags: Vec<String> = written.iter().map(|(t, _)| t.clone()).collect();
    for requested in &input.communities {
        // Explicitly chosen communities must exist (or be creatable).
        if communities::find_local(state, requested).await?.is_none()
            && !state.config.communities.auto_create
        {
            communities::get_local(state, requested).await?;
        }
    }
    let in_reply_to = match input.in_reply_to.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) => Some(
            url::Url::parse(r)
                .map_err(|e| Error::BadRequest(format!("in_reply_to {r:?} is not a URL: {e}")))?
                .to_string(),
        ),
    };
    // Checked before `for_tags`, which may create communities: a refused post creates none.
    let attachments =
        super::media::prepare(state, author, &input.attachments, &input.links).await?;
    let existed = super::moderators::existing_communities(state, &written).await?;
    let groups = communities::for_tags(state, &written).await?;
    if input.is_introduction {
        super::profiles::check_introduction(state, author, &groups, in_reply_to.as_deref()).await?;
    }
    let title = input
        .title
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let key = uuid::Uuid::new_v4().to_string();
    let ap_id = state.url(&format!("/p/{key}"));
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let saved = post::ActiveModel {
        key: Set(key),
        ap_id: Set(ap_id.clone()),
        author_id: Set(author.id),
        kind: Set(extras
            .kind
            .unwrap_or(if title.is_some() { "Article" } else { "Note" })
            .into()),
        category: Set(extras
            .category
            .or_else(|| super::media::category_for(&attachments))
            .unwrap_or(post::DISCUSSION)
            .into()),
        is_introduction: Set(input.is_introduction),
        title: Set(title),
        content: Set(render(state, &input.content)),
        source: Set(Some(input.content)),
        // A content warning makes the post sensitive, as Mastodon shows it.
        sensitive: Set(input
            .summary
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty())),
        summary: Set(input.summary.filter(|s| !s.trim().is_empty())),
        visibility: Set(visibility.as_str().into()),
        in_reply_to: Set(in_reply_to),
        url: Set(Some(ap_id.clone())),
        hashtags: Set(serde_json::to_string(&tags).map_err(|e| Error::Internal(e.to_string()))?),
        local: Set(true),
        published: Set(now),
        updated: Set(None),
        deleted_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    if let Some(after_insert) = extras.after_insert {
        after_insert(&txn, &saved).await?;
    }
    super::media::attach(&txn, &saved, attachments).await?;
    let saved = super::feed::store_category(&txn, saved).await?;
    for g in &groups {
        post_community::ActiveModel {
            post_id: Set(saved.id),
            community_id: Set(g.id),
            announced: Set(false),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
    }
    super::moderators::appoint_creator(&txn, &groups, &existed, author).await?;
    if visibility.federates() {
        let note = note::to_json(&txn, state, &saved).await?;
        let create = author_activity(state, author, "Create", to_value(&note)?, &note);
        let mut inboxes = author_follower_inboxes(&txn, author.id).await?;
        inboxes.extend(parent_author_inbox(&txn, saved.in_reply_to.as_deref()).await?);
        outbox::queue(&txn, author.id, &create, Some(&saved.ap_id), inboxes).await?;
        for g in &groups {
            if mark_announced(&txn, saved.id, g.id).await? {
                announce_in_group(&txn, state, g, &saved, &create, Verb::Create).await?;
            }
        }
    }
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    views::post_view(state, &saved).await
}

pub async fn update(
    state: &AppState,
    author: &actor::Model,
    key: &str,
    edit: PostEdit,
) -> Result<PostView> {
    let existing = own_post(state, author, key).await?;
    let content = edit
        .content
        .clone()
        .unwrap_or_else(|| existing.source.clone().unwrap_or_default());
    let title = edit.title.clone().or_else(|| existing.title.clone());
    check_text(&content, title.as_deref())?;
    // Hashtags added by the edit place the post in those communities too; it stays in the
    // ones it was already shared to.
    let mut tags: Vec<String> = serde_json::from_str(&existing.hashtags).unwrap_or_default();
    let added: Vec<(String, String)> = hashtag::extract_as_written(&content)
        .into_iter()
        .filter(|(t, _)| !tags.contains(t))
        .collect();
    tags.extend(added.iter().map(|(t, _)| t.clone()));
    let new_groups = communities::for_tags(state, &added).await?;
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let mut active: post::ActiveModel = existing.clone().into();
    if let Some(c) = edit.content {
        active.content = Set(render(state, &c));
        active.source = Set(Some(c));
    }
    if let Some(t) = edit.title {
        let t = Some(t.trim().to_owned()).filter(|t| !t.is_empty());
        // An Event or a Question keeps its type; only Note and Article follow the title.
        if existing.kind == "Note" || existing.kind == "Article" {
            active.kind = Set(if t.is_some() { "Article" } else { "Note" }.into());
        }
        active.title = Set(t);
    }
    active.hashtags =
        Set(serde_json::to_string(&tags).map_err(|e| Error::Internal(e.to_string()))?);
    for g in &new_groups {
        post_community::Entity::insert(post_community::ActiveModel {
            post_id: Set(existing.id),
            community_id: Set(g.id),
            announced: Set(false),
            created_at: Set(now),
        })
        .on_conflict_do_nothing()
        .exec(&txn)
        .await?;
    }
    if let Some(s) = edit.summary {
        let summary = Some(s).filter(|s| !s.trim().is_empty());
        active.sensitive = Set(summary.is_some());
        active.summary = Set(summary);
    }
    active.updated = Set(Some(now));
    let saved = active.update(&txn).await?;
    let saved = super::feed::store_category(&txn, saved).await?;
    let visibility = Visibility::parse(&saved.visibility).unwrap_or(Visibility::Authority);
    if visibility.federates() {
        let note = note::to_json(&txn, state, &saved).await?;
        let update = author_activity(state, author, "Update", to_value(&note)?, &note);
        propagate(&txn, state, author, &saved, &update, Verb::Update).await?;
        // Communities new to the post announce it as a new post.
        let create = author_activity(state, author, "Create", to_value(&note)?, &note);
        for g in &new_groups {
            if mark_announced(&txn, saved.id, g.id).await? {
                announce_in_group(&txn, state, g, &saved, &create, Verb::Create).await?;
            }
        }
    }
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    views::post_view(state, &saved).await
}

pub async fn delete(state: &AppState, author: &actor::Model, key: &str) -> Result<()> {
    let existing = own_post(state, author, key).await?;
    let txn = state.db.begin().await?;
    let visibility = Visibility::parse(&existing.visibility).unwrap_or(Visibility::Authority);
    if visibility.federates() {
        let note = note::to_json(&txn, state, &existing).await?;
        let tombstone = json!({
            "id": existing.ap_id,
            "type": "Tombstone",
            "formerType": existing.kind,
        });
        let delete = author_activity(state, author, "Delete", tombstone, &note);
        propagate(&txn, state, author, &existing, &delete, Verb::Delete).await?;
    }
    tombstone_post(&txn, &existing).await?;
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    super::media::delete_post_files(state, existing.id).await?;
    Ok(())
}

/// Clears a post's content and removes it from its communities; the row stays so that the id
/// answers 410 Gone and is never stored again. Returns `false` if it was already deleted: the
/// update is the claim, so of two concurrent deletes only one goes on to announce it.
pub async fn tombstone_post<C: ConnectionTrait>(conn: &C, p: &post::Model) -> Result<bool> {
    let claimed = post::Entity::update_many()
        .col_expr(
            post::Column::DeletedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .col_expr(post::Column::Content, sea_orm::sea_query::Expr::value(""))
        .col_expr(
            post::Column::Source,
            sea_orm::sea_query::Expr::value(Option::<String>::None),
        )
        .col_expr(
            post::Column::Title,
            sea_orm::sea_query::Expr::value(Option::<String>::None),
        )
        .col_expr(
            post::Column::Summary,
            sea_orm::sea_query::Expr::value(Option::<String>::None),
        )
        .col_expr(
            post::Column::Hashtags,
            sea_orm::sea_query::Expr::value("[]"),
        )
        .filter(post::Column::Id.eq(p.id))
        .filter(post::Column::DeletedAt.is_null())
        .exec(conn)
        .await?;
    if claimed.rows_affected != 1 {
        return Ok(false);
    }
    post_community::Entity::delete_many()
        .filter(post_community::Column::PostId.eq(p.id))
        .exec(conn)
        .await?;
    Ok(true)
}

/// An Update or Delete goes where the post went: the author's followers, every inbox that was
/// sent the post, and through each community that announced it.
async fn propagate<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    author: &actor::Model,
    p: &post::Model,
    activity: &Value,
    verb: Verb,
) -> Result<()> {
    let mut inboxes = author_follower_inboxes(conn, author.id).await?;
    inboxes.extend(delivery_queue::inboxes_reached_for_object(conn, &p.ap_id).await?);
    outbox::queue(conn, author.id, activity, Some(&p.ap_id), inboxes).await?;
    for g in announced_groups(conn, p.id).await? {
        announce_in_group(conn, state, &g, p, activity, verb).await?;
    }
    Ok(())
}

/// Local communities that have announced the post.
pub async fn announced_groups<C: ConnectionTrait>(
    conn: &C,
    post_id: i64,
) -> Result<Vec<actor::Model>> {
    let ids: Vec<i64> = post_community::Entity::find()
        .filter(post_community::Column::PostId.eq(post_id))
        .filter(post_community::Column::Announced.eq(true))
        .all(conn)
        .await?
        .into_iter()
        .map(|j| j.community_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(actor::Entity::find()
        .filter(actor::Column::Id.is_in(ids))
        .filter(actor::Column::Local.eq(true))
        .all(conn)
        .await?)
}

/// Marks the post announced by the group; `false` if it already was. The update is the claim:
/// of two concurrent arrivals of one post, only one gets `true` and announces it.
pub async fn mark_announced<C: ConnectionTrait>(
    conn: &C,
    post_id: i64,
    group_id: i64,
) -> Result<bool> {
    let result = post_community::Entity::update_many()
        .col_expr(
            post_community::Column::Announced,
            sea_orm::sea_query::Expr::value(true),
        )
        .filter(post_community::Column::PostId.eq(post_id))
        .filter(post_community::Column::CommunityId.eq(group_id))
        .filter(post_community::Column::Announced.eq(false))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

fn to_value(note: &note::NoteJson) -> Result<Value> {
    serde_json::to_value(note).map_err(|e| Error::Internal(e.to_string()))
}

fn author_activity(
    state: &AppState,
    author: &actor::Model,
    kind: &str,
    object: Value,
    note: &note::NoteJson,
) -> Value {
    json!({
        "@context": context(),
        "id": outbox::new_activity_id(&state.origin()),
        "type": kind,
        "actor": author.ap_id,
        "object": object,
        "to": note.to,
        "cc": note.cc,
        "audience": note.audience,
        "published": Utc::now().to_rfc3339(),
    })
}

async fn author_follower_inboxes<C: ConnectionTrait>(
    conn: &C,
    author_id: i64,
) -> Result<Vec<String>> {
    Ok(addressing::remote_follower_inboxes(conn, author_id)
        .await?
        .into_iter()
        .map(|f| f.inbox)
        .collect())
}

async fn parent_author_inbox<C: ConnectionTrait>(
    conn: &C,
    parent: Option<&str>,
) -> Result<Vec<String>> {
    let Some(parent) = parent else {
        return Ok(Vec::new());
    };
    let Some(p) = post::Entity::find()
        .filter(post::Column::ApId.eq(parent))
        .one(conn)
        .await?
    else {
        return Ok(Vec::new());
    };
    let author = actor::Entity::find_by_id(p.author_id).one(conn).await?;
    Ok(author
        .filter(|a| !a.local)
        .map(|a| a.shared_inbox.unwrap_or(a.inbox))
        .into_iter()
        .collect())
}

async fn own_post(state: &AppState, author: &actor::Model, key: &str) -> Result<post::Model> {
    let p = find_by_key(state, key).await?;
    if p.author_id != author.id || !p.local {
        return Err(Error::Forbidden(
            "only the author can edit or delete a post".into(),
        ));
    }
    Ok(p)
}

async fn find_by_key(state: &AppState, key: &str) -> Result<post::Model> {
    let p = post::Entity::find()
        .filter(post::Column::Key.eq(key))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no post with key {key:?}")))?;
    if p.deleted_at.is_some() {
        return Err(Error::Gone(format!("post {key:?} was deleted")));
    }
    Ok(p)
}

/// Whether `viewer` (a local member, or nobody) may read `p`.
pub async fn readable_by(
    state: &AppState,
    p: &post::Model,
    viewer: Option<&actor::Model>,
) -> Result<bool> {
    let visibility = Visibility::parse(&p.visibility).unwrap_or(Visibility::Authority);
    let community_ids = if visibility == Visibility::Members {
        reading_communities(state, p).await?
    } else {
        Vec::new()
    };
    let reader = match viewer {
        None => Reader::default(),
        Some(v) => Reader {
            signed_in: true,
            is_author: v.id == p.author_id,
            follows_a_community: visibility == Visibility::Members
                && follows::is_following(state, v.id, &community_ids).await?,
        },
    };
    Ok(can_read(visibility, p.local, reader))
}

/// The communities whose followers may read a `members` post: those at the post's origin, and
/// ours that distribute it (it was addressed to them). Followers of an aggregating community
/// that merely received it are not among them: visibility never widens.
async fn reading_communities(state: &AppState, p: &post::Model) -> Result<Vec<i64>> {
    let joins = post_community::Entity::find()
        .filter(post_community::Column::PostId.eq(p.id))
        .all(&state.db)
        .await?;
    if joins.is_empty() {
        return Ok(Vec::new());
    }
    let origin = url::Url::parse(&p.ap_id)
        .map(|u| crate::federation::origin_of(&u))
        .unwrap_or_default();
    let groups = actor::Entity::find()
        .filter(actor::Column::Id.is_in(joins.iter().map(|j| j.community_id)))
        .all(&state.db)
        .await?;
    Ok(groups
        .into_iter()
        .filter(|g| {
            g.origin == origin
                || (g.local && joins.iter().any(|j| j.community_id == g.id && j.announced))
        })
        .map(|g| g.id)
        .collect())
}

pub async fn get(state: &AppState, viewer: Option<&actor::Model>, key: &str) -> Result<PostView> {
    let p = find_by_key(state, key).await?;
    if !readable_by(state, &p, viewer).await? {
        // Not saying whether it exists is the point.
        return Err(Error::NotFound(format!("no post with key {key:?}")));
    }
    views::post_view(state, &p).await
}

/// A community's posts, newest first, as `viewer` may see them.
pub async fn in_community(
    state: &AppState,
    viewer: Option<&actor::Model>,
    community: &actor::Model,
    limit: u64,
    before: Option<DateTime<Utc>>,
) -> Result<Vec<PostView>> {
    let limit = limit.clamp(1, 100);
    let mut query = post_community::Entity::find()
        .filter(post_community::Column::CommunityId.eq(community.id))
        .order_by_desc(post_community::Column::CreatedAt);
    if let Some(b) = before {
        query = query.filter(post_community::Column::CreatedAt.lt(b));
    }
    let joins = query.limit(limit * 3).all(&state.db).await?;
    let mut out = Vec::new();
    for j in joins {
        let Some(p) = post::Entity::find_by_id(j.post_id).one(&state.db).await? else {
            continue;
        };
        if p.deleted_at.is_some() || !readable_by(state, &p, viewer).await? {
            continue;
        }
        out.push(views::post_view(state, &p).await?);
        if out.len() as u64 >= limit {
            break;
        }
    }
    Ok(out)
}

/// Sends an `Update` of local post `p` whose state changed without an edit (an event's
/// participants): where the post went (as `propagate`), and also to `also` (e.g. the inboxes
/// of its remote participants). Nothing leaves for a post that does not federate.
pub async fn send_update<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    p: &post::Model,
    also: Vec<String>,
) -> Result<()> {
    let visibility = Visibility::parse(&p.visibility).unwrap_or(Visibility::Authority);
    if !p.local || p.deleted_at.is_some() || !visibility.federates() {
        return Ok(());
    }
    let author = actor::Entity::find_by_id(p.author_id)
        .one(conn)
        .await?
        .ok_or_else(|| Error::Internal(format!("post {} has no author", p.ap_id)))?;
    let note = note::to_json(conn, state, p).await?;
    let update = author_activity(state, &author, "Update", to_value(&note)?, &note);
    let mut inboxes = author_follower_inboxes(conn, author.id).await?;
    inboxes.extend(delivery_queue::inboxes_reached_for_object(conn, &p.ap_id).await?);
    inboxes.extend(also);
    outbox::queue(conn, author.id, &update, Some(&p.ap_id), inboxes).await?;
    for g in announced_groups(conn, p.id).await? {
        announce_in_group(conn, state, &g, p, &update, Verb::Update).await?;
    }
    Ok(())
}

/// Renders a local author's text as the HTML a post stores (hashtags linked to communities).
pub fn render_text(state: &AppState, content: &str) -> String {
    render(state, content)
}
