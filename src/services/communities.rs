//! Communities: one local `Group` actor per hashtag.

use super::{keys, members::ensure_name_free, RESERVED_NAMES};
use crate::{
    error::{ConflictExt, Error, Result},
    federation::actor::GROUP,
    hashtag,
    state::AppState,
    store::actor,
};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

/// Creates the community for `tag` (`#HWB`, `hwb`…). Its id uses the normalised name; its
/// name keeps the casing it was defined with.
pub async fn create(
    state: &AppState,
    tag: &str,
    display_name: Option<&str>,
    summary: Option<&str>,
) -> Result<actor::Model> {
    let normalized = hashtag::normalize(tag).map_err(|e| Error::BadRequest(e.to_string()))?;
    if RESERVED_NAMES.contains(&normalized.as_str()) {
        return Err(Error::BadRequest(format!(
            "the name {normalized:?} is reserved"
        )));
    }
    ensure_name_free(state, &normalized).await?;
    let shown = tag.trim().trim_start_matches('#').to_owned();
    let model = keys::new_local_actor(
        &state.origin(),
        keys::LocalActor {
            kind: GROUP,
            ap_id: state.url(&format!("/c/{}", urlencode(&normalized))),
            name: shown.clone(),
            local_name: Some(normalized.clone()),
            display_name: Some(
                display_name
                    .map(str::to_owned)
                    .filter(|d| !d.trim().is_empty())
                    .unwrap_or_else(|| format!("#{shown}")),
            ),
            summary: summary.map(crate::federation::sanitize::escape),
            collections: true,
        },
    )
    .await?;
    model
        .insert(&state.db)
        .await
        .on_conflict(|| format!("the name {normalized:?} is already taken on this instance"))
}

/// Percent-encodes a normalised tag for use in a URL path (non-ASCII tags like `fàilte`).
pub fn urlencode(tag: &str) -> String {
    url::form_urlencoded::byte_serialize(tag.as_bytes()).collect()
}

pub async fn find_local(state: &AppState, tag: &str) -> Result<Option<actor::Model>> {
    let Ok(normalized) = hashtag::normalize(tag) else {
        return Ok(None);
    };
    Ok(actor::Entity::find()
        .filter(actor::Column::LocalName.eq(normalized))
        .filter(actor::Column::Kind.eq(GROUP))
        .filter(actor::Column::Local.eq(true))
        .one(&state.db)
        .await?)
}

pub async fn get_local(state: &AppState, tag: &str) -> Result<actor::Model> {
    find_local(state, tag).await?.ok_or_else(|| {
        Error::NotFound(format!(
            "no community '#{}' on this instance; communities are created by an administrator or by posting with a new hashtag where that is allowed",
            tag.trim_start_matches('#')
        ))
    })
}

pub async fn list_local(state: &AppState) -> Result<Vec<actor::Model>> {
    Ok(actor::Entity::find()
        .filter(actor::Column::Kind.eq(GROUP))
        .filter(actor::Column::Local.eq(true))
        .order_by_asc(actor::Column::LocalName)
        .all(&state.db)
        .await?)
}

/// The local communities for these normalised tags, creating missing ones when the instance's
/// policy allows it.
/// `tags` are `(normalised, as written)`; a new community keeps the written casing.
pub async fn for_tags(state: &AppState, tags: &[(String, String)]) -> Result<Vec<actor::Model>> {
    let mut found = Vec::new();
    for (tag, written) in tags {
        match find_local(state, tag).await? {
            Some(c) => found.push(c),
            None if state.config.communities.auto_create => {
                match create(state, written, None, None).await {
                    Ok(c) => found.push(c),
                    // A member owns that name, or it is reserved: the tag stays a plain tag.
                    Err(Error::Conflict(_)) | Err(Error::BadRequest(_)) => {
                        if let Some(c) = find_local(state, tag).await? {
                            found.push(c);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            None => {}
        }
    }
    Ok(found)
}
