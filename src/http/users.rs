//! `GET /chat/users/search`, `POST /chat/status`.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::error::AppResult;
use crate::http::extract::{AppJson, AppQuery};
use crate::http::openapi::ErrorBody;
use crate::model::{Items, User};
use crate::ops::users;
use crate::state::AppState;

/// `?q=`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Part of a name or email (case-insensitive).
    #[serde(default)]
    #[param(max_length = 100)]
    q: String,
}

/// Users whose name or email contains `q`.
#[utoipa::path(get, path = "/chat/users/search", tag = "users", security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "at most 20 users, caller excluded", body = Items<User>),
        (status = 400, description = "invalid query", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
    ))]
pub async fn search(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(query): AppQuery<SearchQuery>,
) -> AppResult<Json<Items<User>>> {
    let items = users::search(&state, user.id, &query.q).await?;
    Ok(Json(Items { items }))
}

/// `{online}`.
#[derive(Deserialize, ToSchema)]
pub struct StatusBody {
    online: bool,
}

/// Sets presence by hand.
#[utoipa::path(post, path = "/chat/status", tag = "users", security(("bearer" = [])),
    request_body = StatusBody,
    responses(
        (status = 200, description = "the caller", body = User),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
    ))]
pub async fn set_status(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<StatusBody>,
) -> AppResult<Json<User>> {
    Ok(Json(users::set_status(&state, user.id, body.online).await?))
}
