//! The harness the API test files share: databases (SQLite or PostgreSQL), in-process instances,
//! requests and polling.

// Each test file uses part of the harness.
#![allow(dead_code)]

use cairn::{config::Config, server, state::AppState};
use reqwest::{header, Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};
use std::{
    collections::{BTreeSet, HashSet},
    future::Future,
    net::{SocketAddr, TcpListener},
    sync::{Mutex, Once, OnceLock},
    time::{Duration, Instant},
};

pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";
pub const AP_JSON: &str = "application/activity+json";
pub const LD_JSON: &str = "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";
/// The server's body limit (`cairn::http::MAX_BODY_BYTES`).
pub const ONE_MIB: usize = 1024 * 1024;
/// How long a federated delivery may take to arrive.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Databases
// ---------------------------------------------------------------------------------------------

/// One instance's database; a PostgreSQL one is dropped when this is.
pub struct TestDatabase {
    pub url: String,
    pub backend: String,
    pub _dir: Option<tempfile::TempDir>,
    pub _postgres: Option<PostgresDatabase>,
}

pub struct PostgresDatabase {
    pub admin_url: String,
    pub name: String,
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        // Best effort, on a thread of its own: Drop cannot await, and the instance's pool (still
        // held by its background tasks until the test's runtime ends) is cut off by FORCE.
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let db = sea_orm::Database::connect(admin_url).await.ok()?;
                let result = db.execute_unprepared(&sql).await;
                let _ = db.close().await;
                result.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("note: could not drop test database {}", self.name);
        }
    }
}

pub async fn fresh_database(label: &str) -> TestDatabase {
    let configured = std::env::var("CAIRN_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    match configured {
        Some(admin_url)
            if admin_url.starts_with("postgres://") || admin_url.starts_with("postgresql://") =>
        {
            let name = format!("cairn_api_{}", uuid::Uuid::new_v4().simple());
            let admin = sea_orm::Database::connect(admin_url.clone())
                .await
                .unwrap_or_else(|e| panic!("cannot connect to CAIRN_TEST_DATABASE_URL: {e}"));
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
            let _ = admin.close().await;
            let mut url = url::Url::parse(&admin_url).expect("CAIRN_TEST_DATABASE_URL parses");
            url.set_path(&format!("/{name}"));
            let backend = format!("PostgreSQL (database {name})");
            println!("[{label}] database backend: {backend}");
            TestDatabase {
                url: url.to_string(),
                backend,
                _dir: None,
                _postgres: Some(PostgresDatabase { admin_url, name }),
            }
        }
        Some(other) if !other.starts_with("sqlite") => {
            panic!("CAIRN_TEST_DATABASE_URL must be unset, sqlite… or postgres://…; got {other:?}")
        }
        _ => {
            let dir = tempfile::Builder::new()
                .prefix(&format!("cairn-api-{label}-"))
                .tempdir()
                .expect("a temporary directory");
            let file = dir.path().join("cairn.db");
            let backend = format!("SQLite ({})", file.display());
            println!("[{label}] database backend: {backend}");
            TestDatabase {
                url: format!("sqlite://{}?mode=rwc", file.display()),
                backend,
                _dir: Some(dir),
                _postgres: None,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Instances
// ---------------------------------------------------------------------------------------------

/// A port nobody in this process has been given yet, free when asked.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(Default::default);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("a bound address").port();
        drop(listener);
        if given.lock().expect("port registry").insert(port) {
            return port;
        }
    }
}

pub fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// A Cairn instance running inside the test process.
pub struct Instance {
    pub label: String,
    /// `localhost:PORT`: the host in every actor and object id.
    pub domain: String,
    /// `http://localhost:PORT`: the origin of every id.
    pub origin: String,
    /// Where the tests send their requests.
    pub base: String,
    pub state: AppState,
    pub running: server::Running,
    pub http: reqwest::Client,
    // Last, so the database outlives the server's handle.
    pub db: TestDatabase,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.running.server.abort();
    }
}

impl Instance {
    pub async fn start(label: &str) -> Instance {
        Self::start_with(label, |_| {}).await
    }

    /// Starts an instance on a fresh database; `adjust` may change the configuration.
    pub async fn start_with(label: &str, adjust: impl Fn(&mut Config)) -> Instance {
        init_logging();
        let mut last_error = String::new();
        // The port is free when picked but may be taken before the server binds it: retry.
        for _ in 0..3 {
            let db = fresh_database(label).await;
            let port = free_port();
            let mut config = Config {
                domain: format!("localhost:{port}"),
                bind: SocketAddr::from(([127, 0, 0, 1], port)),
                database_url: db.url.clone(),
                name: Some(format!("Cairn test {label}")),
                ..Config::default()
            };
            adjust(&mut config);
            config.validate().expect("a valid test configuration");
            let federation = server::build(config)
                .await
                .unwrap_or_else(|e| panic!("[{label}] build failed: {e}"));
            let running = match server::start(federation).await {
                Ok(r) => r,
                Err(e) => {
                    last_error = e.to_string();
                    continue;
                }
            };
            let state = running.federation.to_request_data().app_data().clone();
            let domain = state.config.domain.clone();
            let instance = Instance {
                label: label.to_owned(),
                origin: state.config.origin(),
                base: format!("http://{}", running.address),
                domain,
                state,
                running,
                http: reqwest::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("an HTTP client"),
                db,
            };
            println!(
                "[{label}] listening on {} as {} ({})",
                instance.base, instance.origin, instance.db.backend
            );
            return instance;
        }
        panic!("[{label}] could not start: {last_error}");
    }

    /// A new member; returns its API token.
    pub async fn member(&self, name: &str, display_name: &str) -> String {
        let (_, token) = cairn::services::members::create(&self.state, name, Some(display_name))
            .await
            .unwrap_or_else(|e| panic!("[{}] create member {name}: {e}", self.label));
        token
    }

    pub async fn community(&self, tag: &str, display_name: Option<&str>) {
        cairn::services::communities::create(&self.state, tag, display_name, None)
            .await
            .unwrap_or_else(|e| panic!("[{}] create community {tag}: {e}", self.label));
    }

    /// The ActivityPub id form of a path on this instance.
    pub fn id(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply, reqwest::Error> {
        self.try_send_with(&self.http, method, path, token, headers, body)
            .await
    }

    /// Sends a body over the server's limit on a connection of its own: the server answers
    /// before reading such a body and then closes the connection, which must not be reused.
    pub async fn try_send_oversized(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Reply, reqwest::Error> {
        let once = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        self.try_send_with(&once, method, path, token, headers, Some(body))
            .await
    }

    pub async fn try_send_with(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply, reqwest::Error> {
        let mut request = client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            headers,
            content_type,
            text,
            json,
        })
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let what = format!("{method} {path}");
        self.try_send(method, path, token, headers, body)
            .await
            .unwrap_or_else(|e| panic!("[{}] {what}: no answer: {e:?}", self.label))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, path, token, &[], None).await
    }

    /// GET with an `Accept` header, anonymously.
    pub async fn get_as(&self, path: &str, accept: &str) -> Reply {
        self.send(Method::GET, path, None, &[("accept", accept)], None)
            .await
    }

    pub async fn json_request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Reply {
        let bytes = serde_json::to_vec(body).expect("serialisable");
        self.send(
            method,
            path,
            token,
            &[("content-type", "application/json")],
            Some(bytes),
        )
        .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.json_request(Method::POST, path, token, body).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.json_request(Method::PATCH, path, token, body).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::DELETE, path, token, &[], None).await
    }

    /// POST /api/v1/posts, which must answer 201; returns the post.
    pub async fn create_post(&self, token: &str, body: Value) -> Value {
        let reply = self.post("/api/v1/posts", Some(token), &body).await;
        reply.expect(StatusCode::CREATED, &format!("create post {body}"));
        assert!(
            reply.json["key"].is_string(),
            "a created post has a key: {}",
            reply.text
        );
        reply.json
    }

    /// `{"items": […]}` of GET /api/v1/communities/{tag}/posts (`tag` already URL-encoded).
    pub async fn community_posts(&self, tag: &str, token: Option<&str>) -> Vec<Value> {
        let path = format!("/api/v1/communities/{tag}/posts");
        let reply = self.get(&path, token).await;
        reply.expect(StatusCode::OK, &path);
        items(&reply.json)
    }

    /// The keys of a community's posts, newest first.
    pub async fn community_keys(&self, tag: &str, token: Option<&str>) -> Vec<String> {
        keys(&self.community_posts(tag, token).await)
    }

    pub async fn community_view(&self, tag: &str) -> Value {
        let path = format!("/api/v1/communities/{tag}");
        let reply = self.get(&path, None).await;
        reply.expect(StatusCode::OK, &path);
        reply.json
    }

    pub async fn communities(&self) -> Vec<Value> {
        let reply = self.get("/api/v1/communities", None).await;
        reply.expect(StatusCode::OK, "GET /api/v1/communities");
        items(&reply.json)
    }

    /// What a refused request must not change: every community (with its post and follower
    /// counts) and the number of local posts NodeInfo reports.
    pub async fn snapshot(&self) -> Value {
        let nodeinfo = self.get("/nodeinfo/2.1", None).await;
        nodeinfo.expect(StatusCode::OK, "GET /nodeinfo/2.1");
        json!({
            "communities": self.communities().await,
            "local_posts": nodeinfo.json["usage"]["localPosts"],
        })
    }
}

/// One answer, with its body as text and (when it is JSON) as a value.
pub struct Reply {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub content_type: String,
    pub text: String,
    pub json: Value,
}

impl Reply {
    #[track_caller]
    pub fn expect(&self, status: StatusCode, what: &str) {
        assert_eq!(
            self.status, status,
            "{what}: expected {status}, got {} with body {}",
            self.status, self.text
        );
    }

    /// Asserts a 4xx in the API's error shape `{"error": "…"}`; returns the message.
    #[track_caller]
    pub fn client_error(&self, status: StatusCode, what: &str) -> String {
        self.expect(status, what);
        assert!(
            self.content_type.starts_with("application/json"),
            "{what}: an error is JSON, got content-type {:?}: {}",
            self.content_type,
            self.text
        );
        let message = self.json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no \"error\" string in {}", self.text))
            .to_owned();
        assert!(
            message.trim().len() >= 10,
            "{what}: the error message is not helpful: {message:?}"
        );
        message
    }
}

pub fn items(v: &Value) -> Vec<Value> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items array in {v}"))
        .clone()
}

pub fn keys(posts: &[Value]) -> Vec<String> {
    posts
        .iter()
        .map(|p| p["key"].as_str().expect("a post has a key").to_owned())
        .collect()
}

pub fn key_of(post: &Value) -> String {
    post["key"].as_str().expect("a post has a key").to_owned()
}

pub fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

pub fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Calls `check` every 50 ms until it gives a value; panics after `timeout`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
