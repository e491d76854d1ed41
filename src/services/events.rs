//! CPD events: times, place, capacity, organisers, pre-event tasks, and the companion poll that
//! lets Mastodon users RSVP.

use super::{
    participations,
    posts::{self, Extras, NewPost},
    views::{self, PostView},
    visibility::Visibility,
};
use crate::{
    error::{Error, Result},
    federation::{event as wire, note::DbPost, sanitize},
    state::{AppState, Ctx},
    store::{actor, event, event_organiser, event_task, event_task_tick, participation, post},
};
use activitypub_federation::fetch::object_id::ObjectId;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use futures::FutureExt;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ModelTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde::Deserialize;
use serde_json::{json, Value};

pub const MAX_TASKS: usize = 30;
pub const MAX_TASK_CHARS: usize = 300;
pub const MAX_PLACE_CHARS: usize = 500;
pub const MAX_ORGANISERS: usize = 20;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    pub title: String,
    pub description: String,
    /// RFC 3339 with an offset, or a wall-clock time (`2026-12-10T16:00`) in `timezone`.
    pub starts_at: String,
    pub ends_at: String,
    /// IANA name, e.g. `Europe/London`.
    pub timezone: String,
    #[serde(default)]
    pub location_name: Option<String>,
    #[serde(default)]
    pub location_address: Option<String>,
    #[serde(default)]
    pub online_url: Option<String>,
    #[serde(default)]
    pub capacity: Option<i64>,
    /// Local member names besides the creator.
    #[serde(default)]
    pub organisers: Vec<String>,
    #[serde(default)]
    pub communities: Vec<String>,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Pre-event materials: ids of the author's uploads (`POST /api/v1/media`).
    #[serde(default)]
    pub attachments: Vec<String>,
    /// Pre-event materials shared as links.
    #[serde(default)]
    pub links: Vec<crate::services::media::LinkInput>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventEdit {
    pub title: Option<String>,
    pub description: Option<String>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub timezone: Option<String>,
    /// `""` removes it.
    pub location_name: Option<String>,
    pub location_address: Option<String>,
    pub online_url: Option<String>,
    /// `0` removes the limit.
    pub capacity: Option<i64>,
    /// Replaces the organisers besides the creator.
    pub organisers: Option<Vec<String>>,
    /// `scheduled` or `cancelled`.
    pub status: Option<String>,
}

/// When, where and how many: what is checked before anything is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub timezone: String,
    pub location_name: Option<String>,
    pub location_address: Option<String>,
    pub online_url: Option<String>,
    pub capacity: Option<i32>,
}

pub fn parse_timezone(name: &str) -> Result<Tz> {
    name.trim().parse::<Tz>().map_err(|_| {
        Error::Unprocessable(format!(
            "timezone {name:?} is not an IANA time zone name; use one like \"Europe/London\""
        ))
    })
}

/// A time as RFC 3339 (any offset) or as wall-clock time in `tz`.
pub fn parse_time(field: &str, value: &str, tz: Tz) -> Result<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .ok_or_else(|| {
            Error::Unprocessable(format!(
                "{field} {value:?} is not a time: use \"2026-12-10T16:00\" (in the event's time zone) or RFC 3339"
            ))
        })?;
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(..) => Err(Error::Unprocessable(format!(
            "{field} {value:?} happens twice in {tz} (clocks go back): give it with an offset, e.g. \"{value}+01:00\""
        ))),
        chrono::LocalResult::None => Err(Error::Unprocessable(format!(
            "{field} {value:?} does not exist in {tz} (clocks go forward): choose another time"
        ))),
    }
}

fn optional_text(field: &str, v: Option<String>) -> Result<Option<String>> {
    let Some(v) = v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > MAX_PLACE_CHARS {
        return Err(Error::Unprocessable(format!(
            "{field} is longer than {MAX_PLACE_CHARS} characters"
        )));
    }
    Ok(Some(v))
}

fn online_url(v: Option<String>) -> Result<Option<String>> {
    let Some(v) = v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let url = url::Url::parse(&v).map_err(|e| {
        Error::Unprocessable(format!(
            "online_url {v:?} is not a URL ({e}): give the meeting link"
        ))
    })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(Error::Unprocessable(format!(
            "online_url {v:?} must be an http(s) link"
        )));
    }
    Ok(Some(url.to_string()))
}

fn capacity(v: Option<i64>) -> Result<Option<i32>> {
    match v {
        None | Some(0) => Ok(None),
        Some(n) if n < 0 => Err(Error::Unprocessable(format!(
            "capacity {n} is negative: give the number of places, or 0 for no limit"
        ))),
        Some(n) => i32::try_from(n)
            .map(Some)
            .map_err(|_| Error::Unprocessable(format!("capacity {n} is too large"))),
    }
}

impl Schedule {
    pub fn check(&self) -> Result<()> {
        if self.ends_at <= self.starts_at {
            return Err(Error::Unprocessable(format!(
                "the event ends ({}) before or when it starts ({}): ends_at must be later",
                self.ends_at.to_rfc3339(),
                self.starts_at.to_rfc3339()
            )));
        }
        if self.location_name.is_none()
            && self.location_address.is_none()
            && self.online_url.is_none()
        {
            return Err(Error::Unprocessable(
                "say where the event is: a location_name/location_address, an online_url, or both"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Events are for dates to come: one that would already be over is a mistake (a year, a day
/// or a time zone), and its poll would be closed before anyone saw it.
fn not_over(s: &Schedule) -> Result<()> {
    if s.ends_at <= Utc::now() {
        let tz: Tz = s.timezone.parse().unwrap_or(Tz::UTC);
        return Err(Error::Unprocessable(format!(
            "the event would already be over (it ends {} in {}): check the year, the date, the \
             time and the timezone of starts_at and ends_at",
            s.ends_at.with_timezone(&tz).format("%-d %B %Y, %H:%M"),
            s.timezone
        )));
    }
    Ok(())
}

fn schedule_of(input: &NewEvent) -> Result<Schedule> {
    let tz = parse_timezone(&input.timezone)?;
    let s = Schedule {
        starts_at: parse_time("starts_at", &input.starts_at, tz)?,
        ends_at: parse_time("ends_at", &input.ends_at, tz)?,
        timezone: tz.name().to_owned(),
        location_name: optional_text("location_name", input.location_name.clone())?,
        location_address: optional_text("location_address", input.location_address.clone())?,
        online_url: online_url(input.online_url.clone())?,
        capacity: capacity(input.capacity)?,
    };
    s.check()?;
    Ok(s)
}

fn check_tasks(tasks: &[String]) -> Result<Vec<String>> {
    if tasks.len() > MAX_TASKS {
        return Err(Error::Unprocessable(format!(
            "an event has at most {MAX_TASKS} pre-event tasks"
        )));
    }
    let mut out = Vec::new();
    for t in tasks {
        let t = t.trim();
        if t.is_empty() {
            return Err(Error::Unprocessable(
                "a pre-event task must not be empty".into(),
            ));
        }
        if t.chars().count() > MAX_TASK_CHARS {
            return Err(Error::Unprocessable(format!(
                "a pre-event task is longer than {MAX_TASK_CHARS} characters"
            )));
        }
        out.push(t.to_owned());
    }
    Ok(out)
}

/// Local members named as organisers (the creator is always one).
async fn organiser_ids(state: &AppState, names: &[String]) -> Result<Vec<i64>> {
    if names.len() > MAX_ORGANISERS {
        return Err(Error::Unprocessable(format!(
            "an event has at most {MAX_ORGANISERS} organisers"
        )));
    }
    let mut ids = Vec::new();
    for name in names {
        let m = super::members::find_local(state, name.trim().trim_start_matches('@'))
            .await?
            .filter(|m| m.kind == "Person")
            .ok_or_else(|| {
                Error::Unprocessable(format!(
                    "organiser {name:?} is not a member of this instance"
                ))
            })?;
        ids.push(m.id);
    }
    Ok(ids)
}

async fn write_organisers<C: ConnectionTrait>(conn: &C, post_id: i64, ids: &[i64]) -> Result<()> {
    for id in ids {
        event_organiser::Entity::insert(event_organiser::ActiveModel {
            event_post_id: Set(post_id),
            actor_id: Set(*id),
            ..Default::default()
        })
        // On the unique pair: plain on_conflict_do_nothing() targets only the primary key.
        .on_conflict_do_nothing_on([
            event_organiser::Column::EventPostId,
            event_organiser::Column::ActorId,
        ])
        .exec(conn)
        .await?;
    }
    Ok(())
}

/// Creates an event post; a public one also gets its companion poll.
pub async fn create(state: &AppState, author: &actor::Model, input: NewEvent) -> Result<PostView> {
    let schedule = schedule_of(&input)?;
    not_over(&schedule)?;
    let tasks = check_tasks(&input.tasks)?;
    let mut organisers = vec![author.id];
    organisers.extend(organiser_ids(state, &input.organisers).await?);
    if input.title.trim().is_empty() {
        return Err(Error::BadRequest("an event needs a title".into()));
    }
    let visibility = input.visibility.clone();
    let public = visibility
        .as_deref()
        .is_none_or(|v| Visibility::parse(v) == Some(Visibility::Public));
    let communities = input.communities.clone();
    let title = input.title.trim().to_owned();
    let row = schedule.clone();
    let after_insert: posts::AfterInsert = Box::new(move |txn, saved| {
        async move {
            event::ActiveModel {
                post_id: Set(saved.id),
                starts_at: Set(row.starts_at),
                ends_at: Set(row.ends_at),
                timezone: Set(row.timezone),
                location_name: Set(row.location_name),
                location_address: Set(row.location_address),
                online_url: Set(row.online_url),
                capacity: Set(row.capacity),
                poll_post_id: Set(None),
                status: Set(event::SCHEDULED.into()),
                participants_refreshed_at: Set(None),
            }
            .insert(txn)
            .await?;
            write_organisers(txn, saved.id, &organisers).await?;
            for (i, text) in tasks.into_iter().enumerate() {
                event_task::ActiveModel {
                    event_post_id: Set(saved.id),
                    position: Set(i as i32),
                    text: Set(text),
                    ..Default::default()
                }
                .insert(txn)
                .await?;
            }
            Ok(())
        }
        .boxed()
    });
    let view = posts::create_with(
        state,
        author,
        NewPost {
            content: input.description,
            title: Some(title.clone()),
            visibility,
            communities: communities.clone(),
            attachments: input.attachments,
            links: input.links,
            ..Default::default()
        },
        Extras {
            kind: Some("Event"),
            category: Some(post::EVENT),
            after_insert: Some(after_insert),
        },
    )
    .await?;
    if public {
        create_poll(state, author, &view, &title, &schedule, communities).await?;
    }
    let p = post_by_key(state, &view.key).await?;
    views::post_view(state, &p).await
}

/// What the companion poll says: the event's title and local start, or that it is cancelled.
fn poll_text(title: &str, schedule: &Schedule, cancelled: bool, event_id: &str) -> String {
    let tz: Tz = schedule.timezone.parse().unwrap_or(Tz::UTC);
    let when = schedule
        .starts_at
        .with_timezone(&tz)
        .format("%A %-d %B %Y, %H:%M %Z");
    if cancelled {
        return format!("\"{title}\" ({when}) is cancelled: voting is closed. Details: {event_id}");
    }
    format!(
        "Are you coming to \"{title}\" ({when})? Vote \"{}\" or \"{}\" to sign up; details: {event_id}",
        wire::GOING,
        wire::NOT_GOING,
    )
}

/// The `Question` Mastodon users answer to RSVP; the event then names it (an `Update`).
async fn create_poll(
    state: &AppState,
    author: &actor::Model,
    event_view: &PostView,
    title: &str,
    schedule: &Schedule,
    communities: Vec<String>,
) -> Result<()> {
    let content = poll_text(title, schedule, false, &event_view.id);
    let event_id = event_view.id.clone();
    let after_insert: posts::AfterInsert = Box::new(move |txn, saved| {
        async move {
            let poll_id = saved.id;
            let ev = post::Entity::find()
                .filter(post::Column::ApId.eq(event_id.as_str()))
                .one(txn)
                .await?
                .ok_or_else(|| Error::Internal("the poll's event vanished".into()))?;
            event::Entity::update_many()
                .col_expr(
                    event::Column::PollPostId,
                    sea_orm::sea_query::Expr::value(poll_id),
                )
                .filter(event::Column::PostId.eq(ev.id))
                .exec(txn)
                .await?;
            Ok(())
        }
        .boxed()
    });
    // The poll goes to the communities the event was filed in (all local: the event is).
    let mut tags = communities;
    tags.extend(
        event_view
            .communities
            .iter()
            .filter(|c| !c.contains('@'))
            .cloned(),
    );
    tags.sort();
    tags.dedup();
    posts::create_with(
        state,
        author,
        NewPost {
            content,
            title: None,
            visibility: Some("public".into()),
            communities: tags,
            ..Default::default()
        },
        Extras {
            kind: Some("Question"),
            category: Some(post::EVENT),
            after_insert: Some(after_insert),
        },
    )
    .await?;
    let ev = post_by_key(state, &event_view.key).await?;
    let txn = state.db.begin().await?;
    posts::send_update(&txn, state, &ev, Vec::new()).await?;
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    Ok(())
}

async fn post_by_key(state: &AppState, key: &str) -> Result<post::Model> {
    post::Entity::find()
        .filter(post::Column::Key.eq(key))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no post with key {key:?}")))
}

/// The event post `spec` names, for `viewer`.
pub async fn find_event(
    ctx: &Ctx,
    viewer: Option<&actor::Model>,
    spec: &str,
) -> Result<post::Model> {
    let p = find_post(ctx, viewer, spec).await?;
    if p.category != post::EVENT || p.kind == "Question" {
        return Err(Error::NotFound(format!(
            "{spec:?} is a {} post, not an event",
            p.category
        )));
    }
    Ok(p)
}

async fn organiser_check(state: &AppState, p: &post::Model, m: &actor::Model) -> Result<()> {
    if !p.local {
        return Err(Error::Forbidden(
            "this event belongs to another instance: its organisers edit it there".into(),
        ));
    }
    if !wire::is_organiser(&state.db, p, m).await? {
        return Err(Error::Forbidden(
            "only the event's organisers can change it".into(),
        ));
    }
    Ok(())
}

/// An organiser changes the event; the change federates as an `Update`.
pub async fn update(ctx: &Ctx, m: &actor::Model, spec: &str, edit: EventEdit) -> Result<PostView> {
    let state = ctx.app_data();
    let p = find_event(ctx, Some(m), spec).await?;
    organiser_check(state, &p, m).await?;
    let e = event::Entity::find_by_id(p.id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::Internal(format!("event {} has no events row", p.ap_id)))?;
    let tz = parse_timezone(edit.timezone.as_deref().unwrap_or(&e.timezone))?;
    let schedule = Schedule {
        starts_at: match &edit.starts_at {
            Some(s) => parse_time("starts_at", s, tz)?,
            None => e.starts_at,
        },
        ends_at: match &edit.ends_at {
            Some(s) => parse_time("ends_at", s, tz)?,
            None => e.ends_at,
        },
        timezone: tz.name().to_owned(),
        location_name: match edit.location_name {
            Some(v) => optional_text("location_name", Some(v))?,
            None => e.location_name.clone(),
        },
        location_address: match edit.location_address {
            Some(v) => optional_text("location_address", Some(v))?,
            None => e.location_address.clone(),
        },
        online_url: match edit.online_url {
            Some(v) => online_url(Some(v))?,
            None => e.online_url.clone(),
        },
        capacity: match edit.capacity {
            Some(c) => capacity(Some(c))?,
            None => e.capacity,
        },
    };
    schedule.check()?;
    // An event that has happened can still be edited (its notes, its organisers) as long as
    // its times are left as they were.
    if schedule.ends_at != e.ends_at {
        not_over(&schedule)?;
    }
    let status = match edit.status.as_deref().map(str::trim) {
        None => e.status.clone(),
        Some(s @ (event::SCHEDULED | event::CANCELLED)) => s.to_owned(),
        Some(other) => {
            return Err(Error::Unprocessable(format!(
                "status {other:?} is not one of scheduled, cancelled"
            )))
        }
    };
    let new_organisers = match &edit.organisers {
        Some(names) => Some(organiser_ids(state, names).await?),
        None => None,
    };
    if let Some(t) = &edit.title {
        if t.trim().is_empty() {
            return Err(Error::BadRequest("an event needs a title".into()));
        }
        if t.chars().count() > posts::MAX_TITLE_CHARS {
            return Err(Error::BadRequest(format!(
                "title is longer than {} characters",
                posts::MAX_TITLE_CHARS
            )));
        }
    }
    if let Some(d) = &edit.description {
        if d.trim().is_empty() || d.chars().count() > posts::MAX_CONTENT_CHARS {
            return Err(Error::BadRequest(format!(
                "description must have 1 to {} characters",
                posts::MAX_CONTENT_CHARS
            )));
        }
    }
    let text_changed = edit.title.is_some() || edit.description.is_some();
    let poll_changed = edit.title.is_some()
        || schedule.starts_at != e.starts_at
        || schedule.timezone != e.timezone
        || status != e.status;
    let poll_post_id = e.poll_post_id;
    let txn = state.db.begin().await?;
    let mut active: event::ActiveModel = e.into();
    active.starts_at = Set(schedule.starts_at);
    active.ends_at = Set(schedule.ends_at);
    active.timezone = Set(schedule.timezone);
    active.location_name = Set(schedule.location_name);
    active.location_address = Set(schedule.location_address);
    active.online_url = Set(schedule.online_url);
    active.capacity = Set(schedule.capacity);
    active.status = Set(status);
    active.update(&txn).await?;
    if let Some(ids) = new_organisers {
        event_organiser::Entity::delete_many()
            .filter(event_organiser::Column::EventPostId.eq(p.id))
            .filter(event_organiser::Column::ActorId.ne(p.author_id))
            .exec(&txn)
            .await?;
        let mut all = vec![p.author_id];
        all.extend(ids);
        write_organisers(&txn, p.id, &all).await?;
    }
    if !text_changed {
        participations::announce_participants(&txn, state, &p).await?;
    }
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    if text_changed {
        // The post's own text goes through the posts service, which renders it and sends the
        // Update (carrying the new schedule, written above). Organisers act for the author.
        let author = actor::Entity::find_by_id(p.author_id)
            .one(&state.db)
            .await?
            .ok_or_else(|| Error::Internal(format!("post {} has no author", p.ap_id)))?;
        posts::update(
            state,
            &author,
            &p.key,
            posts::PostEdit {
                content: edit.description.clone(),
                title: edit.title.clone(),
                summary: None,
            },
        )
        .await?;
    }
    let fresh = post_by_key(state, &p.key).await?;
    if poll_changed {
        if let Some(poll_id) = poll_post_id {
            retext_poll(state, &fresh, poll_id).await?;
        }
    }
    views::post_view(state, &fresh).await
}

/// The companion poll follows an edited or cancelled event: its text is written again and the
/// posts service sends the `Update(Question)`, whose `endTime` (the start) and `closed` (when
/// cancelled) are read from the events row.
async fn retext_poll(state: &AppState, ev: &post::Model, poll_id: i64) -> Result<()> {
    let Some(poll) = post::Entity::find_by_id(poll_id).one(&state.db).await? else {
        return Ok(());
    };
    if poll.deleted_at.is_some() {
        return Ok(());
    }
    let e = event::Entity::find_by_id(ev.id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::Internal(format!("event {} has no events row", ev.ap_id)))?;
    let schedule = Schedule {
        starts_at: e.starts_at,
        ends_at: e.ends_at,
        timezone: e.timezone.clone(),
        location_name: None,
        location_address: None,
        online_url: None,
        capacity: None,
    };
    let title = ev.title.clone().unwrap_or_default();
    let content = poll_text(&title, &schedule, e.status == event::CANCELLED, &ev.ap_id);
    let author = actor::Entity::find_by_id(poll.author_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::Internal(format!("post {} has no author", poll.ap_id)))?;
    posts::update(
        state,
        &author,
        &poll.key,
        posts::PostEdit {
            content: Some(content),
            title: None,
            summary: None,
        },
    )
    .await?;
    Ok(())
}

/// An organiser deletes the event (and its poll); deletes federate as for any post.
pub async fn delete(ctx: &Ctx, m: &actor::Model, spec: &str) -> Result<()> {
    let state = ctx.app_data();
    let p = find_event(ctx, Some(m), spec).await?;
    organiser_check(state, &p, m).await?;
    let author = actor::Entity::find_by_id(p.author_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::Internal(format!("post {} has no author", p.ap_id)))?;
    let poll = match event::Entity::find_by_id(p.id).one(&state.db).await? {
        Some(e) => match e.poll_post_id {
            Some(id) => post::Entity::find_by_id(id).one(&state.db).await?,
            None => None,
        },
        None => None,
    };
    // The organiser's authority was checked above; the posts service checks authorship.
    posts::delete(state, &author, &p.key).await?;
    if let Some(poll) = poll.filter(|q| q.deleted_at.is_none()) {
        posts::delete(state, &author, &poll.key).await?;
    }
    Ok(())
}

/// What the API shows of an event post's event (or of an event's poll).
pub async fn event_view(state: &AppState, p: &post::Model) -> Result<Option<Value>> {
    if p.category != post::EVENT {
        return Ok(None);
    }
    if p.kind == "Question" {
        return Ok(match wire::event_of_poll(&state.db, p.id).await? {
            Some(e) => post::Entity::find_by_id(e.post_id)
                .one(&state.db)
                .await?
                .map(|ev| {
                    json!({
                        "rsvp_poll_for": ev.ap_id,
                        "rsvp_poll_for_key": ev.key,
                        "end_time": e.starts_at,
                        "closed": e.status == event::CANCELLED || Utc::now() >= e.starts_at,
                    })
                }),
            None => None,
        });
    }
    let Some(e) = event::Entity::find_by_id(p.id).one(&state.db).await? else {
        return Ok(None);
    };
    let going = participations::accepted_count(&state.db, p.id).await?;
    let tz: Tz = e.timezone.parse().unwrap_or(Tz::UTC);
    let organiser_rows = event_organiser::Entity::find()
        .filter(event_organiser::Column::EventPostId.eq(p.id))
        .order_by_asc(event_organiser::Column::Id)
        .all(&state.db)
        .await?;
    let organisers: Vec<views::ActorView> = if organiser_rows.is_empty() {
        Vec::new()
    } else {
        actor::Entity::find()
            .filter(actor::Column::Id.is_in(organiser_rows.iter().map(|o| o.actor_id)))
            .all(&state.db)
            .await?
            .iter()
            .map(views::actor_view)
            .collect()
    };
    let tasks: Vec<Value> = tasks_of(&state.db, p.id)
        .await?
        .into_iter()
        .map(|t| json!({"id": t.id, "text": t.text}))
        .collect();
    let poll = match e.poll_post_id {
        Some(id) => post::Entity::find_by_id(id).one(&state.db).await?,
        None => None,
    };
    Ok(Some(json!({
        "starts_at": e.starts_at,
        "ends_at": e.ends_at,
        "timezone": e.timezone,
        "starts_local": e.starts_at.with_timezone(&tz).to_rfc3339(),
        "ends_local": e.ends_at.with_timezone(&tz).to_rfc3339(),
        "location": if e.location_name.is_some() || e.location_address.is_some() {
            json!({"name": e.location_name, "address": e.location_address})
        } else { Value::Null },
        "online_url": e.online_url,
        "capacity": e.capacity,
        "participant_count": going,
        "remaining_places": e.capacity.map(|c| (i64::from(c) - going as i64).max(0)),
        "status": e.status,
        "organisers": organisers,
        "tasks": tasks,
        "rsvp_poll": poll.as_ref().map(|q| &q.ap_id),
        "ics": format!("/api/v1/events/{}.ics", p.key),
        "participants": format!("/api/v1/events/{}/participants", p.key),
    })))
}

/// The post a member names by its key here or by its ActivityPub id (read from its origin
/// when it is not here yet), if `viewer` may read it.
pub async fn find_post(
    ctx: &Ctx,
    viewer: Option<&actor::Model>,
    spec: &str,
) -> Result<post::Model> {
    let state = ctx.app_data();
    let spec = spec.trim();
    let found = if spec.starts_with("https://") || spec.starts_with("http://") {
        let url: url::Url = spec
            .parse()
            .map_err(|e| Error::BadRequest(format!("{spec:?} is not a URL: {e}")))?;
        match post::Entity::find()
            .filter(post::Column::ApId.eq(url.as_str()))
            .one(&state.db)
            .await?
        {
            Some(p) => p,
            None => {
                let fetched = ObjectId::<DbPost>::from(url)
                    .dereference(ctx)
                    .await
                    .map_err(|e| Error::NotFound(format!("could not read {spec}: {e}")))?
                    .0;
                // Storing it may have added to the row (an event's category): read it again.
                post::Entity::find_by_id(fetched.id)
                    .one(&state.db)
                    .await?
                    .unwrap_or(fetched)
            }
        }
    } else {
        post::Entity::find()
            .filter(post::Column::Key.eq(spec))
            .one(&state.db)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no post with key {spec:?}")))?
    };
    if found.deleted_at.is_some() {
        return Err(Error::Gone(format!("post {spec:?} was deleted")));
    }
    if !posts::readable_by(state, &found, viewer).await? {
        return Err(Error::NotFound(format!("no post with key {spec:?}")));
    }
    Ok(found)
}

/// An event or intention `spec` names, for taking part in it.
pub async fn find_participable(
    ctx: &Ctx,
    viewer: Option<&actor::Model>,
    spec: &str,
) -> Result<post::Model> {
    let p = find_post(ctx, viewer, spec).await?;
    if !participations::is_participable(&p) || p.kind == "Question" {
        return Err(Error::NotFound(format!(
            "{spec:?} is a {} post, not an event or intention",
            p.category
        )));
    }
    Ok(p)
}

/// `member` joins the event `spec` names: 409 when it is full.
pub async fn join(ctx: &Ctx, member: &actor::Model, spec: &str) -> Result<Value> {
    let p = find_participable(ctx, Some(member), spec).await?;
    if let Some(e) = event::Entity::find_by_id(p.id).one(&ctx.db).await? {
        if e.status == event::CANCELLED {
            return Err(Error::Conflict("the event was cancelled".into()));
        }
    }
    let row = participations::join(ctx, member, &p).await?;
    if row.state == participation::REJECTED {
        let places = event::Entity::find_by_id(p.id)
            .one(&ctx.db)
            .await?
            .and_then(|e| e.capacity)
            .unwrap_or_default();
        return Err(Error::Conflict(format!(
            "the event is full ({places} place{}); ask an organiser, or try again if someone leaves",
            if places == 1 { "" } else { "s" }
        )));
    }
    Ok(participation_view(&p, &row))
}

pub fn participation_view(p: &post::Model, row: &participation::Model) -> Value {
    json!({
        "post": p.key,
        "id": p.ap_id,
        "state": row.state,
        "via": row.via,
        "joined": row.created_at,
    })
}

/// The viewer's own participation in `p`, if any.
pub async fn my_participation(
    state: &AppState,
    p: &post::Model,
    m: &actor::Model,
) -> Result<Option<Value>> {
    Ok(participations::find(&state.db, p.id, m.id)
        .await?
        .map(|row| participation_view(p, &row)))
}

/// Participants as the API lists them, with the total.
pub async fn participants(
    ctx: &Ctx,
    viewer: Option<&actor::Model>,
    spec: &str,
    search: Option<&str>,
    limit: u64,
    offset: u64,
) -> Result<Value> {
    let p = find_participable(ctx, viewer, spec).await?;
    let items = participations::list(ctx, &p, search, limit, offset).await?;
    // With a search, the total is of those it matches, so a client can page through them.
    let total = match search.filter(|s| !s.trim().is_empty()) {
        Some(_) => participations::matching_count(&ctx.db, &p, search).await?,
        None => participations::accepted_count(&ctx.db, p.id).await?,
    };
    Ok(json!({ "items": items, "total": total, "limit": limit.clamp(1, 200), "offset": offset }))
}

async fn tasks_of<C: ConnectionTrait>(conn: &C, post_id: i64) -> Result<Vec<event_task::Model>> {
    Ok(event_task::Entity::find()
        .filter(event_task::Column::EventPostId.eq(post_id))
        .order_by_asc(event_task::Column::Position)
        .order_by_asc(event_task::Column::Id)
        .all(conn)
        .await?)
}

/// The checklist as `m` sees it: their own ticks, and for organisers how many have done each.
pub async fn tasks(ctx: &Ctx, m: &actor::Model, spec: &str) -> Result<Value> {
    let state = ctx.app_data();
    let p = find_event(ctx, Some(m), spec).await?;
    let organiser = wire::is_organiser(&state.db, &p, m).await?;
    let participants = participations::accepted_count(&state.db, p.id).await?;
    let mut items = Vec::new();
    for t in tasks_of(&state.db, p.id).await? {
        let done = event_task_tick::Entity::find()
            .filter(event_task_tick::Column::TaskId.eq(t.id))
            .filter(event_task_tick::Column::ActorId.eq(m.id))
            .one(&state.db)
            .await?
            .is_some();
        let mut item = json!({"id": t.id, "text": t.text, "done": done});
        if organiser {
            item["done_count"] = json!(
                event_task_tick::Entity::find()
                    .filter(event_task_tick::Column::TaskId.eq(t.id))
                    .count(&state.db)
                    .await?
            );
        }
        items.push(item);
    }
    let mut out = json!({ "items": items });
    if organiser {
        out["participants"] = json!(participants);
    }
    Ok(out)
}

/// An organiser adds a task to the checklist.
pub async fn add_task(ctx: &Ctx, m: &actor::Model, spec: &str, text: &str) -> Result<Value> {
    let state = ctx.app_data();
    let p = find_event(ctx, Some(m), spec).await?;
    organiser_check(state, &p, m).await?;
    let text = check_tasks(&[text.to_owned()])?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Unprocessable("a pre-event task must not be empty".into()))?;
    let existing = tasks_of(&state.db, p.id).await?;
    if existing.len() >= MAX_TASKS {
        return Err(Error::Unprocessable(format!(
            "an event has at most {MAX_TASKS} pre-event tasks"
        )));
    }
    let position = existing.iter().map(|t| t.position + 1).max().unwrap_or(0);
    let t = event_task::ActiveModel {
        event_post_id: Set(p.id),
        position: Set(position),
        text: Set(text),
        ..Default::default()
    }
    .insert(&state.db)
    .await?;
    send_checklist(state, &p).await?;
    Ok(json!({"id": t.id, "text": t.text, "done": false}))
}

async fn task_of(state: &AppState, p: &post::Model, task_id: i64) -> Result<event_task::Model> {
    event_task::Entity::find_by_id(task_id)
        .filter(event_task::Column::EventPostId.eq(p.id))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("the event has no task {task_id}")))
}

/// An organiser removes a task (and everyone's ticks of it).
pub async fn remove_task(ctx: &Ctx, m: &actor::Model, spec: &str, task_id: i64) -> Result<()> {
    let state = ctx.app_data();
    let p = find_event(ctx, Some(m), spec).await?;
    organiser_check(state, &p, m).await?;
    let t = task_of(state, &p, task_id).await?;
    let txn = state.db.begin().await?;
    event_task_tick::Entity::delete_many()
        .filter(event_task_tick::Column::TaskId.eq(t.id))
        .exec(&txn)
        .await?;
    t.delete(&txn).await?;
    txn.commit().await?;
    send_checklist(state, &p).await?;
    Ok(())
}

/// The checklist travels in the event (`cairn:tasks`): an `Update` where the event went.
async fn send_checklist(state: &AppState, p: &post::Model) -> Result<()> {
    let txn = state.db.begin().await?;
    participations::announce_participants(&txn, state, p).await?;
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    Ok(())
}

/// A participant ticks (or unticks) one of their own tasks.
pub async fn tick(
    ctx: &Ctx,
    m: &actor::Model,
    spec: &str,
    task_id: i64,
    done: bool,
) -> Result<Value> {
    let state = ctx.app_data();
    let p = find_event(ctx, Some(m), spec).await?;
    let t = task_of(state, &p, task_id).await?;
    if !participations::is_participant(&state.db, p.id, m.id).await?
        && !wire::is_organiser(&state.db, &p, m).await?
    {
        return Err(Error::Forbidden(
            "join the event first: pre-event tasks are ticked by its participants".into(),
        ));
    }
    if done {
        event_task_tick::Entity::insert(event_task_tick::ActiveModel {
            task_id: Set(t.id),
            actor_id: Set(m.id),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        // On the unique pair: plain on_conflict_do_nothing() targets only the primary key.
        .on_conflict_do_nothing_on([
            event_task_tick::Column::TaskId,
            event_task_tick::Column::ActorId,
        ])
        .exec(&state.db)
        .await?;
    } else {
        event_task_tick::Entity::delete_many()
            .filter(event_task_tick::Column::TaskId.eq(t.id))
            .filter(event_task_tick::Column::ActorId.eq(m.id))
            .exec(&state.db)
            .await?;
    }
    Ok(json!({"id": t.id, "text": t.text, "done": done}))
}

/// A community's events that have not ended, soonest first, as `viewer` may see them.
pub async fn upcoming_in_community(
    state: &AppState,
    viewer: Option<&actor::Model>,
    community: &actor::Model,
    include_past: bool,
) -> Result<Vec<(post::Model, event::Model)>> {
    use crate::store::post_community;
    let joins = post_community::Entity::find()
        .filter(post_community::Column::CommunityId.eq(community.id))
        .all(&state.db)
        .await?;
    if joins.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = event::Entity::find()
        .filter(event::Column::PostId.is_in(joins.iter().map(|j| j.post_id)))
        .order_by_asc(event::Column::StartsAt);
    if !include_past {
        query = query.filter(event::Column::EndsAt.gte(Utc::now()));
    }
    let mut out = Vec::new();
    for e in query.all(&state.db).await? {
        let Some(p) = post::Entity::find_by_id(e.post_id).one(&state.db).await? else {
            continue;
        };
        if p.deleted_at.is_some() || !posts::readable_by(state, &p, viewer).await? {
            continue;
        }
        out.push((p, e));
    }
    Ok(out)
}

/// Plain text of an event's description (for calendars).
pub fn description_text(p: &post::Model) -> String {
    p.source
        .clone()
        .unwrap_or_else(|| {
            sanitize::plain(&p.content.replace("</p>", "\n\n").replace("<br>", "\n"))
        })
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_and_offset_times() {
        let tz = parse_timezone("Europe/London").expect("a zone");
        let summer = parse_time("starts_at", "2026-07-01T09:30", tz).expect("a time");
        assert_eq!(summer.to_rfc3339(), "2026-07-01T08:30:00+00:00");
        let offset = parse_time("starts_at", "2026-07-01T09:30:00+02:00", tz).expect("a time");
        assert_eq!(offset.to_rfc3339(), "2026-07-01T07:30:00+00:00");
        assert!(parse_time("starts_at", "next tuesday", tz).is_err());
        // 01:30 on the last Sunday of March does not exist in London.
        let gap = parse_time("starts_at", "2026-03-29T01:30", tz);
        assert!(matches!(gap, Err(Error::Unprocessable(m)) if m.contains("does not exist")));
        assert!(matches!(
            parse_timezone("Europe/Atlantis"),
            Err(Error::Unprocessable(_))
        ));
    }

    #[test]
    fn schedule_rules() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("t")
                .with_timezone(&Utc)
        };
        let mut s = Schedule {
            starts_at: t("2026-12-10T16:00:00Z"),
            ends_at: t("2026-12-10T15:00:00Z"),
            timezone: "UTC".into(),
            location_name: Some("Room 4".into()),
            location_address: None,
            online_url: None,
            capacity: None,
        };
        assert!(s.check().is_err(), "ends before it starts");
        s.ends_at = t("2026-12-10T17:00:00Z");
        assert!(s.check().is_ok());
        s.location_name = None;
        assert!(s.check().is_err(), "nowhere");
        assert!(capacity(Some(-1)).is_err());
        assert_eq!(capacity(Some(0)).expect("ok"), None);
        assert!(online_url(Some("javascript:alert(1)".into())).is_err());
    }
}
