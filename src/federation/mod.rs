//! The federation layer: translates between ActivityPub documents and service calls.
//! Nothing outside this module reads or writes raw ActivityStreams JSON.

pub mod activities;
pub mod actor;
pub mod addressing;
pub mod attachments;
pub mod delivery;
pub mod event;
pub mod inbox;
pub mod intention;
pub mod json;
pub mod note;
pub mod outbox;
pub mod policy;
pub mod sanitize;
pub mod signature_check;
pub mod signing;

use crate::state::AppState;
use activitypub_federation::config::FederationConfig;
use serde_json::{json, Value};
use std::time::Duration;
use url::Url;

/// Cairn's extension vocabulary (intentions, introductions, participant collections).
pub const CAIRN_NS: &str = "https://w3id.org/cairn/ns#";

/// The `@context` of everything Cairn serves.
pub fn context() -> Value {
    json!([
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/security/v1",
        {
            "Hashtag": "as:Hashtag",
            "sensitive": "as:sensitive",
            "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
            "toot": "http://joinmastodon.org/ns#",
            "discoverable": "toot:discoverable",
            "featured": {"@id": "toot:featured", "@type": "@id"},
            "lemmy": "https://join-lemmy.org/ns#",
            "postingRestrictedToMods": "lemmy:postingRestrictedToMods",
            "moderators": {"@id": "lemmy:moderators", "@type": "@id"},
            "schema": "http://schema.org#",
            "PropertyValue": "schema:PropertyValue",
            "value": "schema:value",
            "votersCount": "toot:votersCount",
            "mz": "https://joinmobilizon.org/ns#",
            "joinMode": "mz:joinMode",
            "participantCount": "mz:participantCount",
            "maximumAttendeeCapacity": "schema:maximumAttendeeCapacity",
            "remainingAttendeeCapacity": "schema:remainingAttendeeCapacity",
            "timezone": {"@id": "mz:timezone", "@type": "schema:Text"},
            "isOnline": {"@id": "mz:isOnline", "@type": "schema:Boolean"},
            "ical": "http://www.w3.org/2002/12/cal/ical#",
            "cairn": CAIRN_NS,
            "targetDate": {"@id": "cairn:targetDate", "@type": "http://www.w3.org/2001/XMLSchema#date"},
            "intentionStatus": "cairn:intentionStatus",
            "intentionSource": {"@id": "cairn:intentionSource", "@type": "@id"},
            "achievedAt": {"@id": "cairn:achievedAt", "@type": "http://www.w3.org/2001/XMLSchema#dateTime"},
            "introduction": "cairn:introduction",
            "participants": {"@id": "cairn:participants", "@type": "@id"},
        }
    ])
}

/// The media type of ActivityPub requests and responses.
pub const CONTENT_TYPE: &str = "application/activity+json";

pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

/// `scheme://host[:port]` of a URL: the unit of authority over objects. Unlike the federation
/// crate's domain check, the port counts, so two instances on one host stay apart.
pub fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// The client remote objects are fetched with. Outside development mode it refuses host names
/// that resolve to loopback or private addresses (whatever the build profile).
fn fetch_client(
    dev_mode: bool,
) -> Result<reqwest_middleware::ClientWithMiddleware, crate::error::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("Cairn/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(std::sync::Arc::new(
            activitypub_federation::resolver::ValidatingDnsResolver::new(vec![], !dev_mode),
        ))
        .build()
        .map_err(|e| crate::error::Error::Internal(format!("HTTP client: {e}")))?;
    Ok(client.into())
}

pub async fn federation_config(
    state: AppState,
) -> Result<FederationConfig<AppState>, crate::error::Error> {
    let dev = state.config.dev_mode();
    let domain = state.config.domain.clone();
    let signer = actor::DbActor::new(state.instance_actor.clone())?;
    let policy = state.config.policy();
    let client = fetch_client(dev)?;
    FederationConfig::builder()
        .domain(domain)
        .client(client)
        .url_verifier(Box::new(policy::PolicyVerifier(policy)))
        .app_data(state)
        .debug(dev)
        .allow_http_urls(dev)
        // Older servers (and some current ones) reject `(created)`/`(expires)`.
        .http_signature_compat(true)
        .request_timeout(Duration::from_secs(10))
        .signed_fetch_actor(&signer)
        .build()
        .await
        .map_err(|e| crate::error::Error::Internal(format!("federation config: {e}")))
}
