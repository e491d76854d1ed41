//! Small readers for ActivityPub JSON as it arrives from Cairn, tolerant of the usual shapes
//! (a link as an id string or as an embedded object with an `id`).

use serde_json::Value;

/// The ActivityStreams public collection.
pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

/// The ActivityStreams context.
pub const AS_CONTEXT: &str = "https://www.w3.org/ns/activitystreams";

/// Activity types the fixture walk treats as activities (everything else is an object or a
/// document of another protocol).
pub const ACTIVITY_TYPES: &[&str] = &[
    "Accept",
    "Add",
    "Announce",
    "Arrive",
    "Block",
    "Create",
    "Delete",
    "Dislike",
    "EmojiReact",
    "Flag",
    "Follow",
    "Ignore",
    "Invite",
    "Join",
    "Leave",
    "Like",
    "Listen",
    "Move",
    "Offer",
    "Read",
    "Reject",
    "Remove",
    "TentativeAccept",
    "TentativeReject",
    "Travel",
    "Undo",
    "Update",
    "View",
];

/// The `type` of a document; the first one when it is an array; `""` when missing.
pub fn kind(doc: &Value) -> &str {
    match doc.get("type") {
        Some(Value::String(kind)) => kind,
        Some(Value::Array(kinds)) => kinds.first().and_then(Value::as_str).unwrap_or(""),
        _ => "",
    }
}

/// The id a link points to: the string itself, or the `id` (or `href`) of an embedded object.
pub fn link_id(link: &Value) -> Option<&str> {
    match link {
        Value::String(id) => Some(id),
        Value::Object(map) => map
            .get("id")
            .or_else(|| map.get("href"))
            .and_then(Value::as_str),
        _ => None,
    }
}

/// The `id` of a document.
pub fn id(doc: &Value) -> Option<&str> {
    doc.get("id").and_then(Value::as_str)
}

/// The `actor` of an activity (string or embedded object).
pub fn actor(doc: &Value) -> Option<&str> {
    doc.get("actor").and_then(link_id)
}

/// The id of an activity's `object`.
pub fn object_id(doc: &Value) -> Option<&str> {
    doc.get("object").and_then(link_id)
}

/// True when `doc`, or any activity nested in its `object` chain, has `object_id` as its object
/// (or is that object).
pub fn references(doc: &Value, object_id_wanted: &str) -> bool {
    let mut current = Some(doc);
    for _ in 0..4 {
        let Some(doc) = current else { return false };
        if id(doc) == Some(object_id_wanted) {
            return true;
        }
        match doc.get("object") {
            Some(Value::String(id)) => return id == object_id_wanted,
            Some(object @ Value::Object(_)) => current = Some(object),
            Some(Value::Array(items)) => {
                return items.iter().any(|item| references(item, object_id_wanted))
            }
            _ => return false,
        }
    }
    false
}

/// True when `doc` is an `Announce` whose object is the post itself (by id or embedded) or a
/// `Create` of it — not an `Announce` of an `Update` or `Delete`.
pub fn announces_post(doc: &Value, post_id: &str) -> bool {
    if kind(doc) != "Announce" {
        return false;
    }
    let Some(object) = doc.get("object") else {
        return false;
    };
    if link_id(object) == Some(post_id) && !is_activity(object) {
        return true;
    }
    kind(object) == "Create" && object_id(object) == Some(post_id)
}

/// True when `doc` is (or announces) an `Update` or `Delete` whose object chain reaches `post_id`.
pub fn updates_or_deletes(doc: &Value, post_id: &str, wanted: &str) -> bool {
    match kind(doc) {
        k if k == wanted => references(doc, post_id),
        "Announce" => doc
            .get("object")
            .is_some_and(|inner| kind(inner) == wanted && references(inner, post_id)),
        _ => false,
    }
}

/// True when the document is an embedded activity (has an activity `type`).
pub fn is_activity(doc: &Value) -> bool {
    ACTIVITY_TYPES.contains(&kind(doc))
}

/// A short one-line description of an activity for test output.
pub fn describe(doc: &Value) -> String {
    let inner = doc.get("object");
    let inner_desc = match inner {
        Some(Value::String(id)) => id.clone(),
        Some(object @ Value::Object(_)) => {
            let nested = object
                .get("object")
                .map(|n| format!(" of {}", link_id(n).unwrap_or("?")))
                .unwrap_or_default();
            format!(
                "{} {}{}",
                kind(object),
                id(object).unwrap_or("(no id)"),
                nested
            )
        }
        Some(other) => other.to_string(),
        None => "(no object)".into(),
    };
    format!(
        "{} by {} → {}",
        kind(doc),
        actor(doc).unwrap_or("?"),
        inner_desc
    )
}

/// The origin (`scheme://host[:port]`) of a URL string.
pub fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    Some(parsed.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn announce_shapes_are_recognised() {
        let post = "http://localhost:1/p/1";
        assert!(announces_post(
            &json!({"type": "Announce", "object": post}),
            post
        ));
        assert!(announces_post(
            &json!({"type": "Announce", "object": {"type": "Note", "id": post}}),
            post
        ));
        assert!(announces_post(
            &json!({"type": "Announce", "object": {"type": "Create", "id": "x", "object": {"id": post}}}),
            post
        ));
        assert!(!announces_post(
            &json!({"type": "Announce", "object": {"type": "Delete", "id": "x", "object": post}}),
            post
        ));
        assert!(updates_or_deletes(
            &json!({"type": "Announce", "object": {"type": "Delete", "id": "x", "object": {"type": "Tombstone", "id": post}}}),
            post,
            "Delete"
        ));
        assert!(references(&json!({"type": "Delete", "object": post}), post));
    }
}
