//! Bearer-token authentication for the JSON API.

use crate::{error::Error, services::members, state::AppState, store::actor};
use activitypub_federation::config::Data;
use axum::{extract::FromRequestParts, http::request::Parts};

/// A signed-in member (required).
pub struct Member(pub actor::Model);

/// A signed-in member, or an anonymous reader.
pub struct MaybeMember(pub Option<actor::Model>);

fn bearer(parts: &Parts) -> Result<Option<String>, Error> {
    let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Error::Unauthorized("the Authorization header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(Error::Unauthorized(
            "use `Authorization: Bearer TOKEN` with the token from `cairn admin create-member`"
                .into(),
        )),
    }
}

async fn state_of(parts: &mut Parts) -> Result<AppState, Error> {
    let data = Data::<AppState>::from_request_parts(parts, &())
        .await
        .map_err(|(_, m)| Error::Internal(m.into()))?;
    Ok(data.app_data().clone())
}

impl<S: Send + Sync> FromRequestParts<S> for Member {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let token = bearer(parts)?.ok_or_else(|| {
            Error::Unauthorized(
                "sign in: send `Authorization: Bearer TOKEN` (from `cairn admin create-member`)"
                    .into(),
            )
        })?;
        let state = state_of(parts).await?;
        Ok(Member(members::authenticate(&state, &token).await?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeMember {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        match bearer(parts)? {
            None => Ok(MaybeMember(None)),
            Some(token) => {
                let state = state_of(parts).await?;
                Ok(MaybeMember(Some(
                    members::authenticate(&state, &token).await?,
                )))
            }
        }
    }
}
