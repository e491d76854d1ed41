//! `Reject` of one of our Follows (or a later removal by the followed actor). (Of one of our
//! Joins: see `join::answered`.)

use super::{follow::find_named, Inbound};
use crate::error::Error;
use sea_orm::ModelTrait;

pub async fn receive(inbound: Inbound<'_>) -> Result<(), Error> {
    let object = inbound.object()?;
    if super::join::answered(&inbound, object, false).await? {
        return Ok(());
    }
    let state = inbound.data.app_data();
    let found = find_named(state, object, None, None).await?;
    match found {
        Some(f) if f.target_id == inbound.actor.0.id => {
            f.delete(&state.db).await?;
            Ok(())
        }
        Some(_) => Err(Error::Forbidden(format!(
            "{} may not reject a follow of another actor",
            inbound.actor.0.ap_id
        ))),
        // Nothing to end: a repeat, or a follow we never sent.
        None => Ok(()),
    }
}
