//! An event across three real Cairn instances: created on local instance stirling (SQLite),
//! joined by a member of local instance falkirk (SQLite) and by a member of the national instance
//! (PostgreSQL when the local server answers), which is linked to both. The origin answers each
//! `Join` with an `Accept`, and the participant list reads the same, in the same order, on all
//! three; a `Leave` is seen everywhere too.
//!
//! Build the server first: `cargo build --bin cairn`, then
//! `cargo test -p federation-tests --test events_federation -- --nocapture`.

use std::time::Duration;

use federation_tests::{
    api::Api,
    instance::{Instance, InstanceOptions},
    poll,
};
use reqwest::Method;
use serde_json::json;

/// How long a Join, its Accept and the origin's Update may take to travel.
const HOPS: Duration = Duration::from_secs(20);

/// A path segment holding a whole URL.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The participant ids an instance lists for the event `spec` (a key or an encoded id).
async fn participants(api: &Api, spec: &str) -> Option<Vec<String>> {
    let answer = api
        .request(
            Method::GET,
            &format!("/api/v1/events/{spec}/participants"),
            None,
        )
        .await;
    if !answer.status.is_success() {
        return None;
    }
    Some(
        answer.body["items"]
            .as_array()?
            .iter()
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect(),
    )
}

/// Polls until `api` lists exactly `wanted`.
async fn wait_for_list(api: &Api, spec: &str, wanted: &[String], who: &str) {
    let found = federation_tests::try_poll(HOPS, || async {
        participants(api, spec).await.filter(|l| l == wanted)
    })
    .await;
    if found.is_none() {
        let last = participants(api, spec).await;
        panic!("{who} never listed the participants {wanted:?}; it lists {last:?}");
    }
}

async fn wait_for_links(national: &Api, count: usize) {
    poll(
        Duration::from_secs(15),
        "national's links accepted",
        || async {
            let answer = national.request(Method::GET, "/api/v1/links", None).await;
            let links = answer.body["items"].as_array().cloned().unwrap_or_default();
            let ready = links.len() == count
                && links.iter().all(|l| {
                    l["follows_accepted"].as_u64().unwrap_or(0) > 0
                        && l["follows_pending"].as_u64() == Some(0)
                });
            ready.then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_has_the_same_participants_on_every_instance() {
    let (stirling, falkirk, national) = tokio::join!(
        Instance::start_with(InstanceOptions::sqlite("stirling")),
        Instance::start("falkirk"),
        Instance::start_with(InstanceOptions::postgres_if_available("national")),
    );
    for i in [&stirling, &falkirk, &national] {
        i.create_community("hwb");
    }
    let alice = Api::of(&stirling, Some(&stirling.create_member("alice")));
    let bob = Api::of(&falkirk, Some(&falkirk.create_member("bob")));
    let nora = Api::of(&national, Some(&national.create_member("nora")));
    national.link(&stirling);
    national.link(&falkirk);
    wait_for_links(&nora, 2).await;

    let created = alice
        .request(
            Method::POST,
            "/api/v1/events",
            Some(&json!({
                "title": "Outdoor learning network",
                "description": "Termly meeting of the #hwb outdoor learning network.",
                "starts_at": "2030-05-14T16:00",
                "ends_at": "2030-05-14T17:30",
                "timezone": "Europe/London",
                "location_name": "Stirling High School",
                "online_url": "https://meet.example/outdoor",
                "capacity": 30,
                "communities": ["hwb"],
            })),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let key = created.body["key"].as_str().expect("key").to_owned();
    let event_id = created.body["id"].as_str().expect("id").to_owned();
    let spec = encode(&event_id);

    // National has it through its hwb, which follows stirling's: an event, not a bare post.
    let (on_national, _) = poll(HOPS, "the event on national", || async {
        let a = nora
            .request(Method::GET, &format!("/api/v1/events/{spec}"), None)
            .await;
        (a.status.is_success() && a.body["event"]["starts_at"].is_string()).then_some(a.body)
    })
    .await;
    assert_eq!(on_national["local"], false);
    assert_eq!(on_national["event"]["timezone"], "Europe/London");
    assert_eq!(on_national["event"]["capacity"], 30);
    assert_eq!(
        on_national["event"]["online_url"],
        "https://meet.example/outdoor"
    );

    // bob (falkirk) names the event by its id; falkirk reads it from stirling and sends a Join.
    let joined = bob
        .request(
            Method::POST,
            &format!("/api/v1/events/{spec}/join"),
            Some(&json!({})),
        )
        .await;
    assert!(joined.status.is_success(), "bob joins: {}", joined.text);
    let bob_id = bob.me().await["id"].as_str().expect("bob's id").to_owned();
    wait_for_list(&alice, &key, std::slice::from_ref(&bob_id), "stirling").await;
    let (state, _) = poll(HOPS, "bob's Join accepted on falkirk", || async {
        let a = bob
            .request(Method::GET, &format!("/api/v1/events/{spec}"), None)
            .await;
        let state = a.body["participation"]["state"].as_str().map(str::to_owned);
        state.filter(|s| s == "accepted")
    })
    .await;
    assert_eq!(state, "accepted");

    let joined = nora
        .request(
            Method::POST,
            &format!("/api/v1/events/{spec}/join"),
            Some(&json!({})),
        )
        .await;
    assert!(joined.status.is_success(), "nora joins: {}", joined.text);
    let nora_id = nora.me().await["id"]
        .as_str()
        .expect("nora's id")
        .to_owned();
    let both = vec![bob_id.clone(), nora_id.clone()];
    wait_for_list(&alice, &key, &both, "stirling").await;
    wait_for_list(&bob, &spec, &both, "falkirk").await;
    wait_for_list(&nora, &spec, &both, "national").await;

    // The counts travel with the origin's Update(Event).
    let (count, _) = poll(HOPS, "national's participant count", || async {
        let a = nora
            .request(Method::GET, &format!("/api/v1/events/{spec}"), None)
            .await;
        a.body["event"]["participant_count"]
            .as_u64()
            .filter(|c| *c == 2)
    })
    .await;
    assert_eq!(count, 2);
    let doc = nora.fetch_activitypub(&event_id).await;
    assert_eq!(doc.body["participantCount"], 2, "{}", doc.text);
    assert_eq!(doc.body["remainingAttendeeCapacity"], 28);

    // bob leaves (a Leave to stirling): gone from the list everywhere.
    let left = bob
        .request(Method::DELETE, &format!("/api/v1/events/{spec}/join"), None)
        .await;
    assert_eq!(left.status.as_u16(), 204, "{}", left.text);
    let only_nora = vec![nora_id.clone()];
    wait_for_list(&alice, &key, &only_nora, "stirling").await;
    wait_for_list(&bob, &spec, &only_nora, "falkirk").await;
    wait_for_list(&nora, &spec, &only_nora, "national").await;
}

/// The counts on an instance whose member was refused follow the origin: the event view is
/// read again from the origin after its Reject, without anyone opening the participant list.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_instance_shows_the_origins_counts() {
    let (stirling, national) = tokio::join!(
        Instance::start_with(InstanceOptions::sqlite("stirling")),
        Instance::start_with(InstanceOptions::postgres_if_available("national")),
    );
    for i in [&stirling, &national] {
        i.create_community("hwb");
    }
    let alice = Api::of(&stirling, Some(&stirling.create_member("alice")));
    let callum = Api::of(&stirling, Some(&stirling.create_member("callum")));
    let nadia = Api::of(&national, Some(&national.create_member("nadia")));
    national.link(&stirling);
    wait_for_links(&nadia, 1).await;

    let created = alice
        .request(
            Method::POST,
            "/api/v1/events",
            Some(&json!({
                "title": "One-to-one coaching",
                "description": "A single place. #hwb",
                "starts_at": "2030-06-14T16:00",
                "ends_at": "2030-06-14T17:00",
                "timezone": "Europe/London",
                "online_url": "https://meet.example/coaching",
                "capacity": 1,
                "communities": ["hwb"],
            })),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let key = created.body["key"].as_str().expect("key").to_owned();
    let event_id = created.body["id"].as_str().expect("id").to_owned();
    let spec = encode(&event_id);
    let joined = callum
        .request(Method::POST, &format!("/api/v1/events/{key}/join"), None)
        .await;
    assert!(joined.status.is_success(), "callum joins: {}", joined.text);
    poll(HOPS, "the event on national", || async {
        let a = nadia
            .request(Method::GET, &format!("/api/v1/events/{spec}"), None)
            .await;
        (a.status.is_success() && a.body["event"]["starts_at"].is_string()).then_some(())
    })
    .await;

    let joined = nadia
        .request(
            Method::POST,
            &format!("/api/v1/events/{spec}/join"),
            Some(&json!({})),
        )
        .await;
    assert!(joined.status.is_success(), "nadia joins: {}", joined.text);
    poll(HOPS, "nadia's Join rejected on national", || async {
        let a = nadia
            .request(Method::GET, &format!("/api/v1/events/{spec}"), None)
            .await;
        (a.body["participation"]["state"] == "rejected").then_some(())
    })
    .await;
    let found = federation_tests::try_poll(HOPS, || async {
        let a = nadia
            .request(Method::GET, &format!("/api/v1/events/{spec}"), None)
            .await;
        (a.body["event"]["participant_count"] == 1 && a.body["event"]["remaining_places"] == 0)
            .then_some(())
    })
    .await;
    if found.is_none() {
        let a = nadia
            .request(Method::GET, &format!("/api/v1/events/{spec}"), None)
            .await;
        panic!(
            "national's counts never followed stirling's: {}",
            a.body["event"]
        );
    }

    // The companion poll is filed as an event on national too, as on stirling.
    let poll_id = created.body["event"]["rsvp_poll"]
        .as_str()
        .expect("a poll")
        .to_owned();
    let mut wanted = vec![event_id.clone(), poll_id.clone()];
    wanted.sort();
    let listed = |api: &Api| {
        let api = api.clone();
        async move {
            let a = api
                .request(
                    Method::GET,
                    "/api/v1/communities/hwb/posts?kind=event",
                    None,
                )
                .await;
            let mut ids: Vec<String> = a.body["items"]
                .as_array()
                .map(|i| {
                    i.iter()
                        .filter_map(|p| p["id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            ids.sort();
            ids
        }
    };
    assert_eq!(listed(&alice).await, wanted, "stirling's events");
    let found = federation_tests::try_poll(HOPS, || async {
        (listed(&nadia).await == wanted).then_some(())
    })
    .await;
    if found.is_none() {
        let a = nadia
            .request(Method::GET, "/api/v1/communities/hwb/posts", None)
            .await;
        panic!("national files the poll elsewhere: {}", a.text);
    }
}

/// The pre-event checklist travels with the event (`cairn:tasks`): national's copy lists the
/// tasks, a task added at the origin arrives with its Update, and a national member who joined
/// ticks them on national.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_checklist_reaches_other_instances_and_is_ticked_there() {
    let (stirling, national) = tokio::join!(
        Instance::start_with(InstanceOptions::sqlite("stirling")),
        Instance::start_with(InstanceOptions::postgres_if_available("national")),
    );
    for i in [&stirling, &national] {
        i.create_community("hwb");
    }
    let alice = Api::of(&stirling, Some(&stirling.create_member("alice")));
    let nadia = Api::of(&national, Some(&national.create_member("nadia")));
    national.link(&stirling);
    wait_for_links(&nadia, 1).await;

    let created = alice
        .request(
            Method::POST,
            "/api/v1/events",
            Some(&json!({
                "title": "Reading group",
                "description": "Termly reading group. #hwb",
                "starts_at": "2030-09-14T16:00",
                "ends_at": "2030-09-14T17:00",
                "timezone": "Europe/London",
                "online_url": "https://meet.example/reading",
                "communities": ["hwb"],
                "tasks": ["Read chapter 1", "Bring a question"],
            })),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let key = created.body["key"].as_str().expect("key").to_owned();
    let spec = encode(created.body["id"].as_str().expect("id"));
    let task_texts = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t["text"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (_, _) = poll(HOPS, "the checklist on national", || async {
        let a = nadia
            .request(Method::GET, &format!("/api/v1/events/{spec}"), None)
            .await;
        (task_texts(&a.body["event"]["tasks"]) == ["Read chapter 1", "Bring a question"])
            .then_some(())
    })
    .await;

    let added = alice
        .request(
            Method::POST,
            &format!("/api/v1/events/{key}/tasks"),
            Some(&json!({"text": "Post your notes"})),
        )
        .await;
    assert_eq!(added.status.as_u16(), 201, "{}", added.text);
    let (tasks, _) = poll(HOPS, "the added task on national", || async {
        let a = nadia
            .request(Method::GET, &format!("/api/v1/events/{spec}/tasks"), None)
            .await;
        let items = a.body["items"].clone();
        (task_texts(&items).len() == 3).then_some(items)
    })
    .await;
    let first = tasks[0]["id"].as_i64().expect("a task id");

    let joined = nadia
        .request(
            Method::POST,
            &format!("/api/v1/events/{spec}/join"),
            Some(&json!({})),
        )
        .await;
    assert!(joined.status.is_success(), "nadia joins: {}", joined.text);
    poll(HOPS, "nadia's Join accepted on national", || async {
        let a = nadia
            .request(Method::GET, &format!("/api/v1/events/{spec}"), None)
            .await;
        (a.body["participation"]["state"] == "accepted").then_some(())
    })
    .await;
    let ticked = nadia
        .request(
            Method::PUT,
            &format!("/api/v1/events/{spec}/tasks/{first}/done"),
            Some(&json!({})),
        )
        .await;
    assert!(ticked.status.is_success(), "nadia ticks: {}", ticked.text);
    let mine = nadia
        .request(Method::GET, &format!("/api/v1/events/{spec}/tasks"), None)
        .await;
    assert_eq!(mine.body["items"][0]["done"], true, "{}", mine.text);
    assert_eq!(mine.body["items"][1]["done"], false, "{}", mine.text);
}
