//! Latency benchmark: a local instance and a national one linked to it, in one process; a
//! follower of the national `#hwb` community is a sink. Each post is timed from the API call at
//! the local instance to the national Group's Announce arriving at the follower. Prints p50 and
//! p95. Run: `cargo bench --bench latency` (`LATENCY_POSTS`, default 50).

mod support;

use cairn::{
    server,
    services::{communities, links, members, posts},
};
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let count: usize = std::env::var("LATENCY_POSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = support::Sink::default();
    let sink_origin = sink.start().await;

    let (local_fed, local) = support::instance(dir.path(), "stirling").await;
    let (national_fed, national) = support::instance(dir.path(), "national").await;
    communities::create(&local, "hwb", None, None)
        .await
        .expect("local hwb");
    let national_hwb = communities::create(&national, "hwb", None, None)
        .await
        .expect("national hwb");
    let (author, _) = members::create(&local, "alice", None)
        .await
        .expect("member");
    support::add_followers(&national, national_hwb.id, &sink_origin, 1).await;
    let local_origin = local.origin();
    let _local = server::start(local_fed).await.expect("local starts");
    let national_running = server::start(national_fed).await.expect("national starts");
    let ctx = national_running.federation.to_request_data();
    links::link(&ctx, &local_origin).await.expect("link");
    let linked = Instant::now();
    while links::list(&national).await.expect("links")[0].follows_accepted == 0 {
        assert!(
            linked.elapsed() < Duration::from_secs(20),
            "link not accepted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let before = sink.count();
        let started = Instant::now();
        posts::create(
            &local,
            &author,
            support::new_post(&format!("Latency {i} #hwb")),
        )
        .await
        .expect("post");
        loop {
            if sink.count() > before {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "post {i} never arrived"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let arrived = sink.received.lock().expect("sink")[before].0;
        samples.push(arrived.duration_since(started));
    }
    samples.sort();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!(
        "latency local → national → follower over {count} posts: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        pct(50).as_secs_f64() * 1000.0,
        pct(95).as_secs_f64() * 1000.0,
        samples[samples.len() - 1].as_secs_f64() * 1000.0
    );
}
