//! A second real, independently written ActivityPub peer: `bovine-peer/peer.py`, a Python process
//! built on the bovine library (PyPI `bovine`, pinned with every package it pulls in, hashes
//! included, in `bovine-peer/requirements.lock`) and served by aiohttp. bovine looks Cairn's
//! Group up by WebFinger, fetches actors and posts with signed GETs, builds every activity it
//! sends, signs each POST (draft-cavage with a Digest) and verifies the HTTP signature of every
//! activity Cairn delivers to it. This test drives it through its control API and checks both
//! sides.
//!
//! Needs Python 3.11 or later and the peer's virtual environment (`scripts/test-all` makes it):
//! `python3 -m venv federation-tests/bovine-peer/.venv && federation-tests/bovine-peer/.venv/bin/pip
//! install --require-hashes -r federation-tests/bovine-peer/requirements.lock`. Then:
//! `cargo build --bin cairn && cargo test -p federation-tests --test bovine_peer -- --nocapture`.

use std::{
    fs::File,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use federation_tests::{
    activity,
    api::{self, Api},
    instance::{free_port, Instance},
    never, poll,
};
use serde_json::{json, Value};

/// How long one hop (Cairn → peer, or peer → Cairn) may take.
const HOP: Duration = Duration::from_secs(10);
/// How long the peer may take to start (Python imports bovine and generates an RSA key).
const PEER_START: Duration = Duration::from_secs(60);

/// The bovine peer process: one `Person`, `bea`, on `http://localhost:PORT`.
struct BovinePeer {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl BovinePeer {
    fn folder() -> PathBuf {
        federation_tests::instance::workspace_dir().join("federation-tests/bovine-peer")
    }

    async fn start() -> BovinePeer {
        let folder = Self::folder();
        let python = folder.join(".venv/bin/python");
        assert!(
            python.exists(),
            "the bovine peer's virtual environment is missing ({} does not exist): run \
             `python3 -m venv federation-tests/bovine-peer/.venv && \
             federation-tests/bovine-peer/.venv/bin/pip install --require-hashes \
             -r federation-tests/bovine-peer/requirements.lock` from the workspace root \
             (scripts/test-all does it)",
            python.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("cairn-ft-bovine-")
            .tempdir()
            .expect("create a temporary directory for the peer");
        let log = File::create(dir.path().join("peer.log")).expect("create the peer log");
        let port = free_port();
        let child = Command::new(&python)
            .arg("peer.py")
            .arg(port.to_string())
            .current_dir(&folder)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone the log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|err| panic!("could not start `{} peer.py`: {err}", python.display()));
        let mut peer = BovinePeer {
            port,
            child: Some(child),
            dir,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("build an HTTP client"),
        };
        let started = Instant::now();
        loop {
            if let Some(Ok(Some(status))) = peer.child.as_mut().map(Child::try_wait) {
                panic!("the bovine peer exited during start-up with {status}");
            }
            if let Ok(response) = peer.http.get(peer.url("/control/health")).send().await {
                if response.status() == 200 {
                    break;
                }
            }
            assert!(
                started.elapsed() < PEER_START,
                "the bovine peer did not answer /control/health within {PEER_START:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "bovine peer on {} started in {} ms",
            peer.url(""),
            started.elapsed().as_millis()
        );
        peer
    }

    fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    fn actor_id(&self) -> String {
        self.url("/users/bea")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("peer.log"))
            .unwrap_or_else(|err| format!("(could not read the peer log: {err})"))
    }

    /// `POST /control/{action}`; panics with the peer's answer unless it is 200.
    async fn control(&self, action: &str, body: Value) -> Value {
        let url = self.url(&format!("/control/{action}"));
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|err| panic!("POST {url} failed: {err}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status == 200,
            "the bovine peer could not {action} ({body}): {status}\n{text}"
        );
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("{url} answered {text}: {err}"))
    }

    /// `GET /control/received`: `{activities, refused, errors}`.
    async fn received(&self) -> Value {
        let url = self.url("/control/received");
        self.http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {url} failed: {err}"))
            .json()
            .await
            .unwrap_or_else(|err| panic!("GET {url}: not JSON: {err}"))
    }

    /// The activities bovine verified that satisfy `wanted`.
    async fn activities(&self, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
        api::items(json!({ "items": self.received().await["activities"] }))
            .into_iter()
            .filter(|entry| wanted(entry))
            .collect()
    }

    /// Waits for a verified activity satisfying `wanted` and returns its entry.
    async fn wait_for(&self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        poll(HOP, what, || async { self.activities(&wanted).await.pop() })
            .await
            .0
    }

    /// POSTs `body` to the peer's inbox with `headers` (name, value), as another server would.
    async fn post_inbox(&self, headers: &[(String, String)], body: &str) -> u16 {
        let mut request = self.http.post(self.url("/users/bea/inbox"));
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request
            .body(body.to_string())
            .send()
            .await
            .expect("POST to the peer's inbox")
            .status()
            .as_u16()
    }
}

impl Drop for BovinePeer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::env::var_os("CAIRN_FT_KEEP").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("kept the bovine peer log in {}", self.dir.path().display());
        }
        if std::thread::panicking() {
            eprintln!(
                "\n----- bovine peer log ({}) -----\n{}\n----- end of bovine peer log -----\n",
                self.dir.path().join("peer.log").display(),
                self.log()
            );
        }
    }
}

/// Checks that an entry of the peer's inbox was verified by bovine as signed by `actor`'s key.
fn assert_signed_by(entry: &Value, actor: &str) {
    let signature = &entry["signature"];
    assert_eq!(
        signature["verified"],
        json!(true),
        "bovine did not verify {entry:#}"
    );
    assert_eq!(
        signature["owner"].as_str(),
        Some(actor),
        "the activity was not signed with {actor}'s key: {entry:#}"
    );
    assert_eq!(
        signature["keyId"].as_str(),
        Some(format!("{actor}#main-key").as_str()),
        "{entry:#}"
    );
    assert_eq!(entry["actor"].as_str(), Some(actor), "{entry:#}");
}

/// The headers Cairn signed a delivery with, as the peer recorded them, to send again.
fn signed_headers(entry: &Value) -> Vec<(String, String)> {
    ["date", "digest", "content-type", "signature"]
        .iter()
        .map(|name| {
            let value = entry["headers"][*name]
                .as_str()
                .unwrap_or_else(|| panic!("the peer recorded no {name} header: {entry:#}"));
            (name.to_string(), value.to_string())
        })
        .collect()
}

/// The `orderedItems` of an outbox, fetched as a fediverse server would.
async fn outbox_items(api: &Api, url: &str) -> Vec<Value> {
    let answer = api.fetch_activitypub(url).await;
    match &answer.body["orderedItems"] {
        Value::Array(items) if answer.status == 200 => items.clone(),
        _ => panic!("GET {url} answered {}: {}", answer.status, answer.text),
    }
}

async fn followers_of(api: &Api, tag: &str) -> u64 {
    let community = api
        .community(tag)
        .await
        .unwrap_or_else(|| panic!("no community {tag}"));
    community["followers"]
        .as_u64()
        .unwrap_or_else(|| panic!("community {tag} has no numeric `followers`: {community:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bovine_peer_follows_receives_replies_and_unfollows() {
    let started = Instant::now();
    let stirling = Instance::start("stirling").await;
    stirling.create_community("hwb");
    let alice = Api::of(&stirling, Some(&stirling.create_member("alice")));
    let anyone = Api::of(&stirling, None);
    let peer = BovinePeer::start().await;
    let handle = format!("@hwb@{}", stirling.domain());
    let group_id = stirling.url("/c/hwb");
    let me = peer.actor_id();
    let followers_before = followers_of(&anyone, "hwb").await;

    // 1. bovine finds the Group by WebFinger and follows it; the Group's Accept verifies.
    let step = Instant::now();
    let followed = peer.control("follow", json!({ "handle": handle })).await;
    assert_eq!(
        followed["group"].as_str(),
        Some(group_id.as_str()),
        "{followed:#}"
    );
    let follow_id = followed["follow"].as_str().expect("follow id").to_string();
    let accept = peer
        .wait_for("the Group's Accept of the Follow", |e| {
            e["type"] == "Accept" && activity::references(&e["activity"], &follow_id)
        })
        .await;
    assert_signed_by(&accept, &group_id);
    poll(HOP, "the Group's follower count to grow", || async {
        (followers_of(&anyone, "hwb").await == followers_before + 1).then_some(())
    })
    .await;
    println!(
        "1. followed {handle}, Accept verified by bovine ({} ms)",
        step.elapsed().as_millis()
    );

    // 2. alice posts in #hwb; the Group's Announce reaches the peer and verifies.
    let step = Instant::now();
    let post = alice
        .create_post("Our #hwb walking meetings start on Monday")
        .await;
    let post_id = api::ap_id(&post);
    let announce = peer
        .wait_for("the Group's Announce of alice's post", |e| {
            activity::announces_post(&e["activity"], &post_id)
        })
        .await;
    assert_signed_by(&announce, &group_id);
    println!(
        "2. Announce of alice's post received and verified ({} ms): {}",
        step.elapsed().as_millis(),
        activity::describe(&announce["activity"])
    );

    // 3. The peer replies to alice's post with bovine's reply builder (to alice, a Mention of
    //    her): the reply is stored under the post and filed in the post's community, #hwb.
    //    First a control: the same reply signed by bovine with a key that is not bea's (under
    //    bea's keyId) is refused by Cairn, so Cairn really checks what bovine signs.
    let step = Instant::now();
    let forged = peer
        .control(
            "forged_reply",
            json!({ "in_reply_to": post_id, "content": "A reply bea never signed" }),
        )
        .await;
    assert_eq!(
        forged["status"],
        json!(401),
        "Cairn did not refuse a reply signed with a key that is not bea's: {forged:#}"
    );
    let forged_id = forged["note"].as_str().expect("forged note id").to_string();
    let sent = peer
        .control(
            "reply",
            json!({
                "in_reply_to": post_id,
                "content": "Which day suits your department best? (from a bovine server)",
            }),
        )
        .await;
    let reply_id = sent["note"].as_str().expect("reply id").to_string();
    assert_eq!(
        sent["parent_author"].as_str(),
        Some(stirling.url("/u/alice").as_str()),
        "{sent:#}"
    );
    let (listed, _) = poll(HOP, "the peer's reply in stirling #hwb", || {
        anyone.find_in_community("hwb", &reply_id)
    })
    .await;
    let reply = anyone
        .get_post(&api::key(&listed))
        .await
        .unwrap_or_else(|| panic!("GET of the listed reply found nothing: {listed:#}"));
    assert_eq!(
        reply["in_reply_to"].as_str(),
        Some(post_id.as_str()),
        "the reply is not threaded under alice's post: {reply:#}"
    );
    assert_eq!(
        reply["author"]["id"].as_str(),
        Some(me.as_str()),
        "{reply:#}"
    );
    assert_eq!(reply["local"], json!(false), "{reply:#}");
    assert!(
        reply["content"]
            .as_str()
            .is_some_and(|c| c.contains("Which day suits your department best?")),
        "{reply:#}"
    );
    let copies = anyone.community_posts_with_id("hwb", &reply_id).await;
    assert_eq!(copies.len(), 1, "the reply is listed twice: {copies:#?}");
    assert!(
        anyone.find_in_community("hwb", &forged_id).await.is_none(),
        "the wrongly signed reply {forged_id} is listed in #hwb"
    );
    println!(
        "3. the peer's reply is stored under alice's post ({} ms)",
        step.elapsed().as_millis()
    );

    // 4. The peer unfollows (bovine's Undo names the Follow by id): the follower count drops and
    //    a later post is not delivered to it.
    let step = Instant::now();
    let undone = peer.control("unfollow", json!({ "handle": handle })).await;
    assert_eq!(
        undone["follow"].as_str(),
        Some(follow_id.as_str()),
        "{undone:#}"
    );
    poll(HOP, "the Group's follower count to drop", || async {
        (followers_of(&anyone, "hwb").await == followers_before).then_some(())
    })
    .await;
    let later = alice
        .create_post("After the unfollow: our #hwb reading list")
        .await;
    let later_id = api::ap_id(&later);
    let outbox_url = stirling.url("/c/hwb/outbox");
    poll(
        HOP,
        "an Announce of the later post in the Group's outbox",
        || async {
            outbox_items(&anyone, &outbox_url)
                .await
                .into_iter()
                .find(|item| activity::announces_post(item, &later_id))
        },
    )
    .await;
    never(
        Duration::from_secs(2),
        "a delivery of the later post to the peer after it unfollowed",
        || async {
            peer.activities(|e| activity::references(&e["activity"], &later_id))
                .await
                .pop()
        },
    )
    .await;
    println!(
        "4. unfollowed; the later post was not delivered ({} ms)",
        step.elapsed().as_millis()
    );

    // Nothing Cairn sent was refused by bovine, the peer logged no errors, and the reply was not
    // announced back to the peer that wrote it.
    let received = peer.received().await;
    assert_eq!(
        received["refused"],
        json!([]),
        "bovine refused inbox deliveries from Cairn"
    );
    assert_eq!(
        received["errors"],
        json!([]),
        "the bovine peer logged errors"
    );
    let echoed = peer
        .activities(|e| activity::announces_post(&e["activity"], &reply_id))
        .await;
    assert!(
        echoed.is_empty(),
        "the Group announced the peer's own reply back to it: {echoed:#?}"
    );

    // Controls: bovine's verifier really decides what is recorded.
    // (a) An unsigned copy of the Group's Announce is refused and never recorded.
    let body = announce["activity"].to_string();
    let mut forged = announce["activity"].clone();
    forged["id"] = json!(format!("{group_id}#forged-announce"));
    let status = peer
        .post_inbox(
            &[("content-type".into(), "application/activity+json".into())],
            &forged.to_string(),
        )
        .await;
    assert_eq!(status, 401, "bovine accepted an unsigned Announce");
    // (b) Cairn's own signed Announce, sent again with its Date one second later (body and
    //     Digest unchanged, still inside the Date window): the signature no longer matches.
    let mut headers = signed_headers(&announce);
    let date = chrono::DateTime::parse_from_rfc2822(&headers[0].1)
        .unwrap_or_else(|err| panic!("Cairn's Date header {:?}: {err}", headers[0].1));
    headers[0].1 = (date + chrono::Duration::seconds(1))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let status = peer.post_inbox(&headers, &body).await;
    assert_eq!(
        status, 401,
        "bovine accepted Cairn's Announce with a Date it was not signed with"
    );
    let refused = peer.received().await["refused"].clone();
    assert_eq!(
        refused.as_array().map(Vec::len),
        Some(2),
        "both forgeries are listed as refused: {refused:#}"
    );
    // (c) The same request with the Date it was signed with passes: the one changed second is
    //     what made bovine refuse (b).
    let before = peer
        .activities(|e| activity::announces_post(&e["activity"], &post_id))
        .await
        .len();
    let status = peer.post_inbox(&signed_headers(&announce), &body).await;
    assert_eq!(
        status, 202,
        "bovine refused Cairn's Announce sent again unchanged"
    );
    let after = peer
        .activities(|e| activity::announces_post(&e["activity"], &post_id))
        .await;
    assert_eq!(after.len(), before + 1, "{after:#?}");
    assert_signed_by(&after[after.len() - 1], &group_id);

    println!("verified activities received by the peer:");
    for entry in api::items(json!({ "items": received["activities"] })) {
        println!(
            "  {} (key {})",
            activity::describe(&entry["activity"]),
            entry["signature"]["keyId"].as_str().unwrap_or("?")
        );
    }
    println!("whole scenario: {} ms", started.elapsed().as_millis());
}
