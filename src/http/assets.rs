//! The web app: files from `assets/` built into the binary (rust-embed), or
//! from `--assets-dir` on disk. `/` serves `index.html`.
//!
//! `index.html` and `sw.js` carry the web app's version, a digest of every
//! file of the app (see [`Shell`]), in place of the marks [`VERSION_MARK`]
//! and (in `sw.js`) [`FILES_MARK`]: a server with changed web files serves a
//! service worker whose bytes differ, so browsers install it and open tabs
//! offer "New version — reload", while an upgrade that leaves the web app
//! alone does not bother anyone. Every file has an `ETag` (its digest) and
//! answers `If-None-Match` with 304, so the service worker's network-first
//! fetches (made with `cache: 'no-cache'`, see `assets/sw.js`) cost a
//! round trip, not the file.

use std::path::{Component, Path};
use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

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

/// Replaced by the web app's version in `index.html` and `sw.js`.
pub const VERSION_MARK: &str = "__NATTER_VERSION__";
/// Replaced in `sw.js` by the JSON list of the files it keeps for offline
/// starts.
pub const FILES_MARK: &str = "[\"__NATTER_FILES__\"]";

/// What the service worker needs to know about the web app.
#[derive(Debug, Clone)]
pub struct Shell {
    /// `<package version>-<12 hex digits of the digest of every file>`.
    pub version: String,
    /// Every file but `sw.js` itself, as paths (`index.html` as `/`).
    pub files: Vec<String>,
}

impl Shell {
    /// From each file's path and SHA-256 digest (in any order).
    fn from_digests(mut files: Vec<(String, [u8; 32])>) -> Shell {
        files.sort();
        let mut all = Sha256::new();
        for (name, digest) in &files {
            all.update(name.as_bytes());
            all.update([0]);
            all.update(digest);
        }
        let digest = all.finalize();
        let version = format!("{}-{}", env!("CARGO_PKG_VERSION"), hex(&digest[..6]));
        let files = files
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| name != "sw.js")
            .map(|name| match name.as_str() {
                "index.html" => "/".to_string(),
                _ => format!("/{name}"),
            })
            .collect();
        Shell { version, files }
    }
}

/// The built-in web app's shell (fixed when the binary was built).
static EMBEDDED: LazyLock<Shell> = LazyLock::new(|| {
    Shell::from_digests(
        Assets::iter()
            .filter_map(|name| {
                let file = Assets::get(&name)?;
                Some((name.into_owned(), file.metadata.sha256_hash()))
            })
            .collect(),
    )
});

/// The shell of the web app this server serves: the built-in one, or the
/// files in `--assets-dir` as they are now (read again on every call, so an
/// edited file gives a new version without a restart).
pub async fn shell(state: &AppState) -> Shell {
    match &state.config().assets_dir {
        None => EMBEDDED.clone(),
        Some(dir) => {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || {
                let mut files = Vec::new();
                walk(&dir, &dir, &mut files);
                Shell::from_digests(files)
            })
            .await
            .unwrap_or_else(|_| Shell::from_digests(Vec::new()))
        }
    }
}

/// Every regular file under `dir` (dotfiles left out), with its digest.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, [u8; 32])>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(root, &path, out);
        } else if kind.is_file() {
            let (Ok(rel), Ok(bytes)) = (path.strip_prefix(root), std::fs::read(&path)) else {
                continue;
            };
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, Sha256::digest(&bytes).into()));
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fallback handler: a web app file, or a JSON 404.
pub async fn serve(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    request_headers: HeaderMap,
) -> Response {
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
    let Some(mut bytes) = bytes else {
        return AppError::NotFound("not found".into()).into_response();
    };
    if rel == "index.html" || rel == "sw.js" {
        bytes = stamp(&bytes, &shell(&state).await, rel == "sw.js");
    }
    let mime = mime_guess::from_path(rel).first_or_octet_stream();
    let cache = if rel == "index.html" || rel == "sw.js" {
        "no-cache"
    } else {
        "public, max-age=300"
    };
    let etag = format!("\"{}\"", hex(&Sha256::digest(&bytes)[..16]));
    let fresh = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(bytes))
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.essence_str()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    response
}

/// `index.html` or `sw.js` with the shell's version (and, for the worker,
/// its file list) written in.
fn stamp(bytes: &[u8], shell: &Shell, worker: bool) -> Vec<u8> {
    let mut text = String::from_utf8_lossy(bytes).replace(VERSION_MARK, &shell.version);
    if worker {
        let files = serde_json::to_string(&shell.files).unwrap_or_else(|_| "[]".into());
        text = text.replace(FILES_MARK, &files);
    }
    text.into_bytes()
}

async fn read_from_dir(dir: &Path, rel: &str) -> Option<Vec<u8>> {
    let rel = Path::new(rel);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    tokio::fs::read(dir.join(rel)).await.ok()
}
