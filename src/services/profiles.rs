//! Member profiles: the fields colleagues see, and the photo behind them.

use super::{members, views};
use crate::{
    error::{Error, Result},
    federation::{actor::DbActor, context, outbox, sanitize, PUBLIC},
    state::{AppState, Ctx},
    store::{actor, follow, post, post_community},
};
use activitypub_federation::{fetch::webfinger::webfinger_resolve_actor, traits::Object};
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use serde::Deserialize;
use serde_json::{json, Value};

pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
pub const MAX_ABOUT_CHARS: usize = 2_000;
pub const MAX_SCHOOL_CHARS: usize = 200;
pub const MAX_ROLE_CHARS: usize = 100;

/// `PATCH /api/v1/me`: each field present is changed; an empty string clears it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileEdit {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub about: Option<String>,
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
        return Err(Error::BadRequest(format!(
            "{what} is longer than {max} characters"
        )));
    }
    if v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::BadRequest(format!(
            "{what} must not contain control characters"
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
    let display_name = field(edit.display_name.as_deref(), "display_name", MAX_DISPLAY_NAME_CHARS)?;
    if display_name
        .as_ref()
        .is_some_and(|d| d.as_ref().is_some_and(|d| d.contains('\n')))
    {
        return Err(Error::BadRequest("display_name must be one line".into()));
    }
    let about = field(edit.about.as_deref(), "about", MAX_ABOUT_CHARS)?;
    let school = field(edit.school.as_deref(), "school", MAX_SCHOOL_CHARS)?;
    let role = field(edit.role.as_deref(), "role", MAX_ROLE_CHARS)?;
    for (what, v) in [("school", &school), ("role", &role)] {
        if v.as_ref().is_some_and(|v| v.as_ref().is_some_and(|v| v.contains('\n'))) {
            return Err(Error::BadRequest(format!("{what} must be one line")));
        }
    }
    let email = match edit.email.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(e) => Some(Some(members::validate_email(e)?)),
    };
    let mut active: actor::ActiveModel = member.clone().into();
    if let Some(d) = display_name {
        active.display_name = Set(d);
    }
    if let Some(a) = about {
        active.summary = Set(a.map(|a| sanitize::text_to_html(&a, |_| None)));
    }
    if let Some(s) = school {
        active.school = Set(s);
    }
    if let Some(r) = role {
        active.role = Set(r);
    }
    if let Some(e) = email {
        active.email = Set(e);
    }
    if let Some(show) = edit.show_email {
        active.show_email = Set(show);
    }
    save_and_announce(state, active).await
}

/// Sets `member`'s profile photo from an uploaded image.
pub async fn set_avatar(
    state: &AppState,
    member: &actor::Model,
    bytes: Vec<u8>,
    declared: Option<&str>,
) -> Result<actor::Model> {
    let url = super::media::store_avatar(state, member, bytes, declared).await?;
    let mut active: actor::ActiveModel = member.clone().into();
    active.icon_url = Set(Some(url));
    save_and_announce(state, active).await
}

async fn save_and_announce(state: &AppState, active: actor::ActiveModel) -> Result<actor::Model> {
    let txn = state.db.begin().await?;
    let saved = if active.is_changed() {
        active.update(&txn).await?
    } else {
        active
            .try_into_model()
            .map_err(|e| Error::Internal(e.to_string()))?
    };
    let sent = queue_person_update(&txn, state, &saved).await?;
    txn.commit().await?;
    if sent > 0 {
        state.delivery_wakeup.notify_one();
    }
    Ok(saved)
}

/// Queues an `Update` of the member's Person to every remote inbox that knows the member: its
/// followers, and the communities elsewhere it follows (whose directories list it).
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
    if inboxes.is_empty() {
        return Ok(0);
    }
    let data = state.clone();
    let person = DbActor::new(member.clone())?;
    let object = serde_json::to_value(person.local_json()?)
        .map_err(|e| Error::Internal(e.to_string()))?;
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
            let found: DbActor = webfinger_resolve_actor(&format!("{name}@{host}"), ctx)
                .await
                .map_err(|e| Error::NotFound(format!("could not find member {name}@{host}: {e}")))?;
            if found.0.kind != crate::federation::actor::PERSON {
                return Err(Error::BadRequest(format!(
                    "{name}@{host} is a {}, not a member",
                    found.0.kind
                )));
            }
            Ok(found.0)
        }
    }
}

/// An introduction is the author's first in each of the post's communities.
pub async fn check_introduction(
    state: &AppState,
    author: &actor::Model,
    groups: &[actor::Model],
) -> Result<()> {
    if groups.is_empty() {
        return Err(Error::BadRequest(
            "an introduction is posted in a community: add a hashtag such as #hwb or \
             \"communities\": [\"hwb\"]"
                .into(),
        ));
    }
    for g in groups {
        if let Some(existing) = introduction_in(&state.db, author.id, g.id).await? {
            return Err(Error::Conflict(format!(
                "you have already introduced yourself in #{} (post {}); edit that post instead, \
                 or post this one without \"introduction\"",
                g.local_name.as_deref().unwrap_or(&g.name),
                existing.key
            )));
        }
    }
    Ok(())
}

/// `author`'s introduction in a community, if any.
pub async fn introduction_in<C: ConnectionTrait>(
    conn: &C,
    author_id: i64,
    community_id: i64,
) -> Result<Option<post::Model>> {
    let candidates = post::Entity::find()
        .filter(post::Column::AuthorId.eq(author_id))
        .filter(post::Column::IsIntroduction.eq(true))
        .filter(post::Column::DeletedAt.is_null())
        .all(conn)
        .await?;
    if candidates.is_empty() {
        return Ok(None);
    }
    let filed = post_community::Entity::find()
        .filter(post_community::Column::CommunityId.eq(community_id))
        .filter(post_community::Column::PostId.is_in(candidates.iter().map(|p| p.id)))
        .one(conn)
        .await?;
    Ok(filed.and_then(|f| candidates.into_iter().find(|p| p.id == f.post_id)))
}

/// The member view with what only the member sees of themselves (email, show_email).
pub fn me_view(m: &actor::Model) -> Value {
    let mut view = serde_json::to_value(views::actor_view(m)).unwrap_or(Value::Null);
    view["email"] = json!(m.email);
    view["show_email"] = json!(m.show_email);
    view
}
