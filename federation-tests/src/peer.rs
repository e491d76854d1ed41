//! A fake remote fediverse server (not Cairn) running inside the test process.
//!
//! It hosts `Person` actors at `/users/NAME` (with WebFinger and NodeInfo), verifies the HTTP
//! signature of every POST to its inboxes with activitypub_federation's axum `receive_activity`
//! (fetching the signer — a Cairn `Person`, `Group` or `Application` — over HTTP), and records
//! every accepted activity so tests can wait on them. Unsigned or badly signed POSTs are answered
//! 401 and recorded as refused. It can also send signed activities as any of its actors.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::{Duration, Instant},
};

use activitypub_federation::{
    activity_sending::SendActivityTask,
    axum::inbox::{receive_activity, ActivityData},
    config::{Data, FederationConfig},
    fetch::object_id::ObjectId,
    http_signatures::{generate_actor_keypair, Keypair},
    protocol::public_key::PublicKey,
    traits::{Activity, Actor, Object},
    FEDERATION_CONTENT_TYPE,
};
use anyhow::{anyhow, bail};
use axum::{
    body::Body,
    extract::{FromRequest, Path, Query, Request, State},
    http::{header, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest_middleware::ClientWithMiddleware;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};
use url::Url;

use crate::activity::{self, AS_CONTEXT, PUBLIC};

/// How long helpers wait for an `Accept` of a `Follow`.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(15);
const KEY_POOL_SIZE: usize = 6;

/// What the peer hosts.
#[derive(Clone, Debug)]
pub struct PeerOptions {
    /// Actor names (`/users/NAME`).
    pub actors: Vec<String>,
    /// Publish a shared inbox (`/inbox`) in every actor's `endpoints`.
    pub shared_inbox: bool,
}

impl PeerOptions {
    pub fn new(names: &[&str]) -> Self {
        PeerOptions {
            actors: names.iter().map(|name| name.to_string()).collect(),
            shared_inbox: false,
        }
    }

    /// `count` actors named `PREFIX0`, `PREFIX1`, …
    pub fn numbered(prefix: &str, count: usize) -> Self {
        PeerOptions {
            actors: (0..count).map(|i| format!("{prefix}{i}")).collect(),
            shared_inbox: false,
        }
    }

    pub fn shared_inbox(mut self, enabled: bool) -> Self {
        self.shared_inbox = enabled;
        self
    }
}

/// An activity the peer accepted.
#[derive(Clone, Debug)]
pub struct Received {
    /// The inbox path it was posted to (`/users/NAME/inbox` or `/inbox`).
    pub inbox: String,
    pub activity: Value,
    pub at: Instant,
}

impl Received {
    pub fn kind(&self) -> &str {
        activity::kind(&self.activity)
    }

    pub fn actor(&self) -> Option<&str> {
        activity::actor(&self.activity)
    }

    /// The actor name whose personal inbox received it (`None` for the shared inbox).
    pub fn inbox_owner(&self) -> Option<&str> {
        self.inbox
            .strip_prefix("/users/")
            .and_then(|rest| rest.strip_suffix("/inbox"))
    }
}

/// A POST the peer refused.
#[derive(Clone, Debug)]
pub struct Refused {
    pub inbox: String,
    pub status: u16,
    pub reason: String,
    pub body: String,
}

/// The state shared by the peer's HTTP handlers and its federation code.
pub struct PeerState {
    domain: String,
    origin: String,
    shared_inbox: bool,
    names: Vec<String>,
    actors: HashMap<String, ApActor>,
    remote_actors: Mutex<HashMap<Url, ApActor>>,
    received: Mutex<Vec<Received>>,
    refused: Mutex<Vec<Refused>>,
    objects: Mutex<HashMap<String, Value>>,
    inbox_delay_ms: AtomicU64,
    follows: Mutex<HashMap<(String, String), Value>>,
    resolved: Mutex<HashMap<String, ApActor>>,
    signers: tokio::sync::Mutex<HashMap<String, Data<()>>>,
}

impl PeerState {
    fn local_actor_by_id(&self, id: &Url) -> Option<ApActor> {
        if id.origin().ascii_serialization() != self.origin {
            return None;
        }
        let name = id.path().strip_prefix("/users/")?;
        self.actors.get(name).cloned()
    }
}

type PeerData = Arc<PeerState>;

/// An actor as the peer knows it: one of its own (with a private key) or a remote one it fetched.
#[derive(Clone, Debug)]
pub struct ApActor {
    pub id: Url,
    pub kind: String,
    pub inbox: Url,
    pub shared_inbox: Option<Url>,
    pub public_key_pem: String,
    private_key_pem: Option<String>,
    /// The actor document as served or fetched.
    pub json: Value,
}

impl ApActor {
    /// `preferredUsername`, else the last path segment of the id.
    pub fn username(&self) -> String {
        self.json["preferredUsername"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| {
                self.id
                    .path_segments()
                    .and_then(|mut segments| segments.next_back().map(str::to_string))
                    .unwrap_or_default()
            })
    }

    /// `host[:port]` of the id.
    pub fn host(&self) -> String {
        host_and_port(&self.id)
    }
}

/// The wire form of any actor (Person, Group, Application…): only what signatures need is typed.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorJson {
    pub id: Url,
    #[serde(rename = "type")]
    pub kind: String,
    pub inbox: Url,
    pub public_key: PublicKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Endpoints>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_inbox: Option<Url>,
}

#[async_trait::async_trait]
impl Object for ApActor {
    type DataType = PeerData;
    type Kind = ActorJson;
    type Error = anyhow::Error;

    fn id(&self) -> &Url {
        &self.id
    }

    async fn read_from_id(
        object_id: Url,
        data: &Data<Self::DataType>,
    ) -> Result<Option<Self>, Self::Error> {
        let state = data.app_data();
        if let Some(local) = state.local_actor_by_id(&object_id) {
            return Ok(Some(local));
        }
        Ok(state
            .remote_actors
            .lock()
            .expect("remote actor cache lock")
            .get(&object_id)
            .cloned())
    }

    async fn into_json(self, _data: &Data<Self::DataType>) -> Result<Self::Kind, Self::Error> {
        Ok(serde_json::from_value(self.json)?)
    }

    async fn verify(
        json: &Self::Kind,
        expected_domain: &Url,
        _data: &Data<Self::DataType>,
    ) -> Result<(), Self::Error> {
        if json.id.origin() != expected_domain.origin() {
            bail!(
                "actor {} was served from another origin ({expected_domain})",
                json.id
            );
        }
        if json.public_key.owner != json.id {
            bail!(
                "actor {} has a publicKey owned by {}",
                json.id,
                json.public_key.owner
            );
        }
        Ok(())
    }

    async fn from_json(json: Self::Kind, data: &Data<Self::DataType>) -> Result<Self, Self::Error> {
        let actor = ApActor {
            id: json.id.clone(),
            kind: json.kind.clone(),
            inbox: json.inbox.clone(),
            shared_inbox: json.endpoints.as_ref().and_then(|e| e.shared_inbox.clone()),
            public_key_pem: json.public_key.public_key_pem.clone(),
            private_key_pem: None,
            json: serde_json::to_value(&json)?,
        };
        data.app_data()
            .remote_actors
            .lock()
            .expect("remote actor cache lock")
            .insert(actor.id.clone(), actor.clone());
        Ok(actor)
    }
}

impl Actor for ApActor {
    fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    fn private_key_pem(&self) -> Option<String> {
        self.private_key_pem.clone()
    }

    fn inbox(&self) -> Url {
        self.inbox.clone()
    }

    fn shared_inbox(&self) -> Option<Url> {
        self.shared_inbox.clone()
    }
}

/// Any activity, kept as raw JSON: `id` and `actor` are read for the signature checks.
#[derive(Clone, Debug)]
pub struct RawActivity {
    id: Url,
    actor: Url,
    json: Value,
}

impl RawActivity {
    pub fn new(json: Value) -> anyhow::Result<Self> {
        let id = activity::id(&json)
            .ok_or_else(|| anyhow!("activity has no string id"))?
            .parse()?;
        let actor = activity::actor(&json)
            .ok_or_else(|| anyhow!("activity has no actor"))?
            .parse()?;
        Ok(RawActivity { id, actor, json })
    }

    pub fn json(&self) -> &Value {
        &self.json
    }
}

impl Serialize for RawActivity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawActivity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Value::deserialize(deserializer)?;
        RawActivity::new(json).map_err(serde::de::Error::custom)
    }
}

#[async_trait::async_trait]
impl Activity for RawActivity {
    type DataType = PeerData;
    type Error = anyhow::Error;

    fn id(&self) -> &Url {
        &self.id
    }

    fn actor(&self) -> &Url {
        &self.actor
    }

    async fn verify(&self, _data: &Data<Self::DataType>) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn receive(self, _data: &Data<Self::DataType>) -> Result<(), Self::Error> {
        // The inbox handler records the activity once this returns.
        Ok(())
    }
}

#[derive(Clone)]
struct AppState {
    state: PeerData,
    config: FederationConfig<PeerData>,
}

/// The running fake server. Cheap to clone; the server stops when the last clone is dropped.
#[derive(Clone)]
pub struct Peer {
    inner: Arc<PeerInner>,
}

struct PeerInner {
    state: PeerData,
    config: FederationConfig<PeerData>,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for PeerInner {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A few RSA keys shared by all peer actors of this process (key generation is slow; Cairn does
/// not care that two test actors share a key).
fn key_pool() -> &'static [Keypair] {
    static POOL: OnceLock<Vec<Keypair>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..KEY_POOL_SIZE / 2)
                        .map(|_| generate_actor_keypair().expect("generate an RSA key pair"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|thread| thread.join().expect("key generation thread"))
            .collect()
    })
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("build an HTTP client")
}

fn host_and_port(url: &Url) -> String {
    match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    }
}

fn actor_document(origin: &str, name: &str, public_key_pem: &str, shared_inbox: bool) -> Value {
    let id = format!("{origin}/users/{name}");
    let mut doc = json!({
        "@context": [AS_CONTEXT, "https://w3id.org/security/v1"],
        "id": id,
        "type": "Person",
        "preferredUsername": name,
        "name": format!("Peer user {name}"),
        "summary": "A fake fediverse account run by Cairn's federation tests",
        "url": id,
        "inbox": format!("{id}/inbox"),
        "outbox": format!("{id}/outbox"),
        "followers": format!("{id}/followers"),
        "following": format!("{id}/following"),
        "manuallyApprovesFollowers": false,
        "publicKey": {
            "id": format!("{id}#main-key"),
            "owner": id,
            "publicKeyPem": public_key_pem,
        },
    });
    if shared_inbox {
        doc["endpoints"] = json!({ "sharedInbox": format!("{origin}/inbox") });
    }
    doc
}

fn activity_json(body: Value) -> Response {
    (
        [(header::CONTENT_TYPE, FEDERATION_CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Peer {
    /// Starts the server on a free port of 127.0.0.1; its domain is `localhost:PORT`.
    pub async fn start(options: PeerOptions) -> Peer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake peer to 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("local address of the fake peer")
            .port();
        let domain = format!("localhost:{port}");
        let origin = format!("http://{domain}");
        let keys = tokio::task::spawn_blocking(key_pool)
            .await
            .expect("key generation task");
        let actors = options
            .actors
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let keys = &keys[i % keys.len()];
                let json = actor_document(&origin, name, &keys.public_key, options.shared_inbox);
                let actor = ApActor {
                    id: json["id"]
                        .as_str()
                        .expect("actor id")
                        .parse()
                        .expect("actor url"),
                    kind: "Person".into(),
                    inbox: json["inbox"]
                        .as_str()
                        .expect("inbox")
                        .parse()
                        .expect("inbox url"),
                    shared_inbox: options
                        .shared_inbox
                        .then(|| format!("{origin}/inbox").parse().expect("shared inbox url")),
                    public_key_pem: keys.public_key.clone(),
                    private_key_pem: Some(keys.private_key.clone()),
                    json,
                };
                (name.clone(), actor)
            })
            .collect();
        let state = Arc::new(PeerState {
            domain: domain.clone(),
            origin,
            shared_inbox: options.shared_inbox,
            names: options.actors.clone(),
            actors,
            remote_actors: Mutex::default(),
            received: Mutex::default(),
            refused: Mutex::default(),
            objects: Mutex::default(),
            inbox_delay_ms: AtomicU64::new(0),
            follows: Mutex::default(),
            resolved: Mutex::default(),
            signers: tokio::sync::Mutex::default(),
        });
        let http = plain_client();
        let config = FederationConfig::builder()
            .domain(domain)
            .app_data(state.clone())
            .client(ClientWithMiddleware::from(http.clone()))
            .debug(true)
            .build()
            .await
            .expect("build the fake peer's federation config");
        let app = Router::new()
            .route("/users/{name}", get(get_actor))
            .route("/users/{name}/inbox", post(post_inbox))
            .route("/users/{name}/outbox", get(get_empty_collection))
            .route("/users/{name}/followers", get(get_empty_collection))
            .route("/users/{name}/following", get(get_empty_collection))
            .route("/inbox", post(post_inbox))
            .route("/.well-known/webfinger", get(get_webfinger))
            .route("/.well-known/nodeinfo", get(get_nodeinfo_links))
            .route("/nodeinfo/2.1", get(get_nodeinfo))
            .fallback(get_object)
            .with_state(AppState {
                state: state.clone(),
                config: config.clone(),
            });
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("fake peer server stopped: {err}");
            }
        });
        Peer {
            inner: Arc::new(PeerInner {
                state,
                config,
                http,
                server,
            }),
        }
    }

    fn state(&self) -> &PeerState {
        &self.inner.state
    }

    /// `localhost:PORT`
    pub fn domain(&self) -> &str {
        &self.state().domain
    }

    /// `http://localhost:PORT`
    pub fn origin(&self) -> &str {
        &self.state().origin
    }

    pub fn actor_names(&self) -> &[String] {
        &self.state().names
    }

    /// One of the peer's own actors; panics naming it if it does not exist.
    pub fn actor(&self, name: &str) -> ApActor {
        self.state()
            .actors
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("the fake peer has no actor {name:?}"))
    }

    /// `http://localhost:PORT/users/NAME`
    pub fn actor_id(&self, name: &str) -> String {
        self.actor(name).id.to_string()
    }

    /// Whether actors advertise the shared inbox.
    pub fn has_shared_inbox(&self) -> bool {
        self.state().shared_inbox
    }

    /// A fresh id on this peer: `http://localhost:PORT/activities/KIND/UUID`.
    pub fn new_id(&self, kind: &str) -> String {
        format!(
            "{}/activities/{}/{}",
            self.origin(),
            kind.to_lowercase(),
            uuid::Uuid::new_v4()
        )
    }

    /// Makes the peer's inboxes sleep this long before handling each POST.
    pub fn set_inbox_delay(&self, delay: Duration) {
        self.state()
            .inbox_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Everything accepted so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.state().received.lock().expect("received lock").clone()
    }

    /// Everything refused so far.
    pub fn refused(&self) -> Vec<Refused> {
        self.state().refused.lock().expect("refused lock").clone()
    }

    /// Accepted activities matching `predicate`.
    pub fn received_matching(&self, predicate: impl Fn(&Received) -> bool) -> Vec<Received> {
        self.state()
            .received
            .lock()
            .expect("received lock")
            .iter()
            .filter(|r| predicate(r))
            .cloned()
            .collect()
    }

    /// A readable list of what arrived (for panic messages and test output).
    pub fn summary(&self) -> String {
        let received = self.received();
        let refused = self.refused();
        let mut out = format!(
            "fake peer {}: {} accepted, {} refused\n",
            self.domain(),
            received.len(),
            refused.len()
        );
        let skip = received.len().saturating_sub(60);
        if skip > 0 {
            out.push_str(&format!("  … {skip} older accepted activities not shown\n"));
        }
        for r in received.iter().skip(skip) {
            out.push_str(&format!(
                "  accepted at {}: {}\n",
                r.inbox,
                activity::describe(&r.activity)
            ));
        }
        for r in refused.iter().rev().take(20) {
            out.push_str(&format!(
                "  REFUSED {} at {}: {} (body: {:.300})\n",
                r.status, r.inbox, r.reason, r.body
            ));
        }
        out
    }

    /// Waits until some accepted activity matches `predicate`; returns all that match. Panics
    /// with `what` and a summary of what arrived on timeout.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&Received) -> bool,
    ) -> Vec<Received> {
        self.wait_for_count(what, timeout, 1, predicate).await
    }

    /// Waits until at least `count` accepted activities match `predicate`.
    pub async fn wait_for_count(
        &self,
        what: &str,
        timeout: Duration,
        count: usize,
        predicate: impl Fn(&Received) -> bool,
    ) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let matching = self.received_matching(&predicate);
            if matching.len() >= count {
                return matching;
            }
            if start.elapsed() >= timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what} at the fake peer \
                     ({} of {count} arrived)\n{}",
                    matching.len(),
                    self.summary()
                );
            }
            tokio::time::sleep(crate::POLL_INTERVAL).await;
        }
    }

    /// Waits until `predicate` holds for the whole list of accepted activities.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let received = self.received();
            if predicate(&received) {
                return received;
            }
            if start.elapsed() >= timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what} at the fake peer\n{}",
                    self.summary()
                );
            }
            tokio::time::sleep(crate::POLL_INTERVAL).await;
        }
    }

    /// Serves `doc` (and any embedded `object` on this peer) at the path of its id, so remote
    /// servers can fetch it.
    pub fn publish(&self, doc: &Value) {
        let mut current = Some(doc);
        while let Some(doc) = current {
            if let Some(id) = activity::id(doc) {
                if let Ok(url) = Url::parse(id) {
                    if url.origin().ascii_serialization() == self.origin() {
                        self.state()
                            .objects
                            .lock()
                            .expect("objects lock")
                            .insert(url.path().to_string(), doc.clone());
                    }
                }
            }
            current = doc.get("object").filter(|o| o.is_object());
        }
    }

    /// Finds a remote actor by `acct:` handle (`hwb@localhost:8081`, `@hwb@…`) via WebFinger, or
    /// by URL, and fetches it (cached).
    pub async fn resolve(&self, handle_or_url: &str) -> ApActor {
        if let Some(actor) = self
            .state()
            .resolved
            .lock()
            .expect("resolved lock")
            .get(handle_or_url)
        {
            return actor.clone();
        }
        let url = if handle_or_url.contains("://") {
            handle_or_url.to_string()
        } else {
            self.webfinger(handle_or_url).await
        };
        let data = self.inner.config.to_request_data();
        let actor = ObjectId::<ApActor>::parse(&url)
            .unwrap_or_else(|err| panic!("{url} is not a URL: {err}"))
            .dereference(&data)
            .await
            .unwrap_or_else(|err| panic!("the fake peer could not fetch actor {url}: {err:#}"));
        self.state()
            .resolved
            .lock()
            .expect("resolved lock")
            .insert(handle_or_url.to_string(), actor.clone());
        actor
    }

    /// WebFinger `acct:NAME@HOST` → the `self` link's href.
    pub async fn webfinger(&self, handle: &str) -> String {
        let acct = handle.trim_start_matches("acct:").trim_start_matches('@');
        let host = acct
            .split_once('@')
            .map(|(_, host)| host)
            .unwrap_or_else(|| panic!("{handle:?} is not NAME@HOST"));
        let url = format!("http://{host}/.well-known/webfinger?resource=acct:{acct}");
        let response = self
            .inner
            .http
            .get(&url)
            .header("Accept", "application/jrd+json, application/json")
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {url} failed: {err}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "GET {url} answered {status}: {text}");
        let jrd: Value = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("GET {url} did not answer JSON ({err}): {text}"));
        jrd["links"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|link| {
                link["rel"] == "self" && link["type"].as_str().is_some_and(|t| t.contains("json"))
            })
            .and_then(|link| link["href"].as_str())
            .unwrap_or_else(|| panic!("WebFinger {url} has no rel=self ActivityPub link: {jrd}"))
            .to_string()
    }

    async fn signer(&self, name: &str, key: Option<&Keypair>) -> Data<()> {
        let cache_key = format!("{name}#{}", key.is_some());
        let mut signers = self.state().signers.lock().await;
        if let Some(data) = signers.get(&cache_key) {
            return data.clone();
        }
        let mut actor = self.actor(name);
        if let Some(key) = key {
            actor.private_key_pem = Some(key.private_key.clone());
        }
        let config = FederationConfig::builder()
            .domain(self.domain().to_string())
            .app_data(())
            .client(ClientWithMiddleware::from(self.inner.http.clone()))
            .debug(true)
            .signed_fetch_actor(&actor)
            .build()
            .await
            .expect("build a signing config");
        let data = config.to_request_data();
        signers.insert(cache_key, data.clone());
        data
    }

    async fn post_signed(
        &self,
        actor: &str,
        inbox: &str,
        doc: &Value,
        key: Option<&Keypair>,
    ) -> Result<(u16, String), String> {
        let inbox_url: Url = inbox
            .parse()
            .map_err(|err| format!("inbox {inbox:?} is not a URL: {err}"))?;
        let body = serde_json::to_vec(doc).expect("serialise the activity");
        let data = self.signer(actor, key).await;
        let builder = ClientWithMiddleware::from(self.inner.http.clone())
            .post(inbox_url.as_str())
            .headers(request_headers(&inbox_url));
        let request = data
            .sign_request(builder, body.into())
            .await
            .map_err(|err| format!("signing a POST to {inbox} failed: {err}"))?;
        let response = self
            .inner
            .http
            .execute(request)
            .await
            .map_err(|err| format!("POST {inbox} failed: {err}"))?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.unwrap_or_default()))
    }

    /// POSTs `doc` to `inbox` signed by `actor` (draft-cavage HTTP signature with a `Digest`, as
    /// activitypub_federation sends). Returns the status and body; judges nothing. Panics if
    /// there is no HTTP answer at all (within 20 s).
    pub async fn post_raw(&self, actor: &str, inbox: &str, doc: &Value) -> (u16, String) {
        self.post_signed(actor, inbox, doc, None)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Like [`Peer::post_raw`], returning transport errors (timeouts, resets) instead of panicking.
    pub async fn try_post_raw(
        &self,
        actor: &str,
        inbox: &str,
        doc: &Value,
    ) -> Result<(u16, String), String> {
        self.post_signed(actor, inbox, doc, None).await
    }

    /// Like [`Peer::post_raw`] but signed with a key that is not `actor`'s.
    pub async fn post_badly_signed(&self, actor: &str, inbox: &str, doc: &Value) -> (u16, String) {
        let own = self.actor(actor).public_key_pem;
        let other = key_pool()
            .iter()
            .find(|key| key.public_key != own)
            .expect("a second key in the pool");
        self.post_signed(actor, inbox, doc, Some(other))
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// POSTs `doc` to `inbox` with no signature at all.
    pub async fn post_unsigned(&self, inbox: &str, doc: &Value) -> (u16, String) {
        let response = self
            .inner
            .http
            .post(inbox)
            .header("Content-Type", FEDERATION_CONTENT_TYPE)
            .body(doc.to_string())
            .send()
            .await
            .unwrap_or_else(|err| panic!("POST {inbox} failed: {err}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Signs and sends `doc` as `actor` with activitypub_federation's own sending code
    /// (`SendActivityTask::prepare` + `sign_and_send`). Note that the crate treats a 4xx answer
    /// as delivered; use [`Peer::post_raw`] to see the status.
    pub async fn deliver(&self, actor: &str, inboxes: &[&str], doc: &Value) -> anyhow::Result<()> {
        let wrapper = RawActivity::new(doc.clone())?;
        let sender = self.actor(actor);
        let inboxes = inboxes
            .iter()
            .map(|inbox| inbox.parse())
            .collect::<Result<Vec<Url>, _>>()?;
        let data = self.inner.config.to_request_data();
        for task in SendActivityTask::prepare(&wrapper, &sender, inboxes, &data).await? {
            task.sign_and_send(&data).await?;
        }
        Ok(())
    }

    /// `post_raw` that panics unless the answer is 2xx.
    pub async fn post_ok(&self, actor: &str, inbox: &str, doc: &Value) {
        let (status, body) = self.post_raw(actor, inbox, doc).await;
        assert!(
            (200..300).contains(&status),
            "{inbox} refused {} from {actor} with {status}: {body}\nactivity: {doc:#}",
            activity::kind(doc)
        );
    }

    /// `actor` follows the Group (acct handle `TAG@HOST` or URL): sends `Follow` and waits for
    /// the `Accept`. Returns the Group.
    pub async fn follow(&self, actor: &str, group: &str) -> ApActor {
        let target = self.resolve(group).await;
        let actor_id = self.actor_id(actor);
        let follow_id = self.new_id("follow");
        let follow = json!({
            "@context": AS_CONTEXT,
            "id": follow_id,
            "type": "Follow",
            "actor": actor_id,
            "object": target.id.as_str(),
            "to": [target.id.as_str()],
        });
        self.publish(&follow);
        self.post_ok(actor, target.inbox.as_str(), &follow).await;
        let group_id = target.id.to_string();
        let answers = self
            .wait_for(
                &format!("Accept of {actor}'s Follow of {group_id}"),
                ACCEPT_TIMEOUT,
                |r| {
                    matches!(r.kind(), "Accept" | "Reject")
                        && r.actor() == Some(group_id.as_str())
                        && (activity::references(&r.activity, &follow_id)
                            || r.activity.get("object").is_some_and(|o| {
                                activity::kind(o) == "Follow"
                                    && activity::actor(o) == Some(actor_id.as_str())
                                    && activity::object_id(o) == Some(group_id.as_str())
                            }))
                },
            )
            .await;
        if let Some(reject) = answers.iter().find(|r| r.kind() == "Reject") {
            panic!(
                "{group_id} rejected {actor}'s Follow: {:#}",
                reject.activity
            );
        }
        self.state()
            .follows
            .lock()
            .expect("follows lock")
            .insert((actor.to_string(), group_id), follow);
        target
    }

    /// `actor` undoes its Follow of the Group (sends `Undo` embedding the original `Follow`).
    pub async fn unfollow(&self, actor: &str, group: &str) {
        let target = self.resolve(group).await;
        let follow = self
            .state()
            .follows
            .lock()
            .expect("follows lock")
            .get(&(actor.to_string(), target.id.to_string()))
            .cloned()
            .unwrap_or_else(|| panic!("{actor} never followed {} through this peer", target.id));
        let undo = json!({
            "@context": AS_CONTEXT,
            "id": self.new_id("undo"),
            "type": "Undo",
            "actor": self.actor_id(actor),
            "object": follow,
            "to": [target.id.as_str()],
        });
        self.publish(&undo);
        self.post_ok(actor, target.inbox.as_str(), &undo).await;
    }

    /// `actor` posts a public Note into the Groups (handles or URLs): `to` Public, `cc` the Groups
    /// and the actor's followers, `tag` a Mention of each Group and a Hashtag for each of
    /// `hashtags`. The Create goes to each Group's inbox. Returns the Note.
    pub async fn create_note(
        &self,
        actor: &str,
        groups: &[&str],
        content: &str,
        hashtags: &[&str],
    ) -> Value {
        self.post_note(actor, groups, content, hashtags, None).await
    }

    /// Like [`Peer::create_note`], as a reply to `in_reply_to`.
    pub async fn reply(
        &self,
        actor: &str,
        in_reply_to: &str,
        groups: &[&str],
        content: &str,
        hashtags: &[&str],
    ) -> Value {
        self.post_note(actor, groups, content, hashtags, Some(in_reply_to))
            .await
    }

    async fn post_note(
        &self,
        actor: &str,
        groups: &[&str],
        content: &str,
        hashtags: &[&str],
        in_reply_to: Option<&str>,
    ) -> Value {
        let mut targets = Vec::new();
        for group in groups {
            targets.push(self.resolve(group).await);
        }
        let actor_id = self.actor_id(actor);
        let note_id = format!("{}/notes/{}", self.origin(), uuid::Uuid::new_v4());
        let mut html = String::from("<p>");
        let mut tags = Vec::new();
        for target in &targets {
            html.push_str(&format!(
                "<span class=\"h-card\"><a href=\"{}\" class=\"u-url mention\">@<span>{}</span></a></span> ",
                target.id,
                target.username()
            ));
            tags.push(json!({
                "type": "Mention",
                "href": target.id.as_str(),
                "name": format!("@{}@{}", target.username(), target.host()),
            }));
        }
        html.push_str(&html_escape(content));
        for hashtag in hashtags {
            let tag = hashtag.trim_start_matches('#');
            let href = format!("{}/tags/{}", self.origin(), tag.to_lowercase());
            html.push_str(&format!(
                " <a href=\"{href}\" class=\"mention hashtag\" rel=\"tag\">#<span>{tag}</span></a>"
            ));
            tags.push(json!({ "type": "Hashtag", "href": href, "name": format!("#{tag}") }));
        }
        html.push_str("</p>");
        let mut cc: Vec<String> = targets.iter().map(|t| t.id.to_string()).collect();
        cc.push(format!("{actor_id}/followers"));
        let published = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let note = json!({
            "id": note_id,
            "type": "Note",
            "attributedTo": actor_id,
            "content": html,
            "published": published,
            "to": [PUBLIC],
            "cc": cc,
            "tag": tags,
            "url": note_id,
            "inReplyTo": in_reply_to,
            "sensitive": false,
        });
        let create = json!({
            "@context": [AS_CONTEXT, {"Hashtag": "as:Hashtag", "sensitive": "as:sensitive"}],
            "id": format!("{note_id}/activity"),
            "type": "Create",
            "actor": actor_id,
            "published": published,
            "to": [PUBLIC],
            "cc": cc,
            "object": note,
        });
        let mut served = note.clone();
        served["@context"] = create["@context"].clone();
        self.publish(&served);
        self.publish(&create);
        let inboxes: BTreeSet<String> = targets.iter().map(|t| t.inbox.to_string()).collect();
        for inbox in inboxes {
            self.post_ok(actor, &inbox, &create).await;
        }
        note
    }
}

fn request_headers(inbox: &Url) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(FEDERATION_CONTENT_TYPE),
    );
    headers.insert(
        header::HOST,
        HeaderValue::from_str(&host_and_port(inbox)).expect("host header"),
    );
    headers.insert(
        header::DATE,
        HeaderValue::from_str(
            &chrono::Utc::now()
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string(),
        )
        .expect("date header"),
    );
    headers
}

async fn get_actor(State(app): State<AppState>, Path(name): Path<String>) -> Response {
    match app.state.actors.get(&name) {
        Some(actor) => activity_json(actor.json.clone()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn get_empty_collection(
    State(app): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
) -> Response {
    if !app.state.actors.contains_key(&name) {
        return StatusCode::NOT_FOUND.into_response();
    }
    activity_json(json!({
        "@context": AS_CONTEXT,
        "id": format!("{}{}", app.state.origin, uri.path()),
        "type": "OrderedCollection",
        "totalItems": 0,
        "orderedItems": [],
    }))
}

#[derive(Deserialize)]
struct WebfingerQuery {
    resource: String,
}

async fn get_webfinger(
    State(app): State<AppState>,
    Query(query): Query<WebfingerQuery>,
) -> Response {
    let acct = query.resource.trim_start_matches("acct:");
    let Some((name, domain)) = acct.split_once('@') else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if domain != app.state.domain || !app.state.actors.contains_key(name) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let id = format!("{}/users/{name}", app.state.origin);
    (
        [(header::CONTENT_TYPE, "application/jrd+json")],
        json!({
            "subject": format!("acct:{acct}"),
            "aliases": [id],
            "links": [
                {"rel": "self", "type": FEDERATION_CONTENT_TYPE, "href": id},
                {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": id},
            ],
        })
        .to_string(),
    )
        .into_response()
}

async fn get_nodeinfo_links(State(app): State<AppState>) -> Response {
    axum::Json(json!({
        "links": [{
            "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
            "href": format!("{}/nodeinfo/2.1", app.state.origin),
        }],
    }))
    .into_response()
}

async fn get_nodeinfo(State(app): State<AppState>) -> Response {
    axum::Json(json!({
        "version": "2.1",
        "software": {"name": "cairn-federation-tests-peer", "version": "0.1.0"},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": false,
        "usage": {"users": {"total": app.state.actors.len()}},
        "metadata": {},
    }))
    .into_response()
}

async fn get_object(State(app): State<AppState>, method: Method, uri: Uri) -> Response {
    if method != Method::GET {
        return StatusCode::NOT_FOUND.into_response();
    }
    let found = app
        .state
        .objects
        .lock()
        .expect("objects lock")
        .get(uri.path())
        .cloned();
    match found {
        Some(doc) => activity_json(doc),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn post_inbox(State(app): State<AppState>, request: Request) -> Response {
    let delay = app.state.inbox_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let inbox = request.uri().path().to_string();
    if let Some(name) = inbox
        .strip_prefix("/users/")
        .and_then(|rest| rest.strip_suffix("/inbox"))
    {
        if !app.state.actors.contains_key(name) {
            return StatusCode::NOT_FOUND.into_response();
        }
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, 4 << 20).await {
        Ok(bytes) => bytes,
        Err(err) => return (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    };
    let refuse = |status: StatusCode, reason: String| {
        app.state
            .refused
            .lock()
            .expect("refused lock")
            .push(Refused {
                inbox: inbox.clone(),
                status: status.as_u16(),
                reason: reason.clone(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        (status, reason).into_response()
    };
    let Ok(json) = serde_json::from_slice::<Value>(&bytes) else {
        return refuse(StatusCode::BAD_REQUEST, "body is not JSON".into());
    };
    let rebuilt = Request::from_parts(parts, Body::from(bytes.clone()));
    let activity_data = match ActivityData::from_request(rebuilt, &()).await {
        Ok(data) => data,
        Err(response) => return response,
    };
    let data = app.config.to_request_data();
    match receive_activity::<RawActivity, ApActor, PeerData>(activity_data, &data).await {
        Ok(()) => {
            app.state
                .received
                .lock()
                .expect("received lock")
                .push(Received {
                    inbox,
                    activity: json,
                    at: Instant::now(),
                });
            StatusCode::ACCEPTED.into_response()
        }
        Err(err) => refuse(StatusCode::UNAUTHORIZED, format!("{err:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn peers_verify_each_others_signatures() {
        let sender = Peer::start(PeerOptions::new(&["ann"])).await;
        let receiver = Peer::start(PeerOptions::new(&["bea"]).shared_inbox(true)).await;
        let inbox = format!("{}/users/bea/inbox", receiver.origin());
        let note = |peer: &Peer| {
            json!({
                "@context": AS_CONTEXT,
                "id": peer.new_id("create"),
                "type": "Create",
                "actor": peer.actor_id("ann"),
                "object": {"id": format!("{}/notes/1", peer.origin()), "type": "Note", "content": "hi"},
            })
        };

        let signed = note(&sender);
        let (status, body) = sender.post_raw("ann", &inbox, &signed).await;
        assert_eq!(status, 202, "signed POST refused: {body}");
        receiver
            .wait_for("the signed Create", Duration::from_secs(5), |r| {
                activity::id(&r.activity) == activity::id(&signed) && r.inbox == "/users/bea/inbox"
            })
            .await;

        let (status, _) = sender.post_unsigned(&inbox, &note(&sender)).await;
        assert_eq!(status, 401, "unsigned POST must be refused");
        let (status, _) = sender
            .post_badly_signed("ann", &inbox, &note(&sender))
            .await;
        assert_eq!(status, 401, "badly signed POST must be refused");
        assert_eq!(receiver.refused().len(), 2, "{}", receiver.summary());

        let delivered = note(&sender);
        sender
            .deliver(
                "ann",
                &[&format!("{}/inbox", receiver.origin())],
                &delivered,
            )
            .await
            .expect("deliver with SendActivityTask");
        receiver
            .wait_for("the delivered Create", Duration::from_secs(5), |r| {
                activity::id(&r.activity) == activity::id(&delivered) && r.inbox == "/inbox"
            })
            .await;
        assert_eq!(receiver.received().len(), 2, "{}", receiver.summary());
    }
}
