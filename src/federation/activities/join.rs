//! Join: taking part in an event or an intention.

use super::Inbound;
use crate::error::Error;

pub async fn receive(inbound: Inbound<'_>) -> Result<(), Error> {
    Err(Error::Unprocessable(format!(
        "activity {}: Cairn does not handle this yet",
        inbound.id
    )))
}
