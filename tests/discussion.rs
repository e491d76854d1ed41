//! Discussion through the API: threads and reply counts (replies from Mastodon included),
//! moderators and the Group's `attributedTo`, pins of communities and events and the Group's
//! `featured` collection. SQLite by default; PostgreSQL with CAIRN_TEST_DATABASE_URL.

mod support;

use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{json, Value};
use std::{net::SocketAddr, sync::Arc};
use support::{items, key_of, keys, poll, strings, Instance, AP_JSON, DELIVERY_TIMEOUT, PUBLIC};

fn id_of(post: &Value) -> String {
    post["id"].as_str().expect("a post has an id").to_owned()
}

async fn thread(a: &Instance, key: &str, token: Option<&str>) -> Value {
    let path = format!("/api/v1/posts/{key}/thread");
    let reply = a.get(&path, token).await;
    reply.expect(StatusCode::OK, &path);
    reply.json
}

/// `(key, depth, parent)` of each item of a thread.
fn shape(thread: &Value) -> Vec<(String, u64, String)> {
    items(thread)
        .iter()
        .map(|i| {
            (
                i["key"].as_str().unwrap_or_default().to_owned(),
                i["depth"].as_u64().unwrap_or_default(),
                i["parent"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn reply_to(a: &Instance, token: &str, parent: &Value, content: &str) -> Value {
    a.create_post(
        token,
        json!({"content": content, "in_reply_to": id_of(parent)}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_is_the_whole_discussion_in_reading_order() {
    let a = Instance::start("thread").await;
    let alice = a.member("alice", "Alice Teacher").await;
    let bob = a.member("bob", "Bob Teacher").await;
    let root = a
        .create_post(
            &alice,
            json!({"content": "What did you change this term? #hwb"}),
        )
        .await;
    let r1 = reply_to(&a, &bob, &root, "Seating plans").await;
    let r2 = reply_to(&a, &alice, &r1, "How did the class take it?").await;
    let r3 = reply_to(&a, &bob, &root, "Also: exit tickets").await;
    let r4 = reply_to(&a, &bob, &r2, "Better than expected").await;
    let (root_key, k1, k2, k3, k4) = (
        key_of(&root),
        key_of(&r1),
        key_of(&r2),
        key_of(&r3),
        key_of(&r4),
    );

    // Depth first, siblings oldest first; any post of the thread gives the whole of it.
    let expected = vec![
        (k1.clone(), 1, root_key.clone()),
        (k2.clone(), 2, k1.clone()),
        (k4.clone(), 3, k2.clone()),
        (k3.clone(), 1, root_key.clone()),
    ];
    for from in [&root_key, &k2, &k4] {
        let t = thread(&a, from, None).await;
        assert_eq!(t["root"]["key"], json!(root_key), "from {from}: {t}");
        assert_eq!(shape(&t), expected, "from {from}: {t}");
    }

    // Reply counts are at any depth, on the post and in the community listing.
    let got = a.get(&format!("/api/v1/posts/{root_key}"), None).await;
    got.expect(StatusCode::OK, "GET root");
    assert_eq!(got.json["replies"], json!(4), "{}", got.text);
    let got = a.get(&format!("/api/v1/posts/{k1}"), None).await;
    assert_eq!(got.json["replies"], json!(2), "{}", got.text);
    let listed = a.community_posts("hwb", None).await;
    let listed_root = listed
        .iter()
        .find(|p| p["key"] == json!(root_key))
        .unwrap_or_else(|| panic!("root is listed in #hwb: {listed:?}"));
    assert_eq!(listed_root["replies"], json!(4));

    // A reply only members of the instance may read is not shown to anyone else, nor are
    // replies below it.
    let secret = a
        .create_post(
            &alice,
            json!({"content": "Staff-room only", "in_reply_to": id_of(&r3), "visibility": "authority"}),
        )
        .await;
    let under_secret = reply_to(&a, &bob, &secret, "Agreed").await;
    let anon = shape(&thread(&a, &root_key, None).await);
    assert!(
        !anon
            .iter()
            .any(|(k, _, _)| *k == key_of(&secret) || *k == key_of(&under_secret)),
        "{anon:?}"
    );
    let signed_in = shape(&thread(&a, &root_key, Some(&bob)).await);
    assert!(
        signed_in.contains(&(key_of(&secret), 2, k3.clone())),
        "{signed_in:?}"
    );
    assert!(signed_in.contains(&(key_of(&under_secret), 3, key_of(&secret))));

    // A deleted reply keeps its place while replies below it are shown.
    a.delete(&format!("/api/v1/posts/{k1}"), Some(&bob))
        .await
        .expect(StatusCode::NO_CONTENT, "delete r1");
    let t = thread(&a, &root_key, None).await;
    let first = &items(&t)[0];
    assert_eq!(first["key"], json!(k1), "{t}");
    assert_eq!(first["deleted"], json!(true), "{t}");
    assert!(first.get("content").is_none(), "{t}");
    assert_eq!(shape(&t)[1], (k2.clone(), 2, k1.clone()));
    // r1 is gone; the authority reply is not counted (not everyone may read it), the public
    // reply below it is.
    let got = a.get(&format!("/api/v1/posts/{root_key}"), None).await;
    assert_eq!(got.json["replies"], json!(4), "{}", got.text);

    // Unknown, deleted and unreadable posts.
    let reply = a.get("/api/v1/posts/no-such-post/thread", None).await;
    reply.client_error(StatusCode::NOT_FOUND, "thread of an unknown post");
    let reply = a.get(&format!("/api/v1/posts/{k1}/thread"), None).await;
    reply.client_error(StatusCode::GONE, "thread of a deleted post");
    let reply = a
        .get(&format!("/api/v1/posts/{}/thread", key_of(&secret)), None)
        .await;
    reply.client_error(StatusCode::NOT_FOUND, "thread of an unreadable post");
}

// ---------------------------------------------------------------------------------------------
// A Mastodon user replying, from a fake remote server that signs its deliveries
// ---------------------------------------------------------------------------------------------

struct FakeMastodon {
    origin: String,
    actor_id: String,
    key_id: String,
    key: aws_lc_rs::rsa::KeyPair,
    http: reqwest::Client,
    _server: tokio::task::JoinHandle<()>,
}

impl FakeMastodon {
    /// Serves one Person, `@mallory`, as Mastodon does (`/users/mallory`).
    async fn start() -> FakeMastodon {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let origin = format!("http://localhost:{port}");
        let actor_id = format!("{origin}/users/mallory");
        let (public_pem, private_pem) = cairn::services::keys::generate().await.expect("keys");
        let actor = Arc::new(json!({
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": actor_id,
            "type": "Person",
            "preferredUsername": "mallory",
            "name": "Mallory <b>Mastodon</b>",
            "inbox": format!("{actor_id}/inbox"),
            "outbox": format!("{actor_id}/outbox"),
            "followers": format!("{actor_id}/followers"),
            "endpoints": {"sharedInbox": format!("{origin}/inbox")},
            "publicKey": {
                "id": format!("{actor_id}#main-key"),
                "owner": actor_id,
                "publicKeyPem": public_pem,
            },
        }));
        // A Group on the same server (a Lemmy-like community), with the same key.
        let group_id = format!("{origin}/groups/lounge");
        let group = Arc::new(json!({
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": group_id,
            "type": "Group",
            "preferredUsername": "lounge",
            "inbox": format!("{group_id}/inbox"),
            "followers": format!("{group_id}/followers"),
            "featured": format!("{group_id}/featured"),
            "publicKey": {
                "id": format!("{group_id}#main-key"),
                "owner": group_id,
                "publicKeyPem": public_pem,
            },
        }));
        let app = axum::Router::new()
            .route(
                "/groups/lounge",
                axum::routing::get(move || {
                    let group = group.clone();
                    async move {
                        (
                            [("content-type", "application/activity+json")],
                            group.to_string(),
                        )
                    }
                }),
            )
            .route(
                "/users/mallory",
                axum::routing::get(move || {
                    let actor = actor.clone();
                    async move {
                        (
                            [("content-type", "application/activity+json")],
                            actor.to_string(),
                        )
                    }
                }),
            )
            .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "not here") });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeMastodon {
            key_id: format!("{actor_id}#main-key"),
            origin,
            actor_id,
            key: cairn::federation::signing::parse_pkcs8_pem(&private_pem).expect("key"),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            _server: server,
        }
    }

    /// A reply exactly as Mastodon builds one: public, mentioning the parent's author.
    fn reply_note(&self, parent_id: &str, parent_author: &str, text: &str) -> Value {
        let id = format!("{}/users/mallory/statuses/{}", self.origin, uuid_like());
        json!({
            "id": id,
            "type": "Note",
            "summary": null,
            "inReplyTo": parent_id,
            "published": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "url": format!("{}/@mallory/{}", self.origin, id.rsplit('/').next().unwrap_or_default()),
            "attributedTo": self.actor_id,
            "to": [PUBLIC],
            "cc": [format!("{}/followers", self.actor_id), parent_author],
            "sensitive": false,
            "atomUri": id,
            "inReplyToAtomUri": parent_id,
            "conversation": format!("tag:localhost,2026-12-04:objectId=1:objectType=Conversation"),
            "content": format!(
                "<p><span class=\"h-card\" translate=\"no\"><a href=\"{parent_author}\" class=\"u-url mention\">@<span>alice</span></a></span> {text}</p><script>alert(1)</script>"
            ),
            "contentMap": {"en": text},
            "attachment": [],
            "tag": [{"type": "Mention", "href": parent_author, "name": "@alice"}],
            "replies": {
                "id": format!("{id}/replies"),
                "type": "Collection",
                "first": {"type": "CollectionPage", "next": format!("{id}/replies?page=true"), "partOf": format!("{id}/replies"), "items": []}
            },
        })
    }

    /// Delivers `Create(note)` to `inbox`, signed as Mastodon signs; returns the status.
    async fn create(&self, inbox: &str, note: &Value) -> (StatusCode, String) {
        let activity = json!({
            "@context": ["https://www.w3.org/ns/activitystreams", {"ostatus": "http://ostatus.org#", "atomUri": "ostatus:atomUri", "inReplyToAtomUri": "ostatus:inReplyToAtomUri", "conversation": "ostatus:conversation", "sensitive": "as:sensitive", "toot": "http://joinmastodon.org/ns#"}],
            "id": format!("{}/activity", note["id"].as_str().unwrap_or_default()),
            "type": "Create",
            "actor": self.actor_id,
            "published": note["published"],
            "to": note["to"],
            "cc": note["cc"],
            "object": note,
        });
        self.deliver(inbox, &activity).await
    }

    /// POSTs `activity` to `inbox`, signed as Mastodon signs; returns the status and body.
    async fn deliver(&self, inbox: &str, activity: &Value) -> (StatusCode, String) {
        self.deliver_as(&self.key_id, inbox, activity).await
    }

    /// The Group served next to mallory.
    fn group_id(&self) -> String {
        format!("{}/groups/lounge", self.origin)
    }

    async fn deliver_as(
        &self,
        key_id: &str,
        inbox: &str,
        activity: &Value,
    ) -> (StatusCode, String) {
        let body = serde_json::to_vec(activity).expect("serialise");
        let url: url::Url = inbox.parse().expect("inbox URL");
        let headers = cairn::federation::signing::signed_headers(&self.key, key_id, &url, &body)
            .expect("sign");
        let response = self
            .http
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .expect("the inbox answers");
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }
}

fn uuid_like() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_from_mastodon_thread_under_the_post_they_answer() {
    let a = Instance::start("mastodon-reply").await;
    let alice = a.member("alice", "Alice Teacher").await;
    let bob = a.member("bob", "Bob Teacher").await;
    let root = a
        .create_post(
            &alice,
            json!({"content": "Retrieval practice: what works? #hwb"}),
        )
        .await;
    let bobs = reply_to(&a, &bob, &root, "Low-stakes quizzes").await;
    let mastodon = FakeMastodon::start().await;
    let alice_id = a.id("/u/alice");
    let inbox = format!("{}/inbox", a.origin);

    // A reply to the post, and a reply to bob's reply: both as Mastodon sends them. Mastodon's
    // times have whole seconds; wait for the next one so that they come after bob's.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let direct = mastodon.reply_note(&id_of(&root), &alice_id, "Flashcards, every lesson");
    let (status, text) = mastodon.create(&inbox, &direct).await;
    assert!(
        status.is_success(),
        "Create of a direct reply: {status} {text}"
    );
    let nested = mastodon.reply_note(&id_of(&bobs), &a.id("/u/bob"), "Quizzes with no marks");
    let (status, text) = mastodon.create(&inbox, &nested).await;
    assert!(
        status.is_success(),
        "Create of a nested reply: {status} {text}"
    );

    let root_key = key_of(&root);
    let t = poll(
        "both Mastodon replies in the thread",
        DELIVERY_TIMEOUT,
        || {
            let a = &a;
            let root_key = root_key.clone();
            async move {
                let t = thread(a, &root_key, None).await;
                (items(&t).len() == 3).then_some(t)
            }
        },
    )
    .await;
    let found = items(&t);
    let ids: Vec<&str> = found
        .iter()
        .map(|i| i["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        ids,
        vec![
            id_of(&bobs).as_str(),
            nested["id"].as_str().unwrap_or_default(),
            direct["id"].as_str().unwrap_or_default()
        ],
        "bob's reply, the reply to it, then the later direct reply: {t}"
    );
    assert_eq!(found[1]["depth"], json!(2), "{t}");
    assert_eq!(found[1]["parent"], json!(key_of(&bobs)), "{t}");
    assert_eq!(found[2]["depth"], json!(1), "{t}");
    assert_eq!(found[2]["parent"], json!(root_key), "{t}");
    assert_eq!(found[2]["author"]["id"], json!(mastodon.actor_id), "{t}");
    assert_eq!(found[2]["local"], json!(false), "{t}");
    let content = found[2]["content"].as_str().unwrap_or_default();
    assert!(content.contains("Flashcards"), "{content}");
    assert!(
        !content.contains("<script"),
        "remote HTML is sanitised: {content}"
    );

    let got = a.get(&format!("/api/v1/posts/{root_key}"), None).await;
    assert_eq!(got.json["replies"], json!(3), "{}", got.text);

    // The same delivery again changes nothing.
    let (status, _) = mastodon.create(&inbox, &direct).await;
    assert!(status.is_success());
    let t = thread(&a, &root_key, None).await;
    assert_eq!(items(&t).len(), 3, "{t}");

    // A reply attributed to someone else is refused, and stored nowhere.
    let mut forged = mastodon.reply_note(&id_of(&root), &alice_id, "Forged");
    forged["attributedTo"] = json!(alice_id);
    let (status, text) = mastodon.create(&inbox, &forged).await;
    assert!(status.is_client_error(), "forged reply: {status} {text}");
    assert_eq!(items(&thread(&a, &root_key, None).await).len(), 3);

    // Pins come only from a Group, to its own featured collection: a person's Add (Mastodon
    // pinning a status of its own) is answered 422 and pins nothing here.
    let add = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/users/mallory#add-1", mastodon.origin),
        "type": "Add",
        "actor": mastodon.actor_id,
        "object": direct["id"],
        "target": format!("{}/users/mallory/collections/featured", mastodon.origin),
    });
    let (status, text) = mastodon.deliver(&inbox, &add).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("featured"), "{text}");
    // A Group's Add counts only to its own featured collection, and only if someone here
    // follows the Group.
    let group = mastodon.group_id();
    let group_key = format!("{group}#main-key");
    let group_add = |n: u32, target: String| {
        json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{group}/activities/add-{n}"),
            "type": "Add",
            "actor": group,
            "object": direct["id"],
            "target": target,
        })
    };
    let (status, text) = mastodon
        .deliver_as(
            &group_key,
            &inbox,
            &group_add(1, format!("{group}/featured")),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an unfollowed Group's Add: {text}"
    );
    assert!(text.contains("follows"), "{text}");
    let (status, text) = mastodon
        .deliver_as(&group_key, &inbox, &group_add(2, format!("{group}/outbox")))
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an Add to another collection: {text}"
    );
    let (status, text) = mastodon
        .deliver_as(&group_key, &inbox, &group_add(3, a.id("/c/hwb/featured")))
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an Add to our featured: {text}"
    );
    let pins = a.get("/api/v1/communities/hwb/pins", None).await;
    assert!(items(&pins.json).is_empty(), "{}", pins.text);
    let stored = cairn::store::pin::Entity::find()
        .all(&a.state.db)
        .await
        .expect("pins");
    assert!(stored.is_empty(), "no pin was stored: {stored:?}");
}

// ---------------------------------------------------------------------------------------------
// Moderators, pins and the featured collection
// ---------------------------------------------------------------------------------------------

async fn group_document(a: &Instance, tag: &str) -> Value {
    let reply = a.get_as(&format!("/c/{tag}"), AP_JSON).await;
    reply.expect(StatusCode::OK, "the Group's document");
    reply.json
}

async fn moderator_names(a: &Instance, tag: &str) -> Vec<String> {
    let path = format!("/api/v1/communities/{tag}/moderators");
    let reply = a.get(&path, None).await;
    reply.expect(StatusCode::OK, &path);
    items(&reply.json)
        .iter()
        .map(|m| m["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_are_appointed_by_moderators_and_listed_on_the_group() {
    let a = Instance::start("moderators").await;
    let alice = a.member("alice", "Alice Facilitator").await;
    let bob = a.member("bob", "Bob Teacher").await;
    let carol = a.member("carol", "Carol Teacher").await;

    // Whoever creates a community by posting with a new hashtag facilitates it.
    a.create_post(&alice, json!({"content": "Welcome to #Reflect"}))
        .await;
    a.create_post(&bob, json!({"content": "Hello #reflect"}))
        .await;
    assert_eq!(moderator_names(&a, "reflect").await, vec!["alice"]);
    let group = group_document(&a, "reflect").await;
    assert_eq!(
        group["attributedTo"],
        json!(a.id("/c/reflect/moderators")),
        "{group}"
    );
    assert_eq!(
        group["moderators"],
        json!(a.id("/c/reflect/moderators")),
        "{group}"
    );
    let collection = a.get_as("/c/reflect/moderators", AP_JSON).await;
    collection.expect(StatusCode::OK, "moderators collection");
    assert_eq!(collection.json["orderedItems"], json!([a.id("/u/alice")]));

    // A community the administrator created has no moderators until one is appointed.
    a.community("maths", None).await;
    assert!(moderator_names(&a, "maths").await.is_empty());
    let reply = a
        .post(
            "/api/v1/communities/maths/moderators",
            Some(&alice),
            &json!({"member": "alice"}),
        )
        .await;
    reply.client_error(StatusCode::FORBIDDEN, "appointing oneself");

    // Only a moderator appoints; the new one can appoint in turn.
    let path = "/api/v1/communities/reflect/moderators";
    let reply = a.post(path, Some(&bob), &json!({"member": "bob"})).await;
    let message = reply.client_error(StatusCode::FORBIDDEN, "bob appoints himself");
    assert!(message.contains("moderator"), "{message}");
    let reply = a.post(path, None, &json!({"member": "bob"})).await;
    reply.client_error(StatusCode::UNAUTHORIZED, "anonymous appointment");
    let reply = a
        .post(path, Some(&alice), &json!({"member": "nobody"}))
        .await;
    reply.client_error(StatusCode::NOT_FOUND, "appointing an unknown member");
    let reply = a
        .post(
            path,
            Some(&alice),
            &json!({"member": "x@elsewhere.example"}),
        )
        .await;
    reply.client_error(StatusCode::BAD_REQUEST, "appointing a remote actor");
    let reply = a.post(path, Some(&alice), &json!({"name": "bob"})).await;
    reply.client_error(StatusCode::BAD_REQUEST, "a body without member");
    assert_eq!(moderator_names(&a, "reflect").await, vec!["alice"]);

    let reply = a.post(path, Some(&alice), &json!({"member": "bob"})).await;
    reply.expect(StatusCode::OK, "alice appoints bob");
    assert_eq!(items(&reply.json).len(), 2, "{}", reply.text);
    let reply = a.post(path, Some(&alice), &json!({"member": "bob"})).await;
    reply.expect(StatusCode::OK, "appointing twice changes nothing");
    let reply = a.post(path, Some(&bob), &json!({"member": "carol"})).await;
    reply.expect(StatusCode::OK, "bob appoints carol");
    assert_eq!(
        moderator_names(&a, "reflect").await,
        vec!["alice", "bob", "carol"]
    );
    let collection = a.get_as("/c/reflect/moderators", AP_JSON).await;
    assert_eq!(
        strings(&collection.json["orderedItems"]),
        vec![a.id("/u/alice"), a.id("/u/bob"), a.id("/u/carol")],
        "{}",
        collection.text
    );

    // Removing: by moderators, never the last one.
    let reply = a.delete(&format!("{path}/alice"), Some(&carol)).await;
    reply.expect(StatusCode::NO_CONTENT, "carol removes alice");
    let reply = a.delete(&format!("{path}/bob"), Some(&alice)).await;
    reply.client_error(StatusCode::FORBIDDEN, "alice is no longer a moderator");
    let reply = a.delete(&format!("{path}/alice"), Some(&carol)).await;
    reply.client_error(StatusCode::NOT_FOUND, "removing a non-moderator");
    a.delete(&format!("{path}/bob"), Some(&carol))
        .await
        .expect(StatusCode::NO_CONTENT, "carol removes bob");
    let reply = a.delete(&format!("{path}/carol"), Some(&carol)).await;
    let message = reply.client_error(StatusCode::CONFLICT, "removing the last moderator");
    assert!(message.contains("last"), "{message}");
    assert_eq!(moderator_names(&a, "reflect").await, vec!["carol"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_facilitator_pins_reflective_questions_and_the_group_features_them() {
    let a = Instance::start("pins").await;
    let alice = a.member("alice", "Alice Facilitator").await;
    let bob = a.member("bob", "Bob Teacher").await;
    let welcome = a
        .create_post(&alice, json!({"content": "Welcome to #reflect"}))
        .await;
    let q1 = a
        .create_post(
            &alice,
            json!({"content": "Q1: what surprised you this week? #reflect"}),
        )
        .await;
    let q2 = a
        .create_post(
            &bob,
            json!({"content": "Q2: what will you try next? #reflect"}),
        )
        .await;
    let staff = a
        .create_post(
            &alice,
            json!({"content": "Q3 for staff here #reflect", "visibility": "authority"}),
        )
        .await;
    let later = a
        .create_post(&bob, json!({"content": "An ordinary post #reflect"}))
        .await;
    let elsewhere = a
        .create_post(&bob, json!({"content": "Not in the community #maths"}))
        .await;
    let pins = "/api/v1/communities/reflect/pins";

    // Only moderators pin.
    let reply = a
        .post(pins, Some(&bob), &json!({"post": key_of(&q2)}))
        .await;
    let message = reply.client_error(StatusCode::FORBIDDEN, "bob pins");
    assert!(message.contains("moderator"), "{message}");
    let reply = a.post(pins, None, &json!({"post": key_of(&q2)})).await;
    reply.client_error(StatusCode::UNAUTHORIZED, "anonymous pin");
    let reply = a
        .post(pins, Some(&alice), &json!({"post": "no-such-post"}))
        .await;
    reply.client_error(StatusCode::NOT_FOUND, "pinning an unknown post");
    let reply = a
        .post(pins, Some(&alice), &json!({"post": key_of(&elsewhere)}))
        .await;
    let message = reply.client_error(
        StatusCode::BAD_REQUEST,
        "pinning a post of another community",
    );
    assert!(message.contains("#reflect"), "{message}");
    let reply = a
        .post(pins, Some(&alice), &json!({"key": key_of(&q1)}))
        .await;
    reply.client_error(StatusCode::BAD_REQUEST, "a body without post");
    let reply = a.get(pins, None).await;
    reply.expect(StatusCode::OK, "GET pins");
    assert!(items(&reply.json).is_empty());

    for q in [&q1, &q2, &staff] {
        let reply = a
            .post(pins, Some(&alice), &json!({"post": key_of(q)}))
            .await;
        reply.expect(StatusCode::OK, "alice pins");
    }
    let reply = a
        .post(pins, Some(&alice), &json!({"post": key_of(&q1)}))
        .await;
    reply.expect(StatusCode::OK, "pinning twice changes nothing");
    // Newest pin first; the authority post only for members here.
    let reply = a.get(pins, None).await;
    assert_eq!(keys(&items(&reply.json)), vec![key_of(&q2), key_of(&q1)]);
    let reply = a.get(pins, Some(&bob)).await;
    assert_eq!(
        keys(&items(&reply.json)),
        vec![key_of(&staff), key_of(&q2), key_of(&q1)]
    );

    // The community view puts pins first, flagged, and does not repeat them.
    let listed = a.community_posts("reflect", None).await;
    assert_eq!(
        keys(&listed),
        vec![key_of(&q2), key_of(&q1), key_of(&later), key_of(&welcome)],
        "{listed:?}"
    );
    let flags: Vec<&Value> = listed.iter().map(|p| &p["pinned"]).collect();
    assert_eq!(
        flags,
        vec![&json!(true), &json!(true), &json!(false), &json!(false)]
    );
    let listed = a.community_posts("reflect", Some(&alice)).await;
    assert_eq!(listed[0]["key"], json!(key_of(&staff)));

    // The Group's featured collection: public pins only, local ones embedded.
    let group = group_document(&a, "reflect").await;
    let featured_url = group["featured"].as_str().expect("featured").to_owned();
    assert_eq!(featured_url, a.id("/c/reflect/featured"));
    let featured = a.get_as("/c/reflect/featured", AP_JSON).await;
    featured.expect(StatusCode::OK, "featured");
    assert_eq!(featured.json["type"], json!("OrderedCollection"));
    assert_eq!(featured.json["id"], json!(featured_url));
    assert_eq!(featured.json["totalItems"], json!(2), "{}", featured.text);
    let ordered = featured.json["orderedItems"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids: Vec<&str> = ordered
        .iter()
        .map(|o| o["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, vec![id_of(&q2), id_of(&q1)], "{}", featured.text);
    assert_eq!(ordered[0]["type"], json!("Note"));
    assert!(!featured.text.contains("Q3 for staff"), "{}", featured.text);

    // Unpinning.
    let reply = a
        .delete(&format!("{pins}/{}", key_of(&q1)), Some(&bob))
        .await;
    reply.client_error(StatusCode::FORBIDDEN, "bob unpins");
    a.delete(&format!("{pins}/{}", key_of(&q1)), Some(&alice))
        .await
        .expect(StatusCode::NO_CONTENT, "alice unpins q1");
    let reply = a
        .delete(&format!("{pins}/{}", key_of(&q1)), Some(&alice))
        .await;
    reply.client_error(StatusCode::NOT_FOUND, "unpinning twice");
    let featured = a.get_as("/c/reflect/featured", AP_JSON).await;
    assert_eq!(featured.json["totalItems"], json!(1), "{}", featured.text);
    let listed = a.community_posts("reflect", None).await;
    assert_eq!(listed[0]["key"], json!(key_of(&q2)));
    assert!(listed.iter().filter(|p| p["pinned"] == json!(true)).count() == 1);
    assert!(listed
        .iter()
        .any(|p| p["key"] == json!(key_of(&q1)) && p["pinned"] == json!(false)));

    // A deleted pinned post leaves the pins.
    a.delete(&format!("/api/v1/posts/{}", key_of(&q2)), Some(&bob))
        .await
        .expect(StatusCode::NO_CONTENT, "bob deletes q2");
    let reply = a.get(pins, None).await;
    assert!(items(&reply.json).is_empty(), "{}", reply.text);
    let featured = a.get_as("/c/reflect/featured", AP_JSON).await;
    assert_eq!(featured.json["totalItems"], json!(0), "{}", featured.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_organisers_pin_replies_to_it() {
    let a = Instance::start("event-pins").await;
    let alice = a.member("alice", "Alice Organiser").await;
    let bob = a.member("bob", "Bob Teacher").await;
    let event = a
        .create_post(
            &alice,
            json!({"content": "Twilight session on feedback #hwb"}),
        )
        .await;
    let plain = a
        .create_post(&alice, json!({"content": "Not an event #hwb"}))
        .await;
    // The events part writes this row when an event is created through its API.
    let event_row = cairn::store::post::Entity::find()
        .filter(cairn::store::post::Column::Key.eq(key_of(&event)))
        .one(&a.state.db)
        .await
        .expect("query")
        .expect("the event post")
        .id;
    let now = chrono::Utc::now();
    cairn::store::event::ActiveModel {
        post_id: Set(event_row),
        starts_at: Set(now + chrono::Duration::days(7)),
        ends_at: Set(now + chrono::Duration::days(7) + chrono::Duration::hours(2)),
        timezone: Set("Europe/London".into()),
        location_name: Set(None),
        location_address: Set(None),
        online_url: Set(Some("https://meet.example/feedback".into())),
        capacity: Set(Some(30)),
        poll_post_id: Set(None),
        status: Set("scheduled".into()),
        participants_refreshed_at: Set(None),
    }
    .insert(&a.state.db)
    .await
    .expect("events row");
    let question = reply_to(
        &a,
        &alice,
        &event,
        "Before we meet: bring one piece of feedback you gave",
    )
    .await;
    let answer = reply_to(&a, &bob, &question, "I will bring a Year 9 essay").await;
    let path = format!("/api/v1/posts/{}/pins", key_of(&event));

    let reply = a
        .post(&path, Some(&bob), &json!({"post": key_of(&answer)}))
        .await;
    reply.client_error(StatusCode::FORBIDDEN, "a participant pins");
    let reply = a
        .post(&path, Some(&alice), &json!({"post": key_of(&plain)}))
        .await;
    reply.client_error(
        StatusCode::BAD_REQUEST,
        "pinning a post outside the event's thread",
    );
    let reply = a
        .post(
            &format!("/api/v1/posts/{}/pins", key_of(&plain)),
            Some(&alice),
            &json!({"post": key_of(&answer)}),
        )
        .await;
    reply.client_error(
        StatusCode::BAD_REQUEST,
        "pins on a post that is not an event",
    );

    for p in [&question, &answer] {
        a.post(&path, Some(&alice), &json!({"post": key_of(p)}))
            .await
            .expect(StatusCode::OK, "the organiser pins");
    }
    let reply = a.get(&path, None).await;
    reply.expect(StatusCode::OK, "GET event pins");
    assert_eq!(
        keys(&items(&reply.json)),
        vec![key_of(&answer), key_of(&question)]
    );
    assert!(items(&reply.json)
        .iter()
        .all(|p| p["pinned"] == json!(true)));
    let pinned = cairn::services::pins::pinned_for_event(&a.state.db, event_row)
        .await
        .expect("pinned_for_event");
    assert_eq!(pinned.len(), 2);

    a.delete(&format!("{path}/{}", key_of(&answer)), Some(&alice))
        .await
        .expect(StatusCode::NO_CONTENT, "unpin");
    let reply = a.get(&path, None).await;
    assert_eq!(keys(&items(&reply.json)), vec![key_of(&question)]);
    let reply = a
        .delete(&format!("{path}/{}", key_of(&answer)), Some(&alice))
        .await;
    reply.client_error(StatusCode::NOT_FOUND, "unpinning twice");
}

async fn stored_posts(a: &Instance) -> u64 {
    use sea_orm::PaginatorTrait;
    cairn::store::post::Entity::find()
        .count(&a.state.db)
        .await
        .expect("count posts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_names_a_post_that_is_there() {
    let a = Instance::start("reply-parent").await;
    let alice = a.member("alice", "Alice Teacher").await;
    let root = a
        .create_post(&alice, json!({"content": "What works for retrieval? #hwb"}))
        .await;
    let before = stored_posts(&a).await;

    // A post of this instance that does not exist: nothing is stored.
    let missing = format!("{}/p/nonexistent", a.origin);
    let reply = a
        .post(
            "/api/v1/posts",
            Some(&alice),
            &json!({"content": "Into the void", "in_reply_to": missing}),
        )
        .await;
    let message = reply.client_error(StatusCode::UNPROCESSABLE_ENTITY, "reply to a missing post");
    assert!(
        message.contains("no post") && message.contains(&missing),
        "{message}"
    );

    // A post elsewhere that cannot be read: the message names it and why.
    let unreachable = "http://127.0.0.1:9/p/gone";
    let reply = a
        .post(
            "/api/v1/posts",
            Some(&alice),
            &json!({"content": "Into the void", "in_reply_to": unreachable}),
        )
        .await;
    let message = reply.client_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "reply to an unreadable remote post",
    );
    assert!(
        message.contains(unreachable) && message.contains("could not read"),
        "{message}"
    );

    // Neither a URL nor a key of a post here.
    let reply = a
        .post(
            "/api/v1/posts",
            Some(&alice),
            &json!({"content": "Into the void", "in_reply_to": "no-such-key"}),
        )
        .await;
    let message = reply.client_error(StatusCode::BAD_REQUEST, "reply to an unknown key");
    assert!(message.contains("\"id\""), "{message}");
    assert_eq!(
        stored_posts(&a).await,
        before,
        "refused replies store nothing"
    );

    // A post's key works as well as its id, and the reply threads under it.
    let by_key = a
        .create_post(
            &alice,
            json!({"content": "Spacing, by key", "in_reply_to": key_of(&root)}),
        )
        .await;
    assert_eq!(by_key["in_reply_to"], json!(id_of(&root)), "{by_key}");
    let t = thread(&a, &key_of(&root), None).await;
    assert_eq!(shape(&t), vec![(key_of(&by_key), 1, key_of(&root))], "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_facilitator_removes_a_post_from_their_community() {
    let a = Instance::start("mod-remove").await;
    let alice = a.member("alice", "Alice Facilitator").await;
    let callum = a.member("callum", "Callum Teacher").await;
    a.create_post(&alice, json!({"content": "Welcome to #hwb"}))
        .await;
    let spam = a
        .create_post(&callum, json!({"content": "Buy my worksheets #hwb #maths"}))
        .await;
    let kept = a
        .create_post(&callum, json!({"content": "A fair question #hwb"}))
        .await;
    let pinned = a
        .post(
            "/api/v1/communities/hwb/pins",
            Some(&alice),
            &json!({"post": key_of(&spam)}),
        )
        .await;
    pinned.expect(StatusCode::OK, "alice pins the post");
    let path = format!("/api/v1/communities/hwb/posts/{}", key_of(&spam));

    // Only a moderator of the community removes; the author is no moderator of it.
    a.delete(&path, None)
        .await
        .client_error(StatusCode::UNAUTHORIZED, "anonymous removal");
    let message = a
        .delete(&path, Some(&callum))
        .await
        .client_error(StatusCode::FORBIDDEN, "callum removes");
    assert!(message.contains("moderator"), "{message}");
    assert!(a.community_keys("hwb", None).await.contains(&key_of(&spam)));

    a.delete(&path, Some(&alice))
        .await
        .expect(StatusCode::NO_CONTENT, "alice removes callum's post");
    let listed = a.community_keys("hwb", None).await;
    assert!(!listed.contains(&key_of(&spam)), "{listed:?}");
    assert!(listed.contains(&key_of(&kept)), "{listed:?}");
    let pins = a.get("/api/v1/communities/hwb/pins", None).await;
    pins.expect(StatusCode::OK, "pins");
    assert!(items(&pins.json).is_empty(), "{}", pins.text);
    // The post stays callum's, and in the other community it was shared in.
    a.get(&format!("/api/v1/posts/{}", key_of(&spam)), None)
        .await
        .expect(StatusCode::OK, "the removed post itself");
    assert!(a
        .community_keys("maths", None)
        .await
        .contains(&key_of(&spam)));

    // Removing it again, or a post that is not there.
    let message = a
        .delete(&path, Some(&alice))
        .await
        .client_error(StatusCode::NOT_FOUND, "removed twice");
    assert!(message.contains("not shared in #hwb"), "{message}");
    a.delete("/api/v1/communities/hwb/posts/no-such-post", Some(&alice))
        .await
        .client_error(StatusCode::NOT_FOUND, "no such post");
    // alice moderates #hwb, not #maths (callum created it).
    a.delete(
        &format!("/api/v1/communities/maths/posts/{}", key_of(&spam)),
        Some(&alice),
    )
    .await
    .client_error(StatusCode::FORBIDDEN, "alice in #maths");
}
