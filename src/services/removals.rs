//! A facilitator takes someone's post out of their community: it stops being shared there
//! (community lists, feeds, pins), while the post itself stays its author's, in their profile
//! and in any thread or other community it belongs to. Only the author can delete a post.

use super::{moderators, pins, visibility::Visibility};
use crate::{
    error::{Error, Result},
    federation::{
        activities::{add, remove},
        addressing, outbox,
    },
    state::AppState,
    store::{actor, post, post_community},
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};

/// Unfiles the post `key` from `community`, which `by` must moderate (a local community).
pub async fn remove_from_community(
    state: &AppState,
    by: &actor::Model,
    community: &actor::Model,
    key: &str,
) -> Result<()> {
    moderators::must_moderate(state, by, community, "remove posts from it").await?;
    let tag = community.local_name.as_deref().unwrap_or(&community.name);
    let p = post::Entity::find()
        .filter(post::Column::Key.eq(key))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no post with key {key:?}")))?;
    let txn = state.db.begin().await?;
    let unfiled = post_community::Entity::delete_many()
        .filter(post_community::Column::PostId.eq(p.id))
        .filter(post_community::Column::CommunityId.eq(community.id))
        .exec(&txn)
        .await?;
    if unfiled.rows_affected == 0 {
        return Err(Error::NotFound(format!(
            "post {key:?} is not shared in #{tag}; nothing to remove"
        )));
    }
    pins::unpin_removed(&txn, state, community, &p).await?;
    tell_followers(&txn, state, community, &p).await?;
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    tracing::info!("{} removed post {} from #{tag}", by.ap_id, p.ap_id);
    Ok(())
}

/// The Group's `Remove {object: post, target: the Group}` to its followers elsewhere, so that
/// their copy of the community drops the post too. Nothing for posts that never left here.
async fn tell_followers<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    community: &actor::Model,
    p: &post::Model,
) -> Result<()> {
    let visibility = Visibility::parse(&p.visibility).unwrap_or(Visibility::Authority);
    if !visibility.federates() {
        return Ok(());
    }
    let inboxes: Vec<String> = addressing::remote_follower_inboxes(conn, community.id)
        .await?
        .into_iter()
        .map(|f| f.inbox)
        .collect();
    if inboxes.is_empty() {
        return Ok(());
    }
    let activity = add::build(
        state,
        remove::REMOVE,
        community,
        &community.ap_id,
        p,
        visibility,
    );
    outbox::queue(conn, community.id, &activity, Some(&p.ap_id), inboxes).await?;
    Ok(())
}
