//! The error of the service and federation layers. The HTTP layer turns it into a response
//! (`http::error`); client errors carry a message that says what to do next.

use activitypub_federation::error::Error as FederationError;
use axum::http::StatusCode;
use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    /// A remote server did not answer as it should.
    #[error("{0}")]
    Remote(String),
    #[error(transparent)]
    Federation(#[from] FederationError),
    #[error(transparent)]
    Database(#[from] DbErr),
    #[error("{0}")]
    Internal(String),
    /// An upload over the configured size.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// An upload of a kind of file that is not accepted.
    #[error("{0}")]
    UnsupportedMediaType(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Gone(_) => StatusCode::GONE,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Remote(_) => StatusCode::BAD_GATEWAY,
            Error::Federation(e) => federation_status(e),
            Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// Whether the message may be shown to the client (internal details are only logged).
    pub fn is_client_error(&self) -> bool {
        !self.status_code().is_server_error()
    }
}

/// Errors from the federation crate come from what a remote sent us or from fetching what it
/// named; none of them is our fault, so none is a 5xx.
fn federation_status(error: &FederationError) -> StatusCode {
    use FederationError as E;
    match error {
        E::ActivityBodyDigestInvalid | E::ActivitySignatureInvalid => StatusCode::UNAUTHORIZED,
        E::NotFound => StatusCode::NOT_FOUND,
        E::ObjectDeleted(_) => StatusCode::GONE,
        E::ParseReceivedActivity { .. }
        | E::UrlVerificationError(_)
        | E::DomainResolveError(_)
        | E::ResolveInternalIpError(..)
        | E::UrlParse(_)
        | E::Utf8(_) => StatusCode::BAD_REQUEST,
        E::SerializeOutgoingActivity(..) | E::ActivityQueueError(_) | E::StopActivityQueue(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// Maps a violated unique constraint to a client error with a useful message.
pub trait ConflictExt<T> {
    fn on_conflict(self, message: impl FnOnce() -> String) -> Result<T>;
}

impl<T> ConflictExt<T> for std::result::Result<T, DbErr> {
    fn on_conflict(self, message: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| match e.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => Error::Conflict(message()),
            _ => Error::Database(e),
        })
    }
}
