//! What has been shared: a community's items and a member's feed, filtered by theme (hashtag),
//! kind and date. A post's kind (`posts.category`) is worked out when it is written, from what
//! it carries: see [`classify`].

use super::{
    pins,
    posts::readable_by,
    views::{self, PostView},
};
use crate::{
    error::{Error, Result},
    federation::actor::GROUP,
    hashtag,
    state::AppState,
    store::{actor, event, follow, intention, media, post, post_community},
};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sea_orm::{
    sea_query::{LikeExpr, SelectStatement},
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set,
};
use serde::{Deserialize, Serialize};

pub const DEFAULT_LIMIT: u64 = 20;
pub const MAX_LIMIT: u64 = 100;

/// The query string of the community and feed listings, as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListingQuery {
    pub hashtag: Option<String>,
    pub kind: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub before: Option<String>,
    pub limit: Option<u64>,
    /// Only posts that start a discussion, not the replies filed with them.
    pub top_level: Option<bool>,
}

/// A checked filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub hashtag: Option<String>,
    pub kind: Option<&'static str>,
    /// Published at or after.
    pub since: Option<DateTime<Utc>>,
    /// Published before.
    pub until: Option<DateTime<Utc>>,
    pub top_level: bool,
}

/// Which page: items shared before `before`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Page {
    pub before: Option<DateTime<Utc>>,
    pub limit: u64,
}

/// One page of a listing; `next` is the `before` of the next page, if there may be one.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub items: Vec<PostView>,
    pub next: Option<DateTime<Utc>>,
}

impl ListingQuery {
    pub fn parse(&self) -> Result<(Filter, Page)> {
        let hashtag = match self.hashtag.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(h) => Some(hashtag::normalize(h).map_err(|e| {
                Error::BadRequest(format!("hashtag {h:?} cannot be a hashtag: {e}"))
            })?),
        };
        let kind = match self.kind.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(k) => Some(
                post::CATEGORIES
                    .iter()
                    .copied()
                    .find(|c| c.eq_ignore_ascii_case(k))
                    .ok_or_else(|| {
                        Error::BadRequest(format!(
                            "kind {k:?} is not one of {}",
                            post::CATEGORIES.join(", ")
                        ))
                    })?,
            ),
        };
        let since = parse_time("since", self.since.as_deref(), false)?;
        let until = parse_time("until", self.until.as_deref(), true)?;
        if let (Some(s), Some(u)) = (since, until) {
            if s >= u {
                return Err(Error::BadRequest(format!(
                    "since ({s}) must be before until ({u})"
                )));
            }
        }
        let before = parse_time("before", self.before.as_deref(), false)?;
        let limit = match self.limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(n) => {
                return Err(Error::BadRequest(format!(
                    "limit {n} is out of range: give 1 to {MAX_LIMIT}"
                )))
            }
        };
        Ok((
            Filter {
                hashtag,
                kind,
                since,
                until,
                top_level: self.top_level.unwrap_or(false),
            },
            Page { before, limit },
        ))
    }
}

/// An RFC 3339 time, or a date (`2026-12-04`): the start of that day (UTC), or for `until`
/// the end of it, so that `until=2026-12-04` includes the 4th.
fn parse_time(name: &str, value: Option<&str>, end_of_day: bool) -> Result<Option<DateTime<Utc>>> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let day = if end_of_day {
            d.succ_opt().unwrap_or(d)
        } else {
            d
        };
        return Ok(Some(day.and_time(NaiveTime::MIN).and_utc()));
    }
    Err(Error::BadRequest(format!(
        "{name} {v:?} is not a date (2026-12-04) or a time (2026-12-04T09:00:00Z)"
    )))
}

impl Filter {
    /// The same test as [`Filter::matching_posts`], on one post (for pinned posts).
    pub fn matches(&self, p: &post::Model) -> bool {
        if p.deleted_at.is_some() {
            return false;
        }
        if self.kind.is_some_and(|k| p.category != k) {
            return false;
        }
        if self.since.is_some_and(|s| p.published < s)
            || self.until.is_some_and(|u| p.published >= u)
        {
            return false;
        }
        if self.top_level && p.in_reply_to.is_some() {
            return false;
        }
        if let Some(h) = &self.hashtag {
            let tags: Vec<String> = serde_json::from_str(&p.hashtags).unwrap_or_default();
            if !tags.contains(h) {
                return false;
            }
        }
        true
    }

    /// Ids of the undeleted posts that pass the filter (a subquery).
    fn matching_posts(&self) -> SelectStatement {
        let mut query = post::Entity::find()
            .select_only()
            .column(post::Column::Id)
            .filter(post::Column::DeletedAt.is_null());
        if let Some(k) = self.kind {
            query = query.filter(post::Column::Category.eq(k));
        }
        if let Some(s) = self.since {
            query = query.filter(post::Column::Published.gte(s));
        }
        if let Some(u) = self.until {
            query = query.filter(post::Column::Published.lt(u));
        }
        if self.top_level {
            query = query.filter(post::Column::InReplyTo.is_null());
        }
        if let Some(h) = &self.hashtag {
            // `hashtags` is a JSON array of normalised tags: `["hwb","maths"]`. The match is
            // checked again exactly in `matches`.
            let quoted = serde_json::to_string(h).unwrap_or_default();
            let escaped = quoted
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            query = query.filter(
                post::Column::Hashtags.like(LikeExpr::new(format!("%{escaped}%")).escape('\\')),
            );
        }
        query.into_query()
    }
}

/// A community's shared items, newest first, as `viewer` may see them: on the first page its
/// pinned posts (that pass the filter) come first, flagged `pinned`, and are not repeated below.
pub async fn community_items(
    state: &AppState,
    viewer: Option<&actor::Model>,
    community: &actor::Model,
    filter: &Filter,
    page: Page,
) -> Result<Listing> {
    let pinned: Vec<post::Model> = pins::pinned_for_community(&state.db, community.id).await?;
    let pinned_ids: Vec<i64> = pinned.iter().map(|p| p.id).collect();
    let mut items = Vec::new();
    if page.before.is_none() {
        for p in pinned.into_iter().filter(|p| filter.matches(p)) {
            if readable_by(state, &p, viewer).await? {
                let mut v = views::post_view(state, &p).await?;
                v.pinned = true;
                items.push(v);
            }
        }
    }
    let wanted = page.limit as usize;
    let mut cursor: Option<(DateTime<Utc>, i64)> = page.before.map(|b| (b, i64::MIN));
    let mut next = None;
    let batch = (page.limit * 2).max(10);
    let mut shown = 0usize;
    loop {
        let mut query = post_community::Entity::find()
            .filter(post_community::Column::CommunityId.eq(community.id))
            .filter(post_community::Column::PostId.in_subquery(filter.matching_posts()));
        if !pinned_ids.is_empty() {
            query = query.filter(post_community::Column::PostId.is_not_in(pinned_ids.clone()));
        }
        if let Some((at, id)) = cursor {
            query = query.filter(
                Condition::any()
                    .add(post_community::Column::CreatedAt.lt(at))
                    .add(
                        Condition::all()
                            .add(post_community::Column::CreatedAt.eq(at))
                            .add(post_community::Column::PostId.lt(id)),
                    ),
            );
        }
        let rows = query
            .order_by_desc(post_community::Column::CreatedAt)
            .order_by_desc(post_community::Column::PostId)
            .limit(batch)
            .all(&state.db)
            .await?;
        let exhausted = (rows.len() as u64) < batch;
        for row in rows {
            cursor = Some((row.created_at, row.post_id));
            let Some(p) = post::Entity::find_by_id(row.post_id).one(&state.db).await? else {
                continue;
            };
            if !filter.matches(&p) || !readable_by(state, &p, viewer).await? {
                continue;
            }
            items.push(views::post_view(state, &p).await?);
            shown += 1;
            if shown >= wanted {
                next = Some(row.created_at);
                break;
            }
        }
        if shown >= wanted || exhausted {
            break;
        }
    }
    Ok(Listing { items, next })
}

/// Everything shared in the communities `member` follows (here and on other instances), once
/// each, newest first.
pub async fn member_feed(
    state: &AppState,
    member: &actor::Model,
    filter: &Filter,
    page: Page,
) -> Result<Listing> {
    let followed: Vec<i64> = follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(member.id))
        .filter(follow::Column::State.eq(follow::ACCEPTED))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|f| f.target_id)
        .collect();
    let communities: Vec<i64> = if followed.is_empty() {
        Vec::new()
    } else {
        actor::Entity::find()
            .filter(actor::Column::Id.is_in(followed))
            .filter(actor::Column::Kind.eq(GROUP))
            .all(&state.db)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect()
    };
    if communities.is_empty() {
        return Ok(Listing {
            items: Vec::new(),
            next: None,
        });
    }
    let in_followed = post_community::Entity::find()
        .select_only()
        .column(post_community::Column::PostId)
        .filter(post_community::Column::CommunityId.is_in(communities))
        .into_query();
    let wanted = page.limit as usize;
    let batch = (page.limit * 2).max(10);
    let mut cursor: Option<(DateTime<Utc>, i64)> = page.before.map(|b| (b, i64::MIN));
    let mut items = Vec::new();
    let mut next = None;
    loop {
        let mut query = post::Entity::find()
            .filter(post::Column::Id.in_subquery(filter.matching_posts()))
            .filter(post::Column::Id.in_subquery(in_followed.clone()));
        if let Some((at, id)) = cursor {
            query = query.filter(
                Condition::any().add(post::Column::Published.lt(at)).add(
                    Condition::all()
                        .add(post::Column::Published.eq(at))
                        .add(post::Column::Id.lt(id)),
                ),
            );
        }
        let rows = query
            .order_by_desc(post::Column::Published)
            .order_by_desc(post::Column::Id)
            .limit(batch)
            .all(&state.db)
            .await?;
        let exhausted = (rows.len() as u64) < batch;
        for p in rows {
            cursor = Some((p.published, p.id));
            if !filter.matches(&p) || !readable_by(state, &p, Some(member)).await? {
                continue;
            }
            let published = p.published;
            items.push(views::post_view(state, &p).await?);
            if items.len() >= wanted {
                next = Some(published);
                break;
            }
        }
        if items.len() >= wanted || exhausted {
            break;
        }
    }
    Ok(Listing { items, next })
}

/// What a post is, for the filters, from what it carries: an event or an intention (its own
/// row), a resource (files), a link (a link in its text that is not a hashtag or a mention),
/// else a discussion. The kind a caller stored is kept when the facts do not say more.
pub fn classify(
    stored: &str,
    is_event: bool,
    is_intention: bool,
    has_files: bool,
    content_html: &str,
) -> &'static str {
    if is_event {
        return post::EVENT;
    }
    if is_intention {
        return post::INTENTION;
    }
    if has_files {
        return post::RESOURCE;
    }
    if let Some(kept) = [post::EVENT, post::INTENTION, post::RESOURCE]
        .into_iter()
        .find(|k| *k == stored)
    {
        return kept;
    }
    if has_shared_link(content_html) {
        return post::LINK;
    }
    post::DISCUSSION
}

/// Works out and stores the post's kind; returns the post as stored.
pub async fn store_category<C: ConnectionTrait>(conn: &C, p: post::Model) -> Result<post::Model> {
    let is_event = event::Entity::find_by_id(p.id).one(conn).await?.is_some()
        || (p.kind == "Question"
            && event::Entity::find()
                .filter(event::Column::PollPostId.eq(p.id))
                .one(conn)
                .await?
                .is_some());
    let is_intention = intention::Entity::find_by_id(p.id)
        .one(conn)
        .await?
        .is_some();
    let attached: Vec<String> = media::Entity::find()
        .filter(media::Column::PostId.eq(p.id))
        .filter(media::Column::Kind.ne(media::AVATAR))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| m.kind)
        .collect();
    // Links shared through `links` are media rows too; only files make a resource.
    let has_files = attached.iter().any(|k| k != crate::services::media::LINK);
    let has_links = attached.iter().any(|k| k == crate::services::media::LINK);
    let mut category = classify(&p.category, is_event, is_intention, has_files, &p.content);
    if category == post::DISCUSSION && has_links {
        category = post::LINK;
    }
    if category == p.category {
        return Ok(p);
    }
    let mut active: post::ActiveModel = p.into();
    active.category = Set(category.to_owned());
    Ok(active.update(conn).await?)
}

/// Whether sanitised HTML links somewhere other than a hashtag or a mention. (Our sanitiser
/// writes `<a href="…" …>`; hashtags and mentions carry Mastodon's classes or read `#…`/`@…`.)
pub fn has_shared_link(html: &str) -> bool {
    let mut rest = html;
    while let Some(start) = rest.find("<a ") {
        let after = &rest[start..];
        let Some(tag_end) = after.find('>') else {
            return false;
        };
        let tag = &after[..tag_end];
        let body_start = &after[tag_end + 1..];
        let body_end = body_start.find("</a>").unwrap_or(body_start.len());
        let text = crate::federation::sanitize::plain(&body_start[..body_end]);
        rest = &body_start[body_end..];
        let class = attribute(tag, "class").unwrap_or_default();
        let rel = attribute(tag, "rel").unwrap_or_default();
        let is_tag_or_mention = class
            .split_whitespace()
            .any(|c| c == "mention" || c == "hashtag")
            || rel.split_whitespace().any(|r| r == "tag")
            || text.trim_start().starts_with(['#', '@']);
        let href = attribute(tag, "href").unwrap_or_default();
        if !is_tag_or_mention && (href.starts_with("https://") || href.starts_with("http://")) {
            return true;
        }
    }
    false
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_told_from_hashtags_and_mentions() {
        let hashtag = r#"<p>On <a href="http://x/c/hwb" class="mention hashtag" rel="tag">#<span>hwb</span></a></p>"#;
        let mention = r#"<p><span class="h-card"><a href="https://m.example/@a" class="u-url mention">@<span>a</span></a></span> hi</p>"#;
        let plain_tag = r#"<p><a href="https://m.example/tags/x">#x</a></p>"#;
        let link = r#"<p>Slides: <a href="https://example.org/deck" rel="nofollow noopener noreferrer">https://example.org/deck</a></p>"#;
        assert!(!has_shared_link(hashtag));
        assert!(!has_shared_link(mention));
        assert!(!has_shared_link(plain_tag));
        assert!(!has_shared_link("<p>no links at all</p>"));
        assert!(has_shared_link(link));
        assert!(has_shared_link(&format!("{hashtag}{link}")));
        assert!(!has_shared_link(
            r#"<a href="mailto:a@b.example">write</a>"#
        ));
        assert!(!has_shared_link("<a href=\"https://broken"));
    }

    #[test]
    fn kinds_from_what_a_post_carries() {
        let link = r#"<a href="https://example.org/x">x</a>"#;
        assert_eq!(classify("discussion", true, false, true, link), "event");
        assert_eq!(classify("discussion", false, true, false, ""), "intention");
        assert_eq!(classify("discussion", false, false, true, link), "resource");
        assert_eq!(classify("discussion", false, false, false, link), "link");
        assert_eq!(
            classify("discussion", false, false, false, "<p>hi</p>"),
            "discussion"
        );
        assert_eq!(
            classify("link", false, false, false, "<p>edited</p>"),
            "discussion"
        );
        assert_eq!(classify("event", false, false, false, ""), "event");
    }

    #[test]
    fn query_values_are_checked() {
        let q = |h: Option<&str>, k: Option<&str>, s: Option<&str>, u: Option<&str>| ListingQuery {
            hashtag: h.map(str::to_owned),
            kind: k.map(str::to_owned),
            since: s.map(str::to_owned),
            until: u.map(str::to_owned),
            ..Default::default()
        };
        let (f, p) = q(
            Some("#HWB"),
            Some("Resource"),
            Some("2026-12-01"),
            Some("2026-12-04"),
        )
        .parse()
        .expect("valid");
        assert_eq!(f.hashtag.as_deref(), Some("hwb"));
        assert_eq!(f.kind, Some("resource"));
        assert_eq!(
            f.since.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-12-01T00:00:00+00:00")
        );
        assert_eq!(
            f.until.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-12-05T00:00:00+00:00")
        );
        assert_eq!(p.limit, DEFAULT_LIMIT);
        assert!(q(None, Some("video"), None, None).parse().is_err());
        assert!(q(None, None, Some("yesterday"), None).parse().is_err());
        assert!(q(None, None, Some("2026-12-05"), Some("2026-12-01"))
            .parse()
            .is_err());
        assert!(q(Some("#"), None, None, None).parse().is_err());
    }
}
