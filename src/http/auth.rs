//! `/auth/*`: register, login, logout, me.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{AuthUser, COOKIE_NAME};
use crate::config::canonical_ip;
use crate::error::AppResult;
use crate::http::extract::AppJson;
use crate::http::openapi::ErrorBody;
use crate::model::User;
use crate::ops::users::{self, Login, Register, Session, UpdateMe};
use crate::state::AppState;

/// The `Set-Cookie` value carrying a token for `GET /uploads/...`.
fn session_cookie(state: &AppState, headers: &HeaderMap, token: &str) -> String {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    format!(
        "{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        state.config().token_ttl_secs,
        if secure { "; Secure" } else { "" }
    )
}

/// `{token, user}`: the answer of register and login.
#[derive(Serialize, ToSchema)]
pub struct SessionBody {
    /// A JWT for `Authorization: Bearer`.
    pub token: String,
    pub user: User,
}

fn session_response(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    s: Session,
) -> Response {
    let cookie = session_cookie(state, headers, &s.token);
    let body = SessionBody {
        token: s.token,
        user: s.user,
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// The client's address for per-IP limits, or `None` for no per-IP budget.
///
/// A direct peer is the client, except a loopback peer, which is a local
/// reverse proxy or the host itself and gets no per-IP budget (every user
/// would share it). A peer listed in `--trust-proxy` is a proxy: the
/// `X-Forwarded-For` chain is read right to left, skipping trusted proxies,
/// and the first other entry is the client (entries left of it were written
/// by the client and are ignored). A forwarded address is never exempt, not
/// even `127.0.0.1`. Unparsable entries end the walk at the last trusted hop.
pub fn client_ip(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Option<IpAddr> {
    let peer = canonical_ip(peer?.ip());
    let proxies = &state.config().trust_proxy;
    if !proxies.contains(peer) {
        return (!peer.is_loopback()).then_some(peer);
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if entries.is_empty() {
        // A proxy that forwards nothing: it is the client.
        return (!peer.is_loopback()).then_some(peer);
    }
    let mut hop = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = parse_forwarded(entry) else {
            return Some(hop);
        };
        if !proxies.contains(ip) {
            return Some(ip);
        }
        hop = ip;
    }
    Some(hop)
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]`
/// or `[::1]:80`.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse::<IpAddr>().ok())
        })?;
    Some(canonical_ip(ip))
}

/// `POST /auth/register` → 201 `{token, user}`.
#[utoipa::path(post, path = "/auth/register", tag = "auth",
    request_body = Register,
    responses(
        (status = 201, description = "registered; also sets the `natter_token` cookie", body = SessionBody),
        (status = 400, description = "invalid email, password or name", body = ErrorBody),
        (status = 403, description = "registration is closed", body = ErrorBody),
        (status = 409, description = "email taken", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 429, description = "rate limited; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "too many password checks queued (`server_busy`); see `Retry-After`", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    AppJson(input): AppJson<Register>,
) -> AppResult<Response> {
    state
        .limits()
        .register(client_ip(&state, &headers, peer.map(|c| c.0 .0)))?;
    let session = users::register(&state, input).await?;
    Ok(session_response(
        &state,
        &headers,
        StatusCode::CREATED,
        session,
    ))
}

/// `POST /auth/login` → 200 `{token, user}`.
#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "logged in; also sets the `natter_token` cookie", body = SessionBody),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 401, description = "wrong email or password (one message for both)", body = ErrorBody),
        (status = 403, description = "account disabled", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 429, description = "rate limited; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "too many password checks queued (`server_busy`); see `Retry-After`", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    AppJson(input): AppJson<Login>,
) -> AppResult<Response> {
    state.limits().login(
        &input.email,
        client_ip(&state, &headers, peer.map(|c| c.0 .0)),
    )?;
    let session = users::login(&state, input).await?;
    Ok(session_response(&state, &headers, StatusCode::OK, session))
}

/// `POST /auth/logout`: clears the browser cookie (tokens are stateless).
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204, description = "cookie cleared")))]
pub async fn logout() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("natter_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

/// `GET /auth/me`. Also renews the browser's upload cookie, so a web app that
/// kept its token but lost the cookie gets its images back.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller", body = User),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
    ))]
pub async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: AuthUser,
) -> AppResult<Response> {
    let me = users::me(&state, user.id).await?;
    let mut response = Json(me).into_response();
    if let Some(token) = crate::auth::bearer(&headers) {
        if let Ok(v) = HeaderValue::from_str(&session_cookie(&state, &headers, token)) {
            response.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

/// `PATCH /auth/me`.
#[utoipa::path(patch, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    request_body = UpdateMe,
    responses(
        (status = 200, description = "the updated caller", body = User),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 503, description = "too many password hashes queued (`server_busy`); see `Retry-After`", body = ErrorBody),
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(input): AppJson<UpdateMe>,
) -> AppResult<Json<User>> {
    Ok(Json(users::update_me(&state, user.id, input).await?))
}
