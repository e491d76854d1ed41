//! "I intend": an intention with a target date that colleagues can share.
//!
//! An intention is a post (category `intention`, a `Note` on the wire) plus an `intentions` row
//! (target date, status, the CPD it came from). Its owner is a participant from the start, so
//! reminders and the participant list treat owner and colleagues alike.

use super::{
    follows, participations, posts, reminders,
    views::{self, PostView},
};
use crate::{
    error::{Error, Result},
    federation::{note::DbPost, sanitize},
    state::{AppState, Ctx},
    store::{actor, intention, participation, post, post_community},
};
use activitypub_federation::fetch::object_id::ObjectId;
use chrono::{NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TransactionTrait,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// Longest an intention's text may be (it is a sentence or a paragraph, not an essay).
pub const MAX_TEXT_CHARS: usize = 2_000;
/// How far ahead a target date may be.
pub const MAX_YEARS_AHEAD: i32 = 5;

const INTEND_PREFIX: &str = "I intend to ";
const DATE_LINE: &str = "\n\nTarget date: ";
const ACHIEVED_LINE: &str = " (achieved on ";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIntention {
    pub text: String,
    pub target_date: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub communities: Vec<String>,
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentionEdit {
    #[serde(default)]
    pub target_date: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: u64,
    pub offset: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    pub content: String,
}

/// "14 March 2027": readable in any client, Mastodon included.
pub fn format_date(date: NaiveDate) -> String {
    date.format("%-d %B %Y").to_string()
}

pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A target date from the API: `YYYY-MM-DD`, today (UTC) or later, within a few years.
pub fn parse_target_date(input: &str) -> Result<NaiveDate> {
    let date = NaiveDate::parse_from_str(input.trim(), "%Y-%m-%d").map_err(|_| {
        Error::BadRequest(format!(
            "target_date {input:?} is not a date: write it as YYYY-MM-DD, e.g. 2027-03-14"
        ))
    })?;
    let today = today();
    if date < today {
        return Err(Error::BadRequest(format!(
            "target_date {date} is in the past: choose today ({today}) or a later day"
        )));
    }
    if date > today + chrono::Duration::days(365 * i64::from(MAX_YEARS_AHEAD)) {
        return Err(Error::BadRequest(format!(
            "target_date {date} is more than {MAX_YEARS_AHEAD} years away: choose a nearer day"
        )));
    }
    Ok(date)
}

fn check_text(text: &str) -> Result<String> {
    let text = text.trim();
    // "I intend to I intend to…" reads badly; people often type the prefix themselves.
    let prefix = INTEND_PREFIX.trim_end();
    let text = match text.get(..prefix.len()) {
        Some(head)
            if head.eq_ignore_ascii_case(prefix)
                && text[prefix.len()..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace) =>
        {
            text[prefix.len()..].trim()
        }
        _ => text,
    };
    if text.is_empty() {
        return Err(Error::BadRequest(
            "text must say what you intend to change in your practice".into(),
        ));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(Error::BadRequest(format!(
            "text is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(text.to_owned())
}

/// The post's text: readable as it stands where Cairn's terms mean nothing (Mastodon).
fn compose(
    text: &str,
    date: NaiveDate,
    source: Option<&post::Model>,
    achieved: Option<NaiveDate>,
) -> String {
    let mut out = format!("{INTEND_PREFIX}{text}{DATE_LINE}{}", format_date(date));
    if let Some(day) = achieved {
        out.push_str(&format!("{ACHIEVED_LINE}{})", format_date(day)));
    }
    if let Some(s) = source {
        let url = s.url.clone().unwrap_or_else(|| s.ap_id.clone());
        match s.title.as_deref().filter(|t| !t.trim().is_empty()) {
            Some(title) => out.push_str(&format!("\n\nFrom: {} {url}", sanitize::plain(title))),
            None => out.push_str(&format!("\n\nFrom: {url}")),
        }
    }
    out
}

/// The text the owner wrote, out of the composed source.
fn text_of(source: &str) -> String {
    let body = source.strip_prefix(INTEND_PREFIX).unwrap_or(source);
    match body.rfind(DATE_LINE) {
        Some(i) => body[..i].to_owned(),
        None => body.to_owned(),
    }
}

/// The post a `source` names: its URL (ActivityPub id or page) or a local key; we never fetch.
async fn find_source(state: &AppState, author: &actor::Model, spec: &str) -> Result<post::Model> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(Error::BadRequest(
            "source is empty: give the URL or key of the event or post, or leave it out".into(),
        ));
    }
    let found = if spec.contains("://") {
        let url = url::Url::parse(spec)
            .map_err(|e| Error::BadRequest(format!("source {spec:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::BadRequest(format!(
                "source {spec:?} must be an http(s) URL"
            )));
        }
        post::Entity::find()
            .filter(
                sea_orm::Condition::any()
                    .add(post::Column::ApId.eq(url.as_str()))
                    .add(post::Column::Url.eq(url.as_str()))
                    .add(post::Column::ApId.eq(spec))
                    .add(post::Column::Url.eq(spec)),
            )
            .one(&state.db)
            .await?
    } else {
        if !spec
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::BadRequest(format!(
                "source {spec:?} is neither a URL nor a post key"
            )));
        }
        post::Entity::find()
            .filter(post::Column::Key.eq(spec))
            .one(&state.db)
            .await?
    };
    let not_found = || {
        Error::NotFound(format!(
            "source {spec:?} is not a post or event this instance knows: open it here first, \
             or leave source out"
        ))
    };
    let found = found.ok_or_else(not_found)?;
    if found.deleted_at.is_some() || !posts::readable_by(state, &found, Some(author)).await? {
        return Err(not_found());
    }
    Ok(found)
}

pub async fn create(
    state: &AppState,
    author: &actor::Model,
    input: NewIntention,
) -> Result<PostView> {
    let text = check_text(&input.text)?;
    let target_date = parse_target_date(&input.target_date)?;
    let source = match input.source.as_deref() {
        None => None,
        Some(s) => Some(find_source(state, author, s).await?),
    };
    let content = compose(&text, target_date, source.as_ref(), None);
    let source_ap_id = source.as_ref().map(|s| s.ap_id.clone());
    let owner = author.clone();
    let config = state.config.clone();
    let after_insert: posts::AfterInsert = Box::new(move |txn, saved| {
        Box::pin(async move {
            intention::ActiveModel {
                post_id: Set(saved.id),
                target_date: Set(target_date),
                status: Set(intention::ACTIVE.into()),
                source_ap_id: Set(source_ap_id),
                achieved_at: Set(None),
            }
            .insert(txn)
            .await?;
            add_owner(txn, saved.id, owner.id).await?;
            reminders::schedule_intention(txn, &config, saved.id).await?;
            Ok(())
        })
    });
    posts::create_with(
        state,
        author,
        posts::NewPost {
            content,
            title: input.title,
            visibility: input.visibility,
            communities: input.communities,
            ..Default::default()
        },
        posts::Extras {
            kind: None,
            category: Some(post::INTENTION),
            after_insert: Some(after_insert),
        },
    )
    .await
}

/// The owner takes part in their own intention (reminders and the participant list).
pub async fn add_owner<C: ConnectionTrait>(conn: &C, post_id: i64, owner_id: i64) -> Result<()> {
    participation::Entity::insert(participation::ActiveModel {
        post_id: Set(post_id),
        actor_id: Set(owner_id),
        state: Set(participation::ACCEPTED.into()),
        via: Set(participation::VIA_LOCAL.into()),
        activity_id: Set(None),
        created_at: Set(Utc::now()),
        ..Default::default()
    })
    // On the unique pair, not the primary key: every Update of a remote intention calls this
    // again, and a repeat must change nothing rather than fail the inbox.
    .on_conflict_do_nothing_on([
        participation::Column::PostId,
        participation::Column::ActorId,
    ])
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// An intention post by key, as `viewer` may see it (404 otherwise).
pub async fn find(
    state: &AppState,
    viewer: Option<&actor::Model>,
    key: &str,
) -> Result<(post::Model, intention::Model)> {
    let not_found = || Error::NotFound(format!("no intention with key {key:?}"));
    // A remote intention is named by its ActivityPub id as well as by its key here.
    let column = if key.contains("://") {
        post::Column::ApId
    } else {
        post::Column::Key
    };
    let p = post::Entity::find()
        .filter(column.eq(key.trim()))
        .one(&state.db)
        .await?
        .ok_or_else(not_found)?;
    checked(state, viewer, key, p).await
}

/// An intention named by its key here or by its ActivityPub id; one on another instance that
/// is not known here yet is read from its origin (so a colleague elsewhere can join it).
pub async fn resolve(
    ctx: &Ctx,
    viewer: Option<&actor::Model>,
    spec: &str,
) -> Result<(post::Model, intention::Model)> {
    let spec = spec.trim();
    if !spec.contains("://") {
        return find(ctx.app_data(), viewer, spec).await;
    }
    let url = url::Url::parse(spec).map_err(|e| {
        Error::BadRequest(format!(
            "{spec:?} is neither an intention key nor a URL: {e}"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::BadRequest(format!(
            "{spec:?} must be an http(s) URL"
        )));
    }
    let known = post::Entity::find()
        .filter(post::Column::ApId.eq(url.as_str()))
        .one(&ctx.db)
        .await?;
    let p = match known {
        Some(p) => p,
        None => {
            let fetched = ObjectId::<DbPost>::from(url)
                .dereference(ctx)
                .await
                .map_err(|e| {
                    Error::NotFound(format!(
                        "could not read the intention {spec} from its instance: {e}"
                    ))
                })?
                .0;
            // Read again: storing it as an intention changed the row after the fetch.
            post::Entity::find_by_id(fetched.id)
                .one(&ctx.db)
                .await?
                .unwrap_or(fetched)
        }
    };
    checked(ctx.app_data(), viewer, spec, p).await
}

async fn checked(
    state: &AppState,
    viewer: Option<&actor::Model>,
    key: &str,
    p: post::Model,
) -> Result<(post::Model, intention::Model)> {
    let not_found = || Error::NotFound(format!("no intention with key {key:?}"));
    if p.deleted_at.is_some() {
        return Err(Error::Gone(format!("intention {key:?} was deleted")));
    }
    if !posts::readable_by(state, &p, viewer).await? {
        return Err(not_found());
    }
    let i = intention::Entity::find_by_id(p.id)
        .one(&state.db)
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "post {key:?} is not an intention; see GET /api/v1/posts/{key}"
            ))
        })?;
    Ok((p, i))
}

async fn own(
    state: &AppState,
    owner: &actor::Model,
    key: &str,
) -> Result<(post::Model, intention::Model)> {
    let (p, i) = find(state, Some(owner), key).await?;
    if !p.local {
        return Err(Error::Forbidden(
            "this intention is on another instance: only its owner there can change it; \
             joining it lets you share it and post progress"
                .into(),
        ));
    }
    if p.author_id != owner.id {
        return Err(Error::Forbidden(
            "only the owner can change an intention; joining it lets you share it and post \
             progress"
                .into(),
        ));
    }
    Ok((p, i))
}

pub async fn get(state: &AppState, viewer: Option<&actor::Model>, key: &str) -> Result<PostView> {
    let (p, _) = find(state, viewer, key).await?;
    views::post_view(state, &p).await
}

/// Changes the text or moves the date; a moved date schedules reminders anew for everyone
/// (the rows for the old date stay, unsent and inert).
pub async fn edit(
    state: &AppState,
    owner: &actor::Model,
    key: &str,
    edit: IntentionEdit,
) -> Result<PostView> {
    let (p, i) = own(state, owner, key).await?;
    if edit.target_date.is_none() && edit.text.is_none() {
        return Err(Error::BadRequest(
            "nothing to change: send target_date and/or text".into(),
        ));
    }
    let target_date = match edit.target_date.as_deref() {
        Some(d) => parse_target_date(d)?,
        None => i.target_date,
    };
    let text = match edit.text.as_deref() {
        Some(t) => check_text(t)?,
        None => text_of(p.source.as_deref().unwrap_or_default()),
    };
    let mut active: intention::ActiveModel = i.into();
    active.target_date = Set(target_date);
    save(state, p, active, &text).await
}

/// Marks the intention achieved (`true`: no more reminders) or active again (`false`).
pub async fn set_achieved(
    state: &AppState,
    owner: &actor::Model,
    key: &str,
    achieved: bool,
) -> Result<PostView> {
    let (p, i) = own(state, owner, key).await?;
    let text = text_of(p.source.as_deref().unwrap_or_default());
    let mut active: intention::ActiveModel = i.into();
    if achieved {
        active.status = Set(intention::ACHIEVED.into());
        active.achieved_at = Set(Some(Utc::now()));
    } else {
        active.status = Set(intention::ACTIVE.into());
        active.achieved_at = Set(None);
    }
    save(state, p, active, &text).await
}

/// Stores a changed intention with its text composed again (date and status are in the text
/// for readers that know nothing of Cairn), reschedules reminders, and sends the `Update`.
async fn save(
    state: &AppState,
    p: post::Model,
    changed: intention::ActiveModel,
    text: &str,
) -> Result<PostView> {
    let txn = state.db.begin().await?;
    let i = changed.update(&txn).await?;
    let source = match &i.source_ap_id {
        Some(id) => {
            post::Entity::find()
                .filter(post::Column::ApId.eq(id.as_str()))
                .one(&txn)
                .await?
        }
        None => None,
    };
    let achieved = i.achieved_at.map(|t| t.date_naive());
    let content = compose(text, i.target_date, source.as_ref(), achieved);
    let mut post_active: post::ActiveModel = p.into();
    post_active.content = Set(posts::render_text(state, &content));
    post_active.source = Set(Some(content));
    post_active.updated = Set(Some(Utc::now()));
    let saved = post_active.update(&txn).await?;
    reminders::schedule_intention(&txn, &state.config, saved.id).await?;
    // Where the intention went, and to every remote participant, whose instance reschedules.
    participations::announce_participants(&txn, state, &saved).await?;
    txn.commit().await?;
    state.delivery_wakeup.notify_one();
    views::post_view(state, &saved).await
}

/// Whether `member` takes part (owner or accepted participant).
async fn takes_part(state: &AppState, p: &post::Model, member: &actor::Model) -> Result<bool> {
    if p.author_id == member.id {
        return Ok(true);
    }
    Ok(participation::Entity::find()
        .filter(participation::Column::PostId.eq(p.id))
        .filter(participation::Column::ActorId.eq(member.id))
        .filter(participation::Column::State.eq(participation::ACCEPTED))
        .one(&state.db)
        .await?
        .is_some())
}

/// A progress update: a reply in the intention's thread, by the owner or a participant, seen
/// by the same readers as the intention.
pub async fn progress(
    state: &AppState,
    member: &actor::Model,
    key: &str,
    input: Progress,
) -> Result<PostView> {
    let (p, _) = find(state, Some(member), key).await?;
    if !takes_part(state, &p, member).await? {
        return Err(Error::Forbidden(
            "only the owner and participants post progress: join the intention first".into(),
        ));
    }
    posts::create(
        state,
        member,
        posts::NewPost {
            content: input.content,
            visibility: Some(p.visibility.clone()),
            in_reply_to: Some(p.ap_id.clone()),
            ..Default::default()
        },
    )
    .await
}

/// `member` shares the intention: at once for one of ours, by a `Join` to its instance for a
/// remote one (`pending` until that instance accepts; their own instance then reminds them).
pub async fn join(ctx: &Ctx, member: &actor::Model, key: &str) -> Result<Value> {
    let state = ctx.app_data();
    let (p, i) = resolve(ctx, Some(member), key).await?;
    if i.status != intention::ACTIVE {
        return Err(Error::Conflict(
            "this intention is already achieved: declare your own, naming it as the source".into(),
        ));
    }
    let joined = participations::join(ctx, member, &p).await?;
    if joined.state == participation::ACCEPTED {
        reminders::schedule_intention(&state.db, &state.config, p.id).await?;
    }
    Ok(json!({ "state": joined.state, "intention": views::post_view(state, &p).await? }))
}

pub async fn leave(ctx: &Ctx, member: &actor::Model, key: &str) -> Result<()> {
    let (p, _) = resolve(ctx, Some(member), key).await?;
    if p.author_id == member.id {
        return Err(Error::BadRequest(
            "the owner cannot leave their own intention: mark it achieved or delete the post"
                .into(),
        ));
    }
    participations::leave(ctx, member, &p).await
}

pub async fn participants(
    ctx: &Ctx,
    viewer: Option<&actor::Model>,
    key: &str,
    search: Option<&str>,
    limit: u64,
    offset: u64,
) -> Result<Vec<Value>> {
    let (p, _) = resolve(ctx, viewer, key).await?;
    participations::list(ctx, &p, search, limit.clamp(1, 100), offset).await
}

/// Views of the intentions among `post_ids` that `viewer` may read: active ones first, soonest
/// target date first, one page.
async fn views_soonest_first(
    state: &AppState,
    viewer: Option<&actor::Model>,
    post_ids: Vec<i64>,
    page: Page,
) -> Result<Vec<PostView>> {
    if post_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<(intention::Model, post::Model)> = Vec::new();
    let intentions = intention::Entity::find()
        .filter(intention::Column::PostId.is_in(post_ids.clone()))
        .all(&state.db)
        .await?;
    let found = post::Entity::find()
        .filter(post::Column::Id.is_in(post_ids))
        .filter(post::Column::DeletedAt.is_null())
        .all(&state.db)
        .await?;
    for i in intentions {
        if let Some(p) = found.iter().find(|p| p.id == i.post_id) {
            rows.push((i, p.clone()));
        }
    }
    // Active ones first (they are what is coming up), then by date.
    rows.sort_by_key(|(i, p)| (i.status != intention::ACTIVE, i.target_date, p.id));
    let mut out = Vec::new();
    let mut skipped = 0;
    for (_, p) in rows {
        if !posts::readable_by(state, &p, viewer).await? {
            continue;
        }
        // Offsets count what this reader can see, so pages do not shift with visibility.
        if skipped < page.offset {
            skipped += 1;
            continue;
        }
        out.push(views::post_view(state, &p).await?);
        if out.len() as u64 >= page.limit.clamp(1, 100) {
            break;
        }
    }
    Ok(out)
}

/// The member's own intentions and those they joined (or asked to join).
pub async fn mine(state: &AppState, member: &actor::Model, page: Page) -> Result<Vec<PostView>> {
    let mut ids: Vec<i64> = participation::Entity::find()
        .filter(participation::Column::ActorId.eq(member.id))
        .filter(participation::Column::State.ne(participation::REJECTED))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|p| p.post_id)
        .collect();
    ids.extend(
        post::Entity::find()
            .filter(post::Column::AuthorId.eq(member.id))
            .filter(post::Column::Category.eq(post::INTENTION))
            .all(&state.db)
            .await?
            .into_iter()
            .map(|p| p.id),
    );
    ids.sort_unstable();
    ids.dedup();
    views_soonest_first(state, Some(member), ids, page).await
}

/// A community's intentions, local and remote.
pub async fn in_community(
    ctx: &Ctx,
    viewer: Option<&actor::Model>,
    tag: &str,
    page: Page,
) -> Result<Vec<PostView>> {
    let c = follows::resolve_community(ctx, tag).await?;
    let state = ctx.app_data();
    let ids: Vec<i64> = post_community::Entity::find()
        .filter(post_community::Column::CommunityId.eq(c.id))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|j| j.post_id)
        .collect();
    views_soonest_first(state, viewer, ids, page).await
}

/// What the API shows of an intention post's intention.
pub async fn intention_view(state: &AppState, p: &post::Model) -> Result<Option<Value>> {
    let Some(i) = intention::Entity::find_by_id(p.id).one(&state.db).await? else {
        return Ok(None);
    };
    let source = match &i.source_ap_id {
        None => Value::Null,
        Some(id) => {
            let known = post::Entity::find()
                .filter(post::Column::ApId.eq(id.as_str()))
                .one(&state.db)
                .await?
                .filter(|s| s.deleted_at.is_none());
            match known {
                Some(s) => json!({"key": s.key, "id": s.ap_id, "title": s.title}),
                None => json!({"key": null, "id": id, "title": null}),
            }
        }
    };
    let participants = participation::Entity::find()
        .filter(participation::Column::PostId.eq(p.id))
        .filter(participation::Column::State.eq(participation::ACCEPTED))
        .all(&state.db)
        .await?
        .len();
    Ok(Some(json!({
        "target_date": i.target_date.to_string(),
        "status": i.status,
        "achieved_at": i.achieved_at,
        "source": source,
        "participants": participants,
        "days_left": (i.target_date - today()).num_days(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_text_reads_well_and_gives_back_the_owner_text() {
        let date = NaiveDate::from_ymd_opt(2027, 3, 14).unwrap();
        let composed = compose("use exit tickets #hwb", date, None, None);
        assert_eq!(
            composed,
            "I intend to use exit tickets #hwb\n\nTarget date: 14 March 2027"
        );
        assert_eq!(text_of(&composed), "use exit tickets #hwb");
        let done = compose("try #hwb", date, None, NaiveDate::from_ymd_opt(2027, 3, 1));
        assert_eq!(
            done,
            "I intend to try #hwb\n\nTarget date: 14 March 2027 (achieved on 1 March 2027)"
        );
        assert_eq!(text_of(&done), "try #hwb");
    }

    #[test]
    fn dates_must_be_real_and_not_past() {
        assert!(parse_target_date("2027-02-30").is_err());
        assert!(parse_target_date("14/03/2027").is_err());
        assert!(parse_target_date("2000-01-01").is_err());
        assert_eq!(parse_target_date(&today().to_string()).unwrap(), today());
    }

    #[test]
    fn the_prefix_is_not_doubled() {
        assert_eq!(check_text("I intend to try").unwrap(), "try");
        assert_eq!(check_text("i INTEND to  try").unwrap(), "try");
        assert_eq!(
            check_text("I intend together").unwrap(),
            "I intend together"
        );
        assert!(check_text("I intend to ").is_err());
        assert!(check_text("I intend to").is_err());
        assert!(check_text("   ").is_err());
    }
}
