//! New local actors: RSA-2048 key pairs (Mastodon still needs RSA) and the row every local
//! actor starts from.

use crate::{error::Error, store::actor};
use activitypub_federation::http_signatures::generate_actor_keypair;
use chrono::Utc;
use sea_orm::Set;

/// `(public PEM, private PEM)`. Generation takes a while, so it runs off the async threads.
pub async fn generate() -> Result<(String, String), Error> {
    let keypair = tokio::task::spawn_blocking(generate_actor_keypair)
        .await
        .map_err(|e| Error::Internal(format!("key generation task: {e}")))?
        .map_err(|e| Error::Internal(format!("key generation: {e}")))?;
    Ok((keypair.public_key, keypair.private_key))
}

/// What differs between local actors; the rest follows from the id.
pub struct LocalActor {
    pub kind: &'static str,
    pub ap_id: String,
    pub name: String,
    /// The namespace name (members and communities); the instance actor has none.
    pub local_name: Option<String>,
    pub display_name: Option<String>,
    pub summary: Option<String>,
    /// Members and communities have an outbox and followers; the instance actor does not.
    pub collections: bool,
}

/// A row for a new local actor with a fresh key pair, ready to insert.
pub async fn new_local_actor(origin: &str, spec: LocalActor) -> Result<actor::ActiveModel, Error> {
    let (public_pem, private_pem) = generate().await?;
    let now = Utc::now();
    let ap_id = spec.ap_id;
    Ok(actor::ActiveModel {
        kind: Set(spec.kind.into()),
        name: Set(spec.name),
        local_name: Set(spec.local_name),
        display_name: Set(spec.display_name),
        summary: Set(spec.summary),
        inbox: Set(format!("{ap_id}/inbox")),
        shared_inbox: Set(Some(format!("{origin}/inbox"))),
        outbox: Set(spec.collections.then(|| format!("{ap_id}/outbox"))),
        followers_url: Set(spec.collections.then(|| format!("{ap_id}/followers"))),
        public_key_pem: Set(public_pem),
        private_key_pem: Set(Some(private_pem)),
        local: Set(true),
        origin: Set(origin.to_owned()),
        last_refreshed_at: Set(now),
        created_at: Set(now),
        ap_id: Set(ap_id),
        ..Default::default()
    })
}
