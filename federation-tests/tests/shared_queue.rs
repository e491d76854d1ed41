//! Two `cairn` processes share one PostgreSQL database (several stateless processes behind a
//! load balancer, DESIGN §9). Both delivery workers take rows from the one queue; each delivery
//! is sent once (`FOR UPDATE SKIP LOCKED`).

use federation_tests::{
    activity,
    api::{self, Api},
    instance::{postgres_available, Instance, InstanceOptions},
    peer::{Peer, PeerOptions, Received},
};
use std::{collections::HashMap, time::Duration};

const FOLLOWERS: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_one_delivery_queue() {
    if !postgres_available() {
        panic!("this test needs PostgreSQL (scripts/test-all starts it)");
    }
    let a = Instance::start_with(
        InstanceOptions::postgres("shared-a").env("CAIRN_DELIVERY_CONCURRENCY", "2"),
    )
    .await;
    let b = Instance::start_with(
        InstanceOptions::sqlite("shared-b")
            .env("CAIRN_DATABASE_URL", a.database_url())
            .env("CAIRN_DOMAIN", &a.domain())
            .env("CAIRN_DELIVERY_CONCURRENCY", "2"),
    )
    .await;
    a.create_community("hwb");
    let alice = Api::of(&a, Some(&a.create_member("alice")));

    let peer = Peer::start(PeerOptions::numbered("q", FOLLOWERS)).await;
    let group = format!("hwb@{}", a.domain());
    peer.resolve(&group).await;
    for name in peer.actor_names().to_vec() {
        peer.follow(&name, &group).await;
    }
    // Slow inboxes keep the fan-out going long enough for the second process's worker to join.
    peer.set_inbox_delay(Duration::from_millis(400));
    let post = alice.create_post("One queue, two workers #hwb").await;
    let id = api::ap_id(&post);
    let is_delivery =
        |r: &Received| r.inbox_owner().is_some() && activity::announces_post(&r.activity, &id);
    let names = peer.actor_names().to_vec();
    let received = peer
        .wait_until(
            "the Announce in every inbox",
            Duration::from_secs(60),
            |received| {
                let reached: std::collections::HashSet<&str> = received
                    .iter()
                    .filter(|r| is_delivery(r))
                    .filter_map(Received::inbox_owner)
                    .collect();
                names.iter().all(|n| reached.contains(n.as_str()))
            },
        )
        .await;
    // Anything still in flight arrives within a delay or two.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut per_inbox: HashMap<String, usize> = HashMap::new();
    for r in peer.received_matching(is_delivery) {
        *per_inbox
            .entry(r.inbox_owner().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let duplicates: Vec<_> = per_inbox.iter().filter(|(_, n)| **n > 1).collect();
    let sent_by_a = a.log_grep("delivered ").len();
    let sent_by_b = b.log_grep("delivered ").len();
    println!(
        "{} deliveries arrived for {FOLLOWERS} inboxes; process A sent {sent_by_a}, process B sent {sent_by_b}",
        received.iter().filter(|r| is_delivery(r)).count()
    );
    assert!(duplicates.is_empty(), "sent twice: {duplicates:?}");
    assert!(
        sent_by_b > 0,
        "the second process never took a delivery from the shared queue"
    );
}
