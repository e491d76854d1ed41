//! Members: local `Person` actors with API tokens.

use super::{keys, RESERVED_NAMES};
use crate::{
    error::{ConflictExt, Error, Result},
    federation::actor::PERSON,
    state::AppState,
    store::{actor, api_token},
};
use chrono::Utc;
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use sha2::{Digest, Sha256};

/// Checks a member name: 1–30 of `a-z`, `0-9`, `_`, and not reserved.
pub fn validate_member_name(name: &str) -> Result<String> {
    let lower = name.trim().to_ascii_lowercase();
    if lower.is_empty() || lower.len() > 30 {
        return Err(Error::BadRequest(format!(
            "member name {name:?} must be 1 to 30 characters"
        )));
    }
    if !lower
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::BadRequest(format!(
            "member name {name:?} may hold only letters a-z, digits and underscores"
        )));
    }
    if RESERVED_NAMES.contains(&lower.as_str()) {
        return Err(Error::BadRequest(format!("the name {lower:?} is reserved")));
    }
    Ok(lower)
}

/// Creates a member and returns it with a new API token (shown once, stored hashed).
pub async fn create(
    state: &AppState,
    name: &str,
    display_name: Option<&str>,
) -> Result<(actor::Model, String)> {
    let name = validate_member_name(name)?;
    ensure_name_free(state, &name).await?;
    let model = keys::new_local_actor(
        &state.origin(),
        keys::LocalActor {
            kind: PERSON,
            ap_id: state.url(&format!("/u/{name}")),
            name: name.clone(),
            local_name: Some(name.clone()),
            display_name: display_name
                .map(str::to_owned)
                .filter(|d| !d.trim().is_empty()),
            summary: None,
            collections: true,
        },
    )
    .await?;
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let member = model
        .insert(&txn)
        .await
        .on_conflict(|| format!("the name {name:?} is already taken on this instance"))?;
    let token = new_token();
    api_token::ActiveModel {
        actor_id: Set(member.id),
        token_hash: Set(hash_token(&token)),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok((member, token))
}

/// A further token for an existing member (the first is printed at creation only).
pub async fn issue_token(state: &AppState, member: &actor::Model) -> Result<String> {
    let token = new_token();
    api_token::ActiveModel {
        actor_id: Set(member.id),
        token_hash: Set(hash_token(&token)),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&state.db)
    .await?;
    Ok(token)
}

pub async fn ensure_name_free(state: &AppState, normalized: &str) -> Result<()> {
    let taken = actor::Entity::find()
        .filter(actor::Column::LocalName.eq(normalized))
        .one(&state.db)
        .await?;
    match taken {
        Some(a) => Err(Error::Conflict(format!(
            "the name {normalized:?} is already taken on this instance (by a {})",
            if a.kind == PERSON {
                "member"
            } else {
                "community"
            }
        ))),
        None => Ok(()),
    }
}

/// The member a bearer token belongs to.
pub async fn authenticate(state: &AppState, token: &str) -> Result<actor::Model> {
    let found = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(hash_token(token.trim())))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::Unauthorized("unknown or revoked API token".into()))?;
    actor::Entity::find_by_id(found.actor_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::Unauthorized("the token's member no longer exists".into()))
}

pub async fn find_local(state: &AppState, name: &str) -> Result<Option<actor::Model>> {
    Ok(actor::Entity::find()
        .filter(actor::Column::LocalName.eq(name.to_lowercase()))
        .filter(actor::Column::Local.eq(true))
        .one(&state.db)
        .await?)
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks an email address enough to catch typing mistakes: one `@`, something either side,
/// a dot in the domain, no spaces or angle brackets, at most 254 characters.
pub fn validate_email(email: &str) -> Result<String> {
    let email = email.trim();
    let ok = email.len() <= 254
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>' || c == ',')
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if !ok {
        return Err(Error::BadRequest(format!(
            "{email:?} is not an email address (expected name@school.example)"
        )));
    }
    Ok(email.to_owned())
}

/// Sets where a member's reminder emails go.
pub async fn set_email(
    state: &AppState,
    member: &actor::Model,
    email: &str,
) -> Result<actor::Model> {
    let email = validate_email(email)?;
    let mut active: actor::ActiveModel = member.clone().into();
    active.email = Set(Some(email));
    Ok(active.update(&state.db).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names() {
        assert_eq!(
            validate_member_name("Alice_1").ok().as_deref(),
            Some("alice_1")
        );
        assert!(validate_member_name("admin").is_err());
        assert!(validate_member_name("a b").is_err());
        assert!(validate_member_name("").is_err());
        assert!(validate_member_name(&"x".repeat(31)).is_err());
    }
}
