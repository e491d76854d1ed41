//! `Remove` from a Group's `featured` collection: a facilitator unpinned a post. Built by
//! `add::build`; received from a remote Group we follow, it unpins the post on our copy.

use super::{add, Inbound};
use crate::{error::Error, services::pins, store::post};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

pub const REMOVE: &str = "Remove";

pub async fn receive(inbound: Inbound<'_>) -> Result<(), Error> {
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
