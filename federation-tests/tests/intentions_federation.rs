//! "I intend" across instances: alice declares an intention on stirling (SQLite); bob, a
//! member of falkirk (PostgreSQL when the local server answers, else SQLite; and once on SQLite), joins it from
//! his own instance by `Join`/`Accept`. Both get their reminder emails from their own instance
//! (each pointed at one SMTP sink, told apart by the sender address), a moved date reaches
//! falkirk by `Update` and is rescheduled there, and a restart repeats nothing.
//!
//! Build the server first: `cargo build --bin cairn`, then
//! `cargo test -p federation-tests --test intentions_federation -- --nocapture`.

use std::time::Duration;

use chrono::{DateTime, Duration as Days, DurationRound, NaiveDate, Utc};
use federation_tests::{
    api::Api,
    instance::{Instance, InstanceOptions},
    poll,
    smtp::{Message, SmtpSink},
};
use reqwest::Method;
use serde_json::{json, Value};

/// Deliveries, Accepts and reminder rounds (every second) all fit in this.
const WITHIN: Duration = Duration::from_secs(20);
/// How long we watch for a duplicate email.
const WATCH: Duration = Duration::from_secs(5);

const ALICE: &str = "alice@stirling-school.example";
const BOB: &str = "bob@falkirk-school.example";

fn day(offset: i64) -> NaiveDate {
    Utc::now().date_naive() + Days::days(offset)
}

fn in_words(date: NaiveDate) -> String {
    date.format("%-d %B %Y").to_string()
}

fn emailing(options: InstanceOptions, sink: &SmtpSink, from: &str) -> InstanceOptions {
    options
        .env("CAIRN_SMTP_HOST", "127.0.0.1")
        .env("CAIRN_SMTP_PORT", &sink.port().to_string())
        .env("CAIRN_EMAIL_FROM", from)
        .env("CAIRN_REMINDER_CHECK_EVERY_SECS", "1")
        .env("CAIRN_REMINDER_DAYS_BEFORE", "3")
}

/// `cairn admin create-member NAME --email EMAIL`; returns the token it prints.
fn member_with_email(instance: &Instance, name: &str, email: &str) -> String {
    let out = instance.admin(&["create-member", name, "--email", email]);
    out.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_else(|| panic!("create-member {name} printed no token"))
        .to_owned()
}

/// Percent-encodes everything but letters and digits (a URL as one path segment).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn ok(api: &Api, method: Method, path: &str, body: Option<&Value>) -> Value {
    let answer = api.request(method.clone(), path, body).await;
    assert!(
        answer.status.is_success(),
        "{method} {}{path}: {} {}",
        api.base_url(),
        answer.status,
        answer.text
    );
    answer.body
}

async fn emails(sink: &SmtpSink, to: &str, count: usize) -> Vec<Message> {
    poll(WITHIN, &format!("{count} email(s) to {to}"), || async {
        let got = sink.messages_to(to);
        (got.len() >= count).then_some(got)
    })
    .await
    .0
}

/// Requests `instance` answered with a server error (the inbox's, here): a repeat of something it already
/// holds must never be one (the sender would retry it for days).
fn server_errors(instance: &Instance) -> Vec<String> {
    // A database or internal error is logged as the status it answers with.
    instance.log_grep("500 Internal Server Error")
}

fn time_of(view: &Value) -> DateTime<Utc> {
    let at = view["intention"]["achieved_at"]
        .as_str()
        .unwrap_or_else(|| panic!("an achieved_at: {view}"));
    DateTime::parse_from_rfc3339(at)
        .unwrap_or_else(|e| panic!("achieved_at {at:?}: {e}"))
        .with_timezone(&Utc)
}

async fn participant_ids(api: &Api, spec: &str) -> Vec<String> {
    let path = format!("/api/v1/intentions/{}/participants", segment(spec));
    let list = ok(api, Method::GET, &path, None).await;
    let mut ids: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_intention_joined_across_instances_reminds_each_from_their_own() {
    joined_across_instances(InstanceOptions::postgres_if_available("falkirk")).await;
}

/// The same with both instances on SQLite (the demo's set-up, where the repeated Updates
/// first failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_intention_joined_across_sqlite_instances_reminds_each_from_their_own() {
    joined_across_instances(InstanceOptions::sqlite("falkirk")).await;
}

async fn joined_across_instances(falkirk_options: InstanceOptions) {
    let sink = SmtpSink::start().expect("the SMTP sink");
    let (stirling, mut falkirk) = tokio::join!(
        Instance::start_with(emailing(
            InstanceOptions::sqlite("stirling"),
            &sink,
            "Cairn Stirling <reminders@stirling.test>"
        )),
        Instance::start_with(emailing(
            falkirk_options,
            &sink,
            "Cairn Falkirk <reminders@falkirk.test>"
        )),
    );
    println!(
        "stirling {} (SQLite), falkirk {} ({:?})",
        stirling.base_url(),
        falkirk.base_url(),
        falkirk.database()
    );
    let alice = Api::of(
        &stirling,
        Some(&member_with_email(&stirling, "alice", ALICE)),
    );
    let bob = Api::of(&falkirk, Some(&member_with_email(&falkirk, "bob", BOB)));

    // Tomorrow, with reminders 3 days before: the advance reminder is due at once.
    let target = day(1);
    let created = ok(
        &alice,
        Method::POST,
        "/api/v1/intentions",
        Some(
            &json!({"text": "use retrieval practice starters", "target_date": target.to_string()}),
        ),
    )
    .await;
    let ap_id = created["id"].as_str().expect("an id").to_owned();
    let key = created["key"].as_str().expect("a key").to_owned();

    let got = emails(&sink, ALICE, 1).await;
    assert_eq!(
        got[0].mail_from, "reminders@stirling.test",
        "alice's own instance"
    );
    assert!(got[0]
        .part("text/plain")
        .unwrap_or_default()
        .contains(&ap_id));

    // Bob joins from falkirk: falkirk reads the intention from stirling and sends a Join.
    let joined = ok(
        &bob,
        Method::POST,
        &format!("/api/v1/intentions/{}/join", segment(&ap_id)),
        None,
    )
    .await;
    assert!(
        ["pending", "accepted"].contains(&joined["state"].as_str().unwrap_or_default()),
        "{joined}"
    );
    let remote_key = joined["intention"]["key"]
        .as_str()
        .expect("falkirk's key")
        .to_owned();
    assert_eq!(
        joined["intention"]["intention"]["target_date"],
        target.to_string()
    );
    assert_eq!(joined["intention"]["local"], false);

    // The participant list is the same on both instances.
    let alice_id = format!("{}/u/alice", stirling.base_url());
    let bob_id = format!("{}/u/bob", falkirk.base_url());
    let mut both = vec![alice_id.clone(), bob_id.clone()];
    both.sort();
    poll(WITHIN, "bob on stirling's participant list", || async {
        (participant_ids(&alice, &key).await == both).then_some(())
    })
    .await;
    poll(WITHIN, "the same list on falkirk", || async {
        (participant_ids(&bob, &remote_key).await == both).then_some(())
    })
    .await;

    // Bob's reminder comes from falkirk, about alice's intention, with the link to it.
    let got = emails(&sink, BOB, 1).await;
    let m = &got[0];
    assert_eq!(m.mail_from, "reminders@falkirk.test", "bob's own instance");
    assert_eq!(m.rcpt_to, vec![BOB.to_string()]);
    let text = m.part("text/plain").expect("a plain-text part");
    let html = m.part("text/html").expect("an HTML part");
    assert!(text.contains("use retrieval practice starters"), "{text}");
    assert!(text.contains(&in_words(target)), "{text}");
    assert!(text.contains(&ap_id), "{text}");
    assert!(html.contains(&format!("href=\"{ap_id}\"")), "{html}");
    // Stirling never emails bob, falkirk never emails alice.
    tokio::time::sleep(WATCH).await;
    assert_eq!(sink.messages_to(ALICE).len(), 1);
    assert_eq!(sink.messages_to(BOB).len(), 1);

    // Falkirk's copy is named by its id as well as by its key here; what only the owner may do
    // is refused with a reason, what a participant may do is done.
    let by_id = format!("/api/v1/intentions/{}", segment(&ap_id));
    let view = ok(&bob, Method::GET, &by_id, None).await;
    assert_eq!(view["key"], remote_key.as_str(), "{view}");
    for (method, path, body) in [
        (
            Method::PATCH,
            by_id.clone(),
            Some(json!({"text": "something else"})),
        ),
        (Method::POST, format!("{by_id}/achieved"), None),
    ] {
        let answer = bob.request(method.clone(), &path, body.as_ref()).await;
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.text);
        assert!(
            answer.text.contains("only its owner") && answer.text.contains("post progress"),
            "{method} {path}: {}",
            answer.text
        );
    }
    let progress = ok(
        &bob,
        Method::POST,
        &format!("{by_id}/progress"),
        Some(&json!({"content": "tried it with S2 today"})),
    )
    .await;
    assert_eq!(progress["in_reply_to"], ap_id.as_str(), "{progress}");

    // A restart of falkirk repeats nothing.
    falkirk.restart().await;
    tokio::time::sleep(WATCH).await;
    assert_eq!(sink.messages_to(BOB).len(), 1, "no repeat after a restart");

    // Alice moves the date: falkirk learns it by Update and reschedules bob's reminders.
    let moved = day(2);
    ok(
        &alice,
        Method::PATCH,
        &format!("/api/v1/intentions/{key}"),
        Some(&json!({"target_date": moved.to_string()})),
    )
    .await;
    poll(WITHIN, "the moved date on falkirk", || async {
        let view = ok(
            &bob,
            Method::GET,
            &format!("/api/v1/intentions/{remote_key}"),
            None,
        )
        .await;
        (view["intention"]["target_date"] == moved.to_string()).then_some(())
    })
    .await;
    for (to, from) in [
        (ALICE, "reminders@stirling.test"),
        (BOB, "reminders@falkirk.test"),
    ] {
        let got = emails(&sink, to, 2).await;
        assert_eq!(got[1].mail_from, from);
        let text = got[1].part("text/plain").unwrap_or_default();
        assert!(text.contains(&in_words(moved)), "{to}: {text}");
        assert!(text.contains("in 2 days"), "{to}: {text}");
    }

    // Achieved at the origin: falkirk shows it so.
    ok(
        &alice,
        Method::POST,
        &format!("/api/v1/intentions/{key}/achieved"),
        None,
    )
    .await;
    let (view, _) = poll(WITHIN, "achieved on falkirk", || async {
        let view = ok(
            &bob,
            Method::GET,
            &format!("/api/v1/intentions/{remote_key}"),
            None,
        )
        .await;
        (view["intention"]["status"] == "achieved").then_some(view)
    })
    .await;
    // Every Update (accepted, moved, achieved) was taken without a server error.
    let errors = server_errors(&falkirk);
    assert!(
        errors.is_empty(),
        "falkirk's inbox failed:\n{}",
        errors.join("\n")
    );
    // When alice achieved it, not when falkirk heard of it (the wire form has whole seconds).
    let origin = ok(
        &alice,
        Method::GET,
        &format!("/api/v1/intentions/{key}"),
        None,
    )
    .await;
    let at_origin = time_of(&origin)
        .duration_trunc(Days::seconds(1))
        .expect("a time");
    assert_eq!(
        time_of(&view),
        at_origin,
        "falkirk {view}\nstirling {origin}"
    );
    tokio::time::sleep(WATCH).await;
    assert_eq!(sink.messages_to(ALICE).len(), 2, "one per reminder");
    assert_eq!(sink.messages_to(BOB).len(), 2, "one per reminder");
}
