//! `GET /chat/users/search`, `POST /chat/status`.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::error::AppResult;
use crate::http::extract::{AppJson, AppQuery};
use crate::model::{Items, User};
use crate::ops::users;
use crate::state::AppState;

/// `?q=`.
#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Users whose name or email contains `q`.
pub async fn search(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(query): AppQuery<SearchQuery>,
) -> AppResult<Json<Items<User>>> {
    let items = users::search(&state, user.id, &query.q).await?;
    Ok(Json(Items { items }))
}

/// `{online}`.
#[derive(Deserialize)]
pub struct StatusBody {
    online: bool,
}

/// Sets presence by hand.
pub async fn set_status(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<StatusBody>,
) -> AppResult<Json<User>> {
    Ok(Json(users::set_status(&state, user.id, body.online).await?))
}
