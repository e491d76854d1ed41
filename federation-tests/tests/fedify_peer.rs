//! A real, independently written ActivityPub peer: `fedify-peer/peer.mjs`, a Node process built on
//! the Fedify framework (`@fedify/fedify`, pinned in `fedify-peer/package-lock.json`). Fedify
//! does its own WebFinger lookups, signs what it sends, and verifies the HTTP signature of every
//! activity Cairn delivers to it; this test drives it through its control API and checks both
//! sides.
//!
//! Needs Node.js and the peer's packages: `npm ci --prefix federation-tests/fedify-peer`
//! (`scripts/test-all` does it). Then:
//! `cargo build --bin cairn && cargo test -p federation-tests --test fedify_peer -- --nocapture`.

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
/// How long the peer may take to start (Node loads Fedify and generates an RSA key).
const PEER_START: Duration = Duration::from_secs(30);

/// The Fedify peer process: one `Person`, `alex`, on `http://localhost:PORT`.
struct FedifyPeer {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl FedifyPeer {
    fn folder() -> PathBuf {
        federation_tests::instance::workspace_dir().join("federation-tests/fedify-peer")
    }

    async fn start() -> FedifyPeer {
        let folder = Self::folder();
        assert!(
            folder
                .join("node_modules/@fedify/fedify/package.json")
                .exists(),
            "the Fedify peer's packages are not installed ({} is missing): run \
             `npm ci --prefix federation-tests/fedify-peer` from the workspace root \
             (scripts/test-all does it)",
            folder.join("node_modules").display()
        );
        let node = std::env::var("NODE").unwrap_or_else(|_| "node".into());
        let dir = tempfile::Builder::new()
            .prefix("cairn-ft-fedify-")
            .tempdir()
            .expect("create a temporary directory for the peer");
        let log = File::create(dir.path().join("peer.log")).expect("create the peer log");
        let port = free_port();
        let child = Command::new(&node)
            .arg("peer.mjs")
            .arg(port.to_string())
            .current_dir(&folder)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone the log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|err| {
                panic!("could not start `{node} peer.mjs` (is Node.js installed?): {err}")
            });
        let mut peer = FedifyPeer {
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
                panic!("the Fedify peer exited during start-up with {status}");
            }
            if let Ok(response) = peer.http.get(peer.url("/control/health")).send().await {
                if response.status() == 200 {
                    break;
                }
            }
            assert!(
                started.elapsed() < PEER_START,
                "the Fedify peer did not answer /control/health within {PEER_START:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "Fedify peer on {} started in {} ms",
            peer.url(""),
            started.elapsed().as_millis()
        );
        peer
    }

    fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    fn actor_id(&self) -> String {
        self.url("/users/alex")
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
            "the Fedify peer could not {action} ({body}): {status}\n{text}"
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

    /// The activities Fedify verified and handed to the inbox listener that satisfy `wanted`.
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
}

impl Drop for FedifyPeer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::env::var_os("CAIRN_FT_KEEP").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("kept the Fedify peer log in {}", self.dir.path().display());
        }
        if std::thread::panicking() {
            eprintln!(
                "\n----- Fedify peer log ({}) -----\n{}\n----- end of Fedify peer log -----\n",
                self.dir.path().join("peer.log").display(),
                self.log()
            );
        }
    }
}

/// Checks that an entry of the peer's inbox was verified by Fedify as signed by `actor`'s key.
fn assert_signed_by(entry: &Value, actor: &str) {
    let signature = &entry["signature"];
    assert_eq!(
        signature["verified"],
        json!(true),
        "Fedify's verifyRequest did not verify {entry:#}"
    );
    assert_eq!(
        signature["owner"].as_str(),
        Some(actor),
        "the activity was not signed with {actor}'s key: {entry:#}"
    );
    assert_eq!(entry["actor"].as_str(), Some(actor), "{entry:#}");
}

/// The `orderedItems` of an outbox, fetched as a fediverse server would.
async fn outbox_items(api: &Api, url: &str) -> Vec<Value> {
    let answer = api.fetch_activitypub(url).await;
    match &answer.body["orderedItems"] {
        Value::Array(items) if answer.status == 200 => items.clone(),
        _ => panic!("GET {url} answered {}: {}", answer.status, answer.text),
    }
}

async fn assert_listed_once(api: &Api, tag: &str, ap_id: &str) {
    let copies = api.community_posts_with_id(tag, ap_id).await;
    assert_eq!(
        copies.len(),
        1,
        "{ap_id} is listed in {tag} {} times: {copies:#?}",
        copies.len()
    );
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
async fn fedify_peer_follows_posts_replies_and_unfollows() {
    let started = Instant::now();
    let stirling = Instance::start("stirling").await;
    stirling.create_community("hwb");
    let alice = Api::of(&stirling, Some(&stirling.create_member("alice")));
    let anyone = Api::of(&stirling, None);
    let peer = FedifyPeer::start().await;
    let handle = format!("@hwb@{}", stirling.domain());
    let group_id = stirling.url("/c/hwb");
    let me = peer.actor_id();
    let followers_before = followers_of(&anyone, "hwb").await;

    // 1. Fedify finds the Group by WebFinger and follows it; the Group's Accept verifies.
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
        "1. followed {handle}, Accept verified by Fedify ({} ms)",
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

    // 3. The peer posts a Note that mentions the Group and carries #hwb: Cairn files it in the
    //    community, and the Group announces it (to its outbox; never back to the note's origin).
    let step = Instant::now();
    let sent = peer
        .control(
            "note",
            json!({
                "to_group": handle,
                "content": "Walking meetings work for us too, shared from a Fedify server",
                "hashtags": ["hwb"],
            }),
        )
        .await;
    let note_id = sent["note"].as_str().expect("note id").to_string();
    let (listed, _) = poll(HOP, "the peer's note in stirling #hwb", || {
        anyone.find_in_community("hwb", &note_id)
    })
    .await;
    assert_eq!(listed["local"], json!(false), "{listed:#}");
    assert_eq!(
        listed["author"]["id"].as_str(),
        Some(me.as_str()),
        "{listed:#}"
    );
    assert!(
        listed["content"]
            .as_str()
            .is_some_and(|c| c.contains("Walking meetings work for us too")),
        "{listed:#}"
    );
    assert_eq!(listed["hashtags"], json!(["hwb"]), "{listed:#}");
    assert_listed_once(&anyone, "hwb", &note_id).await;
    let outbox_url = stirling.url("/c/hwb/outbox");
    poll(
        HOP,
        "an Announce of the peer's note in the Group's outbox",
        || async {
            outbox_items(&anyone, &outbox_url)
                .await
                .into_iter()
                .find(|item| {
                    activity::announces_post(item, &note_id)
                        && activity::actor(item) == Some(group_id.as_str())
                })
        },
    )
    .await;
    println!(
        "3. the peer's note is in stirling #hwb and announced by the Group ({} ms)",
        step.elapsed().as_millis()
    );

    // 4. The peer replies to alice's post: the reply is stored under it and listed in #hwb.
    let step = Instant::now();
    let sent = peer
        .control(
            "reply",
            json!({
                "in_reply_to": post_id,
                "group": handle,
                "content": "Which day suits your department best?",
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
    // Fedify delivered the reply twice (to alice's inbox and to the Group's): stored once.
    assert_listed_once(&anyone, "hwb", &reply_id).await;
    println!(
        "4. the peer's reply is stored under alice's post ({} ms)",
        step.elapsed().as_millis()
    );

    // 5. The peer unfollows: the follower count drops and a later post is not delivered to it.
    let step = Instant::now();
    peer.control("unfollow", json!({ "handle": handle })).await;
    poll(HOP, "the Group's follower count to drop", || async {
        (followers_of(&anyone, "hwb").await == followers_before).then_some(())
    })
    .await;
    let later = alice
        .create_post("After the unfollow: our #hwb reading list")
        .await;
    let later_id = api::ap_id(&later);
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
        "5. unfollowed; the later post was not delivered ({} ms)",
        step.elapsed().as_millis()
    );

    // Nothing Cairn sent was refused by Fedify, and no Announce of the peer's own posts came back.
    let received = peer.received().await;
    assert_eq!(
        received["refused"],
        json!([]),
        "Fedify refused inbox deliveries from Cairn"
    );
    assert_eq!(received["errors"], json!([]), "Fedify logged errors");
    let echoed = peer
        .activities(|e| {
            activity::announces_post(&e["activity"], &note_id)
                || activity::announces_post(&e["activity"], &reply_id)
        })
        .await;
    assert!(
        echoed.is_empty(),
        "the Group announced the peer's own posts back to it: {echoed:#?}"
    );
    // A control: an unsigned copy of the Group's Announce is refused by Fedify and never reaches
    // the listener, so the verified entries above really were checked.
    let mut forged = announce["activity"].clone();
    forged["id"] = json!(format!("{group_id}#forged-announce"));
    let answer = peer
        .http
        .post(peer.url("/inbox"))
        .header("Content-Type", "application/activity+json")
        .body(forged.to_string())
        .send()
        .await
        .expect("POST the forged Announce to the peer");
    assert_eq!(answer.status(), 401, "Fedify accepted an unsigned Announce");
    let forged_id = activity::id(&forged).expect("forged id").to_string();
    assert!(
        peer.activities(|e| e["id"].as_str() == Some(forged_id.as_str()))
            .await
            .is_empty(),
        "the unsigned Announce reached the inbox listener"
    );
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
