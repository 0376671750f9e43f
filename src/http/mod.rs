//! The HTTP surface: `router(state)` merges the resource routers and adds the
//! layers (request span, body limit, security headers, CORS). Handlers only
//! extract, call `ops`, and shape the response.

pub mod admin;
pub mod assets;
pub mod auth;
pub mod chats;
pub mod config;
pub mod extract;
pub mod files;
pub mod health;
pub mod messages;
pub mod metrics;
pub mod openapi;
pub mod push;
pub mod reactions;
pub mod search;
pub mod sync;
pub mod users;
pub mod voice;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Level;

use crate::error::AppError;
use crate::state::AppState;

/// Largest JSON body (a 10,000-character message fits with room to spare).
pub const JSON_BODY_LIMIT: usize = 256 * 1024;

/// Longest silence between two chunks of a request body.
pub const BODY_CHUNK_TIMEOUT: Duration = Duration::from_secs(30);

/// The content security policy of the web app (and every response).
/// `connect-src 'self'` covers the app's own `ws:`/`wss:` origin (CSP 3);
/// no other host can be reached from the app.
pub const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; \
connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The whole application.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(health::health))
        .route("/config", get(config::config))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me).patch(auth::update_me))
        .route("/chat/users/search", get(users::search))
        .route("/chat/status", post(users::set_status))
        .route("/chat", post(chats::create).get(chats::list))
        .route("/chat/{id}", get(chats::get).patch(chats::update))
        .route("/chat/{id}/participants", post(chats::add_participants))
        .route(
            "/chat/{id}/participants/{user_id}",
            patch(chats::set_admin).delete(chats::remove_participant),
        )
        .route(
            "/chat/{id}/messages",
            get(messages::history).post(messages::send),
        )
        .route(
            "/chat/{id}/messages/{message_id}",
            patch(messages::edit).delete(messages::delete),
        )
        .route(
            "/chat/{id}/messages/{message_id}/receipts",
            get(messages::receipts),
        )
        .route("/chat/{id}/read", post(messages::mark_read))
        .route("/chat/{id}/clear", post(chats::clear))
        .route("/chat/{id}/settings", patch(chats::settings))
        .route("/sync", get(sync::sync))
        .route("/search", get(search::search))
        .route("/push/key", get(push::key))
        .route(
            "/push/subscriptions",
            post(push::subscribe).delete(push::unsubscribe),
        )
        .route("/admin/users", get(admin::list))
        .route("/admin/users/{id}", patch(admin::update))
        .route("/ws", get(crate::realtime::ws_handler))
        .route("/uploads/chat/{name}", get(files::download))
        .route("/metrics", get(metrics::metrics))
        .route("/chat/{id}/played", post(voice::played))
        .route(
            "/chat/{id}/messages/{message_id}/reaction",
            put(reactions::set).delete(reactions::remove),
        )
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT));
    // Uploads stream to disk and enforce --upload-max-size themselves; the
    // body limit only keeps multipart overhead bounded.
    let upload_limit = usize::try_from(state.config().upload_max_size)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    let uploads = Router::new()
        .route("/chat/upload", post(files::upload))
        .layer(DefaultBodyLimit::max(upload_limit));
    let api = api
        .merge(uploads)
        .layer(axum::middleware::map_response(method_not_allowed_body));

    let mut app = api
        .fallback(assets::serve)
        .layer(crate::realtime::socketio::layer(state.clone()))
        .layer(axum::middleware::from_fn_with_state(
            crate::realtime::gate::GateState {
                app: state.clone(),
                gate: crate::realtime::gate::Gate::new(),
            },
            crate::realtime::gate::check,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    // The path only: `/ws?token=...` must never reach the logs.
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
                    let request_id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::span!(Level::INFO, "request", method = %req.method(), route, request_id, user.id = tracing::field::Empty)
                })
                .on_request(())
                .on_response(
                    tower_http::trace::DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Micros),
                ),
        )
        // A client trickling a body is cut off between chunks.
        .layer(RequestBodyTimeoutLayer::new(BODY_CHUNK_TIMEOUT))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        // Outermost: every request gets an id (kept if the proxy sent one),
        // logged in its span and echoed in the response.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid));
    if let Some(origin) = &state.config().frontend_origin {
        if let Ok(origin) = HeaderValue::from_str(origin) {
            app = app.layer(
                CorsLayer::new()
                    .allow_origin(AllowOrigin::list([origin]))
                    .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                    .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                    .max_age(Duration::from_secs(600)),
            );
        }
    }
    app.with_state(state)
}

/// axum answers a known path with an unsupported method with an empty 405;
/// give it the contract's error envelope (the `Allow` header is kept).
async fn method_not_allowed_body(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let mut answer = AppError::MethodNotAllowed.into_response();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        answer.headers_mut().insert(header::ALLOW, allow.clone());
    }
    answer
}
