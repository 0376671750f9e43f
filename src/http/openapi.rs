//! The OpenAPI 3.1 document of the REST API, generated from the handlers'
//! `#[utoipa::path]` attributes and the wire types' `ToSchema` derives, and
//! served at `GET /api/openapi.json` (no auth).
//!
//! The document is built from the same types the handlers return, so a field
//! renamed in `model.rs` changes the document too; `tests/api/openapi.rs`
//! checks that every route of [`crate::http::router`] is listed here.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::http::{
    admin, auth, chats, config, files, health, messages, metrics, push, reactions, search, sync,
    users, voice,
};

/// The error body of every failure: `{"error": {code, message, field?}}`.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `AppError` writes the body.
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    code: ErrorCode,
    /// Human text; never internals.
    message: String,
    /// For `invalid_input`: the offending field or query parameter.
    field: Option<String>,
}

/// The machine-readable error codes (see `AppError::code`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ErrorCode {
    InvalidInput,
    Unauthorized,
    Forbidden,
    DeleteWindowPassed,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    RateLimited,
    QuotaExceeded,
    ServerBusy,
    InsufficientStorage,
    Unavailable,
    InternalError,
}

/// Raw file bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct Binary(Vec<u8>);

/// `multipart/form-data` with one `file` part.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file; its part's `filename` is kept as `fileName`.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The whole document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "natter",
        description = "REST API of natter, a self-hosted chat server. \
            Real-time events: `GET /ws` (docs/PROTOCOL.md).",
    ),
    paths(
        health::health,
        config::config,
        openapi_json,
        auth::register,
        auth::login,
        auth::logout,
        auth::me,
        auth::update_me,
        users::search,
        users::set_status,
        chats::create,
        chats::list,
        chats::get,
        chats::update,
        chats::add_participants,
        chats::remove_participant,
        chats::set_admin,
        chats::clear,
        chats::settings,
        messages::send,
        messages::history,
        messages::edit,
        messages::delete,
        messages::receipts,
        messages::mark_read,
        files::upload,
        files::download,
        push::key,
        push::subscribe,
        push::unsubscribe,
        sync::sync,
        metrics::metrics,
        admin::list,
        admin::update,
        crate::realtime::ws_handler,
        voice::played,
        reactions::set,
        reactions::remove,
        search::search,
    ),
    components(schemas(ErrorBody, ErrorCode)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "accounts and sessions"),
        (name = "users", description = "search and presence"),
        (name = "chats", description = "chats and their members"),
        (name = "messages", description = "history, sends, edits, receipts"),
        (name = "files", description = "uploads and private downloads"),
        (name = "sync", description = "catching up after a disconnect"),
        (name = "push", description = "Web Push: the server's VAPID key and this browser's subscription"),
        (name = "realtime", description = "the WebSocket"),
        (name = "operations", description = "health, metrics, this document"),
        (name = "admin", description = "server administrators: accounts"),
    )
)]
pub struct ApiDoc;

/// Adds the security schemes the paths name.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The token from register or login (HS256, 30 days by default).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::COOKIE_NAME,
                "Set by register, login and `GET /auth/me`; accepted only for downloads.",
            ))),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The `--metrics-token` (not a user's JWT)."))
                    .build(),
            ),
        );
    }
}

/// The document, serialised once.
fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises")
    })
}

/// `GET /api/openapi.json`.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "this document (OpenAPI 3.1)", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document(),
    )
        .into_response()
}
