//! Filtering by theme: a community's shared items by hashtag, kind and date, and a member's feed
//! across the communities they follow. SQLite by default; PostgreSQL with CAIRN_TEST_DATABASE_URL.

mod support;

use cairn::store::{actor, event, intention, media, post};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{json, Value};
use support::{items, key_of, keys, Instance};

async fn row(a: &Instance, p: &Value) -> post::Model {
    post::Entity::find()
        .filter(post::Column::Key.eq(key_of(p)))
        .one(&a.state.db)
        .await
        .expect("query")
        .expect("the post")
}

async fn member_id(a: &Instance, name: &str) -> i64 {
    actor::Entity::find()
        .filter(actor::Column::LocalName.eq(name))
        .one(&a.state.db)
        .await
        .expect("query")
        .expect("the member")
        .id
}

/// An edit makes the post's kind be worked out again from what it now carries.
async fn touch(a: &Instance, token: &str, p: &Value, content: &str) -> Value {
    let reply = a
        .patch(
            &format!("/api/v1/posts/{}", key_of(p)),
            Some(token),
            &json!({ "content": content }),
        )
        .await;
    reply.expect(StatusCode::OK, "edit");
    reply.json
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn listed(a: &Instance, query: &str, token: Option<&str>) -> (Vec<String>, Value) {
    let path = format!("/api/v1/communities/hwb/posts?{query}");
    let reply = a.get(&path, token).await;
    reply.expect(StatusCode::OK, &path);
    (keys(&items(&reply.json)), reply.json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_communitys_items_filter_by_hashtag_kind_and_date() {
    let a = Instance::start("filters").await;
    let alice = a.member("alice", "Alice Teacher").await;
    let alice_id = member_id(&a, "alice").await;
    let now = chrono::Utc::now();

    let d = a
        .create_post(&alice, json!({"content": "How do you start lessons? #hwb"}))
        .await;
    let l = a
        .create_post(
            &alice,
            json!({"content": "Slides from today: https://example.org/deck #hwb"}),
        )
        .await;
    assert_eq!(l["category"], json!("link"), "{l}");
    assert_eq!(d["category"], json!("discussion"), "{d}");

    let r = a
        .create_post(&alice, json!({"content": "Our marking rubric #hwb"}))
        .await;
    media::ActiveModel {
        key: Set(uuid::Uuid::new_v4().to_string()),
        owner_id: Set(alice_id),
        post_id: Set(Some(row(&a, &r).await.id)),
        position: Set(0),
        kind: Set(media::DOCUMENT.into()),
        media_type: Set("application/pdf".into()),
        byte_size: Set(1234),
        storage_key: Set(Some("rubric.pdf".into())),
        remote_url: Set(None),
        alt_text: Set(None),
        width: Set(None),
        height: Set(None),
        original_name: Set(Some("rubric.pdf".into())),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&a.state.db)
    .await
    .expect("media row");
    let r = touch(&a, &alice, &r, "Our marking rubric, attached #hwb").await;
    assert_eq!(r["category"], json!("resource"), "{r}");

    let e = a
        .create_post(&alice, json!({"content": "Twilight session #hwb"}))
        .await;
    event::ActiveModel {
        post_id: Set(row(&a, &e).await.id),
        starts_at: Set(now + chrono::Duration::days(3)),
        ends_at: Set(now + chrono::Duration::days(3) + chrono::Duration::hours(1)),
        timezone: Set("Europe/London".into()),
        location_name: Set(Some("Library".into())),
        location_address: Set(None),
        online_url: Set(None),
        capacity: Set(None),
        poll_post_id: Set(None),
        status: Set(event::SCHEDULED.into()),
        participants_refreshed_at: Set(None),
    }
    .insert(&a.state.db)
    .await
    .expect("events row");
    let e = touch(&a, &alice, &e, "Twilight session, Thursday #hwb").await;
    assert_eq!(e["category"], json!("event"), "{e}");

    let i = a
        .create_post(
            &alice,
            json!({"content": "I intend to use exit tickets #hwb"}),
        )
        .await;
    intention::ActiveModel {
        post_id: Set(row(&a, &i).await.id),
        target_date: Set(chrono::NaiveDate::from_ymd_opt(2027, 3, 1).expect("date")),
        status: Set(intention::ACTIVE.into()),
        source_ap_id: Set(None),
        achieved_at: Set(None),
    }
    .insert(&a.state.db)
    .await
    .expect("intentions row");
    let i = touch(&a, &alice, &i, "I intend to use exit tickets daily #hwb").await;
    assert_eq!(i["category"], json!("intention"), "{i}");

    let m = a
        .create_post(&alice, json!({"content": "Fractions walls #hwb #Maths"}))
        .await;
    let reply = a
        .create_post(
            &alice,
            json!({"content": "A register game #hwb", "in_reply_to": d["id"]}),
        )
        .await;
    let old = a
        .create_post(&alice, json!({"content": "Last year's notes #hwb"}))
        .await;
    let mut old_row: post::ActiveModel = row(&a, &old).await.into();
    old_row.published = Set(chrono::DateTime::parse_from_rfc3339("2026-01-15T10:00:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc));
    old_row.update(&a.state.db).await.expect("backdate");

    let all = listed(&a, "", None).await.0;
    assert_eq!(all.len(), 8, "{all:?}");

    // By kind.
    for (kind, wanted) in [
        ("link", vec![key_of(&l)]),
        ("resource", vec![key_of(&r)]),
        ("event", vec![key_of(&e)]),
        ("intention", vec![key_of(&i)]),
        (
            "discussion",
            vec![key_of(&old), key_of(&reply), key_of(&m), key_of(&d)],
        ),
    ] {
        assert_eq!(
            listed(&a, &format!("kind={kind}"), None).await.0,
            wanted,
            "kind={kind}"
        );
    }
    // By hashtag, written any way.
    for h in ["maths", "%23Maths", "MATHS"] {
        assert_eq!(
            listed(&a, &format!("hashtag={h}"), None).await.0,
            vec![key_of(&m)],
            "{h}"
        );
    }
    assert!(listed(&a, "hashtag=art", None).await.0.is_empty());
    // A tag that is a prefix of another is not confused with it.
    assert!(listed(&a, "hashtag=math", None).await.0.is_empty());
    // By date (a date means the whole day, UTC).
    assert_eq!(
        listed(&a, "until=2026-01-31", None).await.0,
        vec![key_of(&old)]
    );
    assert_eq!(
        listed(&a, "since=2026-01-15&until=2026-01-15", None)
            .await
            .0,
        vec![key_of(&old)]
    );
    let recent = listed(&a, "since=2026-02-01", None).await.0;
    assert_eq!(recent.len(), 7);
    assert!(!recent.contains(&key_of(&old)));
    let since = encode(&(now - chrono::Duration::minutes(5)).to_rfc3339());
    assert_eq!(listed(&a, &format!("since={since}"), None).await.0.len(), 7);
    // Only what starts a discussion; and several filters at once.
    let top = listed(&a, "top_level=true", None).await.0;
    assert!(!top.contains(&key_of(&reply)) && top.len() == 7, "{top:?}");
    assert_eq!(
        listed(&a, "kind=discussion&top_level=true&since=2026-02-01", None)
            .await
            .0,
        vec![key_of(&m), key_of(&d)]
    );

    // Pages of a filtered listing.
    let (first, body) = listed(&a, "kind=discussion&limit=2", None).await;
    assert_eq!(first, vec![key_of(&old), key_of(&reply)]);
    let next = body["next"].as_str().expect("a next cursor").to_owned();
    let (second, body) = listed(
        &a,
        &format!("kind=discussion&limit=2&before={}", encode(&next)),
        None,
    )
    .await;
    assert_eq!(second, vec![key_of(&m), key_of(&d)]);
    let (third, _) = listed(
        &a,
        &format!(
            "kind=discussion&limit=2&before={}",
            encode(body["next"].as_str().unwrap_or("2000-01-01"))
        ),
        None,
    )
    .await;
    assert!(third.is_empty(), "{third:?}");

    // Bad values are refused with what is wrong.
    for (query, word) in [
        ("kind=video", "kind"),
        ("since=yesterday", "since"),
        ("until=31/01/2026", "until"),
        ("since=2026-03-01&until=2026-02-01", "since"),
        ("hashtag=%23", "hashtag"),
        ("limit=0", "limit"),
        ("limit=500", "1 to 100"),
        ("limit=101", "1 to 100"),
        ("colour=blue", "colour"),
        ("top_level=maybe", "top_level"),
    ] {
        let path = format!("/api/v1/communities/hwb/posts?{query}");
        let message = a
            .get(&path, None)
            .await
            .client_error(StatusCode::BAD_REQUEST, &path);
        assert!(message.contains(word), "{path}: {message}");
    }
}

async fn feed(a: &Instance, token: &str, query: &str) -> (Vec<String>, Value) {
    let path = format!("/api/v1/feed?{query}");
    let reply = a.get(&path, Some(token)).await;
    reply.expect(StatusCode::OK, &path);
    (keys(&items(&reply.json)), reply.json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_feed_is_everything_shared_where_they_follow_once_each() {
    let a = Instance::start("feed").await;
    let alice = a.member("alice", "Alice Teacher").await;
    let bob = a.member("bob", "Bob Teacher").await;
    let carol = a.member("carol", "Carol Teacher").await;
    let a1 = a.create_post(&alice, json!({"content": "Only #hwb"})).await;
    let a2 = a
        .create_post(&alice, json!({"content": "Only #maths"}))
        .await;
    let a3 = a
        .create_post(
            &alice,
            json!({"content": "Both #hwb and #maths, with https://example.org/x"}),
        )
        .await;
    let _a4 = a.create_post(&alice, json!({"content": "Only #art"})).await;
    let a5 = a
        .create_post(
            &alice,
            json!({"content": "For #hwb members", "visibility": "members"}),
        )
        .await;
    let a6 = a
        .create_post(
            &alice,
            json!({"content": "For #art members", "visibility": "members"}),
        )
        .await;
    for tag in ["hwb", "maths"] {
        a.post(
            &format!("/api/v1/communities/{tag}/follow"),
            Some(&bob),
            &json!({}),
        )
        .await
        .expect(StatusCode::OK, "bob follows");
    }

    let (got, _) = feed(&a, &bob, "").await;
    assert_eq!(
        got,
        vec![key_of(&a5), key_of(&a3), key_of(&a2), key_of(&a1)],
        "newest first, each once, only followed communities, members posts of those"
    );
    assert!(!got.contains(&key_of(&a6)));
    assert!(
        feed(&a, &carol, "").await.0.is_empty(),
        "carol follows nothing"
    );
    a.get("/api/v1/feed", None)
        .await
        .client_error(StatusCode::UNAUTHORIZED, "anonymous feed");

    // Pages.
    let (first, body) = feed(&a, &bob, "limit=2").await;
    assert_eq!(first, vec![key_of(&a5), key_of(&a3)]);
    let next = body["next"].as_str().expect("next").to_owned();
    let (second, _) = feed(&a, &bob, &format!("limit=2&before={}", encode(&next))).await;
    assert_eq!(second, vec![key_of(&a2), key_of(&a1)]);

    // The same filters as a community's listing.
    assert_eq!(
        feed(&a, &bob, "hashtag=maths").await.0,
        vec![key_of(&a3), key_of(&a2)]
    );
    assert_eq!(feed(&a, &bob, "kind=link").await.0, vec![key_of(&a3)]);
    assert!(feed(&a, &bob, "until=2026-01-01").await.0.is_empty());
    let message = a
        .get("/api/v1/feed?kind=poster", Some(&bob))
        .await
        .client_error(StatusCode::BAD_REQUEST, "bad kind");
    assert!(message.contains("kind"), "{message}");

    // Leaving a community takes what is only there out of the feed.
    a.delete("/api/v1/communities/maths/follow", Some(&bob))
        .await
        .expect(StatusCode::NO_CONTENT, "bob leaves #maths");
    assert_eq!(
        feed(&a, &bob, "").await.0,
        vec![key_of(&a5), key_of(&a3), key_of(&a1)]
    );
}
