//! `Remove` from a Group's `featured` collection: a facilitator unpinned a post. Built by
//! `add::build`; received from a remote Group we follow, it unpins the post on our copy.
//! `Remove` with the Group itself as `target`: a facilitator took the post out of the
//! community, so it leaves our copy of the community too.

use super::{add, Inbound};
use crate::{
    error::Error,
    services::pins,
    store::{post, post_community},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

pub const REMOVE: &str = "Remove";

pub async fn receive(inbound: Inbound<'_>) -> Result<(), Error> {
    if removed_from_sender_itself(&inbound) {
        return removed_from_group(inbound).await;
    }
    let group = add::featured_of_followed_group(&inbound)?;
    let group = add::followed_here(&inbound, group).await?;
    let object_id = inbound.object_id()?;
    let Some(unpinned) = post::Entity::find()
        .filter(post::Column::ApId.eq(object_id.as_str()))
        .one(&inbound.data.db)
        .await?
    else {
        // Never pinned here: nothing to undo.
        return Ok(());
    };
    pins::remove_remote_pin(&inbound.data.db, group.id, unpinned.id).await
}

/// A Group's `Remove` whose target is the Group: only the Group may take posts out of itself.
fn removed_from_sender_itself(inbound: &Inbound<'_>) -> bool {
    inbound.actor.is_group()
        && inbound
            .raw
            .get("target")
            .and_then(crate::federation::json::id_of_ref)
            .is_some_and(|t| t == inbound.actor.ap_id())
}

async fn removed_from_group(inbound: Inbound<'_>) -> Result<(), Error> {
    let group = add::followed_here(&inbound, inbound.actor.0.clone()).await?;
    let object_id = inbound.object_id()?;
    let Some(removed) = post::Entity::find()
        .filter(post::Column::ApId.eq(object_id.as_str()))
        .one(&inbound.data.db)
        .await?
    else {
        // Never shared here: nothing to take out.
        return Ok(());
    };
    pins::remove_remote_pin(&inbound.data.db, group.id, removed.id).await?;
    post_community::Entity::delete_many()
        .filter(post_community::Column::PostId.eq(removed.id))
        .filter(post_community::Column::CommunityId.eq(group.id))
        .exec(&inbound.data.db)
        .await?;
    Ok(())
}
