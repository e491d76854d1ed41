//! `Delete` of a post by its author (or of the author's own account), and the Group-side
//! announcement of a delete. A deleted post is removed from every community it was in.

use super::Inbound;
use crate::{
    error::Error,
    federation::same_origin,
    services::filing,
    store::{actor, post},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

pub async fn receive(inbound: Inbound<'_>) -> Result<(), Error> {
    let object_id = inbound.object_id()?;
    let sender = inbound.actor.ap_id();
    let state = inbound.data.app_data();
    if object_id == sender {
        // An account deleted itself: its posts go with it.
        actor::Entity::delete_many()
            .filter(actor::Column::ApId.eq(sender.as_str()))
            .filter(actor::Column::Local.eq(false))
            .exec(&state.db)
            .await?;
        return Ok(());
    }
    if !same_origin(&object_id, &sender) {
        return Err(Error::Forbidden(format!(
            "{sender} may not delete {object_id}, which belongs to another origin"
        )));
    }
    let Some(found) = post::Entity::find()
        .filter(post::Column::ApId.eq(object_id.as_str()))
        .one(&state.db)
        .await?
    else {
        // Never stored here, or already gone: nothing changes.
        return Ok(());
    };
    if found.author_id != inbound.actor.0.id {
        return Err(Error::Forbidden(format!(
            "{sender} is not the author of {object_id}"
        )));
    }
    filing::remove_remote_post(inbound.data, &found, &inbound.raw).await
}
