//! Fan-out benchmark: one post in a community with N remote followers (each with its own inbox
//! on a local sink server that answers 202), timed until every delivery is signed, sent and
//! recorded. Prints deliveries per second. Run: `cargo bench --bench fanout` (N from
//! `FANOUT_FOLLOWERS`, default 5000).

mod support;

use cairn::{
    server,
    services::{communities, members, posts},
    store::delivery,
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let followers: usize = std::env::var("FANOUT_FOLLOWERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = support::Sink::default();
    let sink_origin = sink.start().await;

    let (federation, state) = support::instance(dir.path(), "fanout").await;
    let group = communities::create(&state, "hwb", None, None)
        .await
        .expect("community");
    let (author, _) = members::create(&state, "alice", None)
        .await
        .expect("member");
    support::add_followers(&state, group.id, &sink_origin, followers).await;

    let _running = server::start(federation).await.expect("instance starts");
    let started = Instant::now();
    posts::create(&state, &author, support::new_post("Fan-out benchmark #hwb"))
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
        sink.count()
    );
}
