//! Events as ActivityPub `Event` objects (Mobilizon, FEP-8a8e), and the companion `Question`
//! Mastodon users vote in to RSVP.

use super::{activities::Inbound, json, note::NoteJson, sanitize};
use crate::{
    error::Error,
    services::participations,
    state::AppState,
    store::{actor, event, event_organiser, event_task, event_task_tick, participation, post},
};
use activitypub_federation::config::Data;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ModelTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use serde_json::{json as j, Value};

/// The poll options Cairn publishes with every public event.
pub const GOING: &str = "Going";
pub const NOT_GOING: &str = "Not going";
/// A participation row for someone who voted "Not going": counted in the poll, never listed.
pub const DECLINED: &str = "declined";
/// The name of the `Link` attachment that carries an event's online room.
pub const ONLINE_LINK_NAME: &str = "Online meeting";
/// Longest place name or address kept from a remote event.
const MAX_PLACE_CHARS: usize = 500;
use crate::services::events::{MAX_TASKS, MAX_TASK_CHARS};

/// The event a companion poll belongs to.
pub async fn event_of_poll<C: ConnectionTrait>(
    conn: &C,
    poll_post_id: i64,
) -> Result<Option<event::Model>, Error> {
    Ok(event::Entity::find()
        .filter(event::Column::PollPostId.eq(poll_post_id))
        .one(conn)
        .await?)
}

async fn count_state<C: ConnectionTrait>(
    conn: &C,
    post_id: i64,
    state: &str,
) -> Result<u64, Error> {
    use sea_orm::PaginatorTrait;
    Ok(participation::Entity::find()
        .filter(participation::Column::PostId.eq(post_id))
        .filter(participation::Column::State.eq(state))
        .count(conn)
        .await?)
}

/// Adds what an event (or an event's companion poll) carries to its wire form.
pub async fn add_to_note<C: ConnectionTrait>(
    conn: &C,
    _state: &AppState,
    post: &post::Model,
    note: &mut NoteJson,
) -> Result<(), Error> {
    if post.kind == "Question" && post.local {
        if let Some(e) = event_of_poll(conn, post.id).await? {
            add_poll(conn, &e, post, note).await?;
        }
        return Ok(());
    }
    if post.category != post::EVENT {
        return Ok(());
    }
    let Some(e) = event::Entity::find_by_id(post.id).one(conn).await? else {
        return Ok(());
    };
    let going = participations::accepted_count(conn, post.id).await?;
    let extra = &mut note.extra;
    extra.insert("startTime".into(), j!(e.starts_at.to_rfc3339()));
    extra.insert("endTime".into(), j!(e.ends_at.to_rfc3339()));
    extra.insert("timezone".into(), j!(e.timezone));
    if e.location_name.is_some() || e.location_address.is_some() {
        let mut place = j!({"type": "Place"});
        if let Some(n) = &e.location_name {
            place["name"] = j!(n);
        }
        if let Some(a) = &e.location_address {
            place["address"] = j!({"type": "PostalAddress", "streetAddress": a});
        }
        extra.insert("location".into(), place);
    }
    extra.insert("isOnline".into(), j!(e.online_url.is_some()));
    if let Some(url) = &e.online_url {
        let link =
            j!({"type": "Link", "name": ONLINE_LINK_NAME, "href": url, "mediaType": "text/html"});
        match &mut note.attachment {
            Value::Array(a) => a.push(link),
            other => *other = j!([link]),
        }
    }
    if let Some(places) = e.capacity {
        extra.insert("maximumAttendeeCapacity".into(), j!(places));
        extra.insert(
            "remainingAttendeeCapacity".into(),
            j!((i64::from(places) - going as i64).max(0)),
        );
    }
    extra.insert("participantCount".into(), j!(going));
    extra.insert("joinMode".into(), j!("free"));
    extra.insert("commentsEnabled".into(), j!(true));
    extra.insert(
        "participants".into(),
        j!(participations::collection_url(post)),
    );
    extra.insert(
        "ical:status".into(),
        j!(if e.status == event::CANCELLED {
            "CANCELLED"
        } else {
            "CONFIRMED"
        }),
    );
    // The pre-event checklist: Cairn's own term, each task with an id stable across edits, so
    // that other Cairn instances can offer it to their members (ticks stay where they are made).
    let tasks: Vec<Value> = event_task::Entity::find()
        .filter(event_task::Column::EventPostId.eq(post.id))
        .order_by_asc(event_task::Column::Position)
        .order_by_asc(event_task::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|t| j!({"id": format!("{}#task-{}", post.ap_id, t.id), "name": t.text}))
        .collect();
    extra.insert("cairn:tasks".into(), j!(tasks));
    if let Some(poll_id) = e.poll_post_id {
        if let Some(poll) = post::Entity::find_by_id(poll_id).one(conn).await? {
            // Compact IRI in Cairn's namespace: other Cairn instances and people reading the
            // JSON find the poll; others ignore it.
            extra.insert("cairn:rsvpPoll".into(), j!(poll.ap_id));
        }
    }
    Ok(())
}

/// `oneOf` with the two options and their counts, closing when the event starts.
async fn add_poll<C: ConnectionTrait>(
    conn: &C,
    e: &event::Model,
    poll: &post::Model,
    note: &mut NoteJson,
) -> Result<(), Error> {
    let going = participations::accepted_count(conn, e.post_id).await?;
    let not_going = count_state(conn, e.post_id, DECLINED).await?;
    note.extra.insert(
        "oneOf".into(),
        j!([
            {"type": "Note", "name": GOING, "replies": {"type": "Collection", "totalItems": going}},
            {"type": "Note", "name": NOT_GOING, "replies": {"type": "Collection", "totalItems": not_going}},
        ]),
    );
    note.extra
        .insert("endTime".into(), j!(e.starts_at.to_rfc3339()));
    note.extra
        .insert("votersCount".into(), j!(going + not_going));
    if e.status == event::CANCELLED {
        // Closed when it was cancelled: the poll's last edit, which said so.
        let at = poll.updated.unwrap_or_else(Utc::now).min(e.starts_at);
        note.extra.insert("closed".into(), j!(at.to_rfc3339()));
    } else if Utc::now() >= e.starts_at {
        note.extra
            .insert("closed".into(), j!(e.starts_at.to_rfc3339()));
    }
    if let Some(ev) = post::Entity::find_by_id(e.post_id).one(conn).await? {
        note.extra.insert("cairn:rsvpFor".into(), j!(ev.ap_id));
    }
    Ok(())
}

/// What a remote `Event` says about its times, place and capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteEvent {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub timezone: String,
    pub location_name: Option<String>,
    pub location_address: Option<String>,
    pub online_url: Option<String>,
    pub capacity: Option<i32>,
    pub cancelled: bool,
    /// The origin's pre-event checklist (`cairn:tasks`), as plain text.
    pub tasks: Vec<String>,
}

fn rfc3339(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn short_text(v: Option<&Value>) -> Option<String> {
    let s = sanitize::plain(v?.as_str()?);
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    Some(s.chars().take(MAX_PLACE_CHARS).collect())
}

/// Reads an `Event` as Mobilizon, Cairn and FEP-8a8e write it. `None` without a start time.
pub fn read_remote(note: &NoteJson) -> Option<RemoteEvent> {
    let extra = &note.extra;
    let starts_at = rfc3339(extra.get("startTime"))?;
    // An end before the start (or none) is read as an event without a length.
    let ends_at = rfc3339(extra.get("endTime"))
        .filter(|e| *e >= starts_at)
        .unwrap_or(starts_at);
    let timezone = extra
        .get("timezone")
        .and_then(Value::as_str)
        .filter(|tz| tz.parse::<chrono_tz::Tz>().is_ok())
        .unwrap_or("UTC")
        .to_owned();
    let location = extra
        .get("location")
        .and_then(|l| json::items(Some(l)).into_iter().next().cloned());
    let (location_name, location_address) = match &location {
        Some(place) if place.is_object() => {
            let address = match place.get("address") {
                Some(Value::String(s)) => short_text(Some(&Value::String(s.clone()))),
                Some(a @ Value::Object(_)) => {
                    let parts: Vec<String> = [
                        "streetAddress",
                        "addressLocality",
                        "postalCode",
                        "addressRegion",
                        "addressCountry",
                    ]
                    .iter()
                    .filter_map(|k| short_text(a.get(*k)))
                    .collect();
                    Some(parts.join(", ")).filter(|s| !s.is_empty())
                }
                _ => None,
            };
            (short_text(place.get("name")), address)
        }
        _ => (None, None),
    };
    let is_online = extra.get("isOnline").and_then(Value::as_bool) == Some(true);
    let links: Vec<&Value> = json::items(Some(&note.attachment))
        .into_iter()
        .filter(|a| json::kind(a) == Some("Link"))
        .collect();
    let online_url = links
        .iter()
        .find(|l| json::str_field(l, "name") == Some(ONLINE_LINK_NAME))
        .or_else(|| if is_online { links.first() } else { None })
        .and_then(|l| json::str_field(l, "href"))
        .and_then(|h| url::Url::parse(h).ok())
        .filter(|u| u.scheme() == "https" || u.scheme() == "http")
        .map(|u| u.to_string());
    // Mobilizon writes 0 for "no limit".
    let capacity = extra
        .get("maximumAttendeeCapacity")
        .and_then(Value::as_i64)
        .filter(|c| *c > 0)
        .and_then(|c| i32::try_from(c).ok());
    let cancelled = extra
        .get("ical:status")
        .or_else(|| extra.get("status"))
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("CANCELLED"));
    let tasks = json::items(extra.get("cairn:tasks"))
        .into_iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .map(|t| sanitize::plain(t).trim().to_owned())
        .filter(|t| !t.is_empty())
        .map(|t| t.chars().take(MAX_TASK_CHARS).collect())
        .take(MAX_TASKS)
        .collect();
    Some(RemoteEvent {
        tasks,
        starts_at,
        ends_at,
        timezone,
        location_name,
        location_address,
        online_url,
        capacity,
        cancelled,
    })
}

/// Stores what a remote `Event` carries (its events row), once the post itself is stored.
/// An `Update` of it marks its mirrored participant list stale.
pub async fn store_remote(
    data: &Data<AppState>,
    json: &NoteJson,
    post: &post::Model,
) -> Result<(), Error> {
    if post.local {
        return Ok(());
    }
    if json.kind_str() == "Question" {
        return link_remote_poll(data, json, post).await;
    }
    if json.kind_str() != "Event" {
        return Ok(());
    }
    let Some(remote) = read_remote(json) else {
        return Ok(());
    };
    let state = data.app_data();
    let txn = state.db.begin().await?;
    if post.category != post::EVENT {
        post::Entity::update_many()
            .col_expr(
                post::Column::Category,
                sea_orm::sea_query::Expr::value(post::EVENT),
            )
            .filter(post::Column::Id.eq(post.id))
            .exec(&txn)
            .await?;
    }
    let existing = event::Entity::find_by_id(post.id).one(&txn).await?;
    let status = if remote.cancelled {
        event::CANCELLED
    } else {
        event::SCHEDULED
    };
    match existing {
        Some(e) => {
            let mut active: event::ActiveModel = e.into();
            active.starts_at = Set(remote.starts_at);
            active.ends_at = Set(remote.ends_at);
            active.timezone = Set(remote.timezone);
            active.location_name = Set(remote.location_name);
            active.location_address = Set(remote.location_address);
            active.online_url = Set(remote.online_url);
            active.capacity = Set(remote.capacity);
            active.status = Set(status.into());
            // The origin changed something (often its participants): read them again.
            active.participants_refreshed_at = Set(None);
            active.update(&txn).await?;
        }
        None => {
            event::ActiveModel {
                post_id: Set(post.id),
                starts_at: Set(remote.starts_at),
                ends_at: Set(remote.ends_at),
                timezone: Set(remote.timezone),
                location_name: Set(remote.location_name),
                location_address: Set(remote.location_address),
                online_url: Set(remote.online_url),
                capacity: Set(remote.capacity),
                poll_post_id: Set(None),
                status: Set(status.into()),
                participants_refreshed_at: Set(None),
            }
            .insert(&txn)
            .await?;
            event_organiser::Entity::insert(event_organiser::ActiveModel {
                event_post_id: Set(post.id),
                actor_id: Set(post.author_id),
                ..Default::default()
            })
            // On the unique pair: plain on_conflict_do_nothing() targets only the primary key.
            .on_conflict_do_nothing_on([
                event_organiser::Column::EventPostId,
                event_organiser::Column::ActorId,
            ])
            .exec(&txn)
            .await?;
        }
    }
    sync_tasks(&txn, post.id, &remote.tasks).await?;
    // The companion poll, when it is here already, is the event's too (filed as `event`).
    let poll_ap_id = extra_str(json, "cairn:rsvpPoll").filter(|id| same_host(id, &post.ap_id));
    if let Some(poll_ap_id) = poll_ap_id {
        let poll = post::Entity::find()
            .filter(post::Column::ApId.eq(poll_ap_id))
            .filter(post::Column::Kind.eq("Question"))
            .one(&txn)
            .await?;
        if let Some(poll) = poll {
            set_poll(&txn, post.id, poll.id).await?;
            if poll.category != post::EVENT {
                let mut active: post::ActiveModel = poll.into();
                active.category = Set(post::EVENT.into());
                active.update(&txn).await?;
            }
        }
    }
    txn.commit().await?;
    participations::mark_stale(&state.db, post.id).await?;
    participations::refresh_later(data, post.clone());
    Ok(())
}

fn extra_str<'a>(json: &'a NoteJson, key: &str) -> Option<&'a str> {
    json.extra.get(key).and_then(Value::as_str)
}

/// Whether two ids are on one server: an event and its poll come from the same origin.
fn same_host(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

async fn set_poll<C: ConnectionTrait>(conn: &C, event_id: i64, poll_id: i64) -> Result<(), Error> {
    event::Entity::update_many()
        .col_expr(
            event::Column::PollPostId,
            sea_orm::sea_query::Expr::value(poll_id),
        )
        .filter(event::Column::PostId.eq(event_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// A remote `Question` that says it is an event's RSVP poll (`cairn:rsvpFor`) is linked to
/// that event when it is here, so that it is filed as `event` as on its origin.
async fn link_remote_poll(
    data: &Data<AppState>,
    json: &NoteJson,
    poll: &post::Model,
) -> Result<(), Error> {
    let Some(event_ap_id) =
        extra_str(json, "cairn:rsvpFor").filter(|id| same_host(id, &poll.ap_id))
    else {
        return Ok(());
    };
    let db = &data.app_data().db;
    let found = post::Entity::find()
        .filter(post::Column::ApId.eq(event_ap_id))
        .filter(post::Column::Local.eq(false))
        .one(db)
        .await?;
    if let Some(ev) = found {
        set_poll(db, ev.id, poll.id).await?;
    }
    Ok(())
}

/// Makes a remote event's checklist the origin's. A task whose text is unchanged keeps its row,
/// so the ticks members made here survive the origin's Updates.
async fn sync_tasks<C: ConnectionTrait>(
    conn: &C,
    post_id: i64,
    tasks: &[String],
) -> Result<(), Error> {
    let existing = event_task::Entity::find()
        .filter(event_task::Column::EventPostId.eq(post_id))
        .all(conn)
        .await?;
    let mut kept = Vec::new();
    for row in existing {
        if tasks.contains(&row.text) && !kept.iter().any(|k: &event_task::Model| k.text == row.text)
        {
            kept.push(row);
        } else {
            event_task_tick::Entity::delete_many()
                .filter(event_task_tick::Column::TaskId.eq(row.id))
                .exec(conn)
                .await?;
            row.delete(conn).await?;
        }
    }
    for (i, text) in tasks.iter().enumerate() {
        let position = i32::try_from(i).unwrap_or(i32::MAX);
        match kept.iter().find(|k| &k.text == text) {
            Some(k) if k.position == position => {}
            Some(k) => {
                let mut active: event_task::ActiveModel = k.clone().into();
                active.position = Set(position);
                active.update(conn).await?;
            }
            None => {
                event_task::ActiveModel {
                    event_post_id: Set(post_id),
                    position: Set(position),
                    text: Set(text.clone()),
                    ..Default::default()
                }
                .insert(conn)
                .await?;
            }
        }
    }
    Ok(())
}

/// A Mastodon poll vote: a `Create` of a `Note` with only a `name` (the option), replying to
/// the poll. Returns `false` when the activity is not a vote in one of our event polls, for
/// the ordinary Create handling to take it.
pub async fn receive_vote(inbound: &Inbound<'_>) -> Result<bool, Error> {
    let Some(object) = inbound.raw.get("object").filter(|o| o.is_object()) else {
        return Ok(false);
    };
    let has_content = json::str_field(object, "content").is_some_and(|c| !c.trim().is_empty());
    let (Some(option), Some(poll_id)) = (
        json::str_field(object, "name"),
        object.get("inReplyTo").and_then(json::id_of_ref),
    ) else {
        return Ok(false);
    };
    if json::kind(object) != Some("Note") || has_content {
        return Ok(false);
    }
    let state = inbound.data.app_data();
    let Some(poll) = post::Entity::find()
        .filter(post::Column::ApId.eq(poll_id.as_str()))
        .filter(post::Column::Local.eq(true))
        .filter(post::Column::Kind.eq("Question"))
        .one(&state.db)
        .await?
    else {
        return Ok(false);
    };
    let Some(e) = event_of_poll(&state.db, poll.id).await? else {
        return Ok(false);
    };
    let voter = &inbound.actor.0;
    if let Some(author) = object.get("attributedTo").and_then(json::id_of_ref) {
        if author.as_str() != voter.ap_id {
            return Err(Error::Forbidden(format!(
                "{} may not vote as {author}",
                voter.ap_id
            )));
        }
    }
    let target = post::Entity::find_by_id(e.post_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::Internal("poll without its event".into()))?;
    if target.deleted_at.is_some() {
        return Err(Error::Gone(format!(
            "the event {} was deleted",
            target.ap_id
        )));
    }
    let going = option.trim().eq_ignore_ascii_case(GOING);
    if !going && !option.trim().eq_ignore_ascii_case(NOT_GOING) {
        return Err(Error::Unprocessable(format!(
            "{option:?} is not an option of {poll_id}: vote {GOING:?} or {NOT_GOING:?}"
        )));
    }
    let vote_id = json::id_of(object).map(|u| u.to_string());
    let txn = state.db.begin().await?;
    let changed = if going {
        participations::decide_local(
            &txn,
            &target,
            voter.id,
            participation::VIA_POLL,
            vote_id.as_deref(),
        )
        .await?
        .1
    } else {
        participations::decline(&txn, &target, voter.id, vote_id.as_deref()).await?
    };
    if changed {
        participations::announce_participants(&txn, state, &target).await?;
    }
    // The poll's counts changed either way (a full event's "Going" is not counted).
    crate::services::posts::send_update(&txn, state, &poll, Vec::new()).await?;
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    Ok(true)
}

/// Whether `a` is the author of the event `e`'s post or one of its organisers.
pub async fn is_organiser<C: ConnectionTrait>(
    conn: &C,
    event_post: &post::Model,
    a: &actor::Model,
) -> Result<bool, Error> {
    if event_post.author_id == a.id {
        return Ok(true);
    }
    Ok(event_organiser::Entity::find()
        .filter(event_organiser::Column::EventPostId.eq(event_post.id))
        .filter(event_organiser::Column::ActorId.eq(a.id))
        .one(conn)
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> NoteJson {
        let path = format!("{}/fixtures/fediverse/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("fixture");
        serde_json::from_str(&text).expect("a post")
    }

    #[test]
    fn mobilizon_event_is_read() {
        let e = read_remote(&fixture("mobilizon-event.json")).expect("an event");
        assert_eq!(e.starts_at.to_rfc3339(), "2022-12-11T19:00:00+00:00");
        assert_eq!(e.ends_at.to_rfc3339(), "2022-12-11T21:00:00+00:00");
        assert_eq!(e.timezone, "Europe/London");
        assert_eq!(e.location_name.as_deref(), Some("The Kenn Centre"));
        let address = e.location_address.expect("an address");
        assert!(
            address.starts_with("Devon Expressway, Teignbridge, EX6 7TW"),
            "{address}"
        );
        // 0 is Mobilizon's "no limit".
        assert_eq!(e.capacity, None);
        assert_eq!(e.online_url, None);
        assert!(!e.cancelled);
    }

    #[test]
    fn old_mobilizon_event_is_read() {
        let e = read_remote(&fixture("mobilizon-event-2019-litepub-context.json"));
        assert!(e.is_some(), "the 2019 event has a start time");
    }

    #[test]
    fn online_room_bad_zone_and_cancellation() {
        let note: NoteJson = serde_json::from_value(j!({
            "type": "Event",
            "id": "https://m.example/events/1",
            "attributedTo": "https://m.example/@a",
            "startTime": "2026-12-10T16:00:00Z",
            "endTime": "2026-12-10T15:00:00Z",
            "timezone": "Mars/Olympus",
            "isOnline": true,
            "maximumAttendeeCapacity": 12,
            "ical:status": "CANCELLED",
            "attachment": [{"type": "Link", "name": "Website", "href": "https://meet.example/room"},
                           {"type": "Link", "name": "bad", "href": "javascript:alert(1)"}],
            "location": {"type": "Place", "name": "<b>Room</b> 4", "address": "1 High St"}
        }))
        .expect("a note");
        let e = read_remote(&note).expect("an event");
        assert_eq!(e.ends_at, e.starts_at, "an end before the start is ignored");
        assert_eq!(e.timezone, "UTC");
        assert_eq!(e.online_url.as_deref(), Some("https://meet.example/room"));
        assert_eq!(e.capacity, Some(12));
        assert!(e.cancelled);
        assert_eq!(e.location_name.as_deref(), Some("Room 4"));
        assert_eq!(e.location_address.as_deref(), Some("1 High St"));
    }
}
