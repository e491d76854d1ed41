//! CPD events: times, place, capacity, organisers, pre-event tasks.

use super::{participations, posts};
use crate::{
    error::{Error, Result},
    federation::note::DbPost,
    state::{AppState, Ctx},
    store::{actor, event, participation, post},
};
use activitypub_federation::fetch::object_id::ObjectId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;

/// What the API shows of an event post's event.
pub async fn event_view(_state: &AppState, _post: &post::Model) -> Result<Option<Value>> {
    Ok(None)
}

/// The post a member names by its key here or by its ActivityPub id (read from its origin
/// when it is not here yet), if `viewer` may read it.
pub async fn find_post(ctx: &Ctx, viewer: Option<&actor::Model>, spec: &str) -> Result<post::Model> {
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
                ObjectId::<DbPost>::from(url)
                    .dereference(ctx)
                    .await
                    .map_err(|e| Error::NotFound(format!("could not read {spec}: {e}")))?
                    .0
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
    if !participations::is_participable(&p) {
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
    let row = participations::join(ctx, member, &p).await?;
    if row.state == participation::REJECTED {
        let places = event::Entity::find_by_id(p.id)
            .one(&ctx.db)
            .await?
            .and_then(|e| e.capacity)
            .unwrap_or_default();
        return Err(Error::Conflict(format!(
            "the event is full ({places} place{}); leave the waiting to the organisers or try again later",
            if places == 1 { "" } else { "s" }
        )));
    }
    Ok(participation_view(&p, &row))
}

pub fn participation_view(p: &post::Model, row: &participation::Model) -> Value {
    serde_json::json!({
        "post": p.key,
        "id": p.ap_id,
        "state": row.state,
        "via": row.via,
        "joined": row.created_at,
    })
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
    let total = participations::accepted_count(&ctx.db, p.id).await?;
    Ok(serde_json::json!({ "items": items, "total": total }))
}
