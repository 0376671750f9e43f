//! The web app: files from `assets/` built into the binary (rust-embed), or
//! from `--assets-dir` on disk. `/` serves `index.html`.

use std::path::{Component, Path};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::AppError;
use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// Paths that belong to the API: never answered with a web page.
const API_PREFIXES: &[&str] = &[
    "/admin",
    "/auth",
    "/chat",
    "/sync",
    "/uploads",
    "/ws",
    "/health",
    "/api",
    "/metrics",
    "/socket.io",
    "/push",
];

/// Fallback handler: a web app file, or a JSON 404.
pub async fn serve(State(state): State<AppState>, method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if API_PREFIXES
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
    {
        return AppError::NotFound("no such endpoint".into()).into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return AppError::NotFound("no such endpoint".into()).into_response();
    }
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    let bytes: Option<Vec<u8>> = match &state.config().assets_dir {
        Some(dir) => read_from_dir(dir, rel).await,
        None => Assets::get(rel).map(|f| f.data.into_owned()),
    };
    let Some(bytes) = bytes else {
        return AppError::NotFound("not found".into()).into_response();
    };
    let mime = mime_guess::from_path(rel).first_or_octet_stream();
    let cache = if rel == "index.html" || rel == "sw.js" {
        "no-cache"
    } else {
        "public, max-age=300"
    };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.essence_str()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    *response.status_mut() = StatusCode::OK;
    response
}

async fn read_from_dir(dir: &Path, rel: &str) -> Option<Vec<u8>> {
    let rel = Path::new(rel);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    tokio::fs::read(dir.join(rel)).await.ok()
}
