//! `Leave`: a remote actor no longer takes part in one of our events or intentions.

use super::Inbound;
use crate::{error::Error, services::participations, store::post};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

pub async fn receive(inbound: Inbound<'_>) -> Result<(), Error> {
    let object_id = inbound.object_id()?;
    let state = inbound.data.app_data();
    let Some(target) = post::Entity::find()
        .filter(post::Column::ApId.eq(object_id.as_str()))
        .filter(post::Column::Local.eq(true))
        .one(&state.db)
        .await?
    else {
        return Err(Error::NotFound(format!(
            "{object_id} is not an event or intention here"
        )));
    };
    participations::remove_remote(state, &target, inbound.actor.0.id).await
}
