//! `/admin/users`: the server administrator role (`natter user promote`)
//! sees every account and can disable or re-enable one, or grant the role,
//! from the API as well as from the command line.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::{AppError, AppResult};
use crate::http::extract::{AppJson, AppPath};
use crate::http::openapi::ErrorBody;
use crate::model::{rfc3339, Items, UserId};
use crate::state::AppState;

/// An account as administrators see it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminUser {
    #[schema(value_type = i64)]
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub online: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// `PATCH /admin/users/{id}`: absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminUpdate {
    pub disabled: Option<bool>,
    pub is_admin: Option<bool>,
}

async fn require_admin(state: &AppState, caller: UserId) -> AppResult<()> {
    let is_admin = state.db().is_server_admin(caller).await?;
    if is_admin {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only server administrators can do that".into(),
        ))
    }
}

async fn list_all(state: &AppState) -> AppResult<Vec<AdminUser>> {
    let rows = state.db().list_users().await?;
    Ok(rows
        .into_iter()
        .map(|r| AdminUser {
            online: state.hub().is_online(r.id),
            id: r.id,
            email: r.email,
            name: r.name,
            is_admin: r.is_admin,
            disabled: r.disabled,
            created_at: rfc3339(r.created_at),
        })
        .collect())
}

/// Every account (server administrators only).
#[utoipa::path(get, path = "/admin/users", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "every account, oldest first", body = Items<AdminUser>),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "not a server administrator", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<Json<Items<AdminUser>>> {
    require_admin(&state, user.id).await?;
    Ok(Json(Items {
        items: list_all(&state).await?,
    }))
}

/// Disables/enables an account or changes its administrator role. Disabling
/// revokes its tokens and closes its connections at once.
#[utoipa::path(patch, path = "/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path, description = "user id")),
    request_body = AdminUpdate,
    responses(
        (status = 200, description = "the account", body = AdminUser),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "not a server administrator", body = ErrorBody),
        (status = 404, description = "no such user", body = ErrorBody),
        (status = 409, description = "administrators cannot disable or demote themselves", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(target): AppPath<UserId>,
    AppJson(input): AppJson<AdminUpdate>,
) -> AppResult<Json<AdminUser>> {
    require_admin(&state, user.id).await?;
    if target == user.id && (input.disabled == Some(true) || input.is_admin == Some(false)) {
        return Err(AppError::Conflict(
            "administrators cannot disable or demote themselves".into(),
        ));
    }
    state
        .db()
        .admin_update_user(target, input.disabled, input.is_admin)
        .await?;
    if input.disabled == Some(true) {
        state.hub().close_user(target);
    }
    list_all(&state)
        .await?
        .into_iter()
        .find(|u| u.id == target)
        .map(Json)
        .ok_or_else(|| AppError::NotFound("user not found".into()))
}
