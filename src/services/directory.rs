//! Who is here: a community's members and an event's participants, searchable.

use crate::store::actor;
use sea_orm::{
    sea_query::{Expr, ExprTrait, Func},
    Condition,
};

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

/// One page of a community's directory: its accepted followers that are people (local and
/// remote), by name, each with when they joined and their introduction there.
pub async fn community_members(
    state: &crate::state::AppState,
    community: &actor::Model,
    search: Option<&str>,
    limit: u64,
    offset: u64,
) -> crate::error::Result<(Vec<serde_json::Value>, u64)> {
    use crate::store::follow;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
    let follows = follow::Entity::find()
        .filter(follow::Column::TargetId.eq(community.id))
        .filter(follow::Column::State.eq(follow::ACCEPTED))
        .all(&state.db)
        .await?;
    if follows.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let query = actor::Entity::find()
        .filter(actor::Column::Id.is_in(follows.iter().map(|f| f.follower_id)))
        .filter(actor::Column::Kind.eq(crate::federation::actor::PERSON))
        .filter(search_condition(search));
    let total = query.clone().count(&state.db).await?;
    let people = query
        .order_by_asc(Expr::expr(Func::lower(Expr::col(actor::Column::Name))))
        .order_by_asc(actor::Column::Id)
        .limit(limit.clamp(1, 100))
        .offset(offset)
        .all(&state.db)
        .await?;
    let mut items = Vec::new();
    for p in people {
        let mut view = serde_json::to_value(super::views::actor_view(&p))
            .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
        let introduction =
            super::profiles::introduction_in(&state.db, p.id, community.id).await?;
        view["introduction"] = match introduction {
            Some(i) => serde_json::json!({
                "key": i.key,
                "url": i.url.clone().unwrap_or_else(|| i.ap_id.clone()),
                "id": i.ap_id,
            }),
            None => serde_json::Value::Null,
        };
        view["joined"] = serde_json::json!(follows
            .iter()
            .find(|f| f.follower_id == p.id)
            .map(|f| f.created_at));
        items.push(view);
    }
    Ok((items, total))
}

/// The communities (local and remote) `member` follows, with the follow's state.
pub async fn followed_communities(
    state: &crate::state::AppState,
    member: &actor::Model,
) -> crate::error::Result<Vec<serde_json::Value>> {
    use crate::store::follow;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let follows = follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(member.id))
        .order_by_asc(follow::Column::CreatedAt)
        .all(&state.db)
        .await?;
    let mut out = Vec::new();
    for f in follows {
        let Some(c) = actor::Entity::find_by_id(f.target_id).one(&state.db).await? else {
            continue;
        };
        if c.kind != crate::federation::actor::GROUP {
            continue;
        }
        let mut view = serde_json::to_value(super::views::community_view(state, &c).await?)
            .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
        view["state"] = serde_json::json!(f.state);
        view["joined"] = serde_json::json!(f.created_at);
        out.push(view);
    }
    Ok(out)
}
