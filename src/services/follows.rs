//! Following: members join communities (local or remote), and remote actors follow ours.

use crate::{
    error::{Error, Result},
    federation::{activities::follow as follow_activity, actor::DbActor, context, outbox},
    services::communities,
    state::{AppState, Ctx},
    store::{actor, follow},
};
use activitypub_federation::fetch::webfinger::webfinger_resolve_actor;
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ModelTrait, QueryFilter, Set,
    TransactionTrait,
};
use serde_json::json;

/// Records `follower` → `target` as accepted (idempotent).
pub async fn upsert_accepted<C: ConnectionTrait>(
    conn: &C,
    follower_id: i64,
    target_id: i64,
    activity_id: Option<&str>,
) -> Result<()> {
    upsert(conn, follower_id, target_id, activity_id, follow::ACCEPTED).await
}

async fn upsert<C: ConnectionTrait>(
    conn: &C,
    follower_id: i64,
    target_id: i64,
    activity_id: Option<&str>,
    state: &str,
) -> Result<()> {
    let existing = follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(follower_id))
        .filter(follow::Column::TargetId.eq(target_id))
        .one(conn)
        .await?;
    match existing {
        Some(f) => {
            let mut active: follow::ActiveModel = f.into();
            active.state = Set(state.into());
            if let Some(id) = activity_id {
                active.activity_id = Set(Some(id.into()));
            }
            active.update(conn).await?;
        }
        None => {
            follow::ActiveModel {
                follower_id: Set(follower_id),
                target_id: Set(target_id),
                state: Set(state.into()),
                activity_id: Set(activity_id.map(str::to_owned)),
                created_at: Set(Utc::now()),
                ..Default::default()
            }
            .insert(conn)
            .await?;
        }
    }
    Ok(())
}

/// A community named by a member: `hwb` (here) or `hwb@national.example` (anywhere).
pub async fn resolve_community(ctx: &Ctx, spec: &str) -> Result<actor::Model> {
    let spec = spec.trim().trim_start_matches('#').trim_start_matches('@');
    match spec.split_once('@') {
        Some((_, host)) if host == ctx.config.domain => {
            communities::get_local(ctx.app_data(), spec.split('@').next().unwrap_or_default()).await
        }
        Some((name, host)) => {
            let normalized =
                crate::hashtag::normalize(name).map_err(|e| Error::BadRequest(e.to_string()))?;
            let found: DbActor = webfinger_resolve_actor(&format!("{normalized}@{host}"), ctx)
                .await
                .map_err(|e| {
                    Error::NotFound(format!("could not find community {normalized}@{host}: {e}"))
                })?;
            if !found.is_group() {
                return Err(Error::BadRequest(format!(
                    "{normalized}@{host} is a {}, not a community",
                    found.0.kind
                )));
            }
            Ok(found.0)
        }
        None => communities::get_local(ctx.app_data(), spec).await,
    }
}

/// `follower` (local) follows `target`: at once if it is local, by a Follow if it is remote.
/// Returns the follow's state.
pub async fn follow(
    ctx: &Ctx,
    follower: &actor::Model,
    target: &actor::Model,
) -> Result<&'static str> {
    let state = ctx.app_data();
    if follower.id == target.id {
        return Err(Error::BadRequest("an actor cannot follow itself".into()));
    }
    if target.local {
        upsert_accepted(&state.db, follower.id, target.id, None).await?;
        return Ok(follow::ACCEPTED);
    }
    let existing = follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(follower.id))
        .filter(follow::Column::TargetId.eq(target.id))
        .one(&state.db)
        .await?;
    if let Some(f) = &existing {
        if f.state == follow::ACCEPTED {
            return Ok(follow::ACCEPTED);
        }
    }
    let activity = follow_activity::build(state, follower, target);
    let activity_id = activity["id"].as_str().unwrap_or_default().to_owned();
    let txn = state.db.begin().await?;
    upsert(
        &txn,
        follower.id,
        target.id,
        Some(&activity_id),
        follow::PENDING,
    )
    .await?;
    outbox::queue(
        &txn,
        follower.id,
        &activity,
        None,
        vec![target.inbox.clone()],
    )
    .await?;
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    Ok(follow::PENDING)
}

pub async fn unfollow(ctx: &Ctx, follower: &actor::Model, target: &actor::Model) -> Result<()> {
    let state = ctx.app_data();
    let Some(existing) = follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(follower.id))
        .filter(follow::Column::TargetId.eq(target.id))
        .one(&state.db)
        .await?
    else {
        return Ok(());
    };
    let txn = state.db.begin().await?;
    if !target.local {
        let undo = json!({
            "@context": context(),
            "id": outbox::new_activity_id(&state.origin()),
            "type": "Undo",
            "actor": follower.ap_id,
            "object": {
                "id": existing.activity_id,
                "type": "Follow",
                "actor": follower.ap_id,
                "object": target.ap_id,
            },
            "to": [target.ap_id],
        });
        outbox::queue(&txn, follower.id, &undo, None, vec![target.inbox.clone()]).await?;
    }
    existing.delete(&txn).await?;
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    Ok(())
}

pub async fn is_following(state: &AppState, follower_id: i64, target_ids: &[i64]) -> Result<bool> {
    if target_ids.is_empty() {
        return Ok(false);
    }
    Ok(follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(follower_id))
        .filter(follow::Column::TargetId.is_in(target_ids.iter().copied()))
        .filter(follow::Column::State.eq(follow::ACCEPTED))
        .one(&state.db)
        .await?
        .is_some())
}
