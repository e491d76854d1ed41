//! A community's facilitators (moderators): who may pin reflective questions and appoint other
//! facilitators. The instance administrator appoints the first ones (`cairn admin
//! add-moderator`); a member who creates a community by posting with a new hashtag is its first
//! facilitator; after that, facilitators appoint each other through the API.

use super::{members, views};
use crate::{
    error::{Error, Result},
    federation::{
        actor::{DbActor, GROUP, PERSON},
        context, outbox,
    },
    state::AppState,
    store::{actor, community_moderator},
};
use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde_json::json;

/// The moderators of a community, in the order they were appointed.
pub async fn list<C: ConnectionTrait>(conn: &C, community_id: i64) -> Result<Vec<actor::Model>> {
    let rows = community_moderator::Entity::find()
        .filter(community_moderator::Column::CommunityId.eq(community_id))
        .order_by_asc(community_moderator::Column::Id)
        .all(conn)
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = actor::Entity::find()
        .filter(actor::Column::Id.is_in(rows.iter().map(|r| r.actor_id)))
        .all(conn)
        .await?;
    found.sort_by_key(|a| rows.iter().position(|r| r.actor_id == a.id));
    Ok(found)
}

/// The moderators' ActivityPub ids: the Group's `attributedTo` and `moderators` collection.
pub async fn actor_ids<C: ConnectionTrait>(conn: &C, community_id: i64) -> Result<Vec<String>> {
    Ok(list(conn, community_id)
        .await?
        .into_iter()
        .map(|a| a.ap_id)
        .collect())
}

pub async fn is_moderator<C: ConnectionTrait>(
    conn: &C,
    community_id: i64,
    actor_id: i64,
) -> Result<bool> {
    Ok(community_moderator::Entity::find()
        .filter(community_moderator::Column::CommunityId.eq(community_id))
        .filter(community_moderator::Column::ActorId.eq(actor_id))
        .one(conn)
        .await?
        .is_some())
}

/// Makes `member` a moderator of `community` without asking who may: for the administrator
/// and for a community's creator. Returns `false` if it already was one.
pub async fn appoint<C: ConnectionTrait>(
    conn: &C,
    community: &actor::Model,
    member: &actor::Model,
) -> Result<bool> {
    if community.kind != GROUP || !community.local {
        return Err(Error::BadRequest(format!(
            "{} is not a community of this instance; its moderators are appointed where it lives",
            community.ap_id
        )));
    }
    if member.kind != PERSON || !member.local {
        return Err(Error::BadRequest(format!(
            "{} is not a member of this instance; only local members can moderate a local community",
            member.ap_id
        )));
    }
    let inserted = community_moderator::Entity::insert(community_moderator::ActiveModel {
        community_id: Set(community.id),
        actor_id: Set(member.id),
        created_at: Set(Utc::now()),
        ..Default::default()
    })
    .on_conflict_do_nothing_on([
        community_moderator::Column::CommunityId,
        community_moderator::Column::ActorId,
    ])
    .exec_without_returning(conn)
    .await?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0))
}

/// Ids of the local communities that already exist for these `(normalised, as written)` tags:
/// the others a post creates, and its author is their first moderator.
pub async fn existing_communities(state: &AppState, tags: &[(String, String)]) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for (tag, _) in tags {
        if let Some(c) = super::communities::find_local(state, tag).await? {
            ids.push(c.id);
        }
    }
    Ok(ids)
}

/// Makes `author` a moderator of those of `groups` that did not exist before their post.
pub async fn appoint_creator<C: ConnectionTrait>(
    conn: &C,
    groups: &[actor::Model],
    existed: &[i64],
    author: &actor::Model,
) -> Result<()> {
    if author.kind != PERSON || !author.local {
        return Ok(());
    }
    for g in groups.iter().filter(|g| !existed.contains(&g.id)) {
        appoint(conn, g, author).await?;
    }
    Ok(())
}

/// A moderator (`by`) appoints the local member named `name`; returns the moderators.
pub async fn add(
    state: &AppState,
    by: &actor::Model,
    community: &actor::Model,
    name: &str,
) -> Result<Vec<views::ActorView>> {
    must_moderate(state, by, community, "appoint moderators").await?;
    let member = local_member(state, name).await?;
    let txn = state.db.begin().await?;
    if appoint(&txn, community, &member).await? {
        announce_group_update(&txn, state, community).await?;
    }
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    Ok(list(&state.db, community.id)
        .await?
        .iter()
        .map(views::actor_view)
        .collect())
}

/// A moderator (`by`) removes the moderator named `name` (themselves included), but never the
/// last one: a community without a facilitator could only be fixed by the administrator.
pub async fn remove(
    state: &AppState,
    by: &actor::Model,
    community: &actor::Model,
    name: &str,
) -> Result<()> {
    must_moderate(state, by, community, "remove moderators").await?;
    let member = local_member(state, name).await?;
    let txn = state.db.begin().await?;
    if !is_moderator(&txn, community.id, member.id).await? {
        return Err(Error::NotFound(format!(
            "{name:?} is not a moderator of #{}",
            community_name(community)
        )));
    }
    if list(&txn, community.id).await?.len() <= 1 {
        return Err(Error::Conflict(format!(
            "{name:?} is the last moderator of #{}; appoint another one first",
            community_name(community)
        )));
    }
    community_moderator::Entity::delete_many()
        .filter(community_moderator::Column::CommunityId.eq(community.id))
        .filter(community_moderator::Column::ActorId.eq(member.id))
        .exec(&txn)
        .await?;
    announce_group_update(&txn, state, community).await?;
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    Ok(())
}

/// Refuses `by` unless it moderates the (local) community.
pub async fn must_moderate(
    state: &AppState,
    by: &actor::Model,
    community: &actor::Model,
    doing: &str,
) -> Result<()> {
    if !community.local {
        return Err(Error::BadRequest(format!(
            "{} is a community of another instance; its moderators {doing} there",
            community.ap_id
        )));
    }
    if !is_moderator(&state.db, community.id, by.id).await? {
        return Err(Error::Forbidden(format!(
            "only a moderator (facilitator) of #{} may {doing}; ask one of them, or the administrator, to appoint you",
            community_name(community)
        )));
    }
    Ok(())
}

async fn local_member(state: &AppState, name: &str) -> Result<actor::Model> {
    let name = name.trim().trim_start_matches('@');
    let name = match name.split_once('@') {
        Some((n, host)) if host == state.config.domain => n,
        Some(_) => {
            return Err(Error::BadRequest(format!(
                "{name:?} is not a member of this instance; moderators are local members"
            )))
        }
        None => name,
    };
    members::find_local(state, name)
        .await?
        .filter(|m| m.kind == PERSON)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no member {name:?} on this instance; name a member by their user name"
            ))
        })
}

fn community_name(c: &actor::Model) -> &str {
    c.local_name.as_deref().unwrap_or(&c.name)
}

/// Tells the Group's remote followers that its profile changed (`attributedTo` lists the
/// moderators), so that they need not wait for their next refresh.
async fn announce_group_update<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    community: &actor::Model,
) -> Result<()> {
    let inboxes: Vec<String> =
        crate::federation::addressing::remote_follower_inboxes(conn, community.id)
            .await?
            .into_iter()
            .map(|f| f.inbox)
            .collect();
    if inboxes.is_empty() {
        return Ok(());
    }
    let mut group = serde_json::to_value(DbActor::new(community.clone())?.local_json()?)
        .map_err(|e| Error::Internal(e.to_string()))?;
    if let Some(m) = group.as_object_mut() {
        m.remove("@context");
    }
    let update = json!({
        "@context": context(),
        "id": outbox::new_activity_id(&state.origin()),
        "type": "Update",
        "actor": community.ap_id,
        "object": group,
        "to": [crate::federation::PUBLIC],
        "cc": [community.followers_url],
    });
    outbox::queue(conn, community.id, &update, None, inboxes).await?;
    Ok(())
}
