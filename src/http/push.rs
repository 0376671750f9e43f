//! `GET /push/key`: the server's VAPID public key (see `crate::push`).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, AppResult};
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
