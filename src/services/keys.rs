//! RSA-2048 key pairs for new local actors (Mastodon still needs RSA).

use crate::error::Error;
use activitypub_federation::http_signatures::generate_actor_keypair;

/// `(public PEM, private PEM)`. Generation takes a while, so it runs off the async threads.
pub async fn generate() -> Result<(String, String), Error> {
    let keypair = tokio::task::spawn_blocking(generate_actor_keypair)
        .await
        .map_err(|e| Error::Internal(format!("key generation task: {e}")))?
        .map_err(|e| Error::Internal(format!("key generation: {e}")))?;
    Ok((keypair.public_key, keypair.private_key))
}
