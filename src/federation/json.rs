//! Tolerant readers for the shapes real servers send: a single value where an array is usual
//! and the reverse, an embedded object where an id is usual, and the three spellings of the
//! public collection.

use serde_json::Value;
use url::Url;

/// Every id in a field that may be a string, an object with `id`, or an array of either.
pub fn ids(value: Option<&Value>) -> Vec<Url> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().filter_map(id_of).collect(),
        Some(v) => id_of(v).into_iter().collect(),
    }
}

/// The id of a string or of an object with `id` (or `href`, as in Link objects).
pub fn id_of(value: &Value) -> Option<Url> {
    match value {
        Value::String(s) => expand_public(s).parse().ok(),
        Value::Object(map) => map
            .get("id")
            .or_else(|| map.get("href"))
            .and_then(Value::as_str)
            .and_then(|s| expand_public(s).parse().ok()),
        _ => None,
    }
}

/// Like [`id_of`], taking a reference (for `Option::and_then`).
pub fn id_of_ref(value: &Value) -> Option<Url> {
    id_of(value)
}

/// Strings in a field that may be one or many.
pub fn items(value: Option<&Value>) -> Vec<&Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
    }
}

/// `as:Public` and `Public` are compact forms of the public collection.
fn expand_public(s: &str) -> &str {
    match s {
        "as:Public" | "Public" => super::PUBLIC,
        other => other,
    }
}

pub fn is_public(value: Option<&Value>) -> bool {
    ids(value).iter().any(|u| u.as_str() == super::PUBLIC)
}

/// The `type` of an object, or the first of several.
pub fn kind(value: &Value) -> Option<&str> {
    match value.get("type") {
        Some(Value::String(s)) => Some(s),
        Some(Value::Array(a)) => a.first().and_then(Value::as_str),
        _ => None,
    }
}

pub fn str_field<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn public_in_every_spelling() {
        for v in [
            json!("https://www.w3.org/ns/activitystreams#Public"),
            json!(["as:Public"]),
            json!("Public"),
            json!([{"id": "as:Public"}]),
        ] {
            assert!(is_public(Some(&v)), "{v}");
        }
        assert!(!is_public(Some(&json!(["https://x.example/followers"]))));
        assert!(!is_public(None));
    }

    #[test]
    fn one_or_many_and_embedded() {
        let v = json!(["https://a.example/1", {"id": "https://a.example/2"}, 3]);
        assert_eq!(ids(Some(&v)).len(), 2);
        assert_eq!(ids(Some(&json!("https://a.example/1"))).len(), 1);
        assert_eq!(kind(&json!({"type": ["Note", "x:Extra"]})), Some("Note"));
    }
}
