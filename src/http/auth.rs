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

/// The client's IP: the peer, or with `--trust-proxy` the last
/// `X-Forwarded-For` entry (what the proxy saw).
pub fn client_ip(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Option<IpAddr> {
    if state.config().trust_proxy {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|p| p.ip())
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
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(input): AppJson<UpdateMe>,
) -> AppResult<Json<User>> {
    Ok(Json(users::update_me(&state, user.id, input).await?))
}
