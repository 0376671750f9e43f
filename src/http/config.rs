//! `GET /config`: the limits a client checks before it asks (public, like
//! `/health`): a file over `uploadMaxSize` is refused in the browser before
//! it is uploaded; the server's 413 stays the real guard.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ops::messages::MAX_CONTENT_CHARS;
use crate::state::AppState;

/// Server settings clients need.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicConfig {
    /// Largest upload in bytes (`--upload-max-size`).
    pub upload_max_size: u64,
    /// Longest message `content`, in Unicode characters.
    pub message_max_length: usize,
    /// Delete for everyone is allowed this many seconds after sending
    /// (`--delete-window`); `null` = no limit.
    #[schema(required = true)]
    pub delete_window_seconds: Option<u64>,
    /// Whether `POST /auth/register` is open.
    #[schema(pattern = "^(open|closed)$", example = "open")]
    pub registration: &'static str,
}

/// `GET /config` (no auth).
#[utoipa::path(get, path = "/config", tag = "operations",
    responses((status = 200, description = "limits and settings clients need", body = PublicConfig)))]
pub async fn config(State(state): State<AppState>) -> Json<PublicConfig> {
    let c = state.config();
    Json(PublicConfig {
        upload_max_size: c.upload_max_size,
        message_max_length: MAX_CONTENT_CHARS,
        delete_window_seconds: c.delete_window_secs,
        registration: if c.registration_open {
            "open"
        } else {
            "closed"
        },
    })
}
