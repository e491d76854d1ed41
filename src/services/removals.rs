//! A facilitator takes someone's post out of their community: it stops being shared there
//! (community lists, feeds, pins), while the post itself stays its author's, in their profile
//! and in any thread or other community it belongs to. Only the author can delete a post.

use super::{moderators, pins};
use crate::{
    error::{Error, Result},
    federation::activities::remove,
    state::AppState,
    store::{actor, post, post_community},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

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
    // The Group's `Remove {object: post, target: the Group}`, so that followers elsewhere drop
    // the post from their copy of the community too.
    pins::send_group_change(&txn, state, community, &p, remove::REMOVE, &community.ap_id).await?;
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    tracing::info!("{} removed post {} from #{tag}", by.ap_id, p.ap_id);
    Ok(())
}
