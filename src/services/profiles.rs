//! Member profiles: the fields colleagues see, and the photo behind them.

use super::{members, views};
use crate::{
    error::{Error, Result},
    federation::{actor::DbActor, context, outbox, sanitize, PUBLIC},
    state::{AppState, Ctx},
    store::{actor, follow, post, post_community},
};
use activitypub_federation::fetch::webfinger::webfinger_resolve_actor;
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use serde::Deserialize;
use serde_json::{json, Value};

pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
pub const MAX_SUMMARY_CHARS: usize = 2_000;
pub const MAX_SCHOOL_CHARS: usize = 200;
pub const MAX_ROLE_CHARS: usize = 100;

/// `PATCH /api/v1/me`: each field present is changed; an empty string clears it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileEdit {
    #[serde(default)]
    pub display_name: Option<String>,
    /// A few words about themselves (plain text; paragraphs and links kept).
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub school: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub show_email: Option<bool>,
}

/// `Some(None)` clears, `Some(Some(v))` sets, `None` leaves alone.
fn field(value: Option<&str>, what: &str, max: usize) -> Result<Option<Option<String>>> {
    let Some(v) = value.map(str::trim) else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(Some(None));
    }
    if v.chars().count() > max {
        return Err(Error::Unprocessable(format!(
            "{what} is longer than {max} characters; shorten it"
        )));
    }
    if v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::Unprocessable(format!(
            "{what} must not contain control characters (tabs, escapes)"
        )));
    }
    Ok(Some(Some(v.to_owned())))
}

/// Changes `member`'s profile (every field checked before anything is written) and sends the
/// new Person to those who know the member.
pub async fn update(
    state: &AppState,
    member: &actor::Model,
    edit: ProfileEdit,
) -> Result<actor::Model> {
    let display_name = field(
        edit.display_name.as_deref(),
        "display_name",
        MAX_DISPLAY_NAME_CHARS,
    )?;
    let summary = field(edit.summary.as_deref(), "summary", MAX_SUMMARY_CHARS)?;
    let school = field(edit.school.as_deref(), "school", MAX_SCHOOL_CHARS)?;
    let role = field(edit.role.as_deref(), "role", MAX_ROLE_CHARS)?;
    for (what, v) in [
        ("display_name", &display_name),
        ("school", &school),
        ("role", &role),
    ] {
        if v.as_ref()
            .is_some_and(|v| v.as_ref().is_some_and(|v| v.contains('\n')))
        {
            return Err(Error::Unprocessable(format!("{what} must be one line")));
        }
    }
    let email = match edit.email.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(e) => Some(Some(
            members::validate_email(e).map_err(|e| Error::Unprocessable(format!("email: {e}")))?,
        )),
    };
    let email_after = match &email {
        Some(e) => e.as_ref(),
        None => member.email.as_ref(),
    };
    if edit.show_email == Some(true) && email_after.is_none() {
        return Err(Error::Unprocessable(
            "show_email: there is no email to show; send \"email\" with it".into(),
        ));
    }
    let mut active: actor::ActiveModel = member.clone().into();
    if let Some(d) = display_name {
        active.display_name = Set(d);
    }
    if let Some(a) = summary {
        active.summary = Set(a.map(|a| sanitize::text_to_html(&a, |_| None)));
    }
    if let Some(s) = school {
        active.school = Set(s);
    }
    if let Some(r) = role {
        active.role = Set(r);
    }
    let cleared = matches!(email, Some(None));
    if let Some(e) = email {
        active.email = Set(e);
    }
    if let Some(show) = edit.show_email {
        active.show_email = Set(show);
    }
    if cleared {
        // An opt-in to show an address does not carry over to the next one.
        active.show_email = Set(false);
    }
    save_and_announce(state, member, active).await
}

/// Sets `member`'s profile photo from an uploaded image.
pub async fn set_avatar(
    state: &AppState,
    member: &actor::Model,
    bytes: Vec<u8>,
    declared: Option<&str>,
) -> Result<actor::Model> {
    let (url, old) = super::media::store_avatar(state, member, bytes, declared).await?;
    let mut active: actor::ActiveModel = member.clone().into();
    active.icon_url = Set(Some(url));
    let saved = save_and_announce(state, member, active).await?;
    super::media::delete_old_avatars(state, old).await?;
    Ok(saved)
}

/// Removes `member`'s profile photo.
pub async fn remove_avatar(state: &AppState, member: &actor::Model) -> Result<actor::Model> {
    let mut active: actor::ActiveModel = member.clone().into();
    active.icon_url = Set(None);
    let saved = save_and_announce(state, member, active).await?;
    super::media::remove_avatars(state, member).await?;
    Ok(saved)
}

/// Saves a profile change and, when something changed, queues the new Person for those who
/// know the member, in one transaction.
async fn save_and_announce(
    state: &AppState,
    before: &actor::Model,
    active: actor::ActiveModel,
) -> Result<actor::Model> {
    if !active.is_changed() {
        return Ok(before.clone());
    }
    let txn = state.db.begin().await?;
    let saved = active.update(&txn).await?;
    if saved == *before {
        txn.commit().await?;
        return Ok(saved);
    }
    let sent = queue_person_update(&txn, state, &saved).await?;
    txn.commit().await?;
    if sent > 0 {
        state.delivery_wakeup.notify_one();
    }
    Ok(saved)
}

/// Queues an `Update` of the member's Person to every remote inbox that knows the member: its
/// followers, the communities elsewhere it follows (whose directories list it), and the remote
/// followers of the communities here it has posted in (who show its posts with its profile).
async fn queue_person_update<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    member: &actor::Model,
) -> Result<usize> {
    let mut inboxes: Vec<String> =
        crate::federation::addressing::remote_follower_inboxes(conn, member.id)
            .await?
            .into_iter()
            .map(|f| f.inbox)
            .collect();
    let followed: Vec<i64> = follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(member.id))
        .all(conn)
        .await?
        .into_iter()
        .map(|f| f.target_id)
        .collect();
    if !followed.is_empty() {
        inboxes.extend(
            actor::Entity::find()
                .filter(actor::Column::Id.is_in(followed))
                .filter(actor::Column::Local.eq(false))
                .all(conn)
                .await?
                .into_iter()
                .map(|a| a.shared_inbox.unwrap_or(a.inbox)),
        );
    }
    // Instances that know the member only through its posts in a community here (their
    // members follow the Group, which announced the posts) keep a copy of the profile too.
    for group_id in communities_posted_in(conn, member.id).await? {
        inboxes.extend(
            crate::federation::addressing::remote_follower_inboxes(conn, group_id)
                .await?
                .into_iter()
                .map(|f| f.inbox),
        );
    }
    // Communities of one remote instance share its inbox: one delivery each.
    inboxes.sort();
    inboxes.dedup();
    if inboxes.is_empty() {
        return Ok(0);
    }
    let data = state.clone();
    let person = DbActor::new(member.clone())?;
    let object =
        serde_json::to_value(person.local_json()?).map_err(|e| Error::Internal(e.to_string()))?;
    let update = json!({
        "@context": context(),
        "id": outbox::new_activity_id(&data.origin()),
        "type": "Update",
        "actor": member.ap_id,
        "object": object,
        "to": [PUBLIC],
        "cc": member.followers_url.iter().collect::<Vec<_>>(),
        "published": Utc::now().to_rfc3339(),
    });
    outbox::queue(conn, member.id, &update, Some(&member.ap_id), inboxes).await
}

/// The local communities in which `author` has posted (or replied).
async fn communities_posted_in<C: ConnectionTrait>(conn: &C, author_id: i64) -> Result<Vec<i64>> {
    let posts = sea_orm::sea_query::Query::select()
        .column(post::Column::Id)
        .from(post::Entity)
        .and_where(post::Column::AuthorId.eq(author_id))
        .to_owned();
    let ids: Vec<i64> = post_community::Entity::find()
        .filter(post_community::Column::PostId.in_subquery(posts))
        .all(conn)
        .await?
        .into_iter()
        .map(|pc| pc.community_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(actor::Entity::find()
        .filter(actor::Column::Id.is_in(ids))
        .filter(actor::Column::Local.eq(true))
        .all(conn)
        .await?
        .into_iter()
        .map(|g| g.id)
        .collect())
}

/// A member by name: `alice` (here), or `alice@host` (looked up by WebFinger when not known).
pub async fn resolve_member(ctx: &Ctx, spec: &str) -> Result<actor::Model> {
    let spec = spec.trim().trim_start_matches('@');
    let state = ctx.app_data();
    let local = |name: &str| {
        let name = name.to_owned();
        async move {
            members::find_local(state, &name)
                .await?
                .filter(|a| a.kind == crate::federation::actor::PERSON)
                .ok_or_else(|| Error::NotFound(format!("no member {name:?} on this instance")))
        }
    };
    match spec.split_once('@') {
        None => local(spec).await,
        Some((name, host)) if host == state.config.domain => local(name).await,
        Some((name, host)) => {
            let found = match cached_remote(state, name, host).await? {
                Some(cached) => cached,
                None => {
                    webfinger_resolve_actor::<AppState, DbActor>(&format!("{name}@{host}"), ctx)
                        .await
                        .map_err(|e| {
                            tracing::info!("webfinger {name}@{host}: {e}");
                            Error::NotFound(format!("no member {name} at {host}"))
                        })?
                        .0
                }
            };
            if found.kind != crate::federation::actor::PERSON {
                return Err(Error::BadRequest(format!(
                    "{name}@{host} is a {}, not a member",
                    found.kind
                )));
            }
            refreshed(ctx, found).await
        }
    }
}

/// How long a remote member's cached profile is shown before it is read again from its origin
/// (an `Update` may never reach us, e.g. when we know the member only through a community).
pub const REMOTE_PROFILE_FRESH: chrono::Duration = chrono::Duration::minutes(10);

/// A remote actor already known here by `name@host`.
async fn cached_remote(state: &AppState, name: &str, host: &str) -> Result<Option<actor::Model>> {
    let host = host.to_ascii_lowercase();
    let origins = [format!("https://{host}"), format!("http://{host}")];
    Ok(actor::Entity::find()
        .filter(actor::Column::Local.eq(false))
        .filter(actor::Column::Name.eq(name))
        .filter(actor::Column::Origin.is_in(origins))
        .one(&state.db)
        .await?)
}

/// `found`, read again from its origin when the copy is older than [`REMOTE_PROFILE_FRESH`].
/// A member of a server the policy refuses is not shown; a server that does not answer leaves
/// the copy shown.
async fn refreshed(ctx: &Ctx, found: actor::Model) -> Result<actor::Model> {
    if found.local {
        return Ok(found);
    }
    let url = url::Url::parse(&found.ap_id)
        .map_err(|e| Error::Internal(format!("stored actor id {}: {e}", found.ap_id)))?;
    if !ctx.app_data().config.policy().allows(&url) {
        return Err(Error::Forbidden(
            crate::federation::policy::Policy::refusal(&url),
        ));
    }
    if Utc::now() - found.last_refreshed_at < REMOTE_PROFILE_FRESH {
        return Ok(found);
    }
    match activitypub_federation::fetch::object_id::ObjectId::<DbActor>::from(url)
        .dereference_forced(ctx)
        .await
    {
        Ok(fresh) => Ok(fresh.0),
        Err(e) => {
            tracing::warn!("refreshing {}: {e}; showing the copy", found.ap_id);
            Ok(found)
        }
    }
}

/// An introduction is a top-level post, and the author's first in each of its communities.
pub async fn check_introduction(
    state: &AppState,
    author: &actor::Model,
    groups: &[actor::Model],
    in_reply_to: Option<&str>,
) -> Result<()> {
    if in_reply_to.is_some() {
        return Err(Error::Unprocessable(
            "a reply cannot be an introduction; post it on its own in the community".into(),
        ));
    }
    if groups.is_empty() {
        return Err(Error::Unprocessable(
            "an introduction is posted in a community: add a hashtag such as #hwb or \
             \"communities\": [\"hwb\"]"
                .into(),
        ));
    }
    for g in groups {
        let tag = g.local_name.as_deref().unwrap_or(&g.name);
        if let Some(existing) = introduction_in(&state.db, author.id, g.id).await? {
            return Err(Error::Conflict(format!(
                "you have already introduced yourself in #{tag} (post {}); edit that post \
                 instead, or post this one without \"is_introduction\"",
                existing.key
            )));
        }
        if let Some(earlier) = first_post_in(&state.db, author.id, g.id).await? {
            return Err(Error::Conflict(format!(
                "an introduction is your first post in #{tag}, and you have posted there \
                 before (post {}); post this one without \"is_introduction\"",
                earlier.key
            )));
        }
    }
    Ok(())
}

/// The posts filed in a community, as a subquery.
fn filed_in(community_id: i64) -> sea_orm::sea_query::SelectStatement {
    sea_orm::sea_query::Query::select()
        .column(post_community::Column::PostId)
        .from(post_community::Entity)
        .and_where(post_community::Column::CommunityId.eq(community_id))
        .to_owned()
}

/// Any post (not deleted) of `author`'s filed in a community.
async fn first_post_in<C: ConnectionTrait>(
    conn: &C,
    author_id: i64,
    community_id: i64,
) -> Result<Option<post::Model>> {
    Ok(post::Entity::find()
        .filter(post::Column::AuthorId.eq(author_id))
        .filter(post::Column::DeletedAt.is_null())
        .filter(post::Column::Id.in_subquery(filed_in(community_id)))
        .order_by_asc(post::Column::Published)
        .one(conn)
        .await?)
}

/// `author`'s introduction in a community, if any.
pub async fn introduction_in<C: ConnectionTrait>(
    conn: &C,
    author_id: i64,
    community_id: i64,
) -> Result<Option<post::Model>> {
    Ok(post::Entity::find()
        .filter(post::Column::AuthorId.eq(author_id))
        .filter(post::Column::IsIntroduction.eq(true))
        .filter(post::Column::DeletedAt.is_null())
        .filter(post::Column::Id.in_subquery(filed_in(community_id)))
        .order_by_asc(post::Column::Published)
        .one(conn)
        .await?)
}

/// The member view with what only the member sees of themselves (email, show_email).
pub fn me_view(m: &actor::Model) -> Value {
    let mut view = serde_json::to_value(views::actor_view(m)).unwrap_or(Value::Null);
    view["email"] = json!(m.email);
    view["show_email"] = json!(m.show_email);
    view
}
