//! `/chat` and `/chat/:id[/participants]`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::auth::AuthUser;
use crate::error::{AppError, AppResult};
use crate::http::extract::{AppJson, AppPath, AppQuery};
use crate::model::{Chat, ChatId, UserId};
use crate::ops::chats::{self, AddParticipants, CreateChat, SetAdmin, UpdateChat};
use crate::state::AppState;

/// Largest `limit`.
pub const MAX_LIMIT: i64 = 200;

/// Checks a `limit` query parameter (1..=200).
pub fn limit_param(limit: Option<i64>, default: u32) -> AppResult<u32> {
    match limit {
        None => Ok(default),
        Some(l) if (1..=MAX_LIMIT).contains(&l) => Ok(l as u32),
        Some(_) => Err(AppError::invalid(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// Checks a `page` query parameter (≥ 1).
pub fn page_param(page: Option<i64>) -> AppResult<u32> {
    match page {
        None => Ok(1),
        Some(p) if (1..=1_000_000).contains(&p) => Ok(p as u32),
        Some(_) => Err(AppError::invalid("page", "page must be a positive integer")),
    }
}

/// `POST /chat`: 201 new, 200 for an existing 1-on-1.
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(input): AppJson<CreateChat>,
) -> AppResult<Response> {
    let (chat, created) = chats::create(&state, user.id, input).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(chat)).into_response())
}

/// `?page&limit`.
#[derive(Deserialize)]
pub struct ListQuery {
    page: Option<i64>,
    limit: Option<i64>,
}

/// `GET /chat`.
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(q): AppQuery<ListQuery>,
) -> AppResult<Json<serde_json::Value>> {
    let page = page_param(q.page)?;
    let limit = limit_param(q.limit, 20)?;
    let (items, total) = chats::list(&state, user.id, page, limit).await?;
    Ok(Json(
        json!({"items": items, "page": page, "limit": limit, "total": total}),
    ))
}

/// `GET /chat/:id`.
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<ChatId>,
) -> AppResult<Json<Chat>> {
    Ok(Json(chats::get(&state, user.id, id).await?))
}

/// `PATCH /chat/:id`.
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<ChatId>,
    AppJson(input): AppJson<UpdateChat>,
) -> AppResult<Json<Chat>> {
    Ok(Json(chats::update(&state, user.id, id, input).await?))
}

/// `POST /chat/:id/participants`.
pub async fn add_participants(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<ChatId>,
    AppJson(input): AppJson<AddParticipants>,
) -> AppResult<Json<Chat>> {
    Ok(Json(
        chats::add_participants(&state, user.id, id, input).await?,
    ))
}

/// `DELETE /chat/:id/participants/:userId`: 200 with the chat, or 204 after leaving.
pub async fn remove_participant(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath((id, target)): AppPath<(ChatId, UserId)>,
) -> AppResult<Response> {
    Ok(
        match chats::remove_participant(&state, user.id, id, target).await? {
            Some(chat) => Json(chat).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    )
}

/// `PATCH /chat/:id/participants/:userId`.
pub async fn set_admin(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath((id, target)): AppPath<(ChatId, UserId)>,
    AppJson(input): AppJson<SetAdmin>,
) -> AppResult<Json<Chat>> {
    Ok(Json(
        chats::set_admin(&state, user.id, id, target, input).await?,
    ))
}
