//! "I intend" through the JSON API and on the wire: declaring, editing, moving the date,
//! achieving, progress replies, colleagues joining and leaving, the lists, visibility, and the
//! `Note` with Cairn's terms that other instances (and Mastodon) read.
//!
//! Reminder emails are in `tests/reminders.rs`; across instances in
//! `federation-tests/tests/intentions_federation.rs`.

mod support;

use cairn::store::{intention, reminder};
use chrono::{Duration, NaiveDate, Utc};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use support::*;

fn day(offset: i64) -> NaiveDate {
    Utc::now().date_naive() + Duration::days(offset)
}

/// "14 March 2027", as the text says it.
fn in_words(date: NaiveDate) -> String {
    date.format("%-d %B %Y").to_string()
}

async fn declare(i: &Instance, token: &str, body: Value) -> Value {
    let reply = i.post("/api/v1/intentions", Some(token), &body).await;
    reply.expect(StatusCode::CREATED, &format!("declare {body}"));
    reply.json
}

async fn intention_view(i: &Instance, key: &str, token: Option<&str>) -> Value {
    let path = format!("/api/v1/intentions/{key}");
    let reply = i.get(&path, token).await;
    reply.expect(StatusCode::OK, &path);
    reply.json
}

async fn reminder_rows(i: &Instance, post_id: i64) -> Vec<reminder::Model> {
    reminder::Entity::find()
        .filter(reminder::Column::IntentionPostId.eq(post_id))
        .all(&i.state.db)
        .await
        .expect("reminders")
}

async fn post_id_of(i: &Instance, key: &str) -> i64 {
    cairn::store::post::Entity::find()
        .filter(cairn::store::post::Column::Key.eq(key))
        .one(&i.state.db)
        .await
        .expect("query")
        .expect("the post")
        .id
}

async fn with_email(i: &Instance, name: &str, email: &str) {
    let member = cairn::services::members::find_local(&i.state, name)
        .await
        .expect("query")
        .expect("the member");
    cairn::services::members::set_email(&i.state, &member, email)
        .await
        .expect("set email");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_edit_move_the_date_and_achieve() {
    let a = Instance::start("intend-lifecycle").await;
    a.community("hwb", Some("Health and wellbeing")).await;
    let alice = a.member("alice", "Alice Teacher").await;
    let bob = a.member("bob", "Bob Teacher").await;
    with_email(&a, "alice", "alice@school.example").await;

    let target = day(30);
    let created = declare(
        &a,
        &alice,
        json!({
            "text": "I intend to use exit tickets in every lesson #hwb",
            "target_date": target.to_string(),
        }),
    )
    .await;
    let key = key_of(&created);
    assert_eq!(created["category"], "intention");
    assert_eq!(created["communities"], json!(["hwb"]));
    let i = &created["intention"];
    assert_eq!(i["target_date"], target.to_string(), "{created}");
    assert_eq!(i["status"], "active");
    assert_eq!(i["participants"], 1, "the owner takes part: {created}");
    assert_eq!(i["days_left"], 30);
    let content = created["content"].as_str().unwrap_or_default();
    assert!(
        content.contains("I intend to use exit tickets in every lesson"),
        "the prefix is not doubled: {content}"
    );
    assert!(!content.contains("I intend to I intend"), "{content}");
    assert!(
        content.contains(&format!("Target date: {}", in_words(target))),
        "the date in words: {content}"
    );

    // Reminders are rows from the start: one before, one on the day, for the owner.
    let id = post_id_of(&a, &key).await;
    let rows = reminder_rows(&a, id).await;
    let mut kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, vec!["before", "on_day"], "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r.target_date == target && r.sent_at.is_none()));

    // Only the owner changes it; nothing changes when someone else tries.
    let path = format!("/api/v1/intentions/{key}");
    let msg = a
        .patch(
            &path,
            Some(&bob),
            &json!({"target_date": day(40).to_string()}),
        )
        .await
        .client_error(StatusCode::FORBIDDEN, "edit by another member");
    assert!(msg.contains("owner"), "{msg}");
    a.patch(&path, None, &json!({"target_date": day(40).to_string()}))
        .await
        .expect(StatusCode::UNAUTHORIZED, "edit anonymously");
    assert_eq!(
        intention_view(&a, &key, None).await["intention"]["target_date"],
        target.to_string()
    );

    // Bad edits are refused with a reason.
    for (body, needle) in [
        (json!({"target_date": "next week"}), "YYYY-MM-DD"),
        (json!({"target_date": day(-1).to_string()}), "past"),
        (json!({"target_date": day(365 * 6).to_string()}), "years"),
        (json!({}), "nothing to change"),
        (json!({"text": "   "}), "intend"),
        (json!({"status": "achieved"}), "unknown field"),
    ] {
        let msg = a
            .patch(&path, Some(&alice), &body)
            .await
            .client_error(StatusCode::BAD_REQUEST, &format!("edit {body}"));
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    assert_eq!(
        reminder_rows(&a, id).await.len(),
        2,
        "a refused edit schedules nothing"
    );

    // Moving the date: the text says the new date, reminders are planned for it, the old rows
    // are left inert.
    let moved = day(45);
    let reply = a
        .patch(
            &path,
            Some(&alice),
            &json!({"target_date": moved.to_string(), "text": "use exit tickets daily #hwb"}),
        )
        .await;
    reply.expect(StatusCode::OK, "move the date");
    assert_eq!(reply.json["intention"]["target_date"], moved.to_string());
    let content = reply.json["content"].as_str().unwrap_or_default();
    assert!(content.contains("use exit tickets daily"), "{content}");
    assert!(content.contains(&in_words(moved)), "{content}");
    assert!(!content.contains(&in_words(target)), "{content}");
    assert!(reply.json["updated"].is_string());
    let rows = reminder_rows(&a, id).await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    for r in &rows {
        if r.target_date == moved {
            assert_eq!((r.attempts, r.last_error.as_deref()), (0, None), "{r:?}");
        } else {
            assert_eq!(r.target_date, target);
            assert!(
                r.last_error.as_deref().is_some_and(|e| e.contains("moved")),
                "{r:?}"
            );
            assert_eq!(r.attempts, cairn::services::reminders::MAX_ATTEMPTS);
        }
    }

    // Moving it back brings the first rows back, without new ones.
    a.patch(
        &path,
        Some(&alice),
        &json!({"target_date": target.to_string()}),
    )
    .await
    .expect(StatusCode::OK, "move the date back");
    let rows = reminder_rows(&a, id).await;
    assert_eq!(rows.len(), 4);
    let live: Vec<_> = rows.iter().filter(|r| r.attempts == 0).collect();
    assert_eq!(live.len(), 2, "{rows:?}");
    assert!(live.iter().all(|r| r.target_date == target));

    // Achieved: the status and the text say so; reopening makes it active again.
    let achieved_path = format!("/api/v1/intentions/{key}/achieved");
    a.post(&achieved_path, Some(&bob), &json!({}))
        .await
        .client_error(StatusCode::FORBIDDEN, "achieve someone else's");
    let reply = a.post(&achieved_path, Some(&alice), &json!({})).await;
    reply.expect(StatusCode::OK, "achieve");
    assert_eq!(reply.json["intention"]["status"], "achieved");
    assert!(reply.json["intention"]["achieved_at"].is_string());
    let content = reply.json["content"].as_str().unwrap_or_default();
    assert!(
        content.contains(&format!("achieved on {}", in_words(day(0)))),
        "{content}"
    );
    let stored = intention::Entity::find_by_id(id)
        .one(&a.state.db)
        .await
        .expect("query")
        .expect("row");
    assert_eq!(stored.status, "achieved");
    let reply = a.delete(&achieved_path, Some(&alice)).await;
    reply.expect(StatusCode::OK, "reopen");
    assert_eq!(reply.json["intention"]["status"], "active");
    assert!(reply.json["intention"]["achieved_at"].is_null());
    assert!(!reply.json["content"]
        .as_str()
        .unwrap_or_default()
        .contains("achieved on"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_declarations_are_refused_and_store_nothing() {
    let a = Instance::start("intend-refused").await;
    a.community("hwb", None).await;
    let alice = a.member("alice", "Alice").await;
    let before = a.snapshot().await;
    let cases = [
        (
            json!({"text": "try", "target_date": "2027-02-30"}),
            "not a date",
        ),
        (
            json!({"text": "try", "target_date": "14/03/2027"}),
            "YYYY-MM-DD",
        ),
        (
            json!({"text": "try", "target_date": day(-3).to_string()}),
            "past",
        ),
        (
            json!({"text": "", "target_date": day(3).to_string()}),
            "intend",
        ),
        (
            json!({"text": "I intend to ", "target_date": day(3).to_string()}),
            "intend",
        ),
        (
            json!({"text": "x".repeat(2_001), "target_date": day(3).to_string()}),
            "2000",
        ),
        (json!({"text": "try"}), "target_date"),
        (
            json!({"text": "try", "target_date": day(3).to_string(), "colour": "red"}),
            "unknown field",
        ),
        (
            json!({"text": "try", "target_date": day(3).to_string(), "visibility": "secret"}),
            "visibility",
        ),
        (
            json!({"text": "try", "target_date": day(3).to_string(), "source": "no such thing!"}),
            "neither a URL nor a post key",
        ),
        (
            json!({"text": "try", "target_date": day(3).to_string(), "source": "ftp://files.example/a"}),
            "http(s)",
        ),
    ];
    for (body, needle) in cases {
        let reply = a.post("/api/v1/intentions", Some(&alice), &body).await;
        let msg = reply.client_error(StatusCode::BAD_REQUEST, &format!("declare {body}"));
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    // A source that is a well-formed key of nothing known here: 404, saying what to do.
    let reply = a
        .post(
            "/api/v1/intentions",
            Some(&alice),
            &json!({"text": "try", "target_date": day(3).to_string(), "source": "abc-123"}),
        )
        .await;
    let msg = reply.client_error(StatusCode::NOT_FOUND, "unknown source");
    assert!(msg.contains("leave source out"), "{msg}");
    a.post(
        "/api/v1/intentions",
        None,
        &json!({"text": "try", "target_date": day(3).to_string()}),
    )
    .await
    .expect(StatusCode::UNAUTHORIZED, "declare anonymously");
    a.send(
        reqwest::Method::POST,
        "/api/v1/intentions",
        Some(&alice),
        &[("content-type", "application/json")],
        Some(b"[1,2]".to_vec()),
    )
    .await
    .client_error(StatusCode::BAD_REQUEST, "an array body");
    assert_eq!(a.snapshot().await, before, "nothing was stored");
    assert_eq!(
        intention::Entity::find()
            .all(&a.state.db)
            .await
            .expect("query")
            .len(),
        0
    );
    assert_eq!(
        reminder::Entity::find()
            .all(&a.state.db)
            .await
            .expect("query")
            .len(),
        0
    );

    // Not an intention, and not there at all.
    let post = a
        .create_post(&alice, json!({"content": "A plain post #hwb"}))
        .await;
    let msg = a
        .get(&format!("/api/v1/intentions/{}", key_of(&post)), None)
        .await
        .client_error(StatusCode::NOT_FOUND, "a plain post");
    assert!(msg.contains("not an intention"), "{msg}");
    a.get("/api/v1/intentions/nope", None)
        .await
        .client_error(StatusCode::NOT_FOUND, "no such key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_progress_and_colleagues() {
    let a = Instance::start("intend-colleagues").await;
    a.community("hwb", None).await;
    let alice = a.member("alice", "Alice Teacher").await;
    let bob = a.member("bob", "Bob Teacher").await;
    let carol = a.member("carol", "Carol Teacher").await;
    with_email(&a, "bob", "bob@school.example").await;

    // The CPD it came from: a post named by its key (its id works too).
    let workshop = a
        .create_post(
            &alice,
            json!({"title": "Assessment for learning workshop", "content": "Slides and notes #hwb"}),
        )
        .await;
    let target = day(20);
    let created = declare(
        &a,
        &alice,
        json!({
            "text": "try hinge questions #hwb",
            "target_date": target.to_string(),
            "source": key_of(&workshop),
        }),
    )
    .await;
    let key = key_of(&created);
    assert_eq!(created["intention"]["source"]["key"], key_of(&workshop));
    assert_eq!(created["intention"]["source"]["id"], workshop["id"]);
    let content = created["content"].as_str().unwrap_or_default();
    assert!(
        content.contains("Assessment for learning workshop"),
        "the source is named in the text: {content}"
    );
    let by_id = declare(
        &a,
        &carol,
        json!({"text": "also try it", "target_date": target.to_string(), "source": workshop["id"]}),
    )
    .await;
    assert_eq!(by_id["intention"]["source"]["key"], key_of(&workshop));

    // Progress: the owner's replies in the intention's thread; not from a stranger.
    let progress = format!("/api/v1/intentions/{key}/progress");
    let reply = a
        .post(
            &progress,
            Some(&alice),
            &json!({"content": "Tried it with S2 today"}),
        )
        .await;
    reply.expect(StatusCode::CREATED, "progress by the owner");
    assert_eq!(reply.json["in_reply_to"], created["id"]);
    assert_eq!(reply.json["visibility"], created["visibility"]);
    let msg = a
        .post(&progress, Some(&bob), &json!({"content": "me too"}))
        .await
        .client_error(StatusCode::FORBIDDEN, "progress by a stranger");
    assert!(msg.contains("join"), "{msg}");

    // Bob joins: he shares the aim and the date, and gets reminders of his own.
    let join = format!("/api/v1/intentions/{key}/join");
    let reply = a.post(&join, Some(&bob), &json!({})).await;
    reply.expect(StatusCode::OK, "join");
    assert_eq!(reply.json["state"], "accepted", "{}", reply.text);
    a.post(&join, Some(&bob), &json!({}))
        .await
        .expect(StatusCode::OK, "joining twice changes nothing");
    let view = intention_view(&a, &key, None).await;
    assert_eq!(view["intention"]["participants"], 2, "{view}");
    // Sharing it does not let him edit it, and the refusal says what sharing does allow.
    let msg = a
        .patch(
            &format!("/api/v1/intentions/{key}"),
            Some(&bob),
            &json!({"text": "something else"}),
        )
        .await
        .client_error(StatusCode::FORBIDDEN, "edit by a participant");
    assert!(
        msg.contains("only the owner can change") && msg.contains("post progress"),
        "{msg}"
    );
    assert!(!msg.contains("join it to share it"), "{msg}");
    let participants = a
        .get(&format!("/api/v1/intentions/{key}/participants"), None)
        .await;
    participants.expect(StatusCode::OK, "participants");
    let names: Vec<String> = items(&participants.json)
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, vec!["alice", "bob"], "{}", participants.text);
    let searched = a
        .get(
            &format!("/api/v1/intentions/{key}/participants?q=Bob"),
            None,
        )
        .await;
    searched.expect(StatusCode::OK, "search participants");
    assert_eq!(items(&searched.json).len(), 1, "{}", searched.text);
    let id = post_id_of(&a, &key).await;
    let bob_id = cairn::services::members::find_local(&a.state, "bob")
        .await
        .expect("query")
        .expect("bob")
        .id;
    let bobs: Vec<_> = reminder_rows(&a, id)
        .await
        .into_iter()
        .filter(|r| r.actor_id == bob_id)
        .collect();
    assert_eq!(bobs.len(), 2, "bob's reminders: {bobs:?}");
    a.post(
        &progress,
        Some(&bob),
        &json!({"content": "Tried it with S1"}),
    )
    .await
    .expect(StatusCode::CREATED, "progress by a participant");

    // My intentions: my own and those I share, soonest first.
    let soon = declare(
        &a,
        &bob,
        json!({"text": "plan a peer observation", "target_date": day(5).to_string()}),
    )
    .await;
    let mine = a.get("/api/v1/me/intentions", Some(&bob)).await;
    mine.expect(StatusCode::OK, "mine");
    assert_eq!(keys(&items(&mine.json)), vec![key_of(&soon), key.clone()]);
    a.get("/api/v1/me/intentions", None)
        .await
        .expect(StatusCode::UNAUTHORIZED, "mine anonymously");

    // Leaving: no longer a participant; the owner cannot leave their own.
    let msg = a
        .delete(&join, Some(&alice))
        .await
        .client_error(StatusCode::BAD_REQUEST, "the owner leaves");
    assert!(msg.contains("achieved"), "{msg}");
    a.delete(&join, Some(&bob))
        .await
        .expect(StatusCode::NO_CONTENT, "leave");
    assert_eq!(
        intention_view(&a, &key, None).await["intention"]["participants"],
        1
    );
    let mine = a.get("/api/v1/me/intentions", Some(&bob)).await;
    assert_eq!(keys(&items(&mine.json)), vec![key_of(&soon)]);

    // An achieved intention is not joined: declare your own.
    a.post(
        &format!("/api/v1/intentions/{key}/achieved"),
        Some(&alice),
        &json!({}),
    )
    .await
    .expect(StatusCode::OK, "achieve");
    let msg = a
        .post(&join, Some(&carol), &json!({}))
        .await
        .client_error(StatusCode::CONFLICT, "join an achieved one");
    assert!(msg.contains("achieved"), "{msg}");
    // A plain post cannot be joined as an intention.
    a.post(
        &format!("/api/v1/intentions/{}/join", key_of(&workshop)),
        Some(&carol),
        &json!({}),
    )
    .await
    .client_error(StatusCode::NOT_FOUND, "join a plain post");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_wire_form_respect_visibility() {
    let a = Instance::start("intend-visibility").await;
    a.community("hwb", None).await;
    let alice = a.member("alice", "Alice").await;
    let bob = a.member("bob", "Bob").await;
    let target = day(10);
    let public = declare(
        &a,
        &alice,
        json!({"text": "share one resource a week #hwb", "target_date": target.to_string()}),
    )
    .await;
    let members = declare(
        &a,
        &alice,
        json!({"text": "observe a colleague #hwb", "target_date": day(8).to_string(),
               "visibility": "members"}),
    )
    .await;
    let authority = declare(
        &a,
        &alice,
        json!({"text": "join the cluster moderation #hwb", "target_date": day(9).to_string(),
               "visibility": "authority"}),
    )
    .await;

    let list = |token: Option<String>| {
        let a = &a;
        async move {
            let reply = a
                .get("/api/v1/communities/hwb/intentions", token.as_deref())
                .await;
            reply.expect(StatusCode::OK, "community intentions");
            keys(&items(&reply.json))
        }
    };
    // Anonymous readers see the public one; signed-in members of this instance also the
    // authority one; followers of #hwb also the members one. Soonest first.
    assert_eq!(list(None).await, vec![key_of(&public)]);
    assert_eq!(
        list(Some(bob.clone())).await,
        vec![key_of(&authority), key_of(&public)]
    );
    a.post("/api/v1/communities/hwb/follow", Some(&bob), &json!({}))
        .await;
    assert_eq!(
        list(Some(bob.clone())).await,
        vec![key_of(&members), key_of(&authority), key_of(&public)]
    );
    // Paged over what this reader sees.
    let page = a
        .get(
            "/api/v1/communities/hwb/intentions?limit=1&offset=1",
            Some(&bob),
        )
        .await;
    page.expect(StatusCode::OK, "a page");
    assert_eq!(keys(&items(&page.json)), vec![key_of(&authority)]);
    let page = a
        .get("/api/v1/communities/hwb/intentions?limit=1&offset=1", None)
        .await;
    assert!(items(&page.json).is_empty(), "{}", page.text);
    a.get("/api/v1/communities/hwb/intentions?limit=many", None)
        .await
        .client_error(StatusCode::BAD_REQUEST, "a bad limit");
    a.get(&format!("/api/v1/intentions/{}", key_of(&members)), None)
        .await
        .client_error(StatusCode::NOT_FOUND, "a members intention, anonymously");
    a.get("/api/v1/communities/nosuch/intentions", None)
        .await
        .client_error(StatusCode::NOT_FOUND, "no such community");
    // Plain posts are not intentions.
    a.create_post(&alice, json!({"content": "just chatting #hwb"}))
        .await;
    assert_eq!(list(None).await, vec![key_of(&public)]);

    // The wire form: a Note with Cairn's terms in its @context and a readable text.
    let doc = a.get_as(&format!("/p/{}", key_of(&public)), AP_JSON).await;
    doc.expect(StatusCode::OK, "the Note");
    let note = &doc.json;
    assert_eq!(note["type"], "Note", "{note}");
    assert_eq!(note["targetDate"], target.to_string());
    assert_eq!(note["intentionStatus"], "active");
    let context = note["@context"].to_string();
    assert!(context.contains("\"targetDate\""), "{context}");
    assert!(context.contains("https://w3id.org/cairn/ns#"), "{context}");
    let content = note["content"].as_str().unwrap_or_default();
    assert!(
        content.contains("I intend to share one resource a week"),
        "{content}"
    );
    assert!(content.contains(&in_words(target)), "{content}");
    assert!(strings(&note["to"]).contains(&PUBLIC.to_string()));
    // Never served to remote readers when not public.
    for hidden in [&members, &authority] {
        a.get_as(&format!("/p/{}", key_of(hidden)), AP_JSON)
            .await
            .expect(StatusCode::NOT_FOUND, "a hidden intention's Note");
    }
    // The context document the terms resolve to.
    let ns = a.get("/ns", None).await;
    ns.expect(StatusCode::OK, "GET /ns");
    assert!(
        ns.content_type.starts_with("application/ld+json"),
        "{}",
        ns.content_type
    );
    assert_eq!(ns.json["@context"]["targetDate"]["@id"], "cairn:targetDate");
    assert_eq!(
        ns.json["@context"]["intentionStatus"],
        "cairn:intentionStatus"
    );
}
