//! Actors on the wire: `Person` (member), `Group` (community), `Application` (the instance),
//! and whatever actor types remote servers use.

use super::{json, origin_of, same_origin, sanitize};
use crate::{
    error::{ConflictExt, Error},
    state::AppState,
    store::actor,
};
use activitypub_federation::{
    config::Data,
    traits::{Actor, Object},
};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use serde_json::{json as j, Value};
use url::Url;

pub const PERSON: &str = "Person";
pub const GROUP: &str = "Group";
pub const APPLICATION: &str = "Application";

#[derive(Debug, Clone)]
pub struct DbActor(pub actor::Model, Url);

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ActorJson {
    #[serde(rename = "type")]
    pub kind: Value,
    pub id: Url,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub inbox: Url,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub following: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub featured: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Value>,
    /// An object, or (some servers) an array of keys.
    pub public_key: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributed_to: Option<Value>,
    /// A Group's moderators collection (Lemmy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderators: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manually_approves_followers: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discoverable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posting_restricted_to_mods: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
    /// Profile photo: an `Image` (or, from some servers, an array of them or a bare URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<Value>,
    /// Profile fields (`PropertyValue`s: School, Role, Email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Value>,
}

impl ActorJson {
    fn kind_str(&self) -> &str {
        match &self.kind {
            Value::String(s) => s.as_str(),
            Value::Array(a) => a.first().and_then(Value::as_str).unwrap_or(PERSON),
            _ => PERSON,
        }
    }

    /// The PEM of the key owned by this actor (an array of keys is matched by owner).
    pub fn public_key_pem(&self) -> Option<String> {
        let keys = json::items(Some(&self.public_key));
        let owned = keys.iter().find(|k| {
            k.get("owner")
                .and_then(Value::as_str)
                .is_some_and(|o| o == self.id.as_str())
        });
        owned
            .or_else(|| keys.first())
            .and_then(|k| json::str_field(k, "publicKeyPem"))
            .map(str::to_owned)
    }
}

impl DbActor {
    pub fn new(model: actor::Model) -> Result<Self, Error> {
        let id = model
            .ap_id
            .parse()
            .map_err(|e| Error::Internal(format!("stored actor id {}: {e}", model.ap_id)))?;
        Ok(DbActor(model, id))
    }

    pub fn ap_id(&self) -> Url {
        self.1.clone()
    }

    pub fn is_group(&self) -> bool {
        self.0.kind == GROUP
    }

    /// `name@domain`, for WebFinger and display.
    pub fn handle(&self) -> String {
        let host = Url::parse(&self.0.ap_id)
            .ok()
            .map(|u| match u.port() {
                Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
                None => u.host_str().unwrap_or_default().to_string(),
            })
            .unwrap_or_default();
        let name = self.0.local_name.as_deref().unwrap_or(&self.0.name);
        format!("{name}@{host}")
    }

    pub fn local_json(&self) -> Result<ActorJson, Error> {
        let id = self.ap_id();
        let m = &self.0;
        let base = m.ap_id.trim_end_matches('/');
        let origin = origin_of(&id);
        let is_group = m.kind == GROUP;
        Ok(ActorJson {
            kind: Value::String(m.kind.clone()),
            id: id.clone(),
            preferred_username: Some(m.local_name.clone().unwrap_or_else(|| m.name.clone())),
            name: m.display_name.clone(),
            summary: m.summary.clone(),
            inbox: parse(&m.inbox)?,
            outbox: m.outbox.clone().map(Value::String),
            followers: m.followers_url.clone().map(Value::String),
            following: None,
            featured: is_group.then(|| Value::String(format!("{base}/featured"))),
            endpoints: Some(j!({ "sharedInbox": format!("{origin}/inbox") })),
            public_key: j!({
                "id": format!("{}#main-key", m.ap_id),
                "owner": m.ap_id,
                "publicKeyPem": m.public_key_pem,
            }),
            url: Some(Value::String(m.ap_id.clone())),
            // Lemmy reads a Group's moderators from the collection `attributedTo` names (an
            // array of actors there is skipped as unreadable); older Lemmy used `moderators`.
            attributed_to: is_group.then(|| Value::String(format!("{base}/moderators"))),
            moderators: is_group.then(|| Value::String(format!("{base}/moderators"))),
            manually_approves_followers: Some(false),
            discoverable: Some(m.kind != APPLICATION),
            posting_restricted_to_mods: is_group.then_some(false),
            published: Some(m.created_at),
            icon: m.icon_url.as_deref().map(icon_json),
            attachment: profile_fields(m),
        })
    }
}

fn icon_json(url: &str) -> Value {
    let media_type = if url.ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    j!({"type": "Image", "mediaType": media_type, "url": url})
}

/// School, role and (when the member opted in) email, as Mastodon shows profile fields.
fn profile_fields(m: &actor::Model) -> Option<Value> {
    let email = m.email.as_ref().filter(|_| m.show_email);
    let fields: Vec<Value> = [
        ("School", m.school.as_ref()),
        ("Role", m.role.as_ref()),
        ("Email", email),
    ]
    .into_iter()
    .filter_map(|(name, value)| {
        value.map(|v| j!({"type": "PropertyValue", "name": name, "value": sanitize::escape(v)}))
    })
    .collect();
    (!fields.is_empty()).then_some(Value::Array(fields))
}

/// What a remote profile says in its fields: (school, role, email), as plain text.
fn read_profile_fields(attachment: Option<&Value>) -> [Option<String>; 3] {
    let mut out: [Option<String>; 3] = Default::default();
    for f in json::items(attachment) {
        if json::kind(f) != Some("PropertyValue") {
            continue;
        }
        let Some(name) = json::str_field(f, "name") else {
            continue;
        };
        let slot = match sanitize::plain(name).trim().to_lowercase().as_str() {
            "school" => 0,
            "role" => 1,
            "email" | "e-mail" | "contact email" => 2,
            _ => continue,
        };
        let value = json::str_field(f, "value")
            .map(|v| {
                sanitize::plain(v)
                    .trim()
                    .chars()
                    .take(200)
                    .collect::<String>()
            })
            .filter(|v| !v.is_empty());
        if out[slot].is_none() {
            out[slot] = value;
        }
    }
    out
}

/// The URL of a remote actor's photo: the first `Image`'s `url` (itself perhaps a `Link` or an
/// array), http(s) only.
fn read_icon(icon: Option<&Value>) -> Option<String> {
    let first = match icon? {
        Value::Array(items) => items.first()?,
        other => other,
    };
    let url = match first {
        Value::String(_) => Some(first),
        other => other.get("url").or_else(|| other.get("href")),
    };
    crate::services::media::first_url(url).map(|u| u.to_string())
}

fn parse(s: &str) -> Result<Url, Error> {
    s.parse()
        .map_err(|e| Error::Internal(format!("stored url {s}: {e}")))
}

#[async_trait::async_trait]
impl Object for DbActor {
    type DataType = AppState;
    type Kind = ActorJson;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.1
    }

    fn last_refreshed_at(&self) -> Option<DateTime<Utc>> {
        Some(self.0.last_refreshed_at)
    }

    async fn read_from_id(object_id: Url, data: &Data<AppState>) -> Result<Option<Self>, Error> {
        Ok(actor::Entity::find()
            .filter(actor::Column::ApId.eq(object_id.as_str()))
            .one(&data.db)
            .await?
            .map(DbActor::new)
            .transpose()?)
    }

    async fn delete(&self, data: &Data<AppState>) -> Result<(), Error> {
        if !self.0.local {
            actor::Entity::delete_by_id(self.0.id)
                .exec(&data.db)
                .await?;
        }
        Ok(())
    }

    async fn into_json(self, _data: &Data<AppState>) -> Result<ActorJson, Error> {
        self.local_json()
    }

    async fn verify(json: &ActorJson, expected: &Url, _data: &Data<AppState>) -> Result<(), Error> {
        if !same_origin(&json.id, expected) {
            return Err(Error::BadRequest(format!(
                "actor {} was served from another origin ({})",
                json.id,
                origin_of(expected)
            )));
        }
        if !same_origin(&json.inbox, &json.id) {
            return Err(Error::BadRequest(format!(
                "actor {} names an inbox on another origin",
                json.id
            )));
        }
        let Some(pem) = json.public_key_pem() else {
            return Err(Error::BadRequest(format!(
                "actor {} has no publicKey.publicKeyPem",
                json.id
            )));
        };
        // A key no signature could ever be checked with is refused now, not at first use.
        super::signature_check::read_public_key(&pem)
            .map_err(|e| Error::BadRequest(format!("actor {}: {e}", json.id)))?;
        Ok(())
    }

    async fn from_json(json: ActorJson, data: &Data<AppState>) -> Result<Self, Error> {
        let pem = json
            .public_key_pem()
            .ok_or_else(|| Error::BadRequest(format!("actor {} has no public key", json.id)))?;
        let name = json
            .preferred_username
            .clone()
            .map(|n| sanitize::plain(&n))
            .filter(|n| !n.is_empty())
            .or_else(|| {
                json.id
                    .path_segments()
                    .and_then(|mut s| s.next_back().map(str::to_owned))
            })
            .unwrap_or_else(|| json.id.to_string());
        let shared_inbox = json
            .endpoints
            .as_ref()
            .and_then(|e| json::str_field(e, "sharedInbox"))
            .and_then(|s| Url::parse(s).ok())
            .filter(|u| same_origin(u, &json.id))
            .map(|u| u.to_string());
        let now = Utc::now();
        let kind = json.kind_str().to_owned();
        let [school, role, email] = read_profile_fields(json.attachment.as_ref());
        let existing = actor::Entity::find()
            .filter(actor::Column::ApId.eq(json.id.as_str()))
            .one(&data.db)
            .await?;
        if existing.as_ref().is_some_and(|e| e.local) {
            return Err(Error::BadRequest(format!(
                "{} is a local actor and cannot be replaced from outside",
                json.id
            )));
        }
        let mut model = actor::ActiveModel {
            ap_id: Set(json.id.to_string()),
            kind: Set(kind),
            name: Set(name),
            local_name: Set(None),
            display_name: Set(json.name.as_deref().map(sanitize::plain)),
            summary: Set(json.summary.as_deref().map(sanitize::html)),
            inbox: Set(json.inbox.to_string()),
            shared_inbox: Set(shared_inbox),
            outbox: Set(json::ids(json.outbox.as_ref()).first().map(Url::to_string)),
            followers_url: Set(json::ids(json.followers.as_ref())
                .first()
                .map(Url::to_string)),
            public_key_pem: Set(pem),
            private_key_pem: Set(None),
            local: Set(false),
            origin: Set(origin_of(&json.id)),
            last_refreshed_at: Set(now),
            created_at: Set(now),
            icon_url: Set(read_icon(json.icon.as_ref())),
            school: Set(school),
            role: Set(role),
            show_email: Set(email.is_some()),
            email: Set(email),
            ..Default::default()
        };
        let saved = match existing {
            Some(e) => {
                model.id = Set(e.id);
                model.created_at = Set(e.created_at);
                model.update(&data.db).await?
            }
            None => match model
                .clone()
                .insert(&data.db)
                .await
                .on_conflict(String::new)
            {
                Ok(m) => m,
                // Another request stored the same actor meanwhile.
                Err(Error::Conflict(_)) => actor::Entity::find()
                    .filter(actor::Column::ApId.eq(json.id.as_str()))
                    .one(&data.db)
                    .await?
                    .ok_or_else(|| Error::Internal("actor vanished after conflict".into()))?,
                Err(e) => return Err(e),
            },
        };
        DbActor::new(saved)
    }
}

impl Actor for DbActor {
    fn public_key_pem(&self) -> &str {
        &self.0.public_key_pem
    }

    fn private_key_pem(&self) -> Option<String> {
        self.0.private_key_pem.clone()
    }

    fn inbox(&self) -> Url {
        self.0.inbox.parse().unwrap_or_else(|_| self.1.clone())
    }

    fn shared_inbox(&self) -> Option<Url> {
        self.0.shared_inbox.as_ref().and_then(|s| s.parse().ok())
    }
}

#[cfg(test)]
mod profile_tests {
    use super::*;

    #[test]
    fn remote_profile_fields_are_read_as_plain_text() {
        let fields = j!([
            {"type": "PropertyValue", "name": "School", "value": "<a href=\"https://riverside.example\" rel=\"me\"><span>Riverside</span> Primary</a>"},
            {"type": "PropertyValue", "name": " role ", "value": "Depute <script>alert(1)</script>Head"},
            {"type": "PropertyValue", "name": "Website", "value": "https://example.org"},
            {"type": "PropertyValue", "name": "E-mail", "value": "alice@riverside.example"},
            {"type": "PropertyValue", "name": "School", "value": "a second one is ignored"},
            {"type": "Note", "name": "Role", "value": "not a field"},
        ]);
        let [school, role, email] = read_profile_fields(Some(&fields));
        assert_eq!(school.as_deref(), Some("Riverside Primary"));
        assert_eq!(role.as_deref(), Some("Depute Head"));
        assert_eq!(email.as_deref(), Some("alice@riverside.example"));
        assert_eq!(read_profile_fields(None), [None, None, None]);
        assert_eq!(read_profile_fields(Some(&j!("junk"))), [None, None, None]);
    }

    #[test]
    fn remote_icons_in_their_shapes() {
        let mastodon =
            j!({"type": "Image", "mediaType": "image/jpeg", "url": "https://m.example/a.jpeg"});
        assert_eq!(
            read_icon(Some(&mastodon)).as_deref(),
            Some("https://m.example/a.jpeg")
        );
        let array =
            j!([{"type": "Image", "url": {"type": "Link", "href": "https://m.example/b.png"}}]);
        assert_eq!(
            read_icon(Some(&array)).as_deref(),
            Some("https://m.example/b.png")
        );
        let bare = j!("https://m.example/c.webp");
        assert_eq!(
            read_icon(Some(&bare)).as_deref(),
            Some("https://m.example/c.webp")
        );
        let script = j!({"type": "Image", "url": "javascript:alert(1)"});
        assert_eq!(read_icon(Some(&script)), None);
        assert_eq!(read_icon(None), None);
    }

    #[test]
    fn mastodon_update_person_fixture() {
        let path = format!(
            "{}/fixtures/fediverse/mastodon-update-person.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
        let person: ActorJson = serde_json::from_value(doc["object"].clone()).expect("a Person");
        assert!(
            read_icon(person.icon.as_ref()).is_some_and(|u| u.ends_with("fd7f8ae0b3ffedc9.jpeg"))
        );
        // Its fields are neither School nor Role.
        assert_eq!(
            read_profile_fields(person.attachment.as_ref()),
            [None, None, None]
        );
    }
}
