//! Errors as HTTP responses: `{"error": "..."}` with the error's status. Server-side failures
//! are logged and answered with a generic message.

use crate::error::Error;
use axum::{
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let message = if status.is_server_error() {
            tracing::error!("{status}: {self:?}");
            "internal error; the administrator can find details in the server log".to_owned()
        } else {
            self.to_string()
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}
