//! A schools network's federation policy: stirling federates only with national (allowlist)
//! and serves its ActivityPub documents only to signed fetches (authorized fetch). National's
//! signed fetches and deliveries work; an outside server is refused with 403 (inbox) or 401
//! (unsigned fetch).

use federation_tests::{
    activity::AS_CONTEXT,
    api::{self, Api},
    instance::{Instance, InstanceOptions},
    peer::{Peer, PeerOptions},
    poll,
};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn allowlist_and_authorized_fetch() {
    let national = Instance::start("national").await;
    let stirling = Instance::start_with(
        InstanceOptions::sqlite("stirling")
            .env("CAIRN_FEDERATION_ALLOW", &national.domain())
            .env("CAIRN_AUTHORIZED_FETCH", "1"),
    )
    .await;
    for instance in [&national, &stirling] {
        instance.create_community("hwb");
    }
    let alice = Api::of(&stirling, Some(&stirling.create_member("alice")));
    let nora = Api::of(&national, Some(&national.create_member("nora")));

    // Unsigned fetches of stirling's documents are refused; its pages and WebFinger are not.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let group_url = stirling.url("/c/hwb");
    let unsigned = http
        .get(&group_url)
        .header("Accept", "application/activity+json")
        .send()
        .await
        .expect("GET");
    assert_eq!(
        unsigned.status(),
        401,
        "an unsigned fetch under authorized fetch"
    );
    let page = http.get(&group_url).send().await.expect("GET page");
    assert_eq!(page.status(), 200, "the HTML page stays public");
    let instance_actor = http
        .get(stirling.url("/actor"))
        .header("Accept", "application/activity+json")
        .send()
        .await
        .expect("GET /actor");
    assert_eq!(
        instance_actor.status(),
        200,
        "the instance actor stays public"
    );

    // National (allowed) fetches with signatures, follows, and receives posts.
    national.link(&stirling);
    poll(
        Duration::from_secs(15),
        "national's follows of stirling to be accepted",
        || async {
            let links = nora.links().await;
            links
                .iter()
                .any(|l| l["follows_accepted"].as_u64() == Some(1))
                .then_some(())
        },
    )
    .await;
    let post = alice.create_post("Inside the schools network #hwb").await;
    let id = api::ap_id(&post);
    poll(Duration::from_secs(10), "the post at national", || {
        nora.find_in_community("hwb", &id)
    })
    .await;

    // An outside server is refused at the inbox with 403, before anything else.
    let peer = Peer::start(PeerOptions::new(&["outsider"])).await;
    let follow = json!({
        "@context": AS_CONTEXT,
        "id": peer.new_id("follow"),
        "type": "Follow",
        "actor": peer.actor_id("outsider"),
        "object": group_url,
    });
    let (status, body) = peer
        .post_raw("outsider", &stirling.url("/c/hwb/inbox"), &follow)
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("does not federate"), "{body}");
    let community = alice.community("hwb").await.expect("hwb");
    assert_eq!(
        community["followers"], 1,
        "only national follows: {community}"
    );
}
