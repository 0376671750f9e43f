//! `GET /sync?after=<cursor>&limit=`.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::AuthUser;
use crate::error::{AppError, AppResult};
use crate::http::chats::limit_param;
use crate::http::extract::AppQuery;
use crate::http::openapi::ErrorBody;
use crate::model::EventId;
use crate::ops::sync::{self, SyncPage};
use crate::state::AppState;

/// `?after&limit`; the cursor is a number (also accepted as a string).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncQuery {
    /// A cursor from `ready` or a previous page (default 0: from the start).
    #[param(pattern = "^[0-9]*$")]
    after: Option<String>,
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Everything the caller missed since `after`.
#[utoipa::path(get, path = "/sync", tag = "sync", security(("bearer" = [])),
    params(SyncQuery),
    responses(
        (status = 200, description = "the events after the cursor, oldest first", body = SyncPage),
        (status = 400, description = "invalid cursor or limit", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
    ))]
pub async fn sync(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(q): AppQuery<SyncQuery>,
) -> AppResult<Json<SyncPage>> {
    let after = match q.after.as_deref().map(str::trim) {
        None | Some("") => EventId(0),
        Some(s) => s
            .parse::<EventId>()
            .ok()
            .filter(|v| *v >= EventId(0))
            .ok_or_else(|| {
                AppError::invalid("after", "after must be a cursor from ready or /sync")
            })?,
    };
    let limit = limit_param(q.limit, 100)?;
    Ok(Json(sync::page(&state, user.id, after, limit).await?))
}
