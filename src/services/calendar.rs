//! iCalendar (RFC 5545): one event as `.ics`, and a community's events as a feed. Times are
//! written in UTC (`…Z`), which every calendar reads without a VTIMEZONE; the organiser's zone
//! travels as `X-WR-TIMEZONE` and in the description.

use super::events;
use crate::{
    error::{Error, Result},
    state::{AppState, Ctx},
    store::{actor, event, post},
};
use chrono::{DateTime, Utc};
use sea_orm::EntityTrait;

/// One event as a calendar shows it.
#[derive(Debug, Clone)]
pub struct CalendarEvent {
    /// Globally unique: the event's ActivityPub id.
    pub uid: String,
    pub title: String,
    pub description: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub timezone: String,
    pub location: Option<String>,
    /// The event's page.
    pub url: String,
    pub online_url: Option<String>,
    pub organiser: Option<String>,
    pub cancelled: bool,
    pub updated: DateTime<Utc>,
}

/// Escapes a TEXT value: backslash, semicolon, comma and newlines (RFC 5545 §3.3.11).
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            // Other control characters are not allowed in TEXT.
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets (never inside a UTF-8 character) and ends it with CRLF.
pub fn fold_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut used = 0;
    let mut limit = 75;
    for c in line.chars() {
        let len = c.len_utf8();
        if used + len > limit {
            out.push_str("\r\n ");
            used = 0;
            // The leading space of a continuation line counts towards its 75 octets.
            limit = 74;
        }
        out.push(c);
        used += len;
    }
    out.push_str("\r\n");
    out
}

fn utc(t: &DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

fn push(out: &mut String, name: &str, value: &str) {
    out.push_str(&fold_line(&format!("{name}:{value}")));
}

fn vevent(out: &mut String, e: &CalendarEvent, now: &DateTime<Utc>) {
    push(out, "BEGIN", "VEVENT");
    push(out, "UID", &escape_text(&e.uid));
    push(out, "DTSTAMP", &utc(now));
    push(out, "LAST-MODIFIED", &utc(&e.updated));
    push(out, "DTSTART", &utc(&e.starts_at));
    push(out, "DTEND", &utc(&e.ends_at));
    push(out, "SUMMARY", &escape_text(&e.title));
    let mut description = e.description.clone();
    if let Some(online) = &e.online_url {
        description.push_str(&format!("\n\nOnline: {online}"));
    }
    description.push_str(&format!("\n\nTime zone: {}\n{}", e.timezone, e.url));
    push(out, "DESCRIPTION", &escape_text(description.trim()));
    match (&e.location, &e.online_url) {
        (Some(place), _) => push(out, "LOCATION", &escape_text(place)),
        (None, Some(online)) => push(out, "LOCATION", &escape_text(online)),
        (None, None) => {}
    }
    push(out, "URL", &e.url);
    if let Some(o) = &e.organiser {
        push(out, "ORGANIZER", o);
    }
    push(
        out,
        "STATUS",
        if e.cancelled {
            "CANCELLED"
        } else {
            "CONFIRMED"
        },
    );
    push(out, "END", "VEVENT");
}

/// A VCALENDAR with `events`, named `name`.
pub fn calendar(name: &str, events: &[CalendarEvent], now: DateTime<Utc>) -> String {
    let mut out = String::new();
    push(&mut out, "BEGIN", "VCALENDAR");
    push(&mut out, "VERSION", "2.0");
    push(&mut out, "PRODID", "-//Cairn//CPD events//EN");
    push(&mut out, "CALSCALE", "GREGORIAN");
    push(&mut out, "METHOD", "PUBLISH");
    push(&mut out, "X-WR-CALNAME", &escape_text(name));
    if let [only] = events {
        push(&mut out, "X-WR-TIMEZONE", &escape_text(&only.timezone));
    }
    for e in events {
        vevent(&mut out, e, &now);
    }
    push(&mut out, "END", "VCALENDAR");
    out
}

/// The calendar entry of event post `p`.
pub async fn entry(state: &AppState, p: &post::Model, e: &event::Model) -> Result<CalendarEvent> {
    let organiser = actor::Entity::find_by_id(p.author_id)
        .one(&state.db)
        .await?
        .map(|a| a.ap_id);
    let location = match (&e.location_name, &e.location_address) {
        (Some(n), Some(a)) => Some(format!("{n}, {a}")),
        (Some(x), None) | (None, Some(x)) => Some(x.clone()),
        (None, None) => None,
    };
    Ok(CalendarEvent {
        uid: p.ap_id.clone(),
        title: p.title.clone().unwrap_or_else(|| "CPD event".into()),
        description: events::description_text(p),
        starts_at: e.starts_at,
        ends_at: e.ends_at,
        timezone: e.timezone.clone(),
        location,
        url: p.url.clone().unwrap_or_else(|| p.ap_id.clone()),
        online_url: e.online_url.clone(),
        organiser,
        cancelled: e.status == event::CANCELLED,
        updated: p.updated.unwrap_or(p.published),
    })
}

/// One event as `.ics`, if `viewer` may read it.
pub async fn event_ics(ctx: &Ctx, viewer: Option<&actor::Model>, spec: &str) -> Result<String> {
    let state = ctx.app_data();
    let p = events::find_event(ctx, viewer, spec).await?;
    let e = event::Entity::find_by_id(p.id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("{spec:?} has no event details")))?;
    let entry = entry(state, &p, &e).await?;
    Ok(calendar(&entry.title.clone(), &[entry], Utc::now()))
}

/// A community's events (upcoming, and those of the last 90 days) as a calendar feed.
pub async fn community_ics(
    ctx: &Ctx,
    viewer: Option<&actor::Model>,
    community: &actor::Model,
) -> Result<String> {
    let state = ctx.app_data();
    let since = Utc::now() - chrono::Duration::days(90);
    let mut entries = Vec::new();
    for (p, e) in events::upcoming_in_community(state, viewer, community, true).await? {
        if e.ends_at < since {
            continue;
        }
        entries.push(entry(state, &p, &e).await?);
    }
    let name = community
        .display_name
        .clone()
        .unwrap_or_else(|| format!("#{}", community.name));
    Ok(calendar(&format!("{name} events"), &entries, Utc::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a time")
            .with_timezone(&Utc)
    }

    fn sample() -> CalendarEvent {
        CalendarEvent {
            uid: "http://localhost:8080/p/abc".into(),
            title: "Outdoor learning; maths, science\\art".into(),
            description: "Line one\nLine two".into(),
            starts_at: t("2026-12-10T16:00:00Z"),
            ends_at: t("2026-12-10T17:30:00Z"),
            timezone: "Europe/London".into(),
            location: Some("Room 4, Stirling High".into()),
            url: "http://localhost:8080/p/abc".into(),
            online_url: None,
            organiser: None,
            cancelled: false,
            updated: t("2026-12-01T10:00:00Z"),
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_text("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
        assert_eq!(escape_text("x\r\ny\u{7}"), "x\\ny");
    }

    #[test]
    fn folding_is_at_75_octets_and_keeps_characters_whole() {
        let long = format!("DESCRIPTION:{}", "é".repeat(100));
        let folded = fold_line(&long);
        for line in folded.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        }
        let unfolded = folded.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, long);
        assert_eq!(fold_line("SHORT:x"), "SHORT:x\r\n");
    }

    #[test]
    fn a_calendar_is_valid_rfc5545() {
        let now = t("2026-12-04T08:00:00Z");
        let ics = calendar("#hwb events", &[sample()], now);
        assert!(
            ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"),
            "{ics}"
        );
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        assert!(
            !ics.replace("\r\n", "").contains('\n'),
            "bare LF in {ics:?}"
        );
        for needed in [
            "UID:http://localhost:8080/p/abc\r\n",
            "DTSTAMP:20261204T080000Z\r\n",
            "DTSTART:20261210T160000Z\r\n",
            "DTEND:20261210T173000Z\r\n",
            "SUMMARY:Outdoor learning\\; maths\\, science\\\\art\r\n",
            "LOCATION:Room 4\\, Stirling High\r\n",
            "URL:http://localhost:8080/p/abc\r\n",
            "STATUS:CONFIRMED\r\n",
            "X-WR-TIMEZONE:Europe/London\r\n",
        ] {
            assert!(ics.contains(needed), "missing {needed:?} in {ics}");
        }
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), 1);
    }

    #[test]
    fn an_online_event_has_its_link_as_location() {
        let mut e = sample();
        e.location = None;
        e.online_url = Some("https://meet.example/room".into());
        e.cancelled = true;
        let ics = calendar("x", &[e], t("2026-12-04T08:00:00Z"));
        assert!(
            ics.contains("LOCATION:https://meet.example/room\r\n"),
            "{ics}"
        );
        assert!(ics.contains("STATUS:CANCELLED\r\n"));
    }
}
