//! Links: this instance aggregates another. Each of our communities follows the same-tag
//! community there; the other side accepts as it accepts any follow.

use super::{communities, follows};
use crate::{
    error::{Error, Result},
    federation::{actor::DbActor, origin_of},
    state::{AppState, Ctx},
    store::{actor, follow, link},
};
use activitypub_federation::fetch::webfinger::webfinger_resolve_actor;
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Serialize;
use url::Url;

#[derive(Debug, Serialize)]
pub struct LinkView {
    pub base_url: String,
    pub communities_followed: usize,
    pub follows_accepted: usize,
    pub follows_pending: usize,
    pub created_at: chrono::DateTime<Utc>,
}

/// The canonical `scheme://host[:port]` of an instance named by the administrator.
pub fn parse_base(input: &str) -> Result<Url> {
    let with_scheme = if input.contains("://") {
        input.to_owned()
    } else {
        format!("https://{input}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|e| Error::BadRequest(format!("{input:?} is not an instance address: {e}")))?;
    if url.host_str().is_none() || !matches!(url.scheme(), "http" | "https") {
        return Err(Error::BadRequest(format!(
            "{input:?} is not an http(s) instance address"
        )));
    }
    Url::parse(&origin_of(&url)).map_err(|e| Error::BadRequest(e.to_string()))
}

/// Records the link and sends the follows. Returns how many communities were followed.
pub async fn link(ctx: &Ctx, base: &str) -> Result<usize> {
    let base = parse_base(base)?;
    let state = ctx.app_data();
    if origin_of(&base) == state.origin() {
        return Err(Error::BadRequest(
            "an instance cannot aggregate itself".into(),
        ));
    }
    let exists = link::Entity::find()
        .filter(link::Column::BaseUrl.eq(base.as_str()))
        .one(&state.db)
        .await?;
    if exists.is_none() {
        link::ActiveModel {
            base_url: Set(base.to_string()),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&state.db)
        .await?;
    }
    sync_link(ctx, &base).await
}

/// Follows, from each local community, the same-tag community at `base` where one exists and
/// is not followed yet.
pub async fn sync_link(ctx: &Ctx, base: &Url) -> Result<usize> {
    let state = ctx.app_data();
    let host = match base.port() {
        Some(p) => format!("{}:{p}", base.host_str().unwrap_or_default()),
        None => base.host_str().unwrap_or_default().to_owned(),
    };
    let mut followed = 0;
    for community in communities::list_local(state).await? {
        let tag = community.local_name.clone().unwrap_or_default();
        let remote: DbActor = match webfinger_resolve_actor(&format!("{tag}@{host}"), ctx).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("no community {tag}@{host} to follow: {e}");
                continue;
            }
        };
        if !remote.is_group() {
            continue;
        }
        follows::follow(ctx, &community, &remote.0).await?;
        followed += 1;
    }
    Ok(followed)
}

/// Re-checks every link: picks up communities created since (on either side).
pub async fn sync_all(ctx: &Ctx) -> Result<()> {
    let links = link::Entity::find().all(&ctx.db).await?;
    for l in links {
        if let Ok(base) = Url::parse(&l.base_url) {
            if let Err(e) = sync_link(ctx, &base).await {
                tracing::warn!("syncing link to {}: {e}", l.base_url);
            }
        }
    }
    Ok(())
}

pub async fn list(state: &AppState) -> Result<Vec<LinkView>> {
    let links = link::Entity::find()
        .order_by_asc(link::Column::Id)
        .all(&state.db)
        .await?;
    let local_groups: Vec<i64> = communities::list_local(state)
        .await?
        .iter()
        .map(|c| c.id)
        .collect();
    let mut out = Vec::new();
    for l in links {
        let origin = l.base_url.trim_end_matches('/').to_owned();
        let remote_ids: Vec<i64> = actor::Entity::find()
            .filter(actor::Column::Origin.eq(origin))
            .all(&state.db)
            .await?
            .into_iter()
            .map(|a| a.id)
            .collect();
        let follows = if remote_ids.is_empty() || local_groups.is_empty() {
            Vec::new()
        } else {
            follow::Entity::find()
                .filter(follow::Column::FollowerId.is_in(local_groups.clone()))
                .filter(follow::Column::TargetId.is_in(remote_ids))
                .all(&state.db)
                .await?
        };
        let accepted = follows
            .iter()
            .filter(|f| f.state == follow::ACCEPTED)
            .count();
        out.push(LinkView {
            base_url: l.base_url,
            communities_followed: follows.len(),
            follows_accepted: accepted,
            follows_pending: follows.len() - accepted,
            created_at: l.created_at,
        });
    }
    Ok(out)
}
