//! Intentions ("I intend") on the wire: a `Note` with Cairn's `targetDate` and `intentionStatus`.
//!
//! The terms are in `federation::context()`; the content already reads "I intend to … Target
//! date: 14 March 2027", so Mastodon shows something sensible. A remote Note with a valid
//! `targetDate` is stored as an intention; invalid values leave it a plain Note (tolerant reader).

use super::note::NoteJson;
use crate::{
    error::Error,
    services::{intentions, reminders},
    state::AppState,
    store::{intention, post},
};
use activitypub_federation::config::Data;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};
use serde_json::Value;

/// Longest `intentionSource` URL we keep.
const MAX_SOURCE_LEN: usize = 2_048;

/// Cairn's own terms as a JSON-LD context document (served at `/ns`): the same definitions
/// as in the `@context` of everything Cairn serves, so a processor that dereferences the
/// namespace finds what `targetDate` and `intentionStatus` mean.
pub fn context_document() -> Value {
    let mut terms = serde_json::Map::new();
    let is_cairn = |v: &Value| {
        let id = v.as_str().or_else(|| v.get("@id").and_then(Value::as_str));
        id.is_some_and(|id| id.starts_with("cairn:"))
    };
    for item in super::context().as_array().into_iter().flatten() {
        for (term, definition) in item.as_object().into_iter().flatten() {
            if term == "cairn" || is_cairn(definition) {
                terms.insert(term.clone(), definition.clone());
            }
        }
    }
    serde_json::json!({ "@context": terms })
}

/// Adds what this kind of post carries to its wire form.
pub async fn add_to_note<C: ConnectionTrait>(
    conn: &C,
    _state: &AppState,
    post: &post::Model,
    note: &mut NoteJson,
) -> Result<(), Error> {
    let Some(i) = intention::Entity::find_by_id(post.id).one(conn).await? else {
        return Ok(());
    };
    note.extra.insert(
        "targetDate".into(),
        Value::String(i.target_date.to_string()),
    );
    note.extra
        .insert("intentionStatus".into(), Value::String(i.status.clone()));
    if let Some(source) = i.source_ap_id {
        note.extra
            .insert("intentionSource".into(), Value::String(source));
    }
    if let Some(at) = i.achieved_at {
        note.extra.insert(
            "achievedAt".into(),
            Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        );
    }
    Ok(())
}

/// What a remote Note says about an intention, when it says it validly.
#[derive(Debug, PartialEq)]
struct Declared {
    target_date: NaiveDate,
    status: &'static str,
    source: Option<String>,
    /// When the origin says it was achieved (only with the achieved status).
    achieved_at: Option<DateTime<Utc>>,
}

/// A Cairn term as the compact name our context defines, prefixed, or as its full IRI (a
/// sender with another context, or none, may use either).
fn term<'a>(json: &'a NoteJson, name: &str) -> Option<&'a Value> {
    json.extra
        .get(name)
        .or_else(|| json.extra.get(&format!("cairn:{name}")))
        .or_else(|| json.extra.get(&format!("{}{name}", super::CAIRN_NS)))
}

fn read(json: &NoteJson) -> Option<Declared> {
    let date = term(json, "targetDate")?;
    // Expanded JSON-LD gives `{"@value": "2027-03-14", "@type": "xsd:date"}`.
    let date = date
        .as_str()
        .or_else(|| date.get("@value").and_then(Value::as_str))?;
    let target_date = NaiveDate::parse_from_str(date.get(..10)?, "%Y-%m-%d").ok()?;
    let status = match term(json, "intentionStatus").and_then(Value::as_str) {
        Some(intention::ACHIEVED) => intention::ACHIEVED,
        _ => intention::ACTIVE,
    };
    let source = term(json, "intentionSource")
        .and_then(|s| s.as_str().or_else(|| s.get("id").and_then(Value::as_str)))
        .filter(|s| s.len() <= MAX_SOURCE_LEN)
        .and_then(|s| url::Url::parse(s).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| u.to_string());
    let achieved_at = term(json, "achievedAt")
        .and_then(|v| {
            v.as_str()
                .or_else(|| v.get("@value").and_then(Value::as_str))
        })
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        // A time in the future is not when it happened.
        .filter(|t| *t <= Utc::now())
        .filter(|_| status == intention::ACHIEVED);
    Some(Declared {
        target_date,
        status,
        achieved_at,
        source,
    })
}

/// Stores what a remote post of this kind carries, once the post itself is stored.
pub async fn store_remote(
    data: &Data<AppState>,
    json: &NoteJson,
    post: &post::Model,
) -> Result<(), Error> {
    let Some(declared) = read(json) else {
        return Ok(());
    };
    let db = &data.db;
    let existing = intention::Entity::find_by_id(post.id).one(db).await?;
    // The origin's time when it sends one; an older sender's copy keeps its first receive time.
    let achieved_at = match (&existing, declared.status) {
        (_, intention::ACTIVE) => None,
        _ if declared.achieved_at.is_some() => declared.achieved_at,
        (Some(e), _) if e.achieved_at.is_some() => e.achieved_at,
        _ => Some(Utc::now()),
    };
    let row = intention::ActiveModel {
        post_id: Set(post.id),
        target_date: Set(declared.target_date),
        status: Set(declared.status.into()),
        source_ap_id: Set(declared.source),
        achieved_at: Set(achieved_at),
    };
    if existing.is_some() {
        row.update(db).await?;
    } else {
        intention::Entity::insert(row)
            .on_conflict_do_nothing()
            .exec_without_returning(db)
            .await?;
    }
    if post.category != post::INTENTION {
        let mut p: post::ActiveModel = post.clone().into();
        p.category = Set(post::INTENTION.into());
        p.update(db).await?;
    }
    intentions::add_owner(db, post.id, post.author_id).await?;
    reminders::schedule_intention(db, &data.config, post.id).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn note(extra: Value) -> NoteJson {
        let mut base = json!({"type": "Note", "id": "https://a.example/p/1"});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn the_context_document_defines_the_intention_terms() {
        let doc = context_document();
        let ctx = &doc["@context"];
        assert_eq!(ctx["cairn"], super::super::CAIRN_NS);
        assert_eq!(ctx["targetDate"]["@id"], "cairn:targetDate");
        assert_eq!(
            ctx["targetDate"]["@type"],
            "http://www.w3.org/2001/XMLSchema#date"
        );
        assert_eq!(ctx["intentionStatus"], "cairn:intentionStatus");
        assert!(ctx.get("toot").is_none(), "only Cairn's terms: {doc}");
    }

    #[test]
    fn a_valid_intention_is_read() {
        let d = read(&note(json!({
            "targetDate": "2027-03-14",
            "intentionStatus": "achieved",
            "intentionSource": "https://a.example/p/0"
        })))
        .unwrap();
        assert_eq!(d.target_date, NaiveDate::from_ymd_opt(2027, 3, 14).unwrap());
        assert_eq!(d.status, intention::ACHIEVED);
        assert_eq!(d.source.as_deref(), Some("https://a.example/p/0"));
    }

    #[test]
    fn the_origin_achieved_time_is_read_only_with_the_achieved_status() {
        let d = read(&note(json!({
            "targetDate": "2027-03-14",
            "intentionStatus": "achieved",
            "achievedAt": "2026-11-02T09:30:00Z"
        })))
        .unwrap();
        assert_eq!(
            d.achieved_at.map(|t| t.to_rfc3339()),
            Some("2026-11-02T09:30:00+00:00".to_string())
        );
        for extra in [
            json!({"intentionStatus": "active", "achievedAt": "2026-11-02T09:30:00Z"}),
            json!({"intentionStatus": "achieved", "achievedAt": "last Tuesday"}),
            json!({"intentionStatus": "achieved", "achievedAt": "2999-01-01T00:00:00Z"}),
        ] {
            let mut with_date = extra.clone();
            with_date["targetDate"] = json!("2027-03-14");
            assert_eq!(read(&note(with_date)).unwrap().achieved_at, None, "{extra}");
        }
    }

    #[test]
    fn prefixed_and_full_iri_terms_are_read() {
        let prefixed = read(&note(json!({"cairn:targetDate": "2027-03-14"}))).unwrap();
        assert_eq!(
            prefixed.target_date,
            NaiveDate::from_ymd_opt(2027, 3, 14).unwrap()
        );
        let full = read(&note(json!({
            "https://w3id.org/cairn/ns#targetDate": {"@value": "2027-03-15", "@type": "xsd:date"},
            "https://w3id.org/cairn/ns#intentionStatus": "achieved"
        })))
        .unwrap();
        assert_eq!(
            full.target_date,
            NaiveDate::from_ymd_opt(2027, 3, 15).unwrap()
        );
        assert_eq!(full.status, intention::ACHIEVED);
    }

    #[test]
    fn invalid_values_leave_a_plain_note_or_are_dropped() {
        assert!(read(&note(json!({"targetDate": "tomorrow"}))).is_none());
        assert!(read(&note(json!({"targetDate": 20270314}))).is_none());
        assert!(read(&note(json!({}))).is_none());
        let d = read(&note(json!({
            "targetDate": "2027-03-14",
            "intentionStatus": "exploded",
            "intentionSource": "javascript:alert(1)"
        })))
        .unwrap();
        assert_eq!(d.status, intention::ACTIVE);
        assert_eq!(d.source, None);
    }
}
