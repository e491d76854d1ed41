//! Content negotiation between ActivityPub JSON and HTML pages.

use axum::http::{header, HeaderMap};

/// Whether the client asked for ActivityStreams: `application/activity+json`, or
/// `application/ld+json` with the ActivityStreams profile (or any `ld+json`).
pub fn wants_activity_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let media = part.split(';').next().unwrap_or_default().trim();
            media.eq_ignore_ascii_case("application/activity+json")
                || media.eq_ignore_ascii_case("application/ld+json")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn both_activitypub_media_types_are_recognised() {
        assert!(wants_activity_json(&accept("application/activity+json")));
        assert!(wants_activity_json(&accept(
            "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\""
        )));
        assert!(!wants_activity_json(&accept(
            "text/html,application/xhtml+xml"
        )));
        assert!(!wants_activity_json(&HeaderMap::new()));
    }
}
