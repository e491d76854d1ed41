//! Shared by the benchmarks: instances in-process, a sink that stands in for remote inboxes, and
//! remote followers written straight into an instance's database.

use activitypub_federation::config::FederationConfig;
use axum::{body::Bytes, extract::Path, http::StatusCode, routing::post, Router};
use cairn::{
    config::Config,
    server,
    state::AppState,
    store::{actor, follow},
};
use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// An instance on a free port with its own SQLite file in `dir`; not started yet.
pub async fn instance(dir: &std::path::Path, name: &str) -> (FederationConfig<AppState>, AppState) {
    let port = free_port();
    let config = Config {
        domain: format!("localhost:{port}"),
        bind: SocketAddr::from(([127, 0, 0, 1], port)),
        database_url: format!("sqlite://{}/{name}.db?mode=rwc", dir.display()),
        ..Config::default()
    };
    let federation = server::build(config).await.expect("instance builds");
    let state = federation.to_request_data().app_data().clone();
    (federation, state)
}

/// Every POST to `/inbox/{n}` is answered 202 and recorded with its arrival time and body.
#[derive(Clone, Default)]
pub struct Sink {
    pub received: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Sink {
    pub async fn start(&self) -> String {
        let received = self.received.clone();
        let app = Router::new().route(
            "/inbox/{n}",
            post(move |Path(_n): Path<String>, body: Bytes| {
                let received = received.clone();
                async move {
                    if let Ok(mut r) = received.lock() {
                        r.push((Instant::now(), String::from_utf8_lossy(&body).into_owned()));
                    }
                    StatusCode::ACCEPTED
                }
            }),
        );
        let port = free_port();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("sink listens");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://localhost:{port}")
    }

    pub fn count(&self) -> usize {
        self.received.lock().map(|r| r.len()).unwrap_or(0)
    }
}

/// `n` remote followers of `group_id`, each with its own inbox at `sink_origin/inbox/{i}`.
pub async fn add_followers(state: &AppState, group_id: i64, sink_origin: &str, n: usize) {
    let now = Utc::now();
    let rows: Vec<actor::ActiveModel> = (0..n)
        .map(|i| actor::ActiveModel {
            ap_id: Set(format!("{sink_origin}/users/f{i}")),
            kind: Set("Person".into()),
            name: Set(format!("f{i}")),
            local_name: Set(None),
            display_name: Set(None),
            summary: Set(None),
            inbox: Set(format!("{sink_origin}/inbox/{i}")),
            shared_inbox: Set(None),
            outbox: Set(None),
            followers_url: Set(None),
            public_key_pem: Set(String::new()),
            private_key_pem: Set(None),
            local: Set(false),
            origin: Set(sink_origin.to_owned()),
            last_refreshed_at: Set(now),
            created_at: Set(now),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(500) {
        actor::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&state.db)
            .await
            .expect("followers stored");
    }
    let ids: Vec<i64> = actor::Entity::find()
        .filter(actor::Column::Origin.eq(sink_origin))
        .all(&state.db)
        .await
        .expect("followers")
        .into_iter()
        .map(|a| a.id)
        .collect();
    let follows: Vec<follow::ActiveModel> = ids
        .iter()
        .map(|id| follow::ActiveModel {
            follower_id: Set(*id),
            target_id: Set(group_id),
            state: Set(follow::ACCEPTED.into()),
            activity_id: Set(None),
            created_at: Set(now),
            ..Default::default()
        })
        .collect();
    for chunk in follows.chunks(500) {
        follow::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&state.db)
            .await
            .expect("follows stored");
    }
}

pub fn new_post(content: &str) -> cairn::services::posts::NewPost {
    cairn::services::posts::NewPost {
        content: content.into(),
        title: None,
        visibility: None,
        communities: vec![],
        in_reply_to: None,
        summary: None,
        ..Default::default()
    }
}
