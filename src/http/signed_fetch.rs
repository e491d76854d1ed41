//! Authorized fetch: with `federation.authorized_fetch` on, our ActivityPub documents are served
//! only to requests signed by an actor of an allowed server (as Mastodon's secure mode does).
//! The instance actor, WebFinger and NodeInfo stay public so that others can sign their fetches.

use crate::{
    error::Error,
    federation::{actor::DbActor, policy::Policy, signature_check},
    state::Ctx,
};
use activitypub_federation::fetch::object_id::ObjectId;
use axum::http::{HeaderMap, Method, Uri};
use url::Url;

pub async fn check(
    ctx: &Ctx,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Error> {
    let state = ctx.app_data();
    if !state.config.federation.authorized_fetch {
        return Ok(());
    }
    let signed = crate::federation::inbox::read_signature(state, method, uri, headers, &[])
        .map_err(|e| Error::Unauthorized(format!("this instance requires signed fetches: {e}")))?;
    let mut key_id = Url::parse(&signed.key_id)
        .map_err(|_| Error::Unauthorized(format!("keyId {:?} is not a URL", signed.key_id)))?;
    if !state.config.policy().allows(&key_id) {
        return Err(Error::Forbidden(Policy::refusal(&key_id)));
    }
    key_id.set_fragment(None);
    let signer = ObjectId::<DbActor>::from(key_id.clone())
        .dereference(ctx)
        .await
        .map_err(|e| {
            Error::Unauthorized(format!("could not fetch the signing actor {key_id}: {e}"))
        })?;
    signature_check::verify(&signed, &signer.0.public_key_pem)
        .map_err(|e| Error::Unauthorized(e.to_string()))
}

/// Handlers that only ever answer ActivityPub JSON take this to require a signed fetch (when
/// authorized fetch is on).
pub struct SignedFetch;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for SignedFetch {
    type Rejection = Error;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Error> {
        let ctx = Ctx::from_request_parts(parts, &())
            .await
            .map_err(|(_, m)| Error::Internal(m.into()))?;
        check(&ctx, &parts.method, &parts.uri, &parts.headers).await?;
        Ok(SignedFetch)
    }
}
