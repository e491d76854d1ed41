//! Real fediverse activities (`fixtures/fediverse/*.json`) thrown at a Group inbox.
//!
//! Each activity is re-homed on the fake peer (its actor's origin rewritten to the peer's, its
//! actor set to a peer actor, one actor per file), signed, and POSTed to stirling's `/c/hwb/inbox`.
//! Cairn may accept (2xx) or refuse (4xx) each one but must never fail (5xx) or fall over.
//!
//! `cargo build --bin cairn && cargo test -p federation-tests --test fixtures -- --nocapture`

use std::{path::PathBuf, time::Duration};

use federation_tests::{
    activity::{self, ACTIVITY_TYPES},
    api::{self, Api},
    instance::Instance,
    peer::{Peer, PeerOptions},
    poll,
};
use serde_json::{json, Value};

const HASHTAG_FIXTURE: &str = "mastodon-create-note-hashtag-cw.json";

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/fediverse")
}

/// The activity fixtures, sorted by file name.
fn activity_fixtures() -> Vec<(String, Value)> {
    let dir = fixtures_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot read the fixtures in {}: {err}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
            let doc: Value = serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("{name} is not JSON: {err}"));
            ACTIVITY_TYPES
                .contains(&activity::kind(&doc))
                .then_some((name, doc))
        })
        .collect()
}

/// Re-homes `doc` on the peer: the original actor's URL becomes `peer_actor` and its origin the
/// peer's origin, everywhere in the text; then `actor` (and the embedded object's
/// `actor`/`attributedTo`) are set to `peer_actor`.
fn rehome(doc: &Value, peer_origin: &str, peer_actor: &str) -> Value {
    let original_actor = activity::actor(doc)
        .map(str::to_string)
        .unwrap_or_else(|| panic!("activity without actor: {doc}"));
    let mut text = doc.to_string();
    text = text.replace(&original_actor, peer_actor);
    if let Some(origin) = activity::origin_of(&original_actor) {
        text = text.replace(&origin, peer_origin);
    }
    let mut doc: Value = serde_json::from_str(&text).expect("rewritten JSON parses");
    doc["actor"] = json!(peer_actor);
    if let Some(object) = doc.get_mut("object").and_then(Value::as_object_mut) {
        for key in ["actor", "attributedTo"] {
            if object.contains_key(key) {
                object.insert(key.into(), json!(peer_actor));
            }
        }
    }
    doc
}

/// Adds `#hwb` to a Create{Note}'s tags and content.
fn add_hwb_hashtag(doc: &mut Value, peer_origin: &str) {
    let href = format!("{peer_origin}/tags/hwb");
    let object = doc
        .get_mut("object")
        .and_then(Value::as_object_mut)
        .expect("the hashtag fixture embeds its Note");
    match object.get_mut("tag") {
        Some(Value::Array(tags)) => {
            tags.push(json!({"type": "Hashtag", "name": "#hwb", "href": href}))
        }
        _ => {
            object.insert(
                "tag".into(),
                json!([{"type": "Hashtag", "name": "#hwb", "href": href}]),
            );
        }
    }
    let link =
        format!(" <a href=\"{href}\" class=\"mention hashtag\" rel=\"tag\">#<span>hwb</span></a>");
    let content = object
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let content = match content.rfind("</p>") {
        Some(at) => format!("{}{link}{}", &content[..at], &content[at..]),
        None => format!("{content}{link}"),
    };
    object.insert("content".into(), json!(content));
}

struct Row {
    file: String,
    kind: String,
    status: Result<u16, String>,
    body: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fixtures_never_break_a_group_inbox() {
    let fixtures = activity_fixtures();
    assert!(
        fixtures.len() > 30,
        "expected the fediverse fixture corpus in {}, found {} activities",
        fixtures_dir().display(),
        fixtures.len()
    );
    assert!(
        fixtures.iter().any(|(name, _)| name == HASHTAG_FIXTURE),
        "{HASHTAG_FIXTURE} is missing from the corpus"
    );

    let stirling = Instance::start("stirling").await;
    stirling.create_community("hwb");
    let alice = Api::of(&stirling, Some(&stirling.create_member("alice")));
    let earlier = alice
        .create_post("Before the fixtures: our #hwb check-in routine")
        .await;
    let peer = Peer::start(PeerOptions::numbered("f", fixtures.len())).await;
    let inbox = stirling.url("/c/hwb/inbox");

    let mut rows = Vec::new();
    let mut hashtag_note_landed = None;
    for (i, (file, original)) in fixtures.iter().enumerate() {
        let actor = format!("f{i}");
        let mut doc = rehome(original, peer.origin(), &peer.actor_id(&actor));
        if file == HASHTAG_FIXTURE {
            add_hwb_hashtag(&mut doc, peer.origin());
        }
        peer.publish(&doc);
        let answer = peer.try_post_raw(&actor, &inbox, &doc).await;
        rows.push(Row {
            file: file.clone(),
            kind: activity::kind(&doc).to_string(),
            status: answer
                .as_ref()
                .map(|(status, _)| *status)
                .map_err(Clone::clone),
            body: answer.map(|(_, body)| body).unwrap_or_default(),
        });
        if file == HASHTAG_FIXTURE {
            let note_id = activity::object_id(&doc)
                .expect("the hashtag fixture's Note has an id")
                .to_string();
            let landed = federation_tests::try_poll(Duration::from_secs(10), || {
                alice.find_in_community("hwb", &note_id)
            })
            .await;
            hashtag_note_landed = Some((note_id, landed.map(|(post, _)| post)));
        }
    }

    println!(
        "\n{:<55} {:<10} {:<6} answer body (4xx)",
        "file", "type", "status"
    );
    for row in &rows {
        let status = match &row.status {
            Ok(status) => status.to_string(),
            Err(_) => "ERR".into(),
        };
        let body = match &row.status {
            Ok(400..=499) => row.body.replace('\n', " "),
            Err(err) => err.clone(),
            _ => String::new(),
        };
        println!(
            "{:<55} {:<10} {:<6} {:.200}",
            row.file, row.kind, status, body
        );
    }

    let failures: Vec<String> = rows
        .iter()
        .filter(|row| !matches!(row.status, Ok(200..=499)))
        .map(|row| format!("{} ({}): {:?} {}", row.file, row.kind, row.status, row.body))
        .collect();
    assert!(
        failures.is_empty(),
        "stirling answered these fixtures with 5xx or not at all:\n{}",
        failures.join("\n")
    );

    let (note_id, landed) = hashtag_note_landed.expect("the hashtag fixture was posted");
    let row = rows
        .iter()
        .find(|row| row.file == HASHTAG_FIXTURE)
        .expect("a row for the hashtag fixture");
    assert!(
        landed.is_some(),
        "{HASHTAG_FIXTURE} with #hwb added (answered {:?} {}) did not appear in stirling #hwb as {note_id}",
        row.status,
        row.body
    );

    // Stirling is still up and its own posts are intact.
    let me = alice.me().await;
    assert!(me.is_object(), "GET /api/v1/me after the walk: {me}");
    let again = alice
        .get_post(&api::key(&earlier))
        .await
        .expect("alice's earlier post still answers after the fixture walk");
    assert_eq!(again["content"], earlier["content"], "alice's post changed");
    let earlier_id = api::ap_id(&earlier);
    poll(
        Duration::from_secs(5),
        "alice's earlier post in #hwb",
        || alice.find_in_community("hwb", &earlier_id),
    )
    .await;
}

#[test]
fn rehoming_moves_actor_and_ids_to_the_peer() {
    let (_, original) = activity_fixtures()
        .into_iter()
        .find(|(name, _)| name == HASHTAG_FIXTURE)
        .expect("the hashtag fixture");
    let mut doc = rehome(
        &original,
        "http://localhost:9",
        "http://localhost:9/users/f1",
    );
    add_hwb_hashtag(&mut doc, "http://localhost:9");
    assert_eq!(doc["actor"], "http://localhost:9/users/f1");
    assert_eq!(doc["object"]["attributedTo"], "http://localhost:9/users/f1");
    assert_eq!(
        doc["id"],
        "http://localhost:9/users/f1/statuses/99512778738411822/activity"
    );
    assert!(!doc.to_string().contains("http://mastodon.example.org"));
    let tags = doc["object"]["tag"].as_array().expect("tags");
    assert!(tags.iter().any(|t| t["name"] == "#hwb"), "{tags:?}");
    let content = doc["object"]["content"].as_str().expect("content");
    assert!(content.ends_with("#<span>hwb</span></a></p>"), "{content}");
}
