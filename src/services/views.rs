//! What the JSON API and the pages show of posts, communities and members.

use crate::{
    error::Result,
    federation::{actor::DbActor, note},
    state::AppState,
    store::{actor, follow, post, post_community},
};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct ActorView {
    pub id: String,
    pub handle: String,
    pub name: String,
    pub display_name: Option<String>,
    pub kind: String,
    pub local: bool,
    /// The 400 px profile photo (or a remote actor's icon).
    pub avatar: Option<String>,
    /// The 96 px one.
    pub avatar_small: Option<String>,
    /// A few words about themselves (sanitised HTML).
    pub summary: Option<String>,
    pub school: Option<String>,
    pub role: Option<String>,
    /// Only when the member chose to show it.
    pub email: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PostView {
    pub key: String,
    pub id: String,
    pub url: String,
    pub author: ActorView,
    pub title: Option<String>,
    pub content: String,
    pub summary: Option<String>,
    pub visibility: String,
    pub communities: Vec<String>,
    pub hashtags: Vec<String>,
    pub in_reply_to: Option<String>,
    pub published: DateTime<Utc>,
    pub updated: Option<DateTime<Utc>>,
    pub local: bool,
    /// discussion | resource | link | event | intention (`store::post::CATEGORIES`).
    pub category: String,
    pub is_introduction: bool,
    /// Files and links shared with the post.
    pub attachments: Vec<serde_json::Value>,
    /// Replies (comments) in its thread, at any depth.
    pub replies: u64,
    /// The event, when the post is one.
    pub event: Option<serde_json::Value>,
    /// The intention, when the post is one.
    pub intention: Option<serde_json::Value>,
    /// Pinned at the top of the community (or event) being listed: a reflective question.
    pub pinned: bool,
}

#[derive(Debug, Serialize)]
pub struct CommunityView {
    pub name: String,
    pub display_name: Option<String>,
    pub id: String,
    pub handle: String,
    pub summary: Option<String>,
    pub followers: u64,
    pub posts: u64,
    pub local: bool,
}

pub fn actor_view(a: &actor::Model) -> ActorView {
    let handle = DbActor::new(a.clone())
        .map(|d| d.handle())
        .unwrap_or_default();
    ActorView {
        id: a.ap_id.clone(),
        handle,
        name: a.local_name.clone().unwrap_or_else(|| a.name.clone()),
        display_name: a.display_name.clone(),
        kind: a.kind.clone(),
        local: a.local,
        avatar: a.icon_url.clone(),
        avatar_small: a
            .icon_url
            .as_deref()
            .map(|u| super::media::small_avatar_url(u, a.local)),
        summary: a.summary.as_deref().map(crate::federation::sanitize::html),
        school: a.school.clone(),
        role: a.role.clone(),
        email: a.email.clone().filter(|_| a.show_email),
    }
}

pub async fn post_view(state: &AppState, p: &post::Model) -> Result<PostView> {
    let author = actor::Entity::find_by_id(p.author_id)
        .one(&state.db)
        .await?;
    let communities = note::communities_of(&state.db, p.id)
        .await?
        .iter()
        .map(|c| {
            if c.local {
                c.local_name.clone().unwrap_or_else(|| c.name.clone())
            } else {
                DbActor::new(c.clone())
                    .map(|d| d.handle())
                    .unwrap_or_default()
            }
        })
        .collect();
    Ok(PostView {
        key: p.key.clone(),
        id: p.ap_id.clone(),
        url: p.url.clone().unwrap_or_else(|| p.ap_id.clone()),
        author: author.as_ref().map(actor_view).unwrap_or_default(),
        title: p.title.clone(),
        content: crate::federation::sanitize::html(&p.content),
        summary: p.summary.clone(),
        visibility: p.visibility.clone(),
        communities,
        hashtags: serde_json::from_str(&p.hashtags).unwrap_or_default(),
        in_reply_to: p.in_reply_to.clone(),
        published: p.published,
        updated: p.updated,
        local: p.local,
        category: p.category.clone(),
        is_introduction: p.is_introduction,
        attachments: super::media::attachment_views(state, p).await?,
        replies: super::threads::reply_count(state, p).await?,
        event: super::events::event_view(state, p).await?,
        intention: super::intentions::intention_view(state, p).await?,
        pinned: false,
    })
}

pub async fn community_view(state: &AppState, c: &actor::Model) -> Result<CommunityView> {
    let followers = follow::Entity::find()
        .filter(follow::Column::TargetId.eq(c.id))
        .filter(follow::Column::State.eq(follow::ACCEPTED))
        .count(&state.db)
        .await?;
    let posts = post_community::Entity::find()
        .filter(post_community::Column::CommunityId.eq(c.id))
        .count(&state.db)
        .await?;
    let handle = DbActor::new(c.clone())
        .map(|d| d.handle())
        .unwrap_or_default();
    Ok(CommunityView {
        name: c.local_name.clone().unwrap_or_else(|| c.name.clone()),
        display_name: c.display_name.clone(),
        id: c.ap_id.clone(),
        handle,
        summary: c.summary.clone(),
        followers,
        posts,
        local: c.local,
    })
}
