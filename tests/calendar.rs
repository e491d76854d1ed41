//! iCalendar through the API: one event's `.ics` and a community's feed are RFC 5545 (CRLF,
//! folded lines, escaped text, UTC times) served as `text/calendar`, and a feed shows only what
//! its reader may see. Run on SQLite and PostgreSQL.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::Instance;

async fn event(i: &Instance, token: &str, title: &str, visibility: &str) -> String {
    let body = json!({
        "title": title,
        "description": "Line one; with a comma, and a backslash \\.\n\nSecond paragraph, long enough to be folded by the calendar writer at seventy-five octets.",
        "starts_at": "2030-06-05T16:00",
        "ends_at": "2030-06-05T17:30",
        "timezone": "Europe/London",
        "location_name": "Room 4",
        "location_address": "Torbrex Lane, Stirling",
        "online_url": "https://meet.example/room",
        "communities": ["hwb"],
        "visibility": visibility,
    });
    let reply = i.post("/api/v1/events", Some(token), &body).await;
    reply.expect(StatusCode::CREATED, "create event");
    reply.json["key"].as_str().expect("key").to_owned()
}

fn assert_valid_ics(ics: &str) {
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"), "{ics}");
    assert!(ics.ends_with("END:VCALENDAR\r\n"), "{ics}");
    for line in ics.split("\r\n") {
        assert!(
            !line.contains('\n') && !line.contains('\r'),
            "bare newline in {line:?}"
        );
        assert!(line.len() <= 75, "line of {} octets: {line:?}", line.len());
    }
    assert!(ics.contains("VERSION:2.0\r\n") && ics.contains("PRODID:"));
}

#[tokio::test]
async fn one_event_as_ics() {
    let i = Instance::start("cal-event").await;
    i.community("hwb", None).await;
    let ana = i.member("ana", "Ana").await;
    let key = event(&i, &ana, "Outdoor maths, part 1", "public").await;
    let reply = i.get(&format!("/api/v1/events/{key}.ics"), None).await;
    reply.expect(StatusCode::OK, "event ics");
    assert!(
        reply.content_type.starts_with("text/calendar"),
        "{}",
        reply.content_type
    );
    let ics = &reply.text;
    assert_valid_ics(ics);
    let unfolded = ics.replace("\r\n ", "");
    // 16:00 in London in June is 15:00 UTC.
    for needed in [
        "DTSTART:20300605T150000Z\r\n",
        "DTEND:20300605T163000Z\r\n",
        "SUMMARY:Outdoor maths\\, part 1\r\n",
        "LOCATION:Room 4\\, Torbrex Lane\\, Stirling\r\n",
        "STATUS:CONFIRMED\r\n",
        "X-WR-TIMEZONE:Europe/London\r\n",
        "DESCRIPTION:Line one\\; with a comma\\, and a backslash \\\\.\\n\\nSecond",
        "Online: https://meet.example/room",
    ] {
        assert!(
            unfolded.contains(needed),
            "missing {needed:?} in {unfolded}"
        );
    }
    assert!(unfolded.contains(&format!("UID:{}\r\n", i.id(&format!("/p/{key}")))));
    assert!(unfolded.contains(&format!("URL:{}\r\n", i.id(&format!("/p/{key}")))));
    assert!(unfolded.contains("DTSTAMP:"));

    // Cancelled events say so.
    i.patch(
        &format!("/api/v1/events/{key}"),
        Some(&ana),
        &json!({"status": "cancelled"}),
    )
    .await
    .expect(StatusCode::OK, "cancel");
    let reply = i.get(&format!("/api/v1/events/{key}.ics"), None).await;
    assert!(
        reply.text.contains("STATUS:CANCELLED\r\n"),
        "{}",
        reply.text
    );

    let reply = i.get("/api/v1/events/nope.ics", None).await;
    reply.client_error(StatusCode::NOT_FOUND, "unknown event");
}

#[tokio::test]
async fn a_community_feed_shows_what_its_reader_may_see() {
    let i = Instance::start("cal-feed").await;
    i.community("hwb", None).await;
    let ana = i.member("ana", "Ana").await;
    event(&i, &ana, "Open session", "public").await;
    let staff = event(&i, &ana, "Staff session", "authority").await;
    for path in ["/c/hwb/events.ics", "/api/v1/communities/hwb/events.ics"] {
        let reply = i.get(path, None).await;
        reply.expect(StatusCode::OK, path);
        assert!(reply.content_type.starts_with("text/calendar"));
        assert_valid_ics(&reply.text);
        assert_eq!(
            reply.text.matches("BEGIN:VEVENT").count(),
            1,
            "{}",
            reply.text
        );
        assert!(reply.text.contains("SUMMARY:Open session"));
        assert!(!reply.text.contains("Staff session"));
    }
    let reply = i.get("/c/hwb/events.ics", Some(&ana)).await;
    assert_eq!(
        reply.text.matches("BEGIN:VEVENT").count(),
        2,
        "{}",
        reply.text
    );
    // An authority event's own .ics is for members only.
    let reply = i.get(&format!("/api/v1/events/{staff}.ics"), None).await;
    reply.client_error(StatusCode::NOT_FOUND, "authority event, anonymous");
    let reply = i
        .get(&format!("/api/v1/events/{staff}.ics"), Some(&ana))
        .await;
    reply.expect(StatusCode::OK, "authority event, member");
    let reply = i.get("/c/nope/events.ics", None).await;
    reply.client_error(StatusCode::NOT_FOUND, "unknown community");
}
