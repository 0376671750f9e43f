//! `GET /metrics`: off unless `--metrics-token` is set; then it needs
//! `Authorization: Bearer <that token>` (compared in constant time).

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth;
use crate::error::AppError;
use crate::state::AppState;

/// The scrape endpoint.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "wrong or missing metrics token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "metrics are off (no `--metrics-token`)", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn metrics(State(state): State<AppState>, req: Request) -> Response {
    let Some(expected) = state.config().metrics_token.as_deref() else {
        return AppError::NotFound("no such endpoint".into()).into_response();
    };
    let given = auth::bearer(req.headers()).unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return AppError::Unauthorized("a valid metrics token is required".into()).into_response();
    }
    let (stored, db_bytes) = state.db().stats().await.unwrap_or((0, 0));
    let body = state.metrics().render(
        state.hub().connection_count(),
        state.hub().online_count(),
        stored,
        db_bytes,
    );
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: counts every request and its latency.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(req).await;
    state
        .metrics()
        .request(started.elapsed(), response.status().is_server_error());
    response
}
