//! "Who is here" and resources against a real `cairn` process and a fake Mastodon-like server:
//! a remote member's profile fields (`PropertyValue`) and photo (`icon`) arrive by a signed
//! `Update(Person)` and show in the community directory as plain text; a Mastodon-shaped Note
//! with an image and a document keeps its attachments as links to their origin, alt text
//! sanitised.

use federation_tests::{
    activity::{AS_CONTEXT, PUBLIC},
    api::Api,
    instance::{Instance, InstanceOptions},
    peer::{Peer, PeerOptions},
    poll,
};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const ARRIVAL: Duration = Duration::from_secs(10);

async fn remote_profile_and_attachments(options: InstanceOptions) {
    let stirling = Instance::start_with(options).await;
    stirling.create_community("hwb");
    let reader = Api::of(&stirling, Some(&stirling.create_member("reader")));
    reader
        .request(
            Method::POST,
            "/api/v1/communities/hwb/membership",
            Some(&json!({})),
        )
        .await;
    let peer = Peer::start(PeerOptions::new(&["pia"])).await;
    let group = peer
        .follow("pia", &format!("hwb@{}", stirling.domain()))
        .await;
    let group_id = group.id.to_string();
    let inbox = group.inbox.to_string();
    let pia = peer.actor_id("pia");

    let directory = |search: &'static str| {
        let reader = reader.clone();
        async move {
            let answer = reader
                .request(
                    Method::GET,
                    &format!("/api/v1/communities/hwb/members?search={search}"),
                    None,
                )
                .await;
            assert_eq!(answer.status, 200, "{}", answer.text);
            answer.body["items"].as_array().cloned().unwrap_or_default()
        }
    };
    let (listed, _) = poll(ARRIVAL, "pia in the directory", || async {
        directory("pia")
            .await
            .into_iter()
            .find(|m| m["id"] == pia.as_str())
    })
    .await;
    assert_eq!(listed["local"], false);
    assert_eq!(listed["school"], Value::Null);

    // Mastodon's profile fields: HTML values, a field Cairn does not read, an icon.
    let mut person = peer.actor("pia").json.clone();
    person["name"] = json!("Pia <b>Remote</b>");
    person["icon"] = json!({
        "type": "Image",
        "mediaType": "image/png",
        "url": format!("{}/avatars/pia.png", peer.origin()),
    });
    person["attachment"] = json!([
        {"type": "PropertyValue", "name": "School", "value": "<a href=\"https://hillview.example\" rel=\"me nofollow\"><span>Hillview</span> High</a>"},
        {"type": "PropertyValue", "name": "Role", "value": "PT Guidance<script>alert(1)</script>"},
        {"type": "PropertyValue", "name": "Pronouns", "value": "she/her"},
    ]);
    let update = json!({
        "@context": [AS_CONTEXT, {"schema": "http://schema.org#", "PropertyValue": "schema:PropertyValue", "value": "schema:value"}],
        "id": peer.new_id("update"),
        "type": "Update",
        "actor": pia,
        "to": [PUBLIC],
        "object": person,
    });
    peer.post_ok("pia", &inbox, &update).await;
    let (updated, _) = poll(ARRIVAL, "pia's school in the directory", || async {
        directory("hillview").await.into_iter().next()
    })
    .await;
    assert_eq!(updated["id"], pia.as_str());
    assert_eq!(updated["school"], "Hillview High");
    assert_eq!(updated["role"], "PT Guidance");
    assert_eq!(updated["display_name"], "Pia Remote");
    assert_eq!(
        updated["avatar"],
        format!("{}/avatars/pia.png", peer.origin())
    );
    assert_eq!(updated["email"], Value::Null);

    // A Mastodon-shaped Note with an image (alt text) and a PDF.
    let note_id = format!(
        "{}/users/pia/statuses/{}",
        peer.origin(),
        uuid::Uuid::new_v4()
    );
    let image_url = format!("{}/media/original/chart.png", peer.origin());
    let pdf_url = format!("{}/media/original/plan.pdf", peer.origin());
    let create = json!({
        "@context": AS_CONTEXT,
        "id": peer.new_id("create"),
        "type": "Create",
        "actor": pia,
        "to": [PUBLIC],
        "cc": [group_id],
        "object": {
            "id": note_id,
            "type": "Note",
            "attributedTo": pia,
            "content": "<p>Our attendance chart <a href=\"https://x.example/tags/hwb\" class=\"mention hashtag\">#<span>hwb</span></a></p>",
            "to": [PUBLIC],
            "cc": [group_id],
            "tag": [{"type": "Hashtag", "name": "#hwb", "href": format!("{}/tags/hwb", peer.origin())}],
            "published": chrono::Utc::now().to_rfc3339(),
            "attachment": [
                {"type": "Document", "mediaType": "image/png", "url": image_url, "name": "Bar chart <img src=x onerror=alert(1)>of attendance", "blurhash": "UBL_:rOpGG-oBUNG,qRj2so|=eE1w^n4S5NH", "width": 640, "height": 480},
                {"type": "Document", "mediaType": "application/pdf", "url": pdf_url, "name": null},
                {"type": "Document", "mediaType": "image/png", "url": "javascript:alert(1)", "name": "dropped"},
            ],
        },
    });
    peer.post_ok("pia", &inbox, &create).await;
    let (post, _) = poll(ARRIVAL, "the Note in hwb", || async {
        reader.find_in_community("hwb", &note_id).await
    })
    .await;
    assert_eq!(post["category"], "resource", "{post:#}");
    assert_eq!(post["author"]["school"], "Hillview High");
    let attachments = post["attachments"].as_array().expect("attachments");
    assert_eq!(
        attachments.len(),
        2,
        "the javascript: URL is dropped: {post:#}"
    );
    assert_eq!(attachments[0]["kind"], "image");
    assert_eq!(attachments[0]["url"], image_url.as_str());
    assert_eq!(attachments[0]["media_type"], "image/png");
    assert_eq!(attachments[0]["width"], 640);
    let alt = attachments[0]["alt"].as_str().expect("alt");
    assert!(!alt.contains('<') && !alt.contains("onerror"), "{alt}");
    assert!(
        alt.starts_with("Bar chart") && alt.ends_with("of attendance"),
        "{alt}"
    );
    assert_eq!(attachments[1]["kind"], "document");
    assert_eq!(attachments[1]["url"], pdf_url.as_str());
    assert_eq!(attachments[1]["alt"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_profile_and_attachments_sqlite() {
    remote_profile_and_attachments(InstanceOptions::sqlite("profiles-sqlite")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_profile_and_attachments_postgres() {
    remote_profile_and_attachments(InstanceOptions::postgres_if_available("profiles-pg")).await;
}

/// falkirk knows callum (stirling) only through his posts in stirling's #hwb, which fiona
/// follows: his profile changes still reach falkirk, by the `Update(Person)` stirling sends to
/// the remote followers of the communities he has posted in.
async fn profile_update_reaches_community_followers(
    stirling_options: InstanceOptions,
    falkirk_options: InstanceOptions,
) {
    let (stirling, falkirk) = tokio::join!(
        Instance::start_with(stirling_options),
        Instance::start_with(falkirk_options),
    );
    stirling.create_community("hwb");
    let callum = Api::of(&stirling, Some(&stirling.create_member("callum")));
    callum
        .request(
            Method::POST,
            "/api/v1/communities/hwb/membership",
            Some(&json!({})),
        )
        .await;
    let fiona = Api::of(&falkirk, Some(&falkirk.create_member("fiona")));
    let remote = format!("hwb@{}", stirling.domain());
    fiona.follow_community(&remote).await;
    let anyone = Api::of(&stirling, None);
    poll(ARRIVAL, "fiona's follow of #hwb to be accepted", || async {
        let c = anyone.community("hwb").await?;
        (c["followers"].as_u64() == Some(2)).then_some(())
    })
    .await;

    let post = callum.create_post("Our moderation cycle notes #hwb").await;
    let post_id = post["id"].as_str().expect("post id").to_owned();
    poll(ARRIVAL, "callum's post on falkirk", || {
        fiona.find_in_community(&remote, &post_id)
    })
    .await;
    let handle = format!("callum@{}", stirling.domain());
    let before = fiona
        .request(Method::GET, &format!("/api/v1/members/{handle}"), None)
        .await;
    assert_eq!(before.status, 200, "{}", before.text);
    assert_eq!(before.body["school"], Value::Null);

    let edited = callum
        .request(
            Method::PATCH,
            "/api/v1/me",
            Some(&json!({"school": "Wallace High", "role": "PT Science"})),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let (seen, _) = poll(ARRIVAL, "callum's new school on falkirk", || async {
        let answer = fiona
            .request(Method::GET, &format!("/api/v1/members/{handle}"), None)
            .await;
        (answer.status == 200 && answer.body["school"] == "Wallace High").then_some(answer.body)
    })
    .await;
    assert_eq!(seen["role"], "PT Science");
    let (shown, _) = poll(ARRIVAL, "the post's author updated on falkirk", || async {
        let post = fiona.find_in_community(&remote, &post_id).await?;
        (post["author"]["school"] == "Wallace High").then_some(post)
    })
    .await;
    assert_eq!(shown["author"]["role"], "PT Science");

    let nobody = fiona
        .request(
            Method::GET,
            &format!("/api/v1/members/nobody@{}", stirling.domain()),
            None,
        )
        .await;
    assert_eq!(nobody.status, 404, "{}", nobody.text);
    assert_eq!(
        nobody.body["error"],
        format!("no member nobody at {}", stirling.domain())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_update_reaches_community_followers_sqlite_to_postgres() {
    profile_update_reaches_community_followers(
        InstanceOptions::sqlite("callum-stirling-sqlite"),
        InstanceOptions::postgres_if_available("callum-falkirk-pg"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_update_reaches_community_followers_postgres_to_sqlite() {
    profile_update_reaches_community_followers(
        InstanceOptions::postgres_if_available("callum-stirling-pg"),
        InstanceOptions::sqlite("callum-falkirk-sqlite"),
    )
    .await;
}
