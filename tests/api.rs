//! Integration tests of the JSON API (README.md, "JSON API") and the ActivityPub surface
//! ("ActivityPub surface"), against real instances started in-process on a loopback port.
//!
//! `CAIRN_TEST_DATABASE_URL` picks the backend: unset or `sqlite…` gives every instance a fresh
//! SQLite file in a temporary directory; `postgres://…` gives every instance a fresh database
//! on that server (created here, dropped best-effort at the end of the test).
//!
//! Every request is checked for its status *and* its body; every refused request is followed by
//! a check that nothing was stored.

mod support;

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::*;
// ---------------------------------------------------------------------------------------------
// 1. Hashtags are normalised into one community
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashtag_case_variants_land_in_one_community() {
    let a = Instance::start("hashtags").await;
    let alice = a.member("alice", "Alice Teacher").await;

    let mut written = Vec::new();
    for (i, tag) in ["#HWB", "#hwb", "#Hwb"].iter().enumerate() {
        let post = a
            .create_post(
                &alice,
                json!({"content": format!("Wellbeing idea {i} {tag}")}),
            )
            .await;
        assert_eq!(post["communities"], json!(["hwb"]), "{tag}: {post}");
        assert_eq!(post["hashtags"], json!(["hwb"]), "{tag}: {post}");
        assert_eq!(post["visibility"], "public");
        assert_eq!(post["local"], true);
        assert_eq!(post["author"]["handle"], format!("alice@{}", a.domain));
        written.push(key_of(&post));
    }

    // All three, newest first, in the one community; the path's case does not matter.
    let newest_first: Vec<String> = written.iter().rev().cloned().collect();
    assert_eq!(a.community_keys("hwb", None).await, newest_first);
    assert_eq!(a.community_keys("HWB", None).await, newest_first);

    let listed = a.communities().await;
    assert_eq!(listed.len(), 1, "one community, not three: {listed:?}");
    assert_eq!(listed[0]["name"], "hwb");
    assert_eq!(listed[0]["posts"], 3);
    assert_eq!(listed[0]["local"], true);
    assert_eq!(listed[0]["id"], a.id("/c/hwb"));
    assert_eq!(listed[0]["handle"], format!("hwb@{}", a.domain));
    let view = a.community_view("Hwb").await;
    assert_eq!(view["name"], "hwb");
    assert_eq!(view["posts"], 3);

    // A non-ASCII tag keeps its accent; the community's id percent-encodes it.
    let failte = a
        .create_post(&alice, json!({"content": "Croeso, welcome! #Fàilte"}))
        .await;
    assert_eq!(failte["communities"], json!(["fàilte"]), "{failte}");
    assert_eq!(failte["hashtags"], json!(["fàilte"]), "{failte}");
    // Other spellings of the same tag: upper case, and `a` + combining grave accent (NFD).
    let upper = a
        .create_post(&alice, json!({"content": "Mòran taing #FÀILTE"}))
        .await;
    let decomposed = a
        .create_post(&alice, json!({"content": "Slàinte #Fa\u{300}ilte"}))
        .await;
    assert_eq!(upper["communities"], json!(["fàilte"]), "{upper}");
    assert_eq!(decomposed["communities"], json!(["fàilte"]), "{decomposed}");

    let expected = vec![key_of(&decomposed), key_of(&upper), key_of(&failte)];
    assert_eq!(a.community_keys("f%C3%A0ilte", None).await, expected);
    // `FÀILTE`, percent-encoded.
    assert_eq!(a.community_keys("F%C3%80ILTE", None).await, expected);

    let listed = a.communities().await;
    let names: BTreeSet<String> = listed
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, set(&["fàilte", "hwb"]), "{listed:?}");
    let c = listed
        .iter()
        .find(|c| c["name"] == "fàilte")
        .expect("fàilte listed");
    assert_eq!(c["posts"], 3);
    assert_eq!(c["id"], a.id("/c/f%C3%A0ilte"));
    assert_eq!(c["handle"], format!("fàilte@{}", a.domain));
    let display = c["display_name"].as_str().unwrap_or_default();
    assert!(
        display.to_lowercase() == "#fàilte",
        "the display name is the tag: {c}"
    );

    // Its Group answers at the percent-encoded id.
    let group = a.get_as("/c/f%C3%A0ilte", AP_JSON).await;
    group.expect(StatusCode::OK, "GET /c/f%C3%A0ilte as ActivityPub");
    assert_eq!(group.json["type"], "Group");
    assert_eq!(group.json["id"], a.id("/c/f%C3%A0ilte"));
    assert_eq!(group.json["preferredUsername"], "fàilte");

    // A community an administrator defines keeps the casing it was defined with, and posts
    // with any casing of the tag land in it.
    a.community("CPDLead", None).await;
    let post = a
        .create_post(&alice, json!({"content": "Leading learning #cpdlead"}))
        .await;
    assert_eq!(post["communities"], json!(["cpdlead"]), "{post}");
    let view = a.community_view("cpdlead").await;
    assert_eq!(view["name"], "cpdlead");
    assert_eq!(view["display_name"], "#CPDLead", "{view}");
    assert_eq!(view["posts"], 1);
    assert_eq!(a.communities().await.len(), 3);
}

/// A community created by a post keeps the casing the author wrote (`#Fàilte` is displayed
/// `#Fàilte`, not `#fàilte`), as a community an administrator defines does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn community_created_by_a_post_keeps_the_authors_casing() {
    let a = Instance::start("casing").await;
    let alice = a.member("alice", "Alice Teacher").await;
    a.create_post(&alice, json!({"content": "Croeso #Fàilte"}))
        .await;
    let view = a.community_view("f%C3%A0ilte").await;
    assert_eq!(view["name"], "fàilte");
    assert_eq!(view["display_name"], "#Fàilte", "{view}");
}

// ---------------------------------------------------------------------------------------------
// 2. One post, several communities
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_with_two_hashtags_is_one_post_in_both_communities() {
    let a = Instance::start("two-tags").await;
    let alice = a.member("alice", "Alice Teacher").await;
    a.community("hwb", Some("Health and Wellbeing")).await;

    let post = a
        .create_post(
            &alice,
            json!({"content": "Our wellbeing routine for leaders #HWB #cpdlead"}),
        )
        .await;
    let key = key_of(&post);
    assert_eq!(post["hashtags"], json!(["hwb", "cpdlead"]), "{post}");

    assert_eq!(a.community_keys("hwb", None).await, vec![key.clone()]);
    assert_eq!(a.community_keys("cpdlead", None).await, vec![key.clone()]);

    let fetched = a.get(&format!("/api/v1/posts/{key}"), None).await;
    fetched.expect(StatusCode::OK, "GET the post");
    let p = &fetched.json;
    assert_eq!(p["key"], key.as_str());
    assert_eq!(p["id"], a.id(&format!("/p/{key}")));
    assert_eq!(p["url"], a.id(&format!("/p/{key}")));
    assert_eq!(
        strings(&p["communities"])
            .into_iter()
            .collect::<BTreeSet<_>>(),
        set(&["hwb", "cpdlead"]),
        "{p}"
    );
    assert_eq!(p["communities"].as_array().map(Vec::len), Some(2), "{p}");
    assert_eq!(p["hashtags"], json!(["hwb", "cpdlead"]));
    let content = p["content"].as_str().expect("content");
    assert!(content.contains("Our wellbeing routine"), "{content}");
    assert_eq!(p["author"]["id"], a.id("/u/alice"));
    assert_eq!(p["author"]["name"], "alice");
    assert_eq!(p["author"]["display_name"], "Alice Teacher");
    assert_eq!(p["title"], Value::Null);
    assert_eq!(p["updated"], Value::Null);
    assert!(p["published"].is_string(), "{p}");

    // Both community listings hold the very same post.
    let in_hwb = &a.community_posts("hwb", None).await[0];
    let in_cpd = &a.community_posts("cpdlead", None).await[0];
    assert_eq!(in_hwb, in_cpd);
    assert_eq!(in_hwb["id"], p["id"]);

    for c in a.communities().await {
        assert_eq!(c["posts"], 1, "{c}");
    }
    let nodeinfo = a.get("/nodeinfo/2.1", None).await;
    assert_eq!(nodeinfo.json["usage"]["localPosts"], 1, "stored once");
}

// ---------------------------------------------------------------------------------------------
// 3. Editing and deleting
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_author_edits_or_deletes_and_deleted_posts_are_gone() {
    let a = Instance::start("edit-delete").await;
    let alice = a.member("alice", "Alice Teacher").await;
    let bob = a.member("bob", "Bob Teacher").await;
    let post = a
        .create_post(&alice, json!({"content": "First draft #hwb"}))
        .await;
    let key = key_of(&post);
    let path = format!("/api/v1/posts/{key}");

    // Someone else may neither edit nor delete it.
    let before = a.get(&path, None).await.json;
    let snapshot = a.snapshot().await;
    let reply = a
        .patch(&path, Some(&bob), &json!({"content": "Hijacked #hwb"}))
        .await;
    let message = reply.client_error(StatusCode::FORBIDDEN, "PATCH by another member");
    assert!(message.contains("author"), "{message}");
    let reply = a.delete(&path, Some(&bob)).await;
    reply.client_error(StatusCode::FORBIDDEN, "DELETE by another member");
    // Nor may anyone anonymous.
    let reply = a.patch(&path, None, &json!({"content": "Anon"})).await;
    reply.client_error(StatusCode::UNAUTHORIZED, "PATCH anonymously");
    let reply = a.delete(&path, None).await;
    reply.client_error(StatusCode::UNAUTHORIZED, "DELETE anonymously");
    // The author's edit must be valid.
    let reply = a
        .patch(&path, Some(&alice), &json!({"content": "  "}))
        .await;
    reply.client_error(StatusCode::BAD_REQUEST, "PATCH with empty content");
    let reply = a
        .patch(&path, Some(&alice), &json!({"colour": "red"}))
        .await;
    reply.client_error(StatusCode::BAD_REQUEST, "PATCH with an unknown field");
    let after = a.get(&path, None).await;
    after.expect(StatusCode::OK, "GET after refused edits");
    assert_eq!(after.json, before, "refused edits changed the post");
    assert_eq!(a.snapshot().await, snapshot);

    // Unknown posts.
    let reply = a
        .patch(
            "/api/v1/posts/no-such-post",
            Some(&alice),
            &json!({"content": "x"}),
        )
        .await;
    reply.client_error(StatusCode::NOT_FOUND, "PATCH an unknown post");
    let reply = a.get("/api/v1/posts/no-such-post", None).await;
    let message = reply.client_error(StatusCode::NOT_FOUND, "GET an unknown post");
    assert!(message.contains("no-such-post"), "{message}");

    // The author edits.
    let reply = a
        .patch(
            &path,
            Some(&alice),
            &json!({"content": "Second draft, now with <b>care</b> #hwb"}),
        )
        .await;
    reply.expect(StatusCode::OK, "PATCH by the author");
    let edited = &reply.json;
    assert_eq!(edited["key"], key.as_str());
    let content = edited["content"].as_str().expect("content");
    assert!(content.contains("Second draft"), "{content}");
    assert!(!content.contains("First draft"), "{content}");
    assert!(
        !content.contains("<b>"),
        "plain text is escaped, not HTML: {content}"
    );
    assert!(edited["updated"].is_string(), "updated is set: {edited}");
    let fetched = a.get(&path, None).await;
    fetched.expect(StatusCode::OK, "GET after the edit");
    assert_eq!(&fetched.json, edited);
    let listed = a.community_posts("hwb", None).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(&listed[0], edited);

    // A title can be added.
    let reply = a
        .patch(&path, Some(&alice), &json!({"title": "Care routines"}))
        .await;
    reply.expect(StatusCode::OK, "PATCH the title");
    assert_eq!(reply.json["title"], "Care routines");
    assert!(reply.json["content"]
        .as_str()
        .is_some_and(|c| c.contains("Second draft")));

    // The author deletes: 204, then 410 everywhere, and gone from the community.
    let hwb_before = a.community_view("hwb").await;
    assert_eq!(hwb_before["posts"], 1);
    let reply = a.delete(&path, Some(&alice)).await;
    reply.expect(StatusCode::NO_CONTENT, "DELETE by the author");
    assert!(reply.text.is_empty(), "204 has no body: {}", reply.text);
    let reply = a.get(&path, None).await;
    let message = reply.client_error(StatusCode::GONE, "GET after DELETE");
    assert!(message.contains("deleted"), "{message}");
    let reply = a.get(&path, Some(&alice)).await;
    reply.client_error(StatusCode::GONE, "GET by the author after DELETE");
    assert!(a.community_posts("hwb", None).await.is_empty());
    assert!(a.community_posts("hwb", Some(&alice)).await.is_empty());
    assert_eq!(a.community_view("hwb").await["posts"], 0);
    let reply = a
        .patch(&path, Some(&alice), &json!({"content": "Back #hwb"}))
        .await;
    reply.client_error(StatusCode::GONE, "PATCH after DELETE");
    let reply = a.delete(&path, Some(&alice)).await;
    reply.client_error(StatusCode::GONE, "DELETE twice");
    let reply = a.get_as(&format!("/p/{key}"), AP_JSON).await;
    reply.expect(StatusCode::GONE, "GET /p/KEY after DELETE");
    assert_eq!(reply.json["type"], "Tombstone", "{}", reply.text);
    assert_eq!(reply.json["id"], a.id(&format!("/p/{key}")));
    assert!(
        !reply.text.contains("draft"),
        "nothing of the content: {}",
        reply.text
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Visibility
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authority_and_members_posts_are_shown_only_to_whom_they_should_be() {
    let a = Instance::start("visibility").await;
    let alice = a.member("alice", "Alice Teacher").await;
    let bob = a.member("bob", "Bob Teacher").await;
    let carol = a.member("carol", "Carol Follower").await;
    a.community("hwb", Some("Health and Wellbeing")).await;

    let public = a
        .create_post(&alice, json!({"content": "For everyone #hwb"}))
        .await;
    let authority = a
        .create_post(
            &alice,
            json!({"content": "Inside the authority only #hwb", "visibility": "authority"}),
        )
        .await;
    assert_eq!(authority["visibility"], "authority");
    let akey = key_of(&authority);
    let apath = format!("/api/v1/posts/{akey}");

    // `authority`: any signed-in member of the instance, the author included.
    for (who, token) in [("alice", &alice), ("bob", &bob), ("carol", &carol)] {
        let reply = a.get(&apath, Some(token)).await;
        reply.expect(StatusCode::OK, &format!("{who} reads the authority post"));
        assert_eq!(reply.json["key"], akey.as_str());
        assert!(reply.json["content"]
            .as_str()
            .is_some_and(|c| c.contains("authority only")));
    }
    // Not anonymous readers, who are not told it exists.
    let reply = a.get(&apath, None).await;
    let message = reply.client_error(StatusCode::NOT_FOUND, "anonymous GET of an authority post");
    assert!(!message.contains("authority only"), "{message}");
    let unknown = a.get("/api/v1/posts/no-such-key", None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        a.community_keys("hwb", None).await,
        vec![key_of(&public)],
        "anonymous listing shows only the public post"
    );
    assert_eq!(
        a.community_keys("hwb", Some(&bob)).await,
        vec![akey.clone(), key_of(&public)],
        "a member's listing shows the authority post"
    );
    // It never leaves the instance: no ActivityPub document, no page.
    let reply = a.get_as(&format!("/p/{akey}"), AP_JSON).await;
    reply.client_error(
        StatusCode::NOT_FOUND,
        "GET /p/KEY (authority) as ActivityPub",
    );
    assert!(!reply.text.contains("authority only"));
    let reply = a.get_as(&format!("/p/{akey}"), LD_JSON).await;
    reply.expect(StatusCode::NOT_FOUND, "GET /p/KEY (authority) as ld+json");
    let reply = a.get_as(&format!("/p/{akey}"), "text/html").await;
    reply.expect(StatusCode::NOT_FOUND, "GET /p/KEY (authority) as HTML");
    assert!(!reply.text.contains("authority only"));
    // Nor is it in the community's public page or outbox.
    let page = a.get_as("/c/hwb", "text/html").await;
    page.expect(StatusCode::OK, "the community page");
    assert!(page.text.contains("For everyone"), "{}", page.text);
    assert!(!page.text.contains("authority only"), "{}", page.text);
    let outbox = a.get_as("/c/hwb/outbox", AP_JSON).await;
    outbox.expect(StatusCode::OK, "the community outbox");
    assert!(!outbox.text.contains("authority only"), "{}", outbox.text);

    // `members`: those who follow one of its communities.
    let reply = a
        .post("/api/v1/communities/hwb/follow", Some(&carol), &json!({}))
        .await;
    reply.expect(StatusCode::OK, "carol follows hwb");
    assert_eq!(reply.json["state"], "accepted", "{}", reply.text);
    assert_eq!(a.community_view("hwb").await["followers"], 1);

    let members = a
        .create_post(
            &alice,
            json!({"content": "For the community's members #hwb", "visibility": "members"}),
        )
        .await;
    assert_eq!(members["visibility"], "members");
    let mkey = key_of(&members);
    let mpath = format!("/api/v1/posts/{mkey}");
    let reply = a.get(&mpath, Some(&carol)).await;
    reply.expect(StatusCode::OK, "a follower reads the members post");
    assert_eq!(reply.json["key"], mkey.as_str());
    let reply = a.get(&mpath, Some(&alice)).await;
    reply.expect(StatusCode::OK, "the author reads her members post");
    let reply = a.get(&mpath, Some(&bob)).await;
    reply.client_error(
        StatusCode::NOT_FOUND,
        "a non-follower GETs the members post",
    );
    let reply = a.get(&mpath, None).await;
    reply.client_error(StatusCode::NOT_FOUND, "anonymous GET of the members post");
    assert!(a.community_keys("hwb", Some(&carol)).await.contains(&mkey));
    assert!(!a.community_keys("hwb", Some(&bob)).await.contains(&mkey));
    assert!(!a.community_keys("hwb", None).await.contains(&mkey));
    let reply = a.get_as(&format!("/p/{mkey}"), AP_JSON).await;
    reply.expect(StatusCode::NOT_FOUND, "GET /p/KEY (members) as ActivityPub");

    // Following is what grants it: bob follows, reads; unfollows, cannot.
    let reply = a
        .post("/api/v1/communities/hwb/follow", Some(&bob), &json!({}))
        .await;
    assert_eq!(reply.json["state"], "accepted", "{}", reply.text);
    a.get(&mpath, Some(&bob))
        .await
        .expect(StatusCode::OK, "bob reads after following");
    let reply = a.delete("/api/v1/communities/hwb/follow", Some(&bob)).await;
    reply.expect(StatusCode::NO_CONTENT, "bob unfollows");
    a.get(&mpath, Some(&bob))
        .await
        .expect(StatusCode::NOT_FOUND, "bob cannot read after unfollowing");
    assert_eq!(a.community_view("hwb").await["followers"], 1);
}

// ---------------------------------------------------------------------------------------------
// 5. Bad input
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_clearly_and_stores_nothing() {
    let a = Instance::start("bad-input").await;
    let alice = a.member("alice", "Alice Teacher").await;
    a.community("hwb", None).await;
    a.create_post(&alice, json!({"content": "Already here #hwb"}))
        .await;
    let before = a.snapshot().await;
    let posts = "/api/v1/posts";

    // Malformed JSON.
    let reply = a
        .send(
            Method::POST,
            posts,
            Some(&alice),
            &[("content-type", "application/json")],
            Some(br#"{"content": "unfinished #hwb"#.to_vec()),
        )
        .await;
    reply.client_error(StatusCode::BAD_REQUEST, "malformed JSON");
    // Not JSON at all, and not declared as JSON.
    let reply = a
        .send(
            Method::POST,
            posts,
            Some(&alice),
            &[("content-type", "text/plain")],
            Some(b"content=hello #hwb".to_vec()),
        )
        .await;
    reply.client_error(StatusCode::BAD_REQUEST, "a text/plain body");
    // Unknown field: named.
    let reply = a
        .post(
            posts,
            Some(&alice),
            &json!({"content": "Hello #hwb", "colour": "red"}),
        )
        .await;
    let message = reply.client_error(StatusCode::BAD_REQUEST, "an unknown field");
    assert!(message.contains("colour"), "{message}");
    // Missing or empty content.
    let reply = a
        .post(posts, Some(&alice), &json!({"title": "No body"}))
        .await;
    let message = reply.client_error(StatusCode::BAD_REQUEST, "no content");
    assert!(message.contains("content"), "{message}");
    for empty in ["", "   \n\t"] {
        let reply = a
            .post(posts, Some(&alice), &json!({"content": empty}))
            .await;
        let message = reply.client_error(StatusCode::BAD_REQUEST, "empty content");
        assert!(message.contains("content"), "{message}");
    }
    // Wrong types.
    let reply = a.post(posts, Some(&alice), &json!({"content": 42})).await;
    reply.client_error(StatusCode::BAD_REQUEST, "content is a number");
    // Unknown visibility: the allowed values are listed.
    let reply = a
        .post(
            posts,
            Some(&alice),
            &json!({"content": "Hello #hwb", "visibility": "secret"}),
        )
        .await;
    let message = reply.client_error(StatusCode::BAD_REQUEST, "visibility secret");
    for allowed in ["secret", "public", "members", "authority"] {
        assert!(message.contains(allowed), "{allowed} in {message}");
    }
    // A hashtag with no letters or digits.
    let reply = a
        .post(
            posts,
            Some(&alice),
            &json!({"content": "Hello", "communities": ["!!!"]}),
        )
        .await;
    let message = reply.client_error(StatusCode::BAD_REQUEST, "communities [\"!!!\"]");
    assert!(message.contains("no letters or digits"), "{message}");
    assert!(message.contains("!!!"), "{message}");
    let reply = a
        .post(
            posts,
            Some(&alice),
            &json!({"content": "Hello", "communities": ["hwb!"]}),
        )
        .await;
    reply.client_error(StatusCode::BAD_REQUEST, "communities [\"hwb!\"]");
    // Too long.
    let reply = a
        .post(
            posts,
            Some(&alice),
            &json!({"content": format!("{} #hwb", "a".repeat(20_001))}),
        )
        .await;
    let message = reply.client_error(StatusCode::BAD_REQUEST, "content over 20000 characters");
    assert!(message.contains("20000"), "{message}");
    let reply = a
        .post(
            posts,
            Some(&alice),
            &json!({"content": "Hello #hwb", "title": "t".repeat(301)}),
        )
        .await;
    let message = reply.client_error(StatusCode::BAD_REQUEST, "title over 300 characters");
    assert!(message.contains("title"), "{message}");
    // A reply to something that is not a URL.
    let reply = a
        .post(
            posts,
            Some(&alice),
            &json!({"content": "Hello #hwb", "in_reply_to": "not a url"}),
        )
        .await;
    let message = reply.client_error(StatusCode::BAD_REQUEST, "in_reply_to not a URL");
    assert!(message.contains("in_reply_to"), "{message}");

    // Not signed in, or with a token that is not one.
    let good = json!({"content": "Would be fine #hwb"});
    let reply = a.post(posts, None, &good).await;
    let message = reply.client_error(StatusCode::UNAUTHORIZED, "no Authorization");
    assert!(message.contains("Bearer"), "{message}");
    let reply = a.post(posts, Some("not-a-real-token"), &good).await;
    let message = reply.client_error(StatusCode::UNAUTHORIZED, "a wrong token");
    assert!(message.contains("token"), "{message}");
    let bytes = serde_json::to_vec(&good).expect("json");
    let reply = a
        .send(
            Method::POST,
            posts,
            None,
            &[
                ("content-type", "application/json"),
                ("authorization", "Basic YWxpY2U6c2VjcmV0"),
            ],
            Some(bytes.clone()),
        )
        .await;
    reply.client_error(StatusCode::UNAUTHORIZED, "Basic authorization");
    let reply = a.get("/api/v1/me", Some("not-a-real-token")).await;
    reply.client_error(
        StatusCode::UNAUTHORIZED,
        "GET /api/v1/me with a wrong token",
    );
    let reply = a.get("/api/v1/me", Some(&alice)).await;
    reply.expect(StatusCode::OK, "GET /api/v1/me");
    assert_eq!(reply.json["name"], "alice");
    assert_eq!(reply.json["display_name"], "Alice Teacher");
    assert_eq!(reply.json["id"], a.id("/u/alice"));

    // Unknown communities: 404 naming the community.
    for path in [
        "/api/v1/communities/nosuchtag",
        "/api/v1/communities/nosuchtag/posts",
    ] {
        let reply = a.get(path, None).await;
        let message = reply.client_error(StatusCode::NOT_FOUND, path);
        assert!(message.contains("nosuchtag"), "{message}");
    }
    let reply = a
        .post(
            "/api/v1/communities/nosuchtag/follow",
            Some(&alice),
            &json!({}),
        )
        .await;
    let message = reply.client_error(StatusCode::NOT_FOUND, "follow an unknown community");
    assert!(message.contains("nosuchtag"), "{message}");

    // A body over 1 MiB.
    let huge = serde_json::to_vec(&json!({"content": format!("{} #hwb", "x".repeat(ONE_MIB))}))
        .expect("json");
    let reply = a
        .try_send_oversized(
            Method::POST,
            posts,
            Some(&alice),
            &[("content-type", "application/json")],
            huge,
        )
        .await;
    match reply {
        Ok(reply) => {
            assert!(
                reply.status == StatusCode::PAYLOAD_TOO_LARGE
                    || reply.status == StatusCode::BAD_REQUEST,
                "a body over 1 MiB: got {} {}",
                reply.status,
                reply.text
            );
            let message = reply.client_error(reply.status, "a body over 1 MiB");
            assert!(message.contains("large"), "{message}");
        }
        Err(e) => panic!("a body over 1 MiB got no answer: {e:?}"),
    }

    // None of it stored anything.
    assert_eq!(a.snapshot().await, before);
    assert_eq!(a.community_posts("hwb", Some(&alice)).await.len(), 1);
}

/// A post is a JSON object; serde's derive would also take a JSON array as the fields in
/// declaration order (`["text"]` is `{"content": "text"}`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_array_is_not_a_post() {
    let a = Instance::start("array-body").await;
    let alice = a.member("alice", "Alice Teacher").await;
    a.community("hwb", None).await;
    let before = a.snapshot().await;
    for body in [json!(["#hwb"]), json!(["Hello #hwb", "A title", "public"])] {
        let reply = a.post("/api/v1/posts", Some(&alice), &body).await;
        reply.client_error(StatusCode::BAD_REQUEST, &format!("the body {body}"));
    }
    assert_eq!(a.snapshot().await, before, "nothing stored");
    let post = a.create_post(&alice, json!({"content": "Fine #hwb"})).await;
    let reply = a
        .patch(
            &format!("/api/v1/posts/{}", key_of(&post)),
            Some(&alice),
            &json!(["Changed #hwb"]),
        )
        .await;
    reply.client_error(StatusCode::BAD_REQUEST, "PATCH with an array");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_to_an_unknown_community_is_404_when_communities_are_curated() {
    let a = Instance::start_with("curated", |c| c.communities.auto_create = false).await;
    let alice = a.member("alice", "Alice Teacher").await;
    a.community("hwb", None).await;
    let before = a.snapshot().await;

    let reply = a
        .post(
            "/api/v1/posts",
            Some(&alice),
            &json!({"content": "Hello", "communities": ["hwb", "nosuchtag"]}),
        )
        .await;
    let message = reply.client_error(StatusCode::NOT_FOUND, "an unknown community");
    assert!(message.contains("nosuchtag"), "{message}");
    assert_eq!(a.snapshot().await, before, "nothing stored or created");

    // An unknown hashtag in the text stays a plain tag; the known one files the post.
    let post = a
        .create_post(&alice, json!({"content": "Hello #hwb #nosuchtag"}))
        .await;
    assert_eq!(post["communities"], json!(["hwb"]), "{post}");
    assert_eq!(post["hashtags"], json!(["hwb", "nosuchtag"]), "{post}");
    assert_eq!(a.communities().await.len(), 1);
    a.get("/api/v1/communities/nosuchtag", None)
        .await
        .client_error(StatusCode::NOT_FOUND, "no community was created");
}

// ---------------------------------------------------------------------------------------------
// 6. The ActivityPub surface
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activitypub_surface_webfinger_nodeinfo_actors_and_posts() {
    let a = Instance::start("surface").await;
    let alice = a.member("alice", "Alice Teacher").await;
    a.community("hwb", Some("Health and Wellbeing")).await;
    let d = a.domain.clone();

    // WebFinger.
    for (acct, kind, path) in [
        (format!("alice@{d}"), "Person", "/u/alice"),
        (format!("hwb@{d}"), "Group", "/c/hwb"),
        (format!("HWB@{d}"), "Group", "/c/hwb"),
        (format!("{d}@{d}"), "Application", "/actor"),
    ] {
        let reply = a
            .get(
                &format!("/.well-known/webfinger?resource=acct:{acct}"),
                None,
            )
            .await;
        reply.expect(StatusCode::OK, &format!("WebFinger {acct}"));
        assert!(
            reply.content_type.starts_with("application/jrd+json"),
            "{acct}: {}",
            reply.content_type
        );
        let links = reply.json["links"].as_array().expect("links");
        let own = links
            .iter()
            .find(|l| l["rel"] == "self")
            .unwrap_or_else(|| panic!("{acct}: no self link in {}", reply.text));
        assert_eq!(own["type"], AP_JSON, "{acct}: {own}");
        assert_eq!(own["href"], a.id(path), "{acct}: {own}");
        assert_eq!(
            own["properties"]["https://www.w3.org/ns/activitystreams#type"], kind,
            "{acct}: {own}"
        );
        let subject = reply.json["subject"].as_str().expect("subject");
        assert!(
            subject.eq_ignore_ascii_case(&format!("acct:{acct}")),
            "{subject}"
        );
    }
    for unknown in [
        format!("acct:nobody@{d}"),
        "acct:alice@elsewhere.example".to_owned(),
    ] {
        let reply = a
            .get(&format!("/.well-known/webfinger?resource={unknown}"), None)
            .await;
        reply.client_error(StatusCode::NOT_FOUND, &format!("WebFinger {unknown}"));
    }
    let reply = a.get("/.well-known/webfinger", None).await;
    reply.client_error(StatusCode::BAD_REQUEST, "WebFinger without resource");

    // NodeInfo.
    let reply = a.get("/.well-known/nodeinfo", None).await;
    reply.expect(StatusCode::OK, "/.well-known/nodeinfo");
    let link = &reply.json["links"][0];
    assert_eq!(
        link["rel"],
        "http://nodeinfo.diaspora.software/ns/schema/2.1"
    );
    let href = link["href"].as_str().expect("href");
    assert_eq!(href, a.id("/nodeinfo/2.1"));
    let path = href.strip_prefix(&a.origin).expect("on this instance");
    let reply = a.get(path, None).await;
    reply.expect(StatusCode::OK, "/nodeinfo/2.1");
    assert_eq!(reply.json["version"], "2.1");
    assert_eq!(reply.json["software"]["name"], "cairn");
    assert_eq!(reply.json["protocols"], json!(["activitypub"]));
    assert_eq!(reply.json["usage"]["users"]["total"], 1);

    // Actors, in both ActivityPub media types.
    for (path, kind, username, display) in [
        ("/u/alice", "Person", "alice", "Alice Teacher"),
        ("/c/hwb", "Group", "hwb", "Health and Wellbeing"),
    ] {
        for accept in [AP_JSON, LD_JSON] {
            let what = format!("GET {path} ({accept})");
            let reply = a.get_as(path, accept).await;
            reply.expect(StatusCode::OK, &what);
            assert!(
                reply.content_type.starts_with(AP_JSON),
                "{what}: {}",
                reply.content_type
            );
            let actor = &reply.json;
            let id = a.id(path);
            assert_eq!(actor["type"], kind, "{what}");
            assert_eq!(actor["id"], id.as_str(), "{what}");
            assert_eq!(actor["preferredUsername"], username, "{what}");
            assert_eq!(actor["name"], display, "{what}");
            assert_eq!(actor["inbox"], format!("{id}/inbox"), "{what}");
            assert_eq!(actor["outbox"], format!("{id}/outbox"), "{what}");
            assert_eq!(actor["followers"], format!("{id}/followers"), "{what}");
            assert_eq!(actor["endpoints"]["sharedInbox"], a.id("/inbox"), "{what}");
            assert_eq!(actor["publicKey"]["owner"], id.as_str(), "{what}");
            assert!(
                actor["publicKey"]["publicKeyPem"]
                    .as_str()
                    .is_some_and(|k| k.contains("BEGIN PUBLIC KEY")),
                "{what}: {}",
                actor["publicKey"]
            );
            assert!(
                !reply.text.contains("PRIVATE KEY"),
                "{what} leaks a private key"
            );
            assert!(
                strings(&actor["@context"])
                    .contains(&"https://www.w3.org/ns/activitystreams".to_owned()),
                "{what}: {}",
                actor["@context"]
            );
        }
        let reply = a.get_as(path, "text/html").await;
        reply.expect(StatusCode::OK, &format!("GET {path} as HTML"));
        assert!(
            reply.content_type.starts_with("text/html"),
            "{path}: {}",
            reply.content_type
        );
        assert!(reply.text.contains(display), "{path}: {}", reply.text);
        assert!(reply.text.contains("<html"), "{path}: {}", reply.text);
    }
    let reply = a.get_as("/actor", AP_JSON).await;
    reply.expect(StatusCode::OK, "GET /actor");
    assert_eq!(reply.json["type"], "Application");
    assert_eq!(reply.json["id"], a.id("/actor"));
    assert!(reply.json["publicKey"]["publicKeyPem"].is_string());
    for path in ["/u/nobody", "/c/nosuchtag"] {
        a.get_as(path, AP_JSON)
            .await
            .client_error(StatusCode::NOT_FOUND, path);
    }
    let followers = a.get_as("/c/hwb/followers", AP_JSON).await;
    followers.expect(StatusCode::OK, "GET /c/hwb/followers");
    assert_eq!(followers.json["totalItems"], 0);

    // A public post is a Note in its communities.
    let post = a
        .create_post(
            &alice,
            json!({"content": "Breathing exercises in class #HWB #cpdlead"}),
        )
        .await;
    let key = key_of(&post);
    for accept in [AP_JSON, LD_JSON] {
        let what = format!("GET /p/{key} ({accept})");
        let reply = a.get_as(&format!("/p/{key}"), accept).await;
        reply.expect(StatusCode::OK, &what);
        assert!(reply.content_type.starts_with(AP_JSON), "{what}");
        let note = &reply.json;
        let hwb = a.id("/c/hwb");
        let cpdlead = a.id("/c/cpdlead");
        assert_eq!(note["type"], "Note", "{what}: {note}");
        assert_eq!(note["id"], a.id(&format!("/p/{key}")), "{what}");
        assert_eq!(note["attributedTo"], a.id("/u/alice"), "{what}");
        assert!(note["content"]
            .as_str()
            .is_some_and(|c| c.contains("Breathing exercises")));
        assert!(
            note.get("name").is_none(),
            "{what}: an untitled Note: {note}"
        );
        assert!(
            strings(&note["to"]).contains(&PUBLIC.to_owned()),
            "{what}: {note}"
        );
        let cc = strings(&note["cc"]);
        assert!(
            cc.contains(&hwb) && cc.contains(&cpdlead),
            "{what}: cc {cc:?}"
        );
        let audience = strings(&note["audience"]);
        assert!(!audience.is_empty(), "{what}: no audience: {note}");
        assert!(
            audience.iter().all(|g| *g == hwb || *g == cpdlead),
            "{what}: audience {audience:?}"
        );
        let tags = note["tag"].as_array().expect("a tag array");
        let hashtags: Vec<&Value> = tags.iter().filter(|t| t["type"] == "Hashtag").collect();
        assert_eq!(hashtags.len(), 2, "{what}: {tags:?}");
        let hrefs: BTreeSet<String> = hashtags
            .iter()
            .map(|t| t["href"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(hrefs, set(&[&hwb, &cpdlead]), "{what}");
        for t in &hashtags {
            let name = t["name"].as_str().unwrap_or_default().to_lowercase();
            let href = t["href"].as_str().unwrap_or_default();
            assert!(
                (name == "#hwb" && href == hwb) || (name == "#cpdlead" && href == cpdlead),
                "{what}: {t}"
            );
        }
    }
    let page = a.get_as(&format!("/p/{key}"), "text/html").await;
    page.expect(StatusCode::OK, "the post as HTML");
    assert!(page.content_type.starts_with("text/html"));
    assert!(page.text.contains("Breathing exercises"), "{}", page.text);
    assert!(page.text.contains("Alice Teacher"), "{}", page.text);

    // A titled post is an Article with a name.
    let article = a
        .create_post(
            &alice,
            json!({"title": "Calm classrooms", "content": "A longer piece #hwb"}),
        )
        .await;
    assert_eq!(article["title"], "Calm classrooms");
    let reply = a.get_as(&format!("/p/{}", key_of(&article)), AP_JSON).await;
    reply.expect(StatusCode::OK, "GET the article");
    assert_eq!(reply.json["type"], "Article", "{}", reply.text);
    assert_eq!(reply.json["name"], "Calm classrooms");
    assert!(strings(&reply.json["to"]).contains(&PUBLIC.to_owned()));
    assert_eq!(
        strings(&reply.json["audience"]),
        vec![a.id("/c/hwb")],
        "{}",
        reply.text
    );
    a.get_as("/p/no-such-post", AP_JSON)
        .await
        .client_error(StatusCode::NOT_FOUND, "GET /p/unknown");

    // The author's outbox holds the Create.
    let outbox = a.get_as("/u/alice/outbox", AP_JSON).await;
    outbox.expect(StatusCode::OK, "GET /u/alice/outbox");
    assert_eq!(outbox.json["type"], "OrderedCollection");
    let creates: Vec<&Value> = outbox.json["orderedItems"]
        .as_array()
        .expect("orderedItems")
        .iter()
        .filter(|i| i["type"] == "Create")
        .collect();
    assert_eq!(creates.len(), 2, "{}", outbox.text);
    assert!(
        outbox.text.contains(&a.id(&format!("/p/{key}"))),
        "{}",
        outbox.text
    );
}

/// A community's outbox shows what the community holds, so that a server discovering it later
/// (Lemmy, Mastodon, a newly linked national instance) can see its recent posts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_community_outbox_lists_its_public_posts() {
    let a = Instance::start("group-outbox").await;
    let alice = a.member("alice", "Alice Teacher").await;
    a.community("hwb", None).await;
    let post = a
        .create_post(&alice, json!({"content": "Before anyone followed #hwb"}))
        .await;
    let outbox = a.get_as("/c/hwb/outbox", AP_JSON).await;
    outbox.expect(StatusCode::OK, "GET /c/hwb/outbox");
    assert_eq!(outbox.json["type"], "OrderedCollection");
    assert_eq!(outbox.json["totalItems"], 1, "{}", outbox.text);
    assert!(
        outbox.text.contains(post["id"].as_str().expect("id")),
        "{}",
        outbox.text
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Inboxes refuse what is not signed
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inboxes_refuse_unsigned_malformed_and_oversized_bodies() {
    let a = Instance::start("inbox").await;
    let alice = a.member("alice", "Alice Teacher").await;
    a.community("hwb", None).await;
    a.create_post(&alice, json!({"content": "The real one #hwb"}))
        .await;
    let before = a.snapshot().await;
    let alice_id = a.id("/u/alice");
    let hwb_id = a.id("/c/hwb");

    let forged = |n: u32, actor: &str| {
        json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{actor}/activities/forged-{n}"),
            "type": "Create",
            "actor": actor,
            "to": [PUBLIC],
            "cc": [hwb_id],
            "object": {
                "id": format!("{actor}/notes/forged-{n}"),
                "type": "Note",
                "attributedTo": actor,
                "content": "<p>Forged #hwb</p>",
                "to": [PUBLIC],
                "cc": [hwb_id],
                "audience": hwb_id,
                "tag": [{"type": "Hashtag", "name": "#hwb", "href": hwb_id}],
            },
        })
    };
    let as_json = [("content-type", AP_JSON)];

    for (n, inbox) in ["/inbox", "/c/hwb/inbox", "/u/alice/inbox"]
        .into_iter()
        .enumerate()
    {
        let n = n as u32 * 10;
        // (a) Not JSON.
        let reply = a
            .send(
                Method::POST,
                inbox,
                None,
                &as_json,
                Some(b"this is not JSON {".to_vec()),
            )
            .await;
        let message = reply.client_error(StatusCode::BAD_REQUEST, &format!("{inbox}: not JSON"));
        assert!(message.contains("JSON"), "{message}");

        // (b) A well-formed Create with no Digest and no Signature: from a remote actor, and
        // pretending to be a local member.
        for (i, actor) in ["http://mallory.localhost:9/u/mallory", alice_id.as_str()]
            .into_iter()
            .enumerate()
        {
            let body = serde_json::to_vec(&forged(n + i as u32, actor)).expect("json");
            let reply = a
                .send(Method::POST, inbox, None, &as_json, Some(body))
                .await;
            reply.client_error(
                StatusCode::UNAUTHORIZED,
                &format!("{inbox}: unsigned Create by {actor}"),
            );
        }
        // A correct Digest but still no Signature.
        let body = serde_json::to_vec(&forged(n + 5, &alice_id)).expect("json");
        use sha2::Digest as _;
        let digest = format!("SHA-256={}", base64(&sha2::Sha256::digest(&body)));
        let reply = a
            .send(
                Method::POST,
                inbox,
                None,
                &[("content-type", AP_JSON), ("digest", &digest)],
                Some(body),
            )
            .await;
        // (Refused, if not as 401: the federation crate looks at the actor before the
        // signature; see `an_unsigned_activity_is_refused_before_its_actor_is_fetched`.)
        assert!(
            reply.status.is_client_error(),
            "{inbox}: digest but no signature: {} {}",
            reply.status,
            reply.text
        );
        reply.client_error(reply.status, &format!("{inbox}: digest but no signature"));

        // (c) Over 1 MiB.
        let mut big = forged(n + 7, &alice_id);
        big["object"]["content"] = json!("x".repeat(ONE_MIB + 1));
        let body = serde_json::to_vec(&big).expect("json");
        match a
            .try_send_oversized(Method::POST, inbox, None, &as_json, body)
            .await
        {
            Ok(reply) => {
                reply.client_error(StatusCode::PAYLOAD_TOO_LARGE, &format!("{inbox}: 1 MiB"));
            }
            Err(e) => panic!("{inbox}: a body over 1 MiB got no answer: {e:?}"),
        }
    }
    // An inbox nobody owns.
    let reply = a
        .send(
            Method::POST,
            "/c/nosuchtag/inbox",
            None,
            &as_json,
            Some(serde_json::to_vec(&forged(99, &alice_id)).expect("json")),
        )
        .await;
    reply.client_error(StatusCode::NOT_FOUND, "the inbox of an unknown community");

    // Still answering, nothing stored.
    let reply = a.get("/nodeinfo/2.1", None).await;
    reply.expect(StatusCode::OK, "the server still answers");
    assert_eq!(a.snapshot().await, before);
    let listed = a.community_posts("hwb", None).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0]["content"]
        .as_str()
        .is_some_and(|c| c.contains("The real one")));
}

// ---------------------------------------------------------------------------------------------
// 8. Delivery to another instance
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_reaches_a_member_of_another_instance_who_follows_the_community() {
    let a = Instance::start("origin-a").await;
    let b = Instance::start("follower-b").await;
    let alice = a.member("alice", "Alice Teacher").await;
    a.community("hwb", Some("Health and Wellbeing")).await;
    let bob = b.member("bob", "Bob Remote").await;
    let remote = format!("hwb@{}", a.domain);

    // B resolves A's community.
    let reply = b.get(&format!("/api/v1/communities/{remote}"), None).await;
    reply.expect(StatusCode::OK, "B resolves hwb on A");
    assert_eq!(reply.json["id"], a.id("/c/hwb"));
    assert_eq!(reply.json["local"], false);
    assert_eq!(reply.json["display_name"], "Health and Wellbeing");

    // Bob on B follows it; A accepts.
    let reply = b
        .post(
            &format!("/api/v1/communities/{remote}/follow"),
            Some(&bob),
            &json!({}),
        )
        .await;
    reply.expect(StatusCode::OK, "bob follows hwb on A");
    let state = reply.json["state"].as_str().unwrap_or_default();
    assert!(state == "pending" || state == "accepted", "{}", reply.text);
    poll(
        "A counts bob as a follower of hwb",
        DELIVERY_TIMEOUT,
        || async { (a.community_view("hwb").await["followers"] == 1).then_some(()) },
    )
    .await;

    // Alice posts on A; it arrives on B in the remote community.
    let post = a
        .create_post(
            &alice,
            json!({"content": "Share once, see many #hwb", "title": "Across authorities"}),
        )
        .await;
    let id = post["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/communities/{remote}/posts");
    let arrived = poll("the post arrives on B", DELIVERY_TIMEOUT, || async {
        let reply = b.get(&path, Some(&bob)).await;
        reply.expect(StatusCode::OK, &path);
        items(&reply.json)
            .into_iter()
            .find(|p| p["id"] == id.as_str())
    })
    .await;
    assert_eq!(arrived["local"], false);
    assert_eq!(arrived["title"], "Across authorities");
    assert!(arrived["content"]
        .as_str()
        .is_some_and(|c| c.contains("Share once, see many")));
    assert_eq!(arrived["author"]["id"], a.id("/u/alice"));
    assert_eq!(arrived["author"]["handle"], format!("alice@{}", a.domain));
    assert!(
        strings(&arrived["communities"]).contains(&remote),
        "{arrived}"
    );
    // Also anonymously, and as a post of its own on B.
    let anon = b.community_posts(&remote, None).await;
    assert!(anon.iter().any(|p| p["id"] == id.as_str()));
    let key = arrived["key"].as_str().expect("key");
    let reply = b.get(&format!("/api/v1/posts/{key}"), None).await;
    reply.expect(StatusCode::OK, "the arrived post on B");
    assert_eq!(reply.json["id"], id.as_str());
}

/// An activity without a Signature header is refused before anything else is done with it: an
/// unsigned request must not make the server fetch the URL it names as its actor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_activity_is_refused_before_its_actor_is_fetched() {
    let a = Instance::start("unsigned-fetch").await;
    a.community("hwb", None).await;
    let before = a.snapshot().await;

    // A stand-in for the remote actor's server, counting the connections it gets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = fetches.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let _ = socket
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let actor = format!("http://localhost:{port}/u/mallory");
    let hwb = a.id("/c/hwb");
    let body = serde_json::to_vec(&json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{actor}/activities/1"),
        "type": "Create",
        "actor": actor,
        "to": [PUBLIC],
        "cc": [hwb],
        "object": {
            "id": format!("{actor}/notes/1"),
            "type": "Note",
            "attributedTo": actor,
            "content": "unsigned #hwb",
            "to": [PUBLIC],
            "cc": [hwb],
        },
    }))
    .expect("json");
    use sha2::Digest as _;
    let digest = format!("SHA-256={}", base64(&sha2::Sha256::digest(&body)));
    for inbox in ["/inbox", "/c/hwb/inbox"] {
        let reply = a
            .send(
                Method::POST,
                inbox,
                None,
                &[("content-type", AP_JSON), ("digest", &digest)],
                Some(body.clone()),
            )
            .await;
        let message = reply.client_error(
            StatusCode::UNAUTHORIZED,
            &format!("{inbox}: a correct Digest but no Signature"),
        );
        assert!(message.contains("signature"), "{message}");
    }
    assert_eq!(
        fetches.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the unsigned activity made the server fetch its actor"
    );
    assert_eq!(a.snapshot().await, before);
}

// ---------------------------------------------------------------------------------------------
// Paging and pages
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn community_posts_are_paged_newest_first() {
    let a = Instance::start("paging").await;
    let alice = a.member("alice", "Alice Teacher").await;
    let mut written = Vec::new();
    for i in 0..4 {
        written.push(
            a.create_post(&alice, json!({"content": format!("Post {i} #hwb")}))
                .await,
        );
    }
    let newest_first: Vec<String> = written.iter().rev().map(key_of).collect();
    assert_eq!(a.community_keys("hwb", None).await, newest_first);

    let page = |query: String| {
        let a = &a;
        async move {
            let path = format!("/api/v1/communities/hwb/posts?{query}");
            let reply = a.get(&path, None).await;
            reply.expect(StatusCode::OK, &path);
            keys(&items(&reply.json))
        }
    };
    assert_eq!(page("limit=2".into()).await, newest_first[..2].to_vec());
    let before: String =
        url::form_urlencoded::byte_serialize(written[2]["published"].as_str().unwrap().as_bytes())
            .collect();
    assert_eq!(
        page(format!("before={before}")).await,
        newest_first[2..].to_vec(),
        "strictly older than the third post"
    );
    assert_eq!(
        page(format!("limit=1&before={before}")).await,
        newest_first[2..3].to_vec()
    );

    // A query that does not parse is a 400 in the API's error shape.
    for query in ["before=yesterday", "limit=many"] {
        let path = format!("/api/v1/communities/hwb/posts?{query}");
        let reply = a.get(&path, None).await;
        assert!(
            reply.status == StatusCode::BAD_REQUEST,
            "{path}: {} {}",
            reply.status,
            reply.text
        );
    }
}

/// Every API error is `{"error": "…"}` (README), a bad query string included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_query_string_is_a_json_error() {
    let a = Instance::start("bad-query").await;
    let alice = a.member("alice", "Alice Teacher").await;
    a.create_post(&alice, json!({"content": "Post #hwb"})).await;
    for query in ["before=yesterday", "limit=many", "limit=-1"] {
        let path = format!("/api/v1/communities/hwb/posts?{query}");
        let reply = a.get(&path, None).await;
        let message = reply.client_error(StatusCode::BAD_REQUEST, &path);
        assert!(
            message.contains("before") || message.contains("limit"),
            "{path}: {message}"
        );
    }
}

/// Names shown on pages are escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_escape_what_members_wrote() {
    let a = Instance::start("escaping").await;
    let eve = a.member("eve", "Eve <script>alert(1)</script>").await;
    a.community("hwb", Some("Wellbeing <img src=x onerror=alert(2)>"))
        .await;
    let post = a
        .create_post(
            &eve,
            json!({"title": "<script>alert(3)</script>", "content": "<script>alert(4)</script> #hwb"}),
        )
        .await;
    for path in [
        "/u/eve".to_owned(),
        "/c/hwb".to_owned(),
        format!("/p/{}", key_of(&post)),
        "/".to_owned(),
    ] {
        let reply = a.get_as(&path, "text/html").await;
        reply.expect(StatusCode::OK, &path);
        assert!(reply.content_type.starts_with("text/html"), "{path}");
        assert!(
            !reply.text.contains("<script>") && !reply.text.contains("<img"),
            "{path}: {}",
            reply.text
        );
    }
    let reply = a.get_as("/u/eve", "text/html").await;
    assert!(reply.text.contains("Eve &lt;script&gt;"), "{}", reply.text);
}

/// After an edit, the post's hashtags (in the API and in the `tag` array sent with the Update)
/// are those of the new text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_updates_the_posts_hashtags() {
    let a = Instance::start("edit-tags").await;
    let alice = a.member("alice", "Alice Teacher").await;
    let post = a
        .create_post(&alice, json!({"content": "About wellbeing #hwb"}))
        .await;
    let key = key_of(&post);
    let reply = a
        .patch(
            &format!("/api/v1/posts/{key}"),
            Some(&alice),
            &json!({"content": "About wellbeing and leading #hwb #cpdlead"}),
        )
        .await;
    reply.expect(StatusCode::OK, "PATCH adding a hashtag");
    assert_eq!(
        reply.json["hashtags"],
        json!(["hwb", "cpdlead"]),
        "{}",
        reply.text
    );
    let note = a.get_as(&format!("/p/{key}"), AP_JSON).await;
    let names: BTreeSet<String> = note.json["tag"]
        .as_array()
        .expect("tag")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_lowercase))
        .collect();
    assert_eq!(names, set(&["#hwb", "#cpdlead"]), "{}", note.text);
}

/// An empty title is no title: the post is a Note, not an Article without a name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_title_makes_a_note() {
    let a = Instance::start("empty-title").await;
    let alice = a.member("alice", "Alice Teacher").await;
    let post = a
        .create_post(&alice, json!({"content": "Untitled #hwb", "title": "  "}))
        .await;
    assert_eq!(post["title"], Value::Null, "{post}");
    let reply = a.get_as(&format!("/p/{}", key_of(&post)), AP_JSON).await;
    reply.expect(StatusCode::OK, "GET the post");
    assert_eq!(reply.json["type"], "Note", "{}", reply.text);
    assert!(reply.json.get("name").is_none(), "{}", reply.text);
}

/// After refusing a body over the limit without reading it, the server closes the connection;
/// it must say so (`Connection: close`), or a client with a pool of kept-alive connections (a
/// remote server delivering activities) fails its next request on that connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_oversized_body_does_not_break_the_next_request() {
    let a = Instance::start("keep-alive").await;
    let body = serde_json::to_vec(&json!({"pad": "x".repeat(ONE_MIB + 1)})).expect("json");
    for round in 0..20 {
        let reply = a
            .try_send(
                Method::POST,
                "/inbox",
                None,
                &[("content-type", AP_JSON)],
                Some(body.clone()),
            )
            .await
            .unwrap_or_else(|e| panic!("round {round}: the oversized POST: {e:?}"));
        reply.client_error(StatusCode::PAYLOAD_TOO_LARGE, "an oversized POST");
        let connection = reply
            .headers
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert_eq!(
            connection, "close",
            "round {round}: the 413 says the connection closes"
        );
        let next = a
            .try_send(Method::GET, "/nodeinfo/2.1", None, &[], None)
            .await
            .unwrap_or_else(|e| panic!("round {round}: the request after it: {e:?}"));
        next.expect(StatusCode::OK, "the request after an oversized POST");
    }
}
