//! Fan-out benchmark: one post in a community with N remote followers (each with its own inbox
//! on a local sink server that answers 202), timed until every delivery is signed, sent and
//! recorded. Prints deliveries per second. Run: `cargo bench --bench fanout` (N from
//! `FANOUT_FOLLOWERS`, default 5000).

use axum::{http::StatusCode, routing::post, Router};
use cairn::{
    config::Config,
    server,
    services::{communities, members, posts},
    store::{actor, delivery, follow},
};
use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let followers: usize = std::env::var("FANOUT_FOLLOWERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let dir = tempfile::tempdir().expect("temp dir");

    // The sink: every inbox answers 202 and is counted.
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let sink = Router::new().route(
        "/inbox/{n}",
        post(move || {
            let c = counter.clone();
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                StatusCode::ACCEPTED
            }
        }),
    );
    let sink_port = free_port();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", sink_port))
        .await
        .expect("sink listens");
    tokio::spawn(async move { axum::serve(listener, sink).await });

    let port = free_port();
    let config = Config {
        domain: format!("localhost:{port}"),
        bind: SocketAddr::from(([127, 0, 0, 1], port)),
        database_url: format!("sqlite://{}/bench.db?mode=rwc", dir.path().display()),
        ..Config::default()
    };
    let federation = server::build(config).await.expect("instance builds");
    let state = federation.to_request_data().app_data().clone();
    let group = communities::create(&state, "hwb", None, None)
        .await
        .expect("community");
    let (author, _) = members::create(&state, "alice", None)
        .await
        .expect("member");

    // N remote followers, each with its own inbox (no shared inbox to collapse them).
    let now = Utc::now();
    let rows: Vec<actor::ActiveModel> = (0..followers)
        .map(|i| {
            let origin = format!("http://localhost:{sink_port}");
            actor::ActiveModel {
                ap_id: Set(format!("{origin}/users/f{i}")),
                kind: Set("Person".into()),
                name: Set(format!("f{i}")),
                local_name: Set(None),
                display_name: Set(None),
                summary: Set(None),
                inbox: Set(format!("{origin}/inbox/{i}")),
                shared_inbox: Set(None),
                outbox: Set(None),
                followers_url: Set(None),
                public_key_pem: Set(String::new()),
                private_key_pem: Set(None),
                local: Set(false),
                origin: Set(origin),
                last_refreshed_at: Set(now),
                created_at: Set(now),
                ..Default::default()
            }
        })
        .collect();
    for chunk in rows.chunks(500) {
        actor::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&state.db)
            .await
            .expect("followers stored");
    }
    let ids: Vec<i64> = actor::Entity::find()
        .filter(actor::Column::Local.eq(false))
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
            target_id: Set(group.id),
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

    let _running = server::start(federation).await.expect("instance starts");
    let started = Instant::now();
    posts::create(
        &state,
        &author,
        posts::NewPost {
            content: "Fan-out benchmark #hwb".into(),
            title: None,
            visibility: None,
            communities: vec![],
            in_reply_to: None,
            summary: None,
        },
    )
    .await
    .expect("post");
    let queued = started.elapsed();
    let deadline = started + Duration::from_secs(300);
    loop {
        let done = delivery::Entity::find()
            .filter(delivery::Column::Status.ne(delivery::PENDING))
            .count(&state.db)
            .await
            .expect("count");
        if done as usize >= followers || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let delivered = delivery::Entity::find()
        .filter(delivery::Column::Status.eq(delivery::DELIVERED))
        .count(&state.db)
        .await
        .expect("count");
    println!(
        "fan-out: {followers} followers, post queued in {:.1} ms, {delivered} delivered and recorded in {:.2} s = {:.0} signed deliveries/s (sink saw {})",
        queued.as_secs_f64() * 1000.0,
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64(),
        received.load(Ordering::Relaxed)
    );
}
