//! A small client for Cairn's JSON API (README, "JSON API"). Answers are `serde_json::Value`;
//! methods that expect success panic with the method, URL, status and body when they do not get it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::instance::Instance;

/// An HTTP answer: status, body parsed as JSON when it is JSON (else a JSON string), raw text.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

/// A client for one instance, optionally signed in as one member.
#[derive(Clone, Debug)]
pub struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    /// Anonymous client for `base_url` (`http://localhost:PORT`).
    pub fn new(base_url: &str) -> Api {
        Api {
            base: base_url.trim_end_matches('/').to_string(),
            token: None,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("build an HTTP client"),
        }
    }

    /// Client for an instance, signed in with `token` when given.
    pub fn of(instance: &Instance, token: Option<&str>) -> Api {
        let api = Api::new(&instance.base_url());
        match token {
            Some(token) => api.with_token(token),
            None => api,
        }
    }

    pub fn with_token(mut self, token: &str) -> Api {
        self.token = Some(token.to_string());
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Any request to the API; `path` starts with `/`.
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        let url = format!("{}{}", self.base, path);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header("Accept", "application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|err| panic!("{method} {url} failed: {err}"));
        let status = response.status();
        let text = response
            .text()
            .await
            .unwrap_or_else(|err| panic!("{method} {url}: reading the body failed: {err}"));
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()))
        };
        Answer { status, body, text }
    }

    async fn expect(&self, method: Method, path: &str, body: Option<&Value>, ok: &[u16]) -> Value {
        let answer = self.request(method.clone(), path, body).await;
        if !ok.contains(&answer.status.as_u16()) {
            panic!(
                "{method} {}{path} answered {} (expected {ok:?}): {}{}",
                self.base,
                answer.status,
                answer.text,
                body.map(|b| format!("\nrequest body: {b}"))
                    .unwrap_or_default()
            );
        }
        answer.body
    }

    /// `GET /api/v1/me`
    pub async fn me(&self) -> Value {
        self.expect(Method::GET, "/api/v1/me", None, &[200]).await
    }

    /// `POST /api/v1/posts {"content": …}`; expects 201 and returns the post.
    pub async fn create_post(&self, content: &str) -> Value {
        self.create_post_with(json!({ "content": content })).await
    }

    /// `POST /api/v1/posts` with a full body; expects 201.
    pub async fn create_post_with(&self, body: Value) -> Value {
        self.expect(Method::POST, "/api/v1/posts", Some(&body), &[201])
            .await
    }

    /// `POST /api/v1/posts` without judging the answer.
    pub async fn try_create_post(&self, body: Value) -> Answer {
        self.request(Method::POST, "/api/v1/posts", Some(&body))
            .await
    }

    /// `GET /api/v1/posts/{key}`: `Some(post)` on 200, `None` on 404 or 410, panics otherwise.
    pub async fn get_post(&self, key: &str) -> Option<Value> {
        let answer = self.get_post_answer(key).await;
        match answer.status.as_u16() {
            200 => Some(answer.body),
            404 | 410 => None,
            _ => panic!(
                "GET {}/api/v1/posts/{key} answered {}: {}",
                self.base, answer.status, answer.text
            ),
        }
    }

    /// `GET /api/v1/posts/{key}` without judging the answer.
    pub async fn get_post_answer(&self, key: &str) -> Answer {
        self.request(Method::GET, &format!("/api/v1/posts/{key}"), None)
            .await
    }

    /// `PATCH /api/v1/posts/{key}`; expects 200.
    pub async fn edit_post(&self, key: &str, changes: Value) -> Value {
        self.expect(
            Method::PATCH,
            &format!("/api/v1/posts/{key}"),
            Some(&changes),
            &[200],
        )
        .await
    }

    /// `DELETE /api/v1/posts/{key}`; expects 204.
    pub async fn delete_post(&self, key: &str) {
        self.expect(
            Method::DELETE,
            &format!("/api/v1/posts/{key}"),
            None,
            &[204],
        )
        .await;
    }

    /// `GET /api/v1/communities` → items.
    pub async fn communities(&self) -> Vec<Value> {
        items(
            self.expect(Method::GET, "/api/v1/communities", None, &[200])
                .await,
        )
    }

    /// `GET /api/v1/communities/{tag}`: `None` on 404.
    pub async fn community(&self, tag: &str) -> Option<Value> {
        let answer = self
            .request(Method::GET, &format!("/api/v1/communities/{tag}"), None)
            .await;
        match answer.status.as_u16() {
            200 => Some(answer.body),
            404 => None,
            _ => panic!(
                "GET {}/api/v1/communities/{tag} answered {}: {}",
                self.base, answer.status, answer.text
            ),
        }
    }

    /// `GET /api/v1/communities/{tag}/posts?limit=50` → items, newest first.
    pub async fn community_posts(&self, tag: &str) -> Vec<Value> {
        items(
            self.expect(
                Method::GET,
                &format!("/api/v1/communities/{tag}/posts?limit=50"),
                None,
                &[200],
            )
            .await,
        )
    }

    /// The posts of community `tag` whose ActivityPub id is `ap_id`.
    pub async fn community_posts_with_id(&self, tag: &str, ap_id: &str) -> Vec<Value> {
        self.community_posts(tag)
            .await
            .into_iter()
            .filter(|post| post["id"].as_str() == Some(ap_id))
            .collect()
    }

    /// The post of community `tag` whose ActivityPub id is `ap_id`, if listed.
    pub async fn find_in_community(&self, tag: &str, ap_id: &str) -> Option<Value> {
        self.community_posts_with_id(tag, ap_id)
            .await
            .into_iter()
            .next()
    }

    /// `POST /api/v1/communities/{tag}/follow` → `{"state": …}`.
    pub async fn follow_community(&self, tag: &str) -> Value {
        self.expect(
            Method::POST,
            &format!("/api/v1/communities/{tag}/follow"),
            None,
            &[200, 201, 202],
        )
        .await
    }

    /// `DELETE /api/v1/communities/{tag}/follow`; expects 204.
    pub async fn unfollow_community(&self, tag: &str) {
        self.expect(
            Method::DELETE,
            &format!("/api/v1/communities/{tag}/follow"),
            None,
            &[200, 204],
        )
        .await;
    }

    /// `GET /api/v1/links` → items.
    pub async fn links(&self) -> Vec<Value> {
        items(
            self.expect(Method::GET, "/api/v1/links", None, &[200])
                .await,
        )
    }

    /// `GET url` as a fediverse server would (`Accept: application/activity+json`, unsigned).
    pub async fn fetch_activitypub(&self, url: &str) -> Answer {
        let response = self
            .http
            .get(url)
            .header("Accept", "application/activity+json")
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {url} (activity+json) failed: {err}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Answer { status, body, text }
    }
}

/// The `items` array of a `{"items": […]}` answer (a bare array is accepted too).
pub fn items(answer: Value) -> Vec<Value> {
    match answer {
        Value::Array(items) => items,
        Value::Object(mut map) => match map.remove("items") {
            Some(Value::Array(items)) => items,
            _ => panic!("expected {{\"items\": [...]}}, got {}", Value::Object(map)),
        },
        other => panic!("expected {{\"items\": [...]}}, got {other}"),
    }
}

/// The `key` of a post.
pub fn key(post: &Value) -> String {
    post["key"]
        .as_str()
        .unwrap_or_else(|| panic!("post has no string `key`: {post}"))
        .to_string()
}

/// The ActivityPub `id` of a post.
pub fn ap_id(post: &Value) -> String {
    post["id"]
        .as_str()
        .unwrap_or_else(|| panic!("post has no string `id`: {post}"))
        .to_string()
}
