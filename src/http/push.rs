//! `GET /push/key` (the server's VAPID public key, see `crate::push`) and
//! `POST`/`DELETE /push/subscriptions`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::{AppError, AppResult};
use crate::http::extract::AppJson;
use crate::http::openapi::ErrorBody;
use crate::state::AppState;

/// `{"publicKey": "<base64url>"}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushKey {
    /// The 65-byte uncompressed P-256 point, base64url without padding:
    /// what `PushManager.subscribe({applicationServerKey})` takes.
    #[schema(
        example = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
    )]
    pub public_key: String,
}

/// The VAPID public key; public, so no token is needed.
#[utoipa::path(get, path = "/push/key", tag = "push",
    responses((status = 200, description = "the server's VAPID public key (the same on every node)", body = PushKey)))]
pub async fn key(State(state): State<AppState>) -> AppResult<Json<PushKey>> {
    let key = state
        .config()
        .vapid
        .as_ref()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no VAPID key loaded")))?;
    Ok(Json(PushKey {
        public_key: key.public_key().to_string(),
    }))
}

/// Stores this browser's subscription for the caller.
#[utoipa::path(post, path = "/push/subscriptions", tag = "push", security(("bearer" = [])),
    request_body = crate::ops::push::Subscription,
    responses(
        (status = 201, description = "subscribed"),
        (status = 200, description = "the same endpoint was subscribed before: replaced"),
        (status = 400, description = "a bad endpoint (https:// on a public address, ≤ 1,024 bytes) or keys (`p256dh` a 65-byte P-256 point, `auth` 16 bytes, base64url); `field` names it", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
    ))]
pub async fn subscribe(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<crate::ops::push::Subscription>,
) -> AppResult<StatusCode> {
    let created = crate::ops::push::subscribe(&state, user.id, body).await?;
    Ok(if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}

/// Removes the caller's subscription at `endpoint` (signing out of the
/// web app does this).
#[utoipa::path(delete, path = "/push/subscriptions", tag = "push", security(("bearer" = [])),
    request_body = crate::ops::push::Unsubscribe,
    responses(
        (status = 204, description = "gone (or there was none)"),
        (status = 400, description = "no endpoint", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
    ))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<crate::ops::push::Unsubscribe>,
) -> AppResult<StatusCode> {
    crate::ops::push::unsubscribe(&state, user.id, &body.endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}
