//! `GET /sync?after=<cursor>&limit=`.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::error::{AppError, AppResult};
use crate::http::chats::limit_param;
use crate::http::extract::AppQuery;
use crate::ops::sync::{self, SyncPage};
use crate::state::AppState;

/// `?after&limit`; the cursor is a number (also accepted as a string).
#[derive(Deserialize)]
pub struct SyncQuery {
    after: Option<String>,
    limit: Option<i64>,
}

/// Everything the caller missed since `after`.
pub async fn sync(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(q): AppQuery<SyncQuery>,
) -> AppResult<Json<SyncPage>> {
    let after = match q.after.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(s) => s.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
            AppError::invalid("after", "after must be a cursor from ready or /sync")
        })?,
    };
    let limit = limit_param(q.limit, 100)?;
    Ok(Json(sync::page(&state, user.id, after, limit).await?))
}
