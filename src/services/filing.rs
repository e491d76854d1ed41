//! Remote posts arriving here: which of our communities they go in, and which of our Groups
//! announce them onwards (DESIGN.md §4).

use super::{
    posts::{announced_groups, mark_announced, tombstone_post},
    visibility::{may_reannounce, Visibility},
};
use crate::{
    config::RemotePosting,
    error::Result,
    federation::{
        activities::announce::{announce_in_group, Verb},
        actor::GROUP,
        note::DbPost,
    },
    state::AppState,
    store::{actor, follow, post, post_community, received_activity},
};
use activitypub_federation::config::Data;
use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use serde_json::Value;
use url::Url;

/// How a remote post reached us.
pub enum Arrival {
    /// From its author, addressed to these actors, through this local actor's inbox.
    Direct {
        addressed: Vec<Url>,
        inbox_owner: Option<actor::Model>,
    },
    /// Announced by a remote actor (usually a Group we follow).
    Announced { by: actor::Model },
}

/// Files a stored remote post in the communities its arrival puts it in, and lets each of our
/// Groups that newly has it announce it (or, for an update, announce the update).
pub async fn file_remote_post(
    data: &Data<AppState>,
    post: &DbPost,
    arrival: Arrival,
    inner: &Value,
    is_update: bool,
) -> Result<()> {
    let state = data.app_data();
    let p = &post.0;
    if p.deleted_at.is_some() || p.local {
        return Ok(());
    }
    let visibility = Visibility::parse(&p.visibility).unwrap_or(Visibility::Members);
    let hashtags: Vec<String> = serde_json::from_str(&p.hashtags).unwrap_or_default();

    // (community, whether it may re-announce)
    let mut targets: Vec<(actor::Model, bool)> = Vec::new();
    match arrival {
        Arrival::Direct {
            addressed,
            inbox_owner,
        } => {
            let mut groups = local_groups_by_ids(state, &addressed).await?;
            if let Some(owner) = inbox_owner.filter(|o| o.kind == GROUP && o.local) {
                groups.push(owner);
            }
            if let Some(parent) = &p.in_reply_to {
                groups.extend(local_communities_of_post(state, parent).await?);
            }
            if !groups.is_empty() && !hashtags.is_empty() {
                groups.extend(
                    actor::Entity::find()
                        .filter(actor::Column::Kind.eq(GROUP))
                        .filter(actor::Column::Local.eq(true))
                        .filter(actor::Column::LocalName.is_in(hashtags.clone()))
                        .all(&state.db)
                        .await?,
                );
            }
            groups.sort_by_key(|g| g.id);
            groups.dedup_by_key(|g| g.id);
            for g in groups {
                if state.config.communities.remote_posting == RemotePosting::Followers
                    && !super::follows::is_following(state, p.author_id, &[g.id]).await?
                {
                    continue;
                }
                targets.push((g, may_reannounce(visibility, false)));
            }
        }
        Arrival::Announced { by } => {
            if by.kind == GROUP {
                targets.push((by.clone(), false));
            }
            let follower_ids: Vec<i64> = follow::Entity::find()
                .filter(follow::Column::TargetId.eq(by.id))
                .filter(follow::Column::State.eq(follow::ACCEPTED))
                .all(&state.db)
                .await?
                .into_iter()
                .map(|f| f.follower_id)
                .collect();
            if follower_ids.is_empty() {
                return Err(crate::error::Error::Forbidden(format!(
                    "nobody on this instance follows {}; its announces are not accepted",
                    by.ap_id
                )));
            }
            let local_groups = actor::Entity::find()
                .filter(actor::Column::Id.is_in(follower_ids))
                .filter(actor::Column::Kind.eq(GROUP))
                .filter(actor::Column::Local.eq(true))
                .all(&state.db)
                .await?;
            for g in local_groups {
                targets.push((g, may_reannounce(visibility, true)));
            }
        }
    }

    for (group, may_announce) in targets {
        let existing = post_community::Entity::find()
            .filter(post_community::Column::PostId.eq(p.id))
            .filter(post_community::Column::CommunityId.eq(group.id))
            .one(&state.db)
            .await?;
        let already_announced = existing.as_ref().is_some_and(|j| j.announced);
        if existing.is_none() {
            let inserted = post_community::Entity::insert(post_community::ActiveModel {
                post_id: Set(p.id),
                community_id: Set(group.id),
                announced: Set(false),
                created_at: Set(Utc::now()),
            })
            .on_conflict_do_nothing()
            .exec(&state.db)
            .await;
            inserted?;
        }
        if !group.local || !may_announce {
            continue;
        }
        let verb = match (is_update, already_announced) {
            (false, false) => Verb::Create,
            (true, true) => Verb::Update,
            // A repeat of a create already announced, or an update of one never announced.
            _ => continue,
        };
        let txn = state.db.begin().await?;
        // Both are claims: of two concurrent arrivals (an update comes from its author and
        // again in its Group's Announce), only one announces.
        let first = match verb {
            Verb::Create => mark_announced(&txn, p.id, group.id).await?,
            _ => claim_once(&txn, &group, inner).await?,
        };
        if first {
            announce_in_group(&txn, state, &group, p, inner, verb).await?;
        }
        txn.commit().await?;
    }
    state.delivery_wakeup.notify_one();
    Ok(())
}

/// A remote post was deleted at its origin: our Groups that announced it pass the Delete on,
/// then it is removed here.
pub async fn remove_remote_post(
    data: &Data<AppState>,
    p: &post::Model,
    inner: &Value,
) -> Result<()> {
    let state = data.app_data();
    if p.deleted_at.is_some() {
        return Ok(());
    }
    let txn = state.db.begin().await?;
    let groups = announced_groups(&txn, p.id).await?;
    // The Delete arrives from its author and in Groups' Announces; only the first counts.
    if tombstone_post(&txn, p).await? {
        for g in groups {
            announce_in_group(&txn, state, &g, p, inner, Verb::Delete).await?;
        }
    }
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    Ok(())
}

/// Records that `group` passed `inner` on; `false` if it already had. The insert is the claim.
async fn claim_once<C: sea_orm::ConnectionTrait>(
    conn: &C,
    group: &actor::Model,
    inner: &Value,
) -> Result<bool> {
    let Some(inner_id) = crate::federation::json::str_field(inner, "id") else {
        return Ok(true);
    };
    let inserted = received_activity::Entity::insert(received_activity::ActiveModel {
        ap_id: Set(format!("{inner_id} announced-by {}", group.ap_id)),
        received_at: Set(Utc::now()),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(conn)
    .await?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(1)))
}

async fn local_groups_by_ids(state: &AppState, ids: &[Url]) -> Result<Vec<actor::Model>> {
    let origin = state.origin();
    let ours: Vec<String> = ids
        .iter()
        .filter(|u| crate::federation::origin_of(u) == origin)
        .map(Url::to_string)
        .collect();
    if ours.is_empty() {
        return Ok(Vec::new());
    }
    Ok(actor::Entity::find()
        .filter(actor::Column::ApId.is_in(ours))
        .filter(actor::Column::Kind.eq(GROUP))
        .filter(actor::Column::Local.eq(true))
        .all(&state.db)
        .await?)
}

async fn local_communities_of_post(state: &AppState, ap_id: &str) -> Result<Vec<actor::Model>> {
    let Some(parent) = post::Entity::find()
        .filter(post::Column::ApId.eq(ap_id))
        .one(&state.db)
        .await?
    else {
        return Ok(Vec::new());
    };
    Ok(
        crate::federation::note::communities_of(&state.db, parent.id)
            .await?
            .into_iter()
            .filter(|c| c.local)
            .collect(),
    )
}
