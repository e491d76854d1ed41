//! "Who is here": member profiles (fields, photo, email opt-in) over the API and as the
//! `Person` other servers read; community membership, the member directory and introductions;
//! a profile on one instance seen, and updated, on another.
//!
//! `CAIRN_TEST_DATABASE_URL` picks SQLite (unset) or PostgreSQL (`postgres://…`), as for every
//! file under `tests/`.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Cursor;
use support::*;

/// An instance whose uploads go to a folder of its own.
async fn start(label: &str) -> Instance {
    let dir = std::env::temp_dir().join(format!("cairn-media-{}", uuid::Uuid::new_v4().simple()));
    let dir = dir.display().to_string();
    Instance::start_with(label, move |c| {
        c.media.dir = dir.clone();
        c.media.max_upload_bytes = 300_000;
    })
    .await
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("a PNG");
    out
}

/// A PNG bigger than the test instances accept (noise does not compress).
fn big_png() -> Vec<u8> {
    let mut seed: u32 = 7;
    let img = image::RgbImage::from_fn(400, 400, |_, _| {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let b = seed.to_le_bytes();
        image::Rgb([b[1], b[2], b[3]])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("a PNG");
    assert!(out.len() > 300_000, "the noise PNG is {} bytes", out.len());
    out
}

async fn upload_avatar(a: &Instance, token: &str, bytes: Vec<u8>, content_type: &str) -> Reply {
    a.send(
        Method::PUT,
        "/api/v1/me/avatar",
        Some(token),
        &[("content-type", content_type)],
        Some(bytes),
    )
    .await
}

async fn person(a: &Instance, name: &str) -> Value {
    let reply = a.get_as(&format!("/u/{name}"), AP_JSON).await;
    reply.expect(StatusCode::OK, "the Person");
    reply.json
}

fn property(person: &Value, name: &str) -> Option<String> {
    person["attachment"].as_array().and_then(|fields| {
        fields
            .iter()
            .find(|f| f["type"] == "PropertyValue" && f["name"] == name)
            .and_then(|f| f["value"].as_str().map(str::to_owned))
    })
}

async fn me(a: &Instance, token: &str) -> Value {
    let reply = a.get("/api/v1/me", Some(token)).await;
    reply.expect(StatusCode::OK, "GET /api/v1/me");
    reply.json
}

// ---------------------------------------------------------------------------------------------
// Profiles
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_is_edited_shown_and_federated_as_person_fields() {
    let a = start("profile").await;
    let alice = a.member("alice", "Alice").await;

    let reply = a
        .patch(
            "/api/v1/me",
            Some(&alice),
            &json!({
                "display_name": "Alice Teacher",
                "summary": "Primary teacher.\n\nI lead <b>outdoor learning</b> at https://school.example/outdoors",
                "school": "Riverside Primary",
                "role": "Depute Head",
                "email": "alice@riverside.example",
            }),
        )
        .await;
    reply.expect(StatusCode::OK, "PATCH /api/v1/me");
    assert_eq!(reply.json["display_name"], "Alice Teacher");
    assert_eq!(reply.json["school"], "Riverside Primary");
    assert_eq!(reply.json["role"], "Depute Head");
    // The member sees their own address and that it is hidden.
    assert_eq!(reply.json["email"], "alice@riverside.example");
    assert_eq!(reply.json["show_email"], false);
    let summary = reply.json["summary"].as_str().expect("summary");
    assert!(summary.contains("<p>Primary teacher.</p>"), "{summary}");
    assert!(!summary.contains("<b>"), "markup is text: {summary}");
    assert!(
        summary.contains("&lt;b&gt;outdoor learning&lt;/b&gt;"),
        "{summary}"
    );
    assert!(
        summary.contains("href=\"https://school.example/outdoors\""),
        "{summary}"
    );

    // Others see the profile without the address.
    let reply = a.get("/api/v1/members/alice", None).await;
    reply.expect(StatusCode::OK, "GET /api/v1/members/alice");
    assert_eq!(reply.json["school"], "Riverside Primary");
    assert_eq!(reply.json["role"], "Depute Head");
    assert_eq!(reply.json["display_name"], "Alice Teacher");
    assert_eq!(reply.json["email"], Value::Null, "{}", reply.text);
    assert!(reply.json.get("show_email").is_none(), "{}", reply.text);
    let p = person(&a, "alice").await;
    assert_eq!(p["name"], "Alice Teacher");
    assert_eq!(property(&p, "School").as_deref(), Some("Riverside Primary"));
    assert_eq!(property(&p, "Role").as_deref(), Some("Depute Head"));
    assert_eq!(property(&p, "Email"), None, "no email unless opted in: {p}");
    assert!(!p.to_string().contains("alice@riverside.example"), "{p}");
    let context = p["@context"].to_string();
    assert!(context.contains("schema:PropertyValue"), "{context}");

    // Opting in shows it everywhere.
    let reply = a
        .patch("/api/v1/me", Some(&alice), &json!({"show_email": true}))
        .await;
    reply.expect(StatusCode::OK, "opt in to show the email");
    assert_eq!(reply.json["show_email"], true);
    let reply = a.get("/api/v1/members/alice", None).await;
    assert_eq!(reply.json["email"], "alice@riverside.example");
    let p = person(&a, "alice").await;
    assert_eq!(
        property(&p, "Email").as_deref(),
        Some("alice@riverside.example")
    );
    // And out again; an empty string clears a field.
    let reply = a
        .patch(
            "/api/v1/me",
            Some(&alice),
            &json!({"show_email": false, "role": ""}),
        )
        .await;
    reply.expect(StatusCode::OK, "opt out, clear role");
    assert_eq!(reply.json["role"], Value::Null);
    assert_eq!(reply.json["school"], "Riverside Primary", "untouched");
    let p = person(&a, "alice").await;
    assert_eq!(property(&p, "Email"), None, "{p}");
    assert_eq!(property(&p, "Role"), None, "{p}");
    let reply = a.get("/api/v1/members/alice", None).await;
    assert_eq!(reply.json["email"], Value::Null);

    // Clearing the address clears the opt-in with it.
    let reply = a
        .patch(
            "/api/v1/me",
            Some(&alice),
            &json!({"email": "", "show_email": true}),
        )
        .await;
    reply.client_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "show an address being cleared",
    );
    a.patch("/api/v1/me", Some(&alice), &json!({"show_email": true}))
        .await
        .expect(StatusCode::OK, "opt in again");
    let reply = a
        .patch("/api/v1/me", Some(&alice), &json!({"email": ""}))
        .await;
    reply.expect(StatusCode::OK, "clear the address");
    assert_eq!(reply.json["show_email"], false);
    a.patch(
        "/api/v1/me",
        Some(&alice),
        &json!({"email": "alice@riverside.example"}),
    )
    .await
    .expect(StatusCode::OK, "the address back");
    assert_eq!(
        a.get("/api/v1/members/alice", None).await.json["email"],
        Value::Null,
        "a new address is not shown on an old opt-in"
    );

    // PATCH /api/v1/members/NAME is the same for oneself.
    let reply = a
        .patch(
            "/api/v1/members/alice",
            Some(&alice),
            &json!({"role": "Class Teacher"}),
        )
        .await;
    reply.expect(StatusCode::OK, "PATCH own profile by name");
    assert_eq!(reply.json["role"], "Class Teacher");
    // Signed in, one's own profile by name shows the hidden address.
    let reply = a.get("/api/v1/members/alice", Some(&alice)).await;
    assert_eq!(reply.json["email"], "alice@riverside.example");
    assert_eq!(reply.json["show_email"], false);

    // Posts show the author's profile.
    a.community("hwb", None).await;
    let post = a
        .create_post(&alice, json!({"content": "Hello #hwb"}))
        .await;
    assert_eq!(post["author"]["school"], "Riverside Primary");
    assert_eq!(post["author"]["email"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_profile_edits_are_refused_clearly_and_change_nothing() {
    let a = start("profile-bad").await;
    let alice = a.member("alice", "Alice").await;
    let bob = a.member("bob", "Bob").await;
    let reply = a
        .patch(
            "/api/v1/me",
            Some(&alice),
            &json!({"school": "Riverside Primary", "email": "alice@riverside.example"}),
        )
        .await;
    reply.expect(StatusCode::OK, "a good edit first");
    let before = me(&a, &alice).await;
    let person_before = person(&a, "alice").await;

    for (body, status, needle) in [
        (
            json!({"email": "not-an-address"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            json!({"email": "a b@c.example"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            json!({"email": "alice@localhost"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            json!({"display_name": "x".repeat(101)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "display_name",
        ),
        (
            json!({"display_name": "two\nlines"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "one line",
        ),
        (
            json!({"school": "tab\there"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "control",
        ),
        (
            json!({"summary": "y".repeat(2001)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "summary",
        ),
        (
            json!({"role": "r".repeat(101)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "role",
        ),
        // A valid field does not carry an invalid one through.
        (
            json!({"school": "New School", "email": "bad"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            json!({"email": "", "show_email": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "show_email",
        ),
        (
            json!({"favourite_colour": "blue"}),
            StatusCode::BAD_REQUEST,
            "favourite_colour",
        ),
        (
            json!({"school": 42}),
            StatusCode::BAD_REQUEST,
            "expected a string",
        ),
    ] {
        let reply = a.patch("/api/v1/me", Some(&alice), &body).await;
        let message = reply.client_error(status, &format!("PATCH /api/v1/me {body}"));
        assert!(message.contains(needle), "{body}: {message}");
    }
    // Someone else's profile.
    let reply = a
        .patch(
            "/api/v1/members/alice",
            Some(&bob),
            &json!({"school": "Bob's school now"}),
        )
        .await;
    let message = reply.client_error(StatusCode::FORBIDDEN, "bob edits alice");
    assert!(message.contains("own profile"), "{message}");
    let reply = a
        .patch("/api/v1/me", None, &json!({"school": "anonymous"}))
        .await;
    reply.client_error(StatusCode::UNAUTHORIZED, "anonymous edit");
    let reply = a
        .send(
            Method::PUT,
            "/api/v1/me/avatar",
            Some(&bob),
            &[("content-type", "image/png")],
            Some(Vec::new()),
        )
        .await;
    reply.client_error(StatusCode::BAD_REQUEST, "an empty photo");
    let reply = a.get("/api/v1/members/nobody", None).await;
    reply.client_error(StatusCode::NOT_FOUND, "an unknown member");
    let reply = a.get("/api/v1/members/hwb", None).await;
    reply.client_error(StatusCode::NOT_FOUND, "not a member");

    assert_eq!(
        me(&a, &alice).await,
        before,
        "refused edits changed the profile"
    );
    let person_after = person(&a, "alice").await;
    assert_eq!(person_after["attachment"], person_before["attachment"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_is_checked_by_content_and_resized_to_avatars() {
    let a = start("avatar").await;
    let alice = a.member("alice", "Alice").await;

    // Not an image, whatever the header says.
    for (bytes, content_type, status) in [
        (
            b"MZ\x90\0\x03\0\0\0 pretend exe".to_vec(),
            "image/png",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            b"%PDF-1.7\n%\xe2\xe3\n".to_vec(),
            "application/pdf",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            b"\x89PNG\r\n\x1a\nnot really a png".to_vec(),
            "image/png",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            png(50, 50),
            "image/jpeg",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(),
            "image/svg+xml",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ] {
        let reply = upload_avatar(&a, &alice, bytes, content_type).await;
        reply.client_error(status, &format!("avatar sent as {content_type}"));
    }
    // The advice is about photos, not about uploads in general.
    let reply = upload_avatar(&a, &alice, b"my lesson notes\n".to_vec(), "image/png").await;
    let message = reply.client_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "text sent as a PNG");
    assert!(
        message.contains("must be a PNG, JPEG, GIF or WebP image")
            && message.contains("whatever the Content-Type says"),
        "{message}"
    );
    assert!(
        !message.contains("Content-Type: text/plain") && !message.contains("PDF"),
        "{message}"
    );
    let reply = upload_avatar(
        &a,
        &alice,
        b"--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nGIF89a\r\n--x--\r\n".to_vec(),
        "multipart/form-data; boundary=x",
    )
    .await;
    let message = reply.client_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "a photo sent as a form");
    assert!(
        message.contains("--data-binary @photo.jpg") && message.contains("image/jpeg"),
        "{message}"
    );
    assert!(
        !message.contains("application/pdf") && !message.contains("filename"),
        "{message}"
    );
    let reply = a
        .try_send_oversized(
            Method::PUT,
            "/api/v1/me/avatar",
            Some(&alice),
            &[("content-type", "image/png")],
            big_png(),
        )
        .await
        .expect("an answer to an oversized photo");
    let message = reply.client_error(StatusCode::PAYLOAD_TOO_LARGE, "an oversized photo");
    assert!(message.contains("300000 bytes"), "{message}");
    assert_eq!(me(&a, &alice).await["avatar"], Value::Null);

    // A wide PNG becomes two square avatars.
    let reply = upload_avatar(&a, &alice, png(600, 300), "image/png").await;
    reply.expect(StatusCode::OK, "PUT /api/v1/me/avatar");
    let large = reply.json["avatar"].as_str().expect("avatar").to_owned();
    let small = reply.json["avatar_small"]
        .as_str()
        .expect("avatar_small")
        .to_owned();
    assert!(large.starts_with(&a.id("/media/")), "{large}");
    for (url, size) in [(&large, 400), (&small, 96)] {
        let path = url.strip_prefix(&a.origin).expect("a local URL");
        let reply = a.get(path, None).await;
        reply.expect(StatusCode::OK, path);
        assert_eq!(reply.content_type, "image/jpeg", "{path}");
        assert_eq!(reply.headers["x-content-type-options"], "nosniff", "{path}");
        let img = image::load_from_memory(
            &a.http
                .get(format!("{}{path}", a.base))
                .send()
                .await
                .expect("the avatar")
                .bytes()
                .await
                .expect("its bytes"),
        )
        .expect("an image");
        assert_eq!((img.width(), img.height()), (size, size), "{path}");
    }
    // The Person carries it as its icon.
    let p = person(&a, "alice").await;
    assert_eq!(p["icon"]["type"], "Image", "{p}");
    assert_eq!(p["icon"]["mediaType"], "image/jpeg", "{p}");
    assert_eq!(p["icon"]["url"], large.as_str(), "{p}");

    // A new photo replaces the old one, whose files are gone.
    let reply = upload_avatar(&a, &alice, png(120, 200), "application/octet-stream").await;
    reply.expect(StatusCode::OK, "a second photo");
    let newer = reply.json["avatar"].as_str().expect("avatar").to_owned();
    assert_ne!(newer, large);
    let old_path = large.strip_prefix(&a.origin).expect("local");
    a.get(old_path, None)
        .await
        .client_error(StatusCode::NOT_FOUND, "the replaced photo");
    // And removing it clears the icon.
    let reply = a.delete("/api/v1/me/avatar", Some(&alice)).await;
    reply.expect(StatusCode::OK, "DELETE /api/v1/me/avatar");
    assert_eq!(reply.json["avatar"], Value::Null);
    assert!(person(&a, "alice").await.get("icon").is_none());
    let newer_path = newer.strip_prefix(&a.origin).expect("local");
    a.get(newer_path, None)
        .await
        .client_error(StatusCode::NOT_FOUND, "the removed photo");
}

// ---------------------------------------------------------------------------------------------
// Membership, directory, introductions
// ---------------------------------------------------------------------------------------------

async fn directory(a: &Instance, token: &str, query: &str) -> Value {
    let path = format!("/api/v1/communities/hwb/members{query}");
    let reply = a.get(&path, Some(token)).await;
    reply.expect(StatusCode::OK, &path);
    reply.json
}

fn names(page: &Value) -> Vec<String> {
    items(page)
        .iter()
        .map(|m| m["name"].as_str().expect("a name").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_join_and_leave_and_the_directory_pages_and_searches() {
    let a = start("directory").await;
    a.community("hwb", Some("Health and Wellbeing")).await;
    a.community("cpdlead", None).await;
    let mut tokens = Vec::new();
    for (name, display, school) in [
        ("alice", "Alice Teacher", "Riverside Primary"),
        ("bob", "Bob Bell", "Hillview High"),
        ("carol", "Carol Singer", "Riverside Academy"),
        ("dan", "Dan Dare", "St Mungo's_School"),
    ] {
        let token = a.member(name, display).await;
        a.patch("/api/v1/me", Some(&token), &json!({"school": school}))
            .await
            .expect(StatusCode::OK, "set school");
        tokens.push(token);
    }
    let [alice, bob, carol, dan] = [&tokens[0], &tokens[1], &tokens[2], &tokens[3]];

    // Choosing hashtags at sign-up joins several at once; all are checked first.
    let before = a.snapshot().await;
    let reply = a
        .post(
            "/api/v1/me/communities",
            Some(alice),
            &json!({"join": ["hwb", "nosuchtag"]}),
        )
        .await;
    reply.client_error(StatusCode::NOT_FOUND, "joining an unknown community");
    let reply = a
        .post("/api/v1/me/communities", Some(alice), &json!({"join": []}))
        .await;
    reply.client_error(StatusCode::BAD_REQUEST, "joining nothing");
    assert_eq!(
        a.snapshot().await,
        before,
        "a refused join joined something"
    );
    let reply = a
        .post(
            "/api/v1/me/communities",
            Some(alice),
            &json!({"join": ["#HWB", "cpdlead", "hwb"]}),
        )
        .await;
    reply.expect(StatusCode::OK, "alice joins two");
    let joined: Vec<_> = items(&reply.json)
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["state"].clone(),
            )
        })
        .collect();
    assert_eq!(
        joined,
        vec![
            ("hwb".to_owned(), json!("accepted")),
            ("cpdlead".to_owned(), json!("accepted"))
        ]
    );
    let reply = a.get("/api/v1/me/communities", Some(alice)).await;
    reply.expect(StatusCode::OK, "alice's communities");
    assert_eq!(items(&reply.json).len(), 2);

    for token in [bob, carol, dan] {
        let reply = a
            .post(
                "/api/v1/communities/hwb/membership",
                Some(token),
                &json!({}),
            )
            .await;
        reply.expect(StatusCode::OK, "join hwb");
        assert_eq!(reply.json["state"], "accepted");
    }
    assert_eq!(a.community_view("hwb").await["followers"], 4);

    // Paged by name, with the total.
    let page = directory(&a, alice, "?limit=2").await;
    assert_eq!(page["total"], 4);
    assert_eq!(names(&page), ["alice", "bob"]);
    assert_eq!(page["next_offset"], 2);
    let page = directory(&a, alice, "?limit=2&offset=2").await;
    assert_eq!(names(&page), ["carol", "dan"]);
    assert_eq!(page["next_offset"], Value::Null);
    let first = &items(&directory(&a, alice, "?limit=1").await)[0];
    assert_eq!(first["school"], "Riverside Primary");
    assert_eq!(first["display_name"], "Alice Teacher");
    assert_eq!(first["local"], true);
    assert!(first["joined"].is_string(), "{first}");
    assert_eq!(first["introduction"], Value::Null);

    // Searched by name, display name and school, case-insensitively; LIKE wildcards are text.
    for (search, expected) in [
        ("riverside", vec!["alice", "carol"]),
        ("RIVERSIDE academy", vec!["carol"]),
        ("bell", vec!["bob"]),
        ("dan", vec!["dan"]),
        ("_School", vec!["dan"]),
        ("%", vec![]),
        ("nobody", vec![]),
    ] {
        let page = directory(&a, alice, &format!("?search={}", urlencode(search))).await;
        assert_eq!(names(&page), expected, "search {search:?}");
        assert_eq!(page["total"], expected.len(), "search {search:?}");
    }

    // Leaving takes one out of the directory.
    let reply = a
        .delete("/api/v1/communities/hwb/membership", Some(dan))
        .await;
    reply.expect(StatusCode::NO_CONTENT, "dan leaves");
    assert_eq!(directory(&a, alice, "").await["total"], 3);

    // Bad requests.
    for (query, status) in [
        ("?limit=0", StatusCode::BAD_REQUEST),
        ("?limit=1000", StatusCode::BAD_REQUEST),
        ("?limit=ten", StatusCode::BAD_REQUEST),
        ("?colour=blue", StatusCode::BAD_REQUEST),
    ] {
        let path = format!("/api/v1/communities/hwb/members{query}");
        a.get(&path, Some(alice)).await.client_error(status, &path);
    }
    let long = "x".repeat(101);
    let path = format!("/api/v1/communities/hwb/members?search={long}");
    a.get(&path, Some(alice))
        .await
        .client_error(StatusCode::BAD_REQUEST, "a long search");
    a.get("/api/v1/communities/hwb/members", None)
        .await
        .client_error(StatusCode::UNAUTHORIZED, "the directory anonymously");
    a.get("/api/v1/communities/nosuch/members", Some(alice))
        .await
        .client_error(StatusCode::NOT_FOUND, "an unknown community's directory");
    a.post(
        "/api/v1/communities/nosuch/membership",
        Some(alice),
        &json!({}),
    )
    .await
    .client_error(StatusCode::NOT_FOUND, "joining an unknown community");
}

fn urlencode(s: &str) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_introduction_is_a_first_post_and_the_directory_links_to_it() {
    let a = start("introductions").await;
    a.community("hwb", None).await;
    a.community("cpdlead", None).await;
    let alice = a.member("alice", "Alice").await;
    let bob = a.member("bob", "Bob").await;
    let carol = a.member("carol", "Carol").await;
    for token in [&alice, &bob] {
        a.post(
            "/api/v1/me/communities",
            Some(token),
            &json!({"join": ["hwb"]}),
        )
        .await
        .expect(StatusCode::OK, "join hwb");
    }

    let intro = a
        .create_post(
            &alice,
            json!({"content": "Hello #hwb, I teach P5 at Riverside", "is_introduction": true}),
        )
        .await;
    assert_eq!(intro["is_introduction"], true);
    let page = directory(&a, &bob, "").await;
    let alice_entry = items(&page)
        .into_iter()
        .find(|m| m["name"] == "alice")
        .expect("alice is listed");
    assert_eq!(alice_entry["introduction"]["key"], intro["key"]);
    assert_eq!(alice_entry["introduction"]["id"], intro["id"]);
    // It travels with the post as Cairn's term.
    let key = key_of(&intro);
    let note = a.get_as(&format!("/p/{key}"), AP_JSON).await;
    note.expect(StatusCode::OK, "the introduction as a Note");
    assert_eq!(note.json["introduction"], true, "{}", note.text);

    let before = a.snapshot().await;
    // A second introduction, or one after posting there, is refused.
    let reply = a
        .post(
            "/api/v1/posts",
            Some(&alice),
            &json!({"content": "Hello again #hwb", "is_introduction": true}),
        )
        .await;
    let message = reply.client_error(StatusCode::CONFLICT, "a second introduction");
    assert!(message.contains(&key), "{message}");
    a.create_post(&bob, json!({"content": "A question for #hwb"}))
        .await;
    let before_bob = a.snapshot().await;
    let reply = a
        .post(
            "/api/v1/posts",
            Some(&bob),
            &json!({"content": "Late hello #hwb", "is_introduction": true}),
        )
        .await;
    let message = reply.client_error(StatusCode::CONFLICT, "an introduction after posting");
    assert!(message.contains("first post"), "{message}");
    // One needs a community, and it is not a reply.
    let reply = a
        .post(
            "/api/v1/posts",
            Some(&carol),
            &json!({"content": "Hello nobody", "is_introduction": true}),
        )
        .await;
    reply.client_error(StatusCode::UNPROCESSABLE_ENTITY, "an introduction nowhere");
    let reply = a
        .post(
            "/api/v1/posts",
            Some(&carol),
            &json!({"content": "Hi #hwb", "is_introduction": true, "in_reply_to": intro["id"]}),
        )
        .await;
    reply.client_error(StatusCode::UNPROCESSABLE_ENTITY, "a reply as introduction");
    assert_eq!(
        a.snapshot().await,
        before_bob,
        "refused introductions were stored"
    );
    assert_ne!(before, before_bob);

    // Introducing oneself in another community is fine; one only followers read is linked
    // only for those who may read it.
    let members_intro = a
        .create_post(
            &alice,
            json!({"content": "Hello #cpdlead", "is_introduction": true, "visibility": "members"}),
        )
        .await;
    a.post(
        "/api/v1/me/communities",
        Some(&carol),
        &json!({"join": ["cpdlead"]}),
    )
    .await
    .expect(StatusCode::OK, "carol joins cpdlead");
    let path = "/api/v1/communities/cpdlead/members";
    let as_carol = a.get(path, Some(&carol)).await;
    as_carol.expect(StatusCode::OK, path);
    // Alice did not join cpdlead: she posted there but is not a member, so carol alone is listed.
    assert_eq!(names(&as_carol.json), ["carol"]);
    a.post(
        "/api/v1/me/communities",
        Some(&alice),
        &json!({"join": ["cpdlead"]}),
    )
    .await
    .expect(StatusCode::OK, "alice joins cpdlead");
    let as_carol = a.get(path, Some(&carol)).await;
    let entry = items(&as_carol.json)
        .into_iter()
        .find(|m| m["name"] == "alice")
        .expect("alice listed");
    assert_eq!(entry["introduction"]["key"], members_intro["key"]);
    let as_bob = a.get(path, Some(&bob)).await;
    let entry = items(&as_bob.json)
        .into_iter()
        .find(|m| m["name"] == "alice")
        .expect("alice listed");
    assert_eq!(
        entry["introduction"],
        Value::Null,
        "bob does not follow cpdlead and may not read a members post there"
    );
}

// ---------------------------------------------------------------------------------------------
// Across instances
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_members_profile_is_in_the_directory_and_follows_its_updates() {
    let a = start("dir-origin").await;
    let b = start("dir-remote").await;
    a.community("hwb", None).await;
    let alice = a.member("alice", "Alice").await;
    a.post(
        "/api/v1/communities/hwb/membership",
        Some(&alice),
        &json!({}),
    )
    .await
    .expect(StatusCode::OK, "alice joins");
    let bob = b.member("bob", "Bob").await;
    b.patch(
        "/api/v1/me",
        Some(&bob),
        &json!({"school": "Hillview High", "role": "PT Guidance", "email": "bob@hillview.example"}),
    )
    .await
    .expect(StatusCode::OK, "bob's profile");
    upload_avatar(&b, &bob, png(200, 200), "image/png")
        .await
        .expect(StatusCode::OK, "bob's photo");

    // Bob joins A's community from B.
    let remote = format!("hwb@{}", a.domain);
    let reply = b
        .post(
            &format!("/api/v1/communities/{remote}/membership"),
            Some(&bob),
            &json!({}),
        )
        .await;
    reply.expect(StatusCode::OK, "bob joins hwb on A");
    let bob_on_a = poll("A lists bob in hwb", DELIVERY_TIMEOUT, || async {
        items(&directory(&a, &alice, "?search=hillview").await)
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(bob_on_a["id"], b.id("/u/bob"));
    assert_eq!(bob_on_a["local"], false);
    assert_eq!(bob_on_a["handle"], format!("bob@{}", b.domain));
    assert_eq!(bob_on_a["role"], "PT Guidance");
    assert_eq!(bob_on_a["email"], Value::Null, "not opted in");
    let avatar = bob_on_a["avatar"]
        .as_str()
        .expect("bob's icon, read from B");
    assert!(avatar.starts_with(&b.id("/media/")), "{avatar}");
    poll("B records A's Accept", DELIVERY_TIMEOUT, || async {
        let reply = b.get("/api/v1/me/communities", Some(&bob)).await;
        (items(&reply.json)[0]["state"] == "accepted").then_some(())
    })
    .await;

    // A change on B reaches A as Update(Person).
    b.patch(
        "/api/v1/me",
        Some(&bob),
        &json!({"school": "Hillview Academy", "show_email": true}),
    )
    .await
    .expect(StatusCode::OK, "bob moves school");
    let updated = poll("A sees bob's new school", DELIVERY_TIMEOUT, || async {
        items(&directory(&a, &alice, "?search=academy").await)
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(updated["name"], "bob");
    assert_eq!(updated["email"], "bob@hillview.example", "opted in on B");
    assert_eq!(directory(&a, &alice, "?search=hillview").await["total"], 1);
    // A's own view of bob is the same.
    let reply = a
        .get(&format!("/api/v1/members/bob@{}", b.domain), Some(&alice))
        .await;
    reply.expect(StatusCode::OK, "bob looked up on A");
    assert_eq!(reply.json["school"], "Hillview Academy");

    // Leaving from B takes him out of A's directory.
    b.delete(
        &format!("/api/v1/communities/{remote}/membership"),
        Some(&bob),
    )
    .await
    .expect(StatusCode::NO_CONTENT, "bob leaves");
    poll("A drops bob", DELIVERY_TIMEOUT, || async {
        (directory(&a, &alice, "").await["total"] == 1).then_some(())
    })
    .await;
}

/// A remote member known here only from an earlier look-up gets no `Update`; after
/// `REMOTE_PROFILE_FRESH` the look-up reads the profile again from its origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_remote_profile_is_read_again_on_lookup() {
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
    let a = start("stale-here").await;
    let b = start("stale-origin").await;
    let alice = a.member("alice", "Alice").await;
    let bob = b.member("bob", "Bob").await;
    b.patch(
        "/api/v1/me",
        Some(&bob),
        &json!({"school": "Hillview High"}),
    )
    .await
    .expect(StatusCode::OK, "bob's school");
    let lookup = format!("/api/v1/members/bob@{}", b.domain);
    let reply = a.get(&lookup, Some(&alice)).await;
    reply.expect(StatusCode::OK, "bob looked up on A");
    assert_eq!(reply.json["school"], "Hillview High");

    b.patch(
        "/api/v1/me",
        Some(&bob),
        &json!({"school": "Hillview Academy"}),
    )
    .await
    .expect(StatusCode::OK, "bob moves school");
    let reply = a.get(&lookup, Some(&alice)).await;
    reply.expect(StatusCode::OK, "bob looked up again at once");
    assert_eq!(
        reply.json["school"], "Hillview High",
        "a fresh copy is shown as it is"
    );

    let copy = cairn::store::actor::Entity::find()
        .filter(cairn::store::actor::Column::ApId.eq(b.id("/u/bob")))
        .one(&a.state.db)
        .await
        .expect("the actors table")
        .expect("A's copy of bob");
    let mut stale: cairn::store::actor::ActiveModel = copy.into();
    stale.last_refreshed_at = Set(chrono::Utc::now()
        - cairn::services::profiles::REMOTE_PROFILE_FRESH
        - chrono::Duration::seconds(1));
    stale.update(&a.state.db).await.expect("copy made stale");
    let reply = a.get(&lookup, Some(&alice)).await;
    reply.expect(StatusCode::OK, "bob looked up after a while");
    assert_eq!(reply.json["school"], "Hillview Academy");

    let reply = a
        .get(
            &format!("/api/v1/members/nobody@{}", b.domain),
            Some(&alice),
        )
        .await;
    let message = reply.client_error(StatusCode::NOT_FOUND, "an unknown remote member");
    assert_eq!(message, format!("no member nobody at {}", b.domain));
}
