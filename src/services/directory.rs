//! Who is here: a community's members and an event's participants, searchable.

use super::{follows, posts, profiles, views};
use crate::{
    error::{Error, Result},
    federation::actor::{GROUP, PERSON},
    state::{AppState, Ctx},
    store::{actor, follow},
};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Func},
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::{json, Value};

/// The condition "name, display name or school contains `search`" (case-insensitive, on
/// SQLite and PostgreSQL alike), for member directories and participant lists.
pub fn search_condition(search: Option<&str>) -> Condition {
    let Some(words) = search.map(str::trim).filter(|s| !s.is_empty()) else {
        return Condition::all();
    };
    let mut all = Condition::all();
    for word in words.split_whitespace() {
        let escaped = word
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        let mut any = Condition::any();
        for column in [
            actor::Column::Name,
            actor::Column::DisplayName,
            actor::Column::School,
        ] {
            any = any.add(
                Expr::expr(Func::lower(Expr::col(column)))
                    .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\')),
            );
        }
        all = all.add(any);
    }
    all
}

/// Longest search accepted (longer ones are typing accidents, or attempts to make LIKE slow).
pub const MAX_SEARCH_CHARS: usize = 100;

/// The accepted followers of a community, as a subquery.
fn follower_ids(community_id: i64) -> sea_orm::sea_query::SelectStatement {
    sea_orm::sea_query::Query::select()
        .column(follow::Column::FollowerId)
        .from(follow::Entity)
        .and_where(follow::Column::TargetId.eq(community_id))
        .and_where(follow::Column::State.eq(follow::ACCEPTED))
        .to_owned()
}

/// One page of a community's directory: its accepted followers that are people (local and
/// remote), by name, each with when they joined and a link to their introduction there (when
/// `viewer` may read it).
pub async fn community_members(
    state: &AppState,
    viewer: &actor::Model,
    community: &actor::Model,
    search: Option<&str>,
    limit: u64,
    offset: u64,
) -> Result<Value> {
    if community.kind != GROUP {
        return Err(Error::BadRequest(format!(
            "{} is not a community",
            community.ap_id
        )));
    }
    if search.is_some_and(|s| s.chars().count() > MAX_SEARCH_CHARS) {
        return Err(Error::BadRequest(format!(
            "search is longer than {MAX_SEARCH_CHARS} characters; search for a name or a school"
        )));
    }
    let query = actor::Entity::find()
        .filter(actor::Column::Id.in_subquery(follower_ids(community.id)))
        .filter(actor::Column::Kind.eq(PERSON))
        .filter(search_condition(search));
    let total = query.clone().count(&state.db).await?;
    let people = query
        .order_by_asc(Expr::expr(Func::lower(Expr::col(actor::Column::Name))))
        .order_by_asc(actor::Column::Id)
        .limit(limit.clamp(1, 100))
        .offset(offset)
        .all(&state.db)
        .await?;
    let joined_at: Vec<follow::Model> = follow::Entity::find()
        .filter(follow::Column::TargetId.eq(community.id))
        .filter(follow::Column::FollowerId.is_in(people.iter().map(|p| p.id)))
        .all(&state.db)
        .await?;
    let mut items = Vec::new();
    for p in people {
        let mut view = serde_json::to_value(views::actor_view(&p))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let introduction = match profiles::introduction_in(&state.db, p.id, community.id).await? {
            Some(i) if posts::readable_by(state, &i, Some(viewer)).await? => json!({
                "key": i.key,
                "id": i.ap_id,
                "url": i.url.clone().unwrap_or_else(|| i.ap_id.clone()),
                "api": state.url(&format!("/api/v1/posts/{}", i.key)),
                "title": i.title,
            }),
            _ => Value::Null,
        };
        view["introduction"] = introduction;
        view["joined"] = json!(joined_at
            .iter()
            .find(|f| f.follower_id == p.id)
            .map(|f| f.created_at));
        items.push(view);
    }
    let next = (offset + (items.len() as u64) < total).then(|| offset + items.len() as u64);
    Ok(json!({
        "items": items,
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": next,
    }))
}

/// `member` joins a community (follows its Group): at once here, by a Follow elsewhere.
/// Returns the follow's state (`accepted` or `pending`).
pub async fn join(
    ctx: &Ctx,
    member: &actor::Model,
    community: &actor::Model,
) -> Result<&'static str> {
    if community.kind != GROUP {
        return Err(Error::BadRequest(format!(
            "{} is a {}, not a community; follow people from a fediverse app",
            community.ap_id, community.kind
        )));
    }
    follows::follow(ctx, member, community).await
}

/// The communities named (hashtags here, `tag@host` elsewhere), each once, in order; any
/// unknown one fails the whole list, so that nothing is joined on a typing mistake.
pub async fn resolve_all(ctx: &Ctx, specs: &[String]) -> Result<Vec<actor::Model>> {
    if specs.is_empty() {
        return Err(Error::BadRequest(
            "name at least one community to join, e.g. {\"join\": [\"hwb\", \"cpdlead\"]}".into(),
        ));
    }
    if specs.len() > 50 {
        return Err(Error::BadRequest(
            "join at most 50 communities at once".into(),
        ));
    }
    let mut found: Vec<actor::Model> = Vec::new();
    for spec in specs {
        let c = follows::resolve_community(ctx, spec).await?;
        if !found.iter().any(|f| f.id == c.id) {
            found.push(c);
        }
    }
    Ok(found)
}

/// Joins every community named (all checked before any is joined).
pub async fn join_all(ctx: &Ctx, member: &actor::Model, specs: &[String]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for c in resolve_all(ctx, specs).await? {
        let state = join(ctx, member, &c).await?;
        let mut view = serde_json::to_value(views::community_view(ctx.app_data(), &c).await?)
            .map_err(|e| Error::Internal(e.to_string()))?;
        view["state"] = json!(state);
        out.push(view);
    }
    Ok(out)
}

/// The communities (local and remote) `member` follows, with the follow's state.
pub async fn followed_communities(state: &AppState, member: &actor::Model) -> Result<Vec<Value>> {
    let follows = follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(member.id))
        .order_by_asc(follow::Column::CreatedAt)
        .all(&state.db)
        .await?;
    let mut out = Vec::new();
    for f in follows {
        let Some(c) = actor::Entity::find_by_id(f.target_id)
            .one(&state.db)
            .await?
        else {
            continue;
        };
        if c.kind != GROUP {
            continue;
        }
        let mut view = serde_json::to_value(views::community_view(state, &c).await?)
            .map_err(|e| Error::Internal(e.to_string()))?;
        view["state"] = json!(f.state);
        view["joined"] = json!(f.created_at);
        out.push(view);
    }
    Ok(out)
}
