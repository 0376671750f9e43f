//! `POST /chat/upload` and `GET /uploads/chat/:name`.
//!
//! Downloads are private: the uploader and current members of a chat where
//! the file was sent may read it, and any signed-in user an avatar (an upload
//! set as a user's `avatarUrl` or a group's `groupAvatar`); everyone else —
//! and requests without credentials — get 404. Browsers authenticate `<img src>` with the
//! `natter_token` cookie (HttpOnly, SameSite=Strict), accepted here only.
//! Anything that could run script (HTML, SVG, XML, JS, unknown types) is
//! served as an attachment under a sandboxing CSP, always with nosniff.

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::auth::{self, AuthUser};
use crate::error::{AppError, AppResult};
use crate::files::{self, Uploaded};
use crate::http::extract::AppPath;
use crate::http::openapi::{Binary, ErrorBody, UploadForm};
use crate::state::AppState;

/// `POST /chat/upload`: multipart with a `file` field.
#[utoipa::path(post, path = "/chat/upload", tag = "files", security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "stored; send its `fileUrl` in a message", body = Uploaded),
        (status = 400, description = "not multipart, or no `file` field", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 413, description = "over `--upload-max-size` (`payload_too_large`) or over the caller's quota of unsent uploads, `--upload-quota` (`quota_exceeded`); nothing is kept", body = ErrorBody),
        (status = 429, description = "rate limited; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "`--uploads s3://…`: the bucket failed (`unavailable`); nothing is recorded, retry", body = ErrorBody),
        (status = 507, description = "the server's disk is below `--min-free-disk` (`insufficient_storage`); messages still work", body = ErrorBody),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> AppResult<(StatusCode, Json<Uploaded>)> {
    state.limits().upload(user.id)?;
    // axum's own rejection (no or a bad boundary) is plain text; ours is the
    // contract's JSON error.
    let mut multipart = multipart.map_err(|_| {
        AppError::invalid(
            "file",
            "the body must be multipart/form-data with a file field",
        )
    })?;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => {
                return Err(AppError::invalid(
                    "file",
                    "a multipart field named file is required",
                ))
            }
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(AppError::TooLarge("upload is too large".into()))
            }
            Err(_) => {
                return Err(AppError::invalid(
                    "file",
                    "the body must be multipart/form-data with a file field",
                ))
            }
        };
        if field.name() == Some("file") {
            let stored = files::store_upload(&state, user.id, field).await?;
            return Ok((StatusCode::CREATED, Json(stored)));
        }
    }
}

/// `GET /uploads/chat/:name`.
#[utoipa::path(get, path = "/uploads/chat/{name}", tag = "files",
    security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "the stored name from a `fileUrl` or `thumbnailUrl`")),
    responses(
        (status = 200, description = "the file, with its MIME type (script-capable types as an attachment)", content_type = "*/*", body = Binary),
        (status = 206, description = "a byte range", content_type = "*/*", body = Binary),
        (status = 304, description = "not modified (`If-None-Match`)"),
        (status = 404, description = "absent, or not visible to the caller (also without credentials)", body = ErrorBody),
        (status = 416, description = "range not satisfiable"),
        (status = 503, description = "`--uploads s3://…`: the bucket failed (`unavailable`)", body = ErrorBody),
    ))]
pub async fn download(
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
    req: Request,
) -> Response {
    match serve(&state, &name, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn not_found() -> AppError {
    AppError::NotFound("file not found".into())
}

async fn serve(state: &AppState, name: &str, req: Request) -> AppResult<Response> {
    if !files::valid_stored_name(name) {
        return Err(not_found());
    }
    let token = auth::bearer(req.headers())
        .or_else(|| auth::cookie_token(req.headers()))
        .ok_or_else(not_found)?
        .to_string();
    let user = auth::authenticate(state, &token)
        .await
        .map_err(|_| not_found())?;
    let lookup = name.to_string();
    let (row, is_thumb, allowed) = state
        .db()
        .upload_for_reader(lookup, user)
        .await?
        .ok_or_else(not_found)?;
    if !allowed {
        return Err(not_found());
    }
    let mime = if is_thumb {
        "image/jpeg".to_string()
    } else {
        row.mime_type.clone()
    };
    let etag = format!(
        "\"{}{}\"",
        &row.sha256[..32.min(row.sha256.len())],
        if is_thumb { "-t" } else { "" }
    );
    if if_none_match(req.headers(), &etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().insert(
            header::ETAG,
            HeaderValue::from_str(&etag).map_err(|e| AppError::Internal(e.into()))?,
        );
        return Ok(r);
    }
    let path = files::chat_dir(state).join(name);
    let served_mime = mime
        .parse::<mime_guess::Mime>()
        .unwrap_or(mime_guess::mime::APPLICATION_OCTET_STREAM);
    let mut response = if state.objects().is_remote() {
        let range = req
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        drop(req);
        from_bucket(state, name, range.as_deref(), &served_mime).await?
    } else {
        // ServeFile does Range requests (206), Content-Length and Last-Modified.
        ServeFile::new_with_mime(&path, &served_mime)
            .oneshot(req)
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("serve file: {e}")))?
            .map(Body::new)
    };
    if response.status() == StatusCode::NOT_FOUND {
        return Err(not_found());
    }
    let headers = response.headers_mut();
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).map_err(|e| AppError::Internal(e.into()))?,
    );
    headers.insert(
        header::CACHE_CONTROL,
        // Revalidated on every use (a cheap 304 with the ETag): a member
        // removed from the chat gets 404, not a copy from their cache.
        HeaderValue::from_static("private, no-cache"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"),
    );
    let disposition = if files::inline_safe(&mime) {
        "inline"
    } else {
        "attachment"
    };
    let value = format!(
        "{disposition}; filename=\"{}\"; filename*=UTF-8''{}",
        ascii_name(&row.file_name),
        pct(&row.file_name)
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if !files::inline_safe(&mime) {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
    }
    Ok(response)
}

/// A stored file from the bucket (`--uploads s3://`), streamed through:
/// one `Range: bytes=` range (206, or 416 past the end; several ranges get
/// the whole file), Content-Length, Last-Modified, as `ServeFile` does for
/// local files.
async fn from_bucket(
    state: &AppState,
    name: &str,
    range: Option<&str>,
    mime: &mime_guess::Mime,
) -> AppResult<Response> {
    let (size, modified) = state.objects().head(name).await?.ok_or_else(not_found)?;
    let range = range.map(|v| byte_range(v, size));
    let (status, start, end) = match range {
        None | Some(ByteRange::Whole) => (StatusCode::OK, 0, size),
        Some(ByteRange::Part(a, b)) => (StatusCode::PARTIAL_CONTENT, a, b),
        Some(ByteRange::Unsatisfiable) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let body = if start == end {
        Body::empty()
    } else {
        Body::from_stream(state.objects().stream(name, start..end).await?)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1)) {
            headers.insert(header::CONTENT_RANGE, v);
        }
    }
    let modified = modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Ok(v) = HeaderValue::from_str(&modified) {
        headers.insert(header::LAST_MODIFIED, v);
    }
    Ok(response)
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum ByteRange {
    /// No usable single range: the whole file.
    Whole,
    /// Bytes `start..end` (end exclusive).
    Part(u64, u64),
    /// Starts past the end (416).
    Unsatisfiable,
}

fn byte_range(header: &str, size: u64) -> ByteRange {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), Ok(last)) if start <= last => Some((start, last.saturating_add(1).min(size))),
        (Ok(start), Err(_)) if b.is_empty() => Some((start, size)),
        (Err(_), Ok(suffix)) if a.is_empty() && suffix > 0 => {
            Some((size.saturating_sub(suffix), size))
        }
        _ => None,
    };
    match parsed {
        None => ByteRange::Whole,
        Some((start, _)) if start >= size => ByteRange::Unsatisfiable,
        Some((start, end)) => ByteRange::Part(start, end),
    }
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn ascii_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn pct(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(byte_range("bytes=0-9", 100), ByteRange::Part(0, 10));
        assert_eq!(byte_range("bytes=90-", 100), ByteRange::Part(90, 100));
        assert_eq!(byte_range("bytes=-10", 100), ByteRange::Part(90, 100));
        assert_eq!(byte_range("bytes=95-200", 100), ByteRange::Part(95, 100));
        assert_eq!(byte_range("bytes=100-", 100), ByteRange::Unsatisfiable);
        assert_eq!(byte_range("bytes=0-1,5-6", 100), ByteRange::Whole);
        assert_eq!(byte_range("bytes=9-3", 100), ByteRange::Whole);
        assert_eq!(byte_range("items=0-1", 100), ByteRange::Whole);
    }
}
