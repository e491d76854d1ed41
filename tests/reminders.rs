//! Reminder emails, received by a real SMTP server process-local to the test (the sink in
//! `federation-tests/src/smtp.rs`, which speaks the protocol over TCP; lettre talks to it as to
//! any relay). Checked: recipient, both MIME parts, the link back, one email per reminder across
//! worker rounds, restarts and racing workers, a moved date reschedules, achieved cancels.

mod support;

#[allow(dead_code)]
#[path = "../federation-tests/src/smtp.rs"]
mod smtp;

use cairn::{config::Config, email::Mailer, server, services::reminders, store::reminder};
use chrono::{Duration as Days, NaiveDate, Utc};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use smtp::{Message, SmtpSink};
use std::time::Duration;
use support::*;

/// How long a due reminder may take to arrive (the worker looks every second).
const ARRIVAL: Duration = Duration::from_secs(15);
/// How long we watch for a duplicate (several worker rounds).
const WATCH: Duration = Duration::from_secs(4);

fn day(offset: i64) -> NaiveDate {
    Utc::now().date_naive() + Days::days(offset)
}

fn in_words(date: NaiveDate) -> String {
    date.format("%-d %B %Y").to_string()
}

fn sending_to(sink: &SmtpSink) -> impl Fn(&mut Config) {
    let port = sink.port();
    move |c: &mut Config| {
        c.email.smtp_host = "127.0.0.1".into();
        c.email.smtp_port = port;
        c.email.from = "Cairn reminders <reminders@cairn.test>".into();
        c.reminders.check_every_secs = 1;
        c.reminders.days_before = 3;
    }
}

async fn member_with_email(i: &Instance, name: &str, display: &str, email: &str) -> String {
    let token = i.member(name, display).await;
    let member = cairn::services::members::find_local(&i.state, name)
        .await
        .expect("query")
        .expect("the member");
    cairn::services::members::set_email(&i.state, &member, email)
        .await
        .expect("set email");
    token
}

async fn declare(i: &Instance, token: &str, text: &str, target: NaiveDate) -> Value {
    let body = json!({"text": text, "target_date": target.to_string()});
    let reply = i.post("/api/v1/intentions", Some(token), &body).await;
    reply.expect(StatusCode::CREATED, &format!("declare {body}"));
    reply.json
}

async fn arrived(sink: &SmtpSink, to: &str, count: usize) -> Vec<Message> {
    poll(&format!("{count} email(s) to {to}"), ARRIVAL, || async {
        let got = sink.messages_to(to);
        (got.len() >= count).then_some(got)
    })
    .await
}

/// Waits a few worker rounds and returns what reached `to` by then.
async fn after_a_while(sink: &SmtpSink, to: &str) -> Vec<Message> {
    tokio::time::sleep(WATCH).await;
    sink.messages_to(to)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_reminder_arrives_once_with_text_html_and_a_link() {
    let sink = SmtpSink::start().expect("the SMTP sink");
    let a = Instance::start_with("remind-once", sending_to(&sink)).await;
    let alice = member_with_email(&a, "alice", "Alice Teacher", "alice@school.example").await;
    let bob = member_with_email(&a, "bob", "Bob Teacher", "bob@school.example").await;
    let carol = a.member("carol", "Carol (no email)").await;

    // Due tomorrow: the advance reminder (3 days before) is due at once; the on-day one is not.
    let tomorrow = day(1);
    let created = declare(&a, &alice, "use exit tickets & <hinge> questions", tomorrow).await;
    let key = key_of(&created);
    let link = a.id(&format!("/p/{key}"));
    let got = arrived(&sink, "alice@school.example", 1).await;
    let m = &got[0];
    assert_eq!(m.rcpt_to, vec!["alice@school.example".to_string()]);
    assert_eq!(m.mail_from, "reminders@cairn.test");
    let to = m.header("To").unwrap_or_default();
    assert!(
        to.contains("Alice Teacher") && to.contains("<alice@school.example>"),
        "{to}"
    );
    let subject = m.header("Subject").unwrap_or_default();
    assert!(subject.contains("due tomorrow"), "{subject}");
    let content_type = m.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );
    let text = m.part("text/plain").expect("a plain-text part");
    let html = m.part("text/html").expect("an HTML part");
    assert!(text.contains("Hello Alice Teacher"), "{text}");
    assert!(text.contains(&in_words(tomorrow)), "{text}");
    assert!(
        text.contains("I intend to use exit tickets & <hinge> questions"),
        "{text}"
    );
    assert!(text.contains(&link), "the link back: {text}");
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    assert!(html.contains("&lt;hinge&gt;"), "escaped in HTML: {html}");
    assert!(!html.contains("<hinge>"), "{html}");

    // Bob joins and gets his own; Carol, without an address, gets none and has no rows.
    a.post(
        &format!("/api/v1/intentions/{key}/join"),
        Some(&bob),
        &json!({}),
    )
    .await
    .expect(StatusCode::OK, "bob joins");
    a.post(
        &format!("/api/v1/intentions/{key}/join"),
        Some(&carol),
        &json!({}),
    )
    .await
    .expect(StatusCode::OK, "carol joins");
    let got = arrived(&sink, "bob@school.example", 1).await;
    let subject = got[0].header("Subject").unwrap_or_default();
    assert!(
        subject.contains("you share with Alice Teacher"),
        "{subject}"
    );

    // Due today: the on-day reminder, and no advance one.
    let today = declare(&a, &alice, "finish the moderation forms", day(0)).await;
    let got = arrived(&sink, "alice@school.example", 2).await;
    let subject = got[1].header("Subject").unwrap_or_default();
    assert!(subject.starts_with("Today is the target date"), "{subject}");
    assert!(got[1]
        .part("text/plain")
        .unwrap_or_default()
        .contains(&a.id(&format!("/p/{}", key_of(&today)))));

    // Several worker rounds later: still exactly one email per reminder.
    assert_eq!(after_a_while(&sink, "alice@school.example").await.len(), 2);
    assert_eq!(sink.messages_to("bob@school.example").len(), 1);
    assert_eq!(sink.messages().len(), 3, "nothing for carol");
    let rows = reminder::Entity::find()
        .all(&a.state.db)
        .await
        .expect("rows");
    let sent = rows.iter().filter(|r| r.sent_at.is_some()).count();
    assert_eq!(sent, 3, "{rows:?}");
    let carol_id = cairn::services::members::find_local(&a.state, "carol")
        .await
        .expect("query")
        .expect("carol")
        .id;
    assert!(rows.iter().all(|r| r.actor_id != carol_id), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_the_date_reschedules_and_achieved_stops_reminders() {
    let sink = SmtpSink::start().expect("the SMTP sink");
    let a = Instance::start_with("remind-move", sending_to(&sink)).await;
    let alice = member_with_email(&a, "alice", "Alice", "alice@school.example").await;

    // Ten days ahead: nothing is due yet.
    let moving = declare(&a, &alice, "run a lesson study", day(10)).await;
    let achieved = declare(&a, &alice, "read the new guidance", day(10)).await;
    assert!(after_a_while(&sink, "alice@school.example")
        .await
        .is_empty());

    // Moved to in two days: its advance reminder is due now, and says the new date.
    let reply = a
        .patch(
            &format!("/api/v1/intentions/{}", key_of(&moving)),
            Some(&alice),
            &json!({"target_date": day(2).to_string()}),
        )
        .await;
    reply.expect(StatusCode::OK, "move the date");
    let got = arrived(&sink, "alice@school.example", 1).await;
    let text = got[0].part("text/plain").unwrap_or_default();
    assert!(text.contains(&in_words(day(2))), "{text}");
    assert!(text.contains("in 2 days"), "{text}");
    assert!(!text.contains(&in_words(day(10))), "{text}");

    // Achieved, then moved to tomorrow: nothing is sent while it is achieved…
    let path = format!("/api/v1/intentions/{}", key_of(&achieved));
    a.post(&format!("{path}/achieved"), Some(&alice), &json!({}))
        .await
        .expect(StatusCode::OK, "achieve");
    a.patch(
        &path,
        Some(&alice),
        &json!({"target_date": day(1).to_string()}),
    )
    .await
    .expect(StatusCode::OK, "move an achieved one");
    assert_eq!(after_a_while(&sink, "alice@school.example").await.len(), 1);
    // …and reopening it plans them again.
    a.delete(&format!("{path}/achieved"), Some(&alice))
        .await
        .expect(StatusCode::OK, "reopen");
    let got = arrived(&sink, "alice@school.example", 2).await;
    assert!(got[1]
        .part("text/plain")
        .unwrap_or_default()
        .contains("read the new guidance"));
    assert_eq!(after_a_while(&sink, "alice@school.example").await.len(), 2);
}

/// A second server on the same database with the same configuration: what a restart (or a
/// second process behind the load balancer) sees.
async fn another_process(i: &Instance, email_to: Option<&SmtpSink>) -> server::Running {
    let mut config = i.state.config.clone();
    config.bind = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    if let Some(sink) = email_to {
        sending_to(sink)(&mut config);
    }
    let federation = server::build(config).await.expect("build");
    server::start(federation).await.expect("start")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_neither_loses_nor_repeats_and_racing_workers_send_once() {
    let sink = SmtpSink::start().expect("the SMTP sink");
    // The first process has no SMTP server configured: reminders wait in the database.
    let a = Instance::start_with("remind-restart", |c| {
        c.reminders.check_every_secs = 1;
        c.reminders.days_before = 3;
    })
    .await;
    let alice = member_with_email(&a, "alice", "Alice", "alice@school.example").await;
    let due = declare(&a, &alice, "plan the parents' evening", day(1)).await;
    let stopped = declare(&a, &alice, "try retrieval starters", day(1)).await;
    a.post(
        &format!("/api/v1/intentions/{}/achieved", key_of(&stopped)),
        Some(&alice),
        &json!({}),
    )
    .await
    .expect(StatusCode::OK, "achieve");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rows = reminder::Entity::find()
        .all(&a.state.db)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| r.sent_at.is_none()), "{rows:?}");

    // Started again with email: the waiting reminder is sent, the achieved one is not.
    let first = another_process(&a, Some(&sink)).await;
    let got = arrived(&sink, "alice@school.example", 1).await;
    assert!(got[0]
        .part("text/plain")
        .unwrap_or_default()
        .contains("plan the parents' evening"));
    // A second process on the same database: nothing is sent again.
    let second = another_process(&a, Some(&sink)).await;
    assert_eq!(after_a_while(&sink, "alice@school.example").await.len(), 1);
    first.server.abort();
    second.server.abort();
    let _ = due;

    // Two workers racing for the same due rows, round after round: each is sent once.
    let mut config = a.state.config.clone();
    sending_to(&sink)(&mut config);
    let mailer = Mailer::from_config(&config.email)
        .expect("a valid email config")
        .expect("email on");
    let one = server::build(config.clone()).await.expect("build");
    let two = server::build(config).await.expect("build");
    let (one, two) = (
        one.to_request_data().app_data().clone(),
        two.to_request_data().app_data().clone(),
    );
    let colleagues = 8;
    for n in 0..colleagues {
        declare(&a, &alice, &format!("racing intention {n}"), day(1)).await;
    }
    let mut sent = 0;
    for _ in 0..3 {
        let (x, y) = tokio::join!(
            reminders::send_due(&one, &mailer),
            reminders::send_due(&two, &mailer)
        );
        sent += x.expect("worker one") + y.expect("worker two");
    }
    // The instance's own workers may have sent some first; never twice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = sink.messages_to("alice@school.example");
    for n in 0..colleagues {
        let needle = format!("racing intention {n}");
        let copies = all
            .iter()
            .filter(|m| m.part("text/plain").unwrap_or_default().contains(&needle))
            .count();
        assert!(copies <= 1, "{needle}: {copies} copies");
    }
    let unsent = reminder::Entity::find()
        .filter(reminder::Column::SentAt.is_null())
        .filter(reminder::Column::Kind.eq(reminder::BEFORE))
        .filter(reminder::Column::Attempts.lt(reminders::MAX_ATTEMPTS))
        .all(&a.state.db)
        .await
        .expect("rows");
    // The only advance reminder left unsent is the achieved intention's.
    assert_eq!(unsent.len(), 1, "{unsent:?}");
    assert_eq!(
        all.len(),
        1 + colleagues,
        "one each: {sent} sent by the racers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_who_left_gets_nothing_until_they_join_again() {
    let sink = SmtpSink::start().expect("the SMTP sink");
    // Email off at first, so the rows are due before anyone sends them.
    let a = Instance::start_with("remind-left", |c| {
        c.reminders.check_every_secs = 1;
        c.reminders.days_before = 3;
    })
    .await;
    let alice = member_with_email(&a, "alice", "Alice", "alice@school.example").await;
    let bob = member_with_email(&a, "bob", "Bob", "bob@school.example").await;
    let key = key_of(&declare(&a, &alice, "start a reading group", day(1)).await);
    let join = format!("/api/v1/intentions/{key}/join");
    a.post(&join, Some(&bob), &json!({}))
        .await
        .expect(StatusCode::OK, "join");
    a.delete(&join, Some(&bob))
        .await
        .expect(StatusCode::NO_CONTENT, "leave");

    // A deleted intention reminds nobody.
    let deleted = key_of(&declare(&a, &alice, "this one was a mistake", day(1)).await);
    a.delete(&format!("/api/v1/posts/{deleted}"), Some(&alice))
        .await
        .expect(StatusCode::NO_CONTENT, "delete the intention");

    let sender = another_process(&a, Some(&sink)).await;
    arrived(&sink, "alice@school.example", 1).await;
    assert!(after_a_while(&sink, "bob@school.example").await.is_empty());
    let bob_id = cairn::services::members::find_local(&a.state, "bob")
        .await
        .expect("query")
        .expect("bob")
        .id;
    let bobs = reminder::Entity::find()
        .filter(reminder::Column::ActorId.eq(bob_id))
        .all(&a.state.db)
        .await
        .expect("rows");
    let due: Vec<_> = bobs.iter().filter(|r| r.kind == reminder::BEFORE).collect();
    assert_eq!(due.len(), 1, "{bobs:?}");
    assert!(
        due[0].sent_at.is_none()
            && due[0]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("no longer takes part")),
        "{bobs:?}"
    );

    // Joining again brings his reminder back; it is sent once.
    a.post(&join, Some(&bob), &json!({}))
        .await
        .expect(StatusCode::OK, "join again");
    let got = arrived(&sink, "bob@school.example", 1).await;
    assert!(got[0]
        .part("text/plain")
        .unwrap_or_default()
        .contains("start a reading group"));
    assert_eq!(after_a_while(&sink, "bob@school.example").await.len(), 1);
    let alices = sink.messages_to("alice@school.example");
    assert_eq!(alices.len(), 1, "nothing for the deleted one");
    assert!(!alices[0]
        .part("text/plain")
        .unwrap_or_default()
        .contains("mistake"));
    sender.server.abort();
}
