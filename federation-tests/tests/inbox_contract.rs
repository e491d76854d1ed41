//! The inbox's contract with a real (fake) remote server: a forged or missing signature is 401,
//! an actor that does not exist is a 4xx, and the same activity delivered twice is handled once.
//! Nothing refused changes what is stored.

use federation_tests::{
    activity::{AS_CONTEXT, PUBLIC},
    api::Api,
    instance::Instance,
    peer::{Peer, PeerOptions},
};
use serde_json::{json, Value};

fn create_note(peer: &Peer, actor_id: &str, group_id: &str, text: &str) -> (String, Value) {
    let note_id = format!("{}/notes/{}", peer.origin(), uuid::Uuid::new_v4());
    let create = json!({
        "@context": AS_CONTEXT,
        "id": peer.new_id("create"),
        "type": "Create",
        "actor": actor_id,
        "to": [PUBLIC],
        "cc": [group_id],
        "object": {
            "id": note_id,
            "type": "Note",
            "attributedTo": actor_id,
            "content": format!("<p>{text} #hwb</p>"),
            "to": [PUBLIC],
            "cc": [group_id],
            "tag": [{"type": "Hashtag", "name": "#hwb", "href": format!("{}/tags/hwb", peer.origin())}],
            "published": chrono::Utc::now().to_rfc3339(),
        },
    });
    (note_id, create)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_unsigned_unknown_and_repeated_activities() {
    let stirling = Instance::start("stirling").await;
    stirling.create_community("hwb");
    let reader = Api::of(&stirling, Some(&stirling.create_member("reader")));
    let peer = Peer::start(PeerOptions::new(&["pia", "mallory"])).await;
    let group = peer.resolve(&format!("hwb@{}", stirling.domain())).await;
    let group_id = group.id.to_string();
    let inbox = group.inbox.to_string();
    let pia = peer.actor_id("pia");

    // Signed with someone else's key: 401, nothing stored.
    let (forged_id, forged) = create_note(&peer, &pia, &group_id, "Forged");
    let (status, body) = peer.post_badly_signed("pia", &inbox, &forged).await;
    assert_eq!(status, 401, "a forged signature: {body}");
    assert!(body.contains("signature"), "{body}");

    // No signature at all: 401.
    let (status, body) = peer.post_unsigned(&inbox, &forged).await;
    assert_eq!(status, 401, "no signature: {body}");

    // An actor its server does not know: a 4xx that says so.
    let ghost = format!("{}/users/ghost", peer.origin());
    let (_, ghostly) = create_note(&peer, &ghost, &group_id, "From nobody");
    let (status, body) = peer.post_raw("pia", &inbox, &ghostly).await;
    assert!(
        (400..500).contains(&status),
        "an unknown actor: {status} {body}"
    );

    assert!(
        reader.community_posts("hwb").await.is_empty(),
        "refused activities stored something"
    );
    assert!(reader.find_in_community("hwb", &forged_id).await.is_none());

    // The same Create twice: accepted both times, stored once.
    let (note_id, create) = create_note(&peer, &pia, &group_id, "Said twice");
    peer.post_ok("pia", &inbox, &create).await;
    peer.post_ok("pia", &inbox, &create).await;
    let posts = reader.community_posts("hwb").await;
    let copies = posts.iter().filter(|p| p["id"] == note_id.as_str()).count();
    assert_eq!(copies, 1, "the repeated Create: {posts:#?}");
    assert_eq!(posts.len(), 1, "{posts:#?}");

    // The same Follow twice: one follower.
    peer.follow("mallory", &group_id).await;
    let follow = json!({
        "@context": AS_CONTEXT,
        "id": peer.new_id("follow"),
        "type": "Follow",
        "actor": peer.actor_id("mallory"),
        "object": group_id,
    });
    peer.post_ok("mallory", &inbox, &follow).await;
    peer.post_ok("mallory", &inbox, &follow).await;
    let community = reader.community("hwb").await.expect("hwb exists");
    assert_eq!(community["followers"], 1, "{community}");
}
