//! The one error type of the API.
//!
//! Every failure a client can see is an [`AppError`]; it maps to the status
//! code and the contract body `{"error": {"code", "message"}}` (plus `field`
//! for invalid input). `Internal` says only "internal error" to the client and
//! logs its cause chain, so SQL, paths and causes never leak.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A failure with its HTTP meaning.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: a field is missing, malformed or out of range.
    #[error("{message}")]
    Invalid {
        /// The offending field (JSON path or query parameter).
        field: String,
        /// What is wrong, naming the limit.
        message: String,
    },
    /// 401: missing, invalid or expired credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 403 `delete_window_passed`: delete for everyone after `--delete-window`.
    #[error("messages can be deleted for everyone only within {0} seconds of sending")]
    DeleteWindowPassed(u64),
    /// 404: absent, or not visible to the caller.
    #[error("{0}")]
    NotFound(String),
    /// 405: a known path with a method it does not have.
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    /// 409: conflicts with existing state.
    #[error("{0}")]
    Conflict(String),
    /// 413: body or file over a limit.
    #[error("{0}")]
    TooLarge(String),
    /// 429: slow down; retry after this many seconds.
    #[error("too many requests, retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// 413: the caller's stored-but-unsent uploads would pass their quota.
    #[error("{0}")]
    QuotaExceeded(String),
    /// 503: too many requests queued for a scarce resource (password
    /// hashing); retry after this many seconds.
    #[error("the server is busy, retry in {retry_after_secs} s")]
    Busy {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// 503 `unavailable`: the database cannot be reached (PostgreSQL down or
    /// restarting); nothing of the request was stored, retry.
    #[error("the database is unavailable, retry shortly")]
    Unavailable,
    /// 503 `unavailable`: the file store (S3) failed or cannot be reached;
    /// nothing of the upload was recorded, retry. The cause is logged.
    #[error("file storage is unavailable, retry shortly")]
    StorageUnavailable(String),
    /// 507: the disk is below `--min-free-disk`; uploads are refused.
    #[error("{0}")]
    InsufficientStorage(String),
    /// 500: our fault; the cause is logged, never shown.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// 400 naming the field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// 404 for a chat the caller cannot see (absent or not a participant).
    pub fn chat_not_found() -> Self {
        AppError::NotFound("chat not found".into())
    }

    /// 404 for a message the caller cannot see.
    pub fn message_not_found() -> Self {
        AppError::NotFound("message not found".into())
    }

    /// The snake_case code of the contract.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Invalid { .. } => "invalid_input",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::DeleteWindowPassed(_) => "delete_window_passed",
            AppError::NotFound(_) => "not_found",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::Conflict(_) => "conflict",
            AppError::TooLarge(_) => "payload_too_large",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::QuotaExceeded(_) => "quota_exceeded",
            AppError::Busy { .. } => "server_busy",
            AppError::InsufficientStorage(_) => "insufficient_storage",
            AppError::Unavailable | AppError::StorageUnavailable(_) => "unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Invalid { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::DeleteWindowPassed(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::QuotaExceeded(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Busy { .. } | AppError::Unavailable | AppError::StorageUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `{code, message[, field]}` object, shared by HTTP bodies and
    /// WebSocket `error` frames.
    pub fn body(&self) -> serde_json::Value {
        match self {
            AppError::Invalid { field, message } => {
                json!({"code": self.code(), "message": message, "field": field})
            }
            _ => json!({"code": self.code(), "message": self.to_string()}),
        }
    }

    /// Logs internal causes (never shown to clients).
    pub fn log(&self) {
        match self {
            AppError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
            }
            AppError::StorageUnavailable(cause) => {
                tracing::error!(error = %cause, "file storage failed");
            }
            _ => {}
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let mut response = (status, axum::Json(json!({ "error": self.body() }))).into_response();
        let retry_after = match self {
            AppError::RateLimited { retry_after_secs } | AppError::Busy { retry_after_secs } => {
                Some(retry_after_secs)
            }
            AppError::Unavailable | AppError::StorageUnavailable(_) => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// Result of API operations.
pub type AppResult<T> = Result<T, AppError>;
