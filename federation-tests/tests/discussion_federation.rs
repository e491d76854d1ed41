//! Discussion across instances, with real `cairn` processes: stirling (SQLite) hosts `#hwb`,
//! whose facilitator is alice; bob on falkirk (PostgreSQL when the local server answers, else
//! SQLite) follows it. bob's reply on falkirk threads under alice's post on stirling; alice's
//! pins on stirling show on falkirk's copy of the community (those made before the follow read
//! from the Group's `featured` collection, later ones by `Add`/`Remove`), and stirling's posts
//! are in bob's feed on falkirk.
//!
//! Build the server first: `cargo build --bin cairn`, then
//! `cargo test -p federation-tests --test discussion_federation -- --nocapture`.

use std::time::Duration;

use federation_tests::{
    api::{self, Api},
    instance::{Database, Instance, InstanceOptions},
    poll,
};
use reqwest::Method;
use serde_json::{json, Value};

const HOP: Duration = Duration::from_secs(15);

fn items(answer: &api::Answer) -> Vec<Value> {
    answer.body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_thread_and_pins_travel_between_instances() {
    let (stirling, falkirk) = tokio::join!(
        Instance::start("stirling"),
        Instance::start_with(InstanceOptions::postgres_if_available("falkirk")),
    );
    println!(
        "stirling {} (SQLite), falkirk {} ({})",
        stirling.base_url(),
        falkirk.base_url(),
        match falkirk.database() {
            Database::Postgres => "PostgreSQL",
            Database::Sqlite => "SQLite: PostgreSQL not reachable with psql",
        }
    );
    stirling.create_community("hwb");
    let alice = Api::of(&stirling, Some(&stirling.create_member("alice")));
    let bob = Api::of(&falkirk, Some(&falkirk.create_member("bob")));
    // The administrator appoints the facilitator.
    let out = stirling.admin(&["add-moderator", "hwb", "alice"]);
    println!("add-moderator: {out}");
    let group = alice.fetch_activitypub(&stirling.url("/c/hwb")).await.body;
    assert_eq!(
        group["attributedTo"],
        json!(stirling.url("/c/hwb/moderators")),
        "{group}"
    );
    let moderators = alice
        .fetch_activitypub(&stirling.url("/c/hwb/moderators"))
        .await
        .body;
    assert_eq!(
        moderators["orderedItems"],
        json!([stirling.url("/u/alice")]),
        "{moderators}"
    );

    // Before anyone on falkirk follows #hwb, alice pins a welcome.
    let welcome = alice
        .create_post("Welcome: introduce yourself and your school #hwb")
        .await;
    let welcome_id = api::ap_id(&welcome);
    let pinned = alice
        .request(
            Method::POST,
            "/api/v1/communities/hwb/pins",
            Some(&json!({ "post": api::key(&welcome) })),
        )
        .await;
    assert_eq!(pinned.status.as_u16(), 200, "{}", pinned.text);

    // bob follows stirling's #hwb from falkirk; falkirk reads the Group's featured collection.
    let remote = format!("hwb@{}", stirling.domain());
    bob.follow_community(&remote).await;
    let anyone = Api::of(&stirling, None);
    poll(HOP, "bob's follow of #hwb to be accepted", || async {
        let c = anyone.community("hwb").await?;
        (c["followers"].as_u64() == Some(1)).then_some(())
    })
    .await;

    let pins_on_falkirk = || async {
        let pins = bob
            .request(
                Method::GET,
                &format!("/api/v1/communities/{remote}/pins"),
                None,
            )
            .await;
        items(&pins)
            .iter()
            .map(|p| p["id"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    let (_, took) = poll(HOP, "the earlier pin on falkirk, from featured", || async {
        (pins_on_falkirk().await == vec![welcome_id.clone()]).then_some(())
    })
    .await;
    println!(
        "0. falkirk read the featured collection after {} ms",
        took.as_millis()
    );

    // alice asks; the post reaches falkirk's copy of the community.
    let root = alice
        .create_post("Reflective question: what will you try next week? #hwb")
        .await;
    let root_id = api::ap_id(&root);
    let root_key = api::key(&root);
    poll(HOP, "alice's post on falkirk", || {
        bob.find_in_community(&remote, &root_id)
    })
    .await;

    // 1. bob replies on falkirk; the reply threads under alice's post on stirling.
    let reply = bob
        .create_post_with(json!({
            "content": "Cold-calling with a think-pair-share first",
            "in_reply_to": root_id,
        }))
        .await;
    let reply_id = api::ap_id(&reply);
    let (thread, took) = poll(HOP, "bob's reply in the thread on stirling", || async {
        let t = anyone
            .request(
                Method::GET,
                &format!("/api/v1/posts/{root_key}/thread"),
                None,
            )
            .await;
        let items = items(&t);
        items
            .iter()
            .any(|i| i["id"].as_str() == Some(reply_id.as_str()))
            .then_some(t.body)
    })
    .await;
    println!(
        "1. bob's reply threaded on stirling after {} ms",
        took.as_millis()
    );
    let item = &thread["items"][0];
    assert_eq!(item["depth"], json!(1), "{thread}");
    assert_eq!(item["parent"], json!(root_key), "{thread}");
    assert_eq!(
        item["author"]["id"],
        json!(falkirk.url("/u/bob")),
        "{thread}"
    );
    let counted = anyone.get_post(&root_key).await.expect("the root post");
    assert_eq!(counted["replies"], json!(1), "{counted}");

    // 2. alice pins the question; falkirk's copy of #hwb shows it pinned first.
    let pinned = alice
        .request(
            Method::POST,
            "/api/v1/communities/hwb/pins",
            Some(&json!({ "post": root_key })),
        )
        .await;
    assert_eq!(pinned.status.as_u16(), 200, "{}", pinned.text);
    let featured = anyone
        .fetch_activitypub(&stirling.url("/c/hwb/featured"))
        .await;
    let featured_ids: Vec<&str> = featured.body["orderedItems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(
        featured_ids,
        vec![root_id.as_str(), welcome_id.as_str()],
        "newest pin first: {}",
        featured.text
    );
    let (listed, took) = poll(HOP, "the pin on falkirk's copy of #hwb", || async {
        let first = bob.community_posts(&remote).await.into_iter().next()?;
        (first["id"].as_str() == Some(root_id.as_str()) && first["pinned"] == json!(true))
            .then_some(first)
    })
    .await;
    println!("2. the pin reached falkirk after {} ms", took.as_millis());
    assert_eq!(listed["local"], json!(false), "{listed}");
    assert_eq!(
        pins_on_falkirk().await,
        vec![root_id.clone(), welcome_id.clone()]
    );
    // falkirk's members cannot pin in a community that lives on stirling.
    let refused = bob
        .request(
            Method::POST,
            &format!("/api/v1/communities/{remote}/pins"),
            Some(&json!({ "post": api::key(&listed) })),
        )
        .await;
    assert_eq!(refused.status.as_u16(), 400, "{}", refused.text);

    // 3. stirling's posts are in bob's feed on falkirk.
    let feed = bob.request(Method::GET, "/api/v1/feed", None).await;
    assert!(
        items(&feed)
            .iter()
            .any(|p| p["id"].as_str() == Some(root_id.as_str())),
        "{}",
        feed.text
    );

    // 4. alice unpins; so does falkirk.
    let unpinned = alice
        .request(
            Method::DELETE,
            &format!("/api/v1/communities/hwb/pins/{root_key}"),
            None,
        )
        .await;
    assert_eq!(unpinned.status.as_u16(), 204, "{}", unpinned.text);
    let (_, took) = poll(HOP, "the unpin on falkirk", || async {
        (pins_on_falkirk().await == vec![welcome_id.clone()]).then_some(())
    })
    .await;
    println!("4. the unpin reached falkirk after {} ms", took.as_millis());
    let listed = bob.community_posts(&remote).await;
    assert!(
        listed
            .iter()
            .any(|p| p["id"].as_str() == Some(root_id.as_str()) && p["pinned"] == json!(false)),
        "the question is no longer pinned on falkirk: {listed:?}"
    );

    // 5. alice, a facilitator, takes the (pinned) welcome out of #hwb; falkirk's copy drops it.
    let removed = alice
        .request(
            Method::DELETE,
            &format!("/api/v1/communities/hwb/posts/{}", api::key(&welcome)),
            None,
        )
        .await;
    assert_eq!(removed.status.as_u16(), 204, "{}", removed.text);
    let (_, took) = poll(HOP, "the removal on falkirk", || async {
        let listed = bob.community_posts(&remote).await;
        (!listed
            .iter()
            .any(|p| p["id"].as_str() == Some(welcome_id.as_str()))
            && pins_on_falkirk().await.is_empty())
        .then_some(())
    })
    .await;
    println!(
        "5. the removal reached falkirk after {} ms",
        took.as_millis()
    );
    let listed = bob.community_posts(&remote).await;
    assert!(
        listed
            .iter()
            .any(|p| p["id"].as_str() == Some(root_id.as_str())),
        "the other posts stay: {listed:?}"
    );
}

/// bob on falkirk answers callum's reply on stirling, which falkirk has never seen: falkirk
/// reads it from stirling first, so bob's reply threads under it on both instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_post_never_seen_here_reaches_its_thread() {
    let (stirling, falkirk) = tokio::join!(
        Instance::start("stirling-unseen"),
        Instance::start_with(InstanceOptions::postgres_if_available("falkirk-unseen")),
    );
    stirling.create_community("hwb");
    let alice = Api::of(&stirling, Some(&stirling.create_member("alice")));
    let callum = Api::of(&stirling, Some(&stirling.create_member("callum")));
    let bob = Api::of(&falkirk, Some(&falkirk.create_member("bob")));
    let anyone = Api::of(&stirling, None);

    let root = alice
        .create_post("What do exit tickets tell you? #hwb")
        .await;
    let root_key = api::key(&root);
    let callum_reply = callum
        .create_post_with(json!({
            "content": "Who needs the next lesson's recap",
            "in_reply_to": api::ap_id(&root),
        }))
        .await;
    let callum_id = api::ap_id(&callum_reply);

    let answer = bob
        .try_create_post(json!({
            "content": "Same here: I sort them into three piles",
            "in_reply_to": callum_id,
        }))
        .await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.text);
    let bob_reply = answer.body;
    let bob_id = api::ap_id(&bob_reply);

    // On falkirk, the reply threads under its copy of callum's post (not a thread of its own).
    let on_falkirk = bob
        .request(
            Method::GET,
            &format!("/api/v1/posts/{}/thread", api::key(&bob_reply)),
            None,
        )
        .await;
    assert_eq!(on_falkirk.status.as_u16(), 200, "{}", on_falkirk.text);
    let top = on_falkirk.body["root"]["id"].as_str().unwrap_or_default();
    assert!(
        top == callum_id || top == api::ap_id(&root),
        "{}",
        on_falkirk.text
    );
    assert!(
        items(&on_falkirk)
            .iter()
            .any(|i| i["id"].as_str() == Some(bob_id.as_str())),
        "{}",
        on_falkirk.text
    );

    // On stirling, under callum's reply in alice's thread.
    let (thread, took) = poll(HOP, "bob's reply in the thread on stirling", || async {
        let t = anyone
            .request(
                Method::GET,
                &format!("/api/v1/posts/{root_key}/thread"),
                None,
            )
            .await;
        items(&t)
            .iter()
            .any(|i| i["id"].as_str() == Some(bob_id.as_str()))
            .then_some(t.body)
    })
    .await;
    println!(
        "bob's reply threaded on stirling after {} ms",
        took.as_millis()
    );
    let bob_item = thread["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["id"].as_str() == Some(bob_id.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(bob_item["depth"], json!(2), "{thread}");
    assert_eq!(
        bob_item["parent"],
        json!(api::key(&callum_reply)),
        "{thread}"
    );

    // A post on stirling that does not exist: 422 naming it, nothing stored on falkirk.
    let missing = stirling.url("/p/nonexistent");
    let refused = bob
        .try_create_post(json!({"content": "Hello?", "in_reply_to": missing}))
        .await;
    assert_eq!(refused.status.as_u16(), 422, "{}", refused.text);
    assert!(refused.text.contains(&missing), "{}", refused.text);
}
