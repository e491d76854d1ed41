//! Receiving: every inbound activity's HTTP signature is checked (`signature_check`), its
//! actor fetched from its origin, and then it is handled once.

use super::signature_check;
use super::{activities, actor::DbActor, json};
use crate::{
    error::Error,
    state::AppState,
    store::{actor, received_activity},
};
use activitypub_federation::{config::Data, fetch::object_id::ObjectId, traits::Activity};
use chrono::Utc;
use sea_orm::{EntityTrait, Set};
use serde::{de::Error as _, Deserialize, Deserializer};
use serde_json::Value;
use url::Url;

tokio::task_local! {
    /// The local actor whose inbox the current request was sent to.
    static INBOX_OWNER: Option<actor::Model>;
}

/// Any activity, kept whole; the handler for its type reads what it needs.
#[derive(Debug)]
pub struct InboundActivity {
    id: Url,
    actor: Url,
    raw: Value,
}

impl<'de> Deserialize<'de> for InboundActivity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        if !raw.is_object() {
            return Err(D::Error::custom("an activity must be a JSON object"));
        }
        let id = json::str_field(&raw, "id")
            .ok_or_else(|| D::Error::custom("the activity has no id"))?
            .parse()
            .map_err(|e| D::Error::custom(format!("the activity id is not a URL: {e}")))?;
        let actor = raw
            .get("actor")
            .and_then(json::id_of_ref)
            .ok_or_else(|| D::Error::custom("the activity has no actor"))?;
        if json::kind(&raw).is_none() {
            return Err(D::Error::custom("the activity has no type"));
        }
        Ok(InboundActivity { id, actor, raw })
    }
}

#[async_trait::async_trait]
impl Activity for InboundActivity {
    type DataType = AppState;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.id
    }

    fn actor(&self) -> &Url {
        &self.actor
    }

    async fn verify(&self, _data: &Data<AppState>) -> Result<(), Error> {
        if !super::same_origin(&self.id, &self.actor) {
            return Err(Error::BadRequest(format!(
                "activity {} and its actor {} are on different origins",
                self.id, self.actor
            )));
        }
        Ok(())
    }

    async fn receive(self, data: &Data<AppState>) -> Result<(), Error> {
        let state = data.app_data();
        if received_activity::Entity::find_by_id(self.id.to_string())
            .one(&state.db)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let signer = ObjectId::<DbActor>::from(self.actor.clone())
            .dereference(data)
            .await?;
        let inbox_owner = INBOX_OWNER.try_with(Clone::clone).ok().flatten();
        let id = self.id.clone();
        activities::dispatch(activities::Inbound {
            data,
            id: self.id,
            raw: self.raw,
            actor: signer,
            inbox_owner,
        })
        .await?;
        received_activity::Entity::insert(received_activity::ActiveModel {
            ap_id: Set(id.to_string()),
            received_at: Set(Utc::now()),
        })
        .on_conflict_do_nothing()
        .exec(&state.db)
        .await?;
        Ok(())
    }
}

/// Verifies and handles one inbox POST for `owner`'s inbox (or the shared inbox): the
/// signature is read and the body digest checked before anything is fetched; then the signer
/// (who must be the activity's actor, or of its origin) is fetched and the signature verified,
/// with one refetch of the key if it fails (the actor may have rotated it).
pub async fn receive(
    parts: &axum::http::request::Parts,
    body: &[u8],
    owner: Option<actor::Model>,
    data: &Data<AppState>,
) -> Result<(), Error> {
    let state = data.app_data();
    let activity: InboundActivity = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("the activity could not be read: {e}")))?;
    let policy = state.config.policy();
    if !policy.allows(&activity.actor) {
        return Err(Error::Forbidden(super::policy::Policy::refusal(
            &activity.actor,
        )));
    }
    let signed = read_signature(state, &parts.method, &parts.uri, &parts.headers, body)
        .map_err(|e| Error::Unauthorized(e.to_string()))?;

    let key_id = Url::parse(&signed.key_id)
        .map_err(|_| Error::Unauthorized(format!("keyId {:?} is not a URL", signed.key_id)))?;
    if !super::same_origin(&key_id, &activity.actor) {
        return Err(Error::Unauthorized(format!(
            "the request is signed by {key_id}, which does not speak for {}",
            activity.actor
        )));
    }
    check_activity_urls(&activity, state)?;

    let actor_id = ObjectId::<DbActor>::from(activity.actor.clone());
    let signer = actor_id.dereference(data).await.map_err(|e| {
        Error::Unauthorized(format!(
            "could not fetch the signing actor {}: {e}",
            activity.actor
        ))
    })?;
    if signature_check::verify(&signed, &signer.0.public_key_pem).is_err() {
        let refreshed = actor_id.dereference_forced(data).await.map_err(|e| {
            Error::Unauthorized(format!(
                "could not fetch the signing actor {}: {e}",
                activity.actor
            ))
        })?;
        if let Err(e) = signature_check::verify(&signed, &refreshed.0.public_key_pem) {
            // An actor may publish several keys (a `publicKey` array): use the one named.
            match key_by_id(data, &activity.actor, &signed.key_id).await {
                Some(pem) => signature_check::verify(&signed, &pem)
                    .map_err(|e| Error::Unauthorized(e.to_string()))?,
                None => return Err(Error::Unauthorized(e.to_string())),
            }
        }
    }

    activity.verify(data).await?;
    INBOX_OWNER.scope(owner, activity.receive(data)).await
}

/// The PEM of the key with id `key_id` among those `actor` publishes.
async fn key_by_id(data: &Data<AppState>, actor: &Url, key_id: &str) -> Option<String> {
    let fetched = activitypub_federation::fetch::fetch_object_http::<
        AppState,
        super::actor::ActorJson,
    >(actor, data)
    .await
    .ok()?;
    json::items(Some(&fetched.object.public_key))
        .into_iter()
        .find(|k| json::str_field(k, "id") == Some(key_id))
        .and_then(|k| json::str_field(k, "publicKeyPem"))
        .map(str::to_owned)
}

/// Reads a request's signature (no network): the signed string, the digest of `body`, the time.
pub fn read_signature(
    state: &AppState,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<signature_check::SignedRequest, signature_check::SignatureError> {
    let header = |name: &str| {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            // HTTP/2 and some proxies drop Host; it is our own domain.
            (name == "host").then(|| state.config.domain.clone())
        } else {
            Some(values.join(", "))
        }
    };
    let origin = state.origin();
    signature_check::parse(&signature_check::RequestParts {
        method: method.as_str(),
        path_and_query: uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        origin: &origin,
        header: &header,
        body,
        now: std::time::SystemTime::now(),
    })
}

/// An activity's id is an http(s) URL of its actor's origin, and never one of ours.
fn check_activity_urls(activity: &InboundActivity, state: &AppState) -> Result<(), Error> {
    for url in [&activity.id, &activity.actor] {
        match url.scheme() {
            "https" => {}
            "http" if state.config.dev_mode() => {}
            other => {
                return Err(Error::BadRequest(format!(
                    "{url}: scheme {other} is not allowed"
                )))
            }
        }
    }
    if super::origin_of(&activity.id) == state.origin() {
        return Err(Error::BadRequest(format!(
            "activity {} claims to come from this instance",
            activity.id
        )));
    }
    Ok(())
}

/// Everything the inbox does with untrusted bytes before it touches the network or the
/// database, in one call for the fuzzer (`fuzz/`): the input is a request body, optionally
/// followed by a NUL byte and a `Signature` header. The header is read against the body (its
/// digest made to match, so the fuzzer gets past it), the body parsed as an activity, and the
/// activity, its object and any object inside that read as a post and as an actor, with their
/// HTML sanitised and their keys parsed. It must never panic.
pub fn parse_untrusted(input: &[u8]) {
    use super::{actor::ActorJson, note::NoteJson, sanitize};
    use base64::Engine;
    use sha2::Digest;

    let (body, signature) = match input.iter().position(|b| *b == 0) {
        Some(nul) => (
            &input[..nul],
            String::from_utf8_lossy(&input[nul + 1..]).into_owned(),
        ),
        None => (input, String::new()),
    };
    let digest = format!(
        "SHA-256={}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body))
    );
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let header = |name: &str| match name {
        "signature" if !signature.is_empty() => Some(signature.clone()),
        "digest" => Some(digest.clone()),
        "date" => Some(date.clone()),
        "host" => Some("localhost:8080".to_owned()),
        "content-type" => Some(super::CONTENT_TYPE.to_owned()),
        _ => None,
    };
    let _ = signature_check::parse(&signature_check::RequestParts {
        method: "POST",
        path_and_query: "/inbox",
        origin: "http://localhost:8080",
        header: &header,
        body,
        now: std::time::SystemTime::now(),
    });

    let Ok(activity) = serde_json::from_slice::<InboundActivity>(body) else {
        return;
    };
    let object = activity.raw.get("object");
    let inner = object.and_then(|o| o.get("object"));
    for value in [Some(&activity.raw), object, inner].into_iter().flatten() {
        let _ = json::kind(value);
        let _ = json::ids(value.get("to"));
        let _ = json::is_public(value.get("cc"));
        if let Ok(note) = serde_json::from_value::<NoteJson>(value.clone()) {
            let _ = (
                note.author(),
                note.addressees(),
                note.is_public(),
                note.hashtags(),
            );
            let _ = sanitize::html(&note.content_html());
        }
        if let Ok(actor) = serde_json::from_value::<ActorJson>(value.clone()) {
            if let Some(pem) = actor.public_key_pem() {
                let _ = signature_check::read_public_key(&pem);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn untrusted_input_of_every_shape_is_read_without_panicking() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fediverse");
        let mut read = 0;
        for entry in std::fs::read_dir(dir).expect("fixtures") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
            super::parse_untrusted(&bytes);
            let mut signed = bytes.clone();
            signed.extend_from_slice(
                b"\0keyId=\"x\",headers=\"(request-target) digest\",signature=\"AA==\"",
            );
            super::parse_untrusted(&signed);
            read += 1;
        }
        assert!(read > 80, "the corpus was read");
        for odd in [
            &b""[..],
            b"\0",
            b"{\"id\":1}",
            b"[]",
            b"{\"id\":\"https://a/1\",\"actor\":{},\"type\":[]}\0,,=\"",
        ] {
            super::parse_untrusted(odd);
        }
    }
}
