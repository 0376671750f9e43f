//! `/chat` and `/chat/:id[/participants]`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::error::{AppError, AppResult};
use crate::http::extract::{AppJson, AppPath, AppQuery};
use crate::http::openapi::ErrorBody;
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
        Some(_) => Err(AppError::invalid(
            "page",
            "page must be an integer between 1 and 1000000",
        )),
    }
}

/// `POST /chat`: 201 new, 200 for an existing 1-on-1.
#[utoipa::path(post, path = "/chat", tag = "chats", security(("bearer" = [])),
    request_body = CreateChat,
    responses(
        (status = 201, description = "created", body = Chat),
        (status = 200, description = "the existing 1-on-1 with that user", body = Chat),
        (status = 400, description = "invalid input, e.g. an unknown participant", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "a participant does not exist", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
    ))]
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
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1-based page (default 1).
    #[param(minimum = 1, maximum = 1_000_000)]
    page: Option<i64>,
    /// Page size (default 20).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// A page of chats, most recent activity first.
#[derive(Serialize, ToSchema)]
pub struct ChatPage {
    pub items: Vec<Chat>,
    pub page: u32,
    pub limit: u32,
    /// How many chats the caller has in all.
    pub total: i64,
}

/// `GET /chat`.
#[utoipa::path(get, path = "/chat", tag = "chats", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "the caller's chats", body = ChatPage),
        (status = 400, description = "page or limit out of range", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(q): AppQuery<ListQuery>,
) -> AppResult<Json<ChatPage>> {
    let page = page_param(q.page)?;
    let limit = limit_param(q.limit, 20)?;
    let (items, total) = chats::list(&state, user.id, page, limit).await?;
    Ok(Json(ChatPage {
        items,
        page,
        limit,
        total,
    }))
}

/// `GET /chat/:id`.
#[utoipa::path(get, path = "/chat/{id}", tag = "chats", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
    ),
    responses(
        (status = 200, description = "the chat with its participants", body = Chat),
        (status = 400, description = "id is not an integer", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "no such chat, or the caller is not a participant", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<ChatId>,
) -> AppResult<Json<Chat>> {
    Ok(Json(chats::get(&state, user.id, id).await?))
}

/// `PATCH /chat/:id`.
#[utoipa::path(patch, path = "/chat/{id}", tag = "chats", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
    ),
    request_body = UpdateChat,
    responses(
        (status = 200, description = "the updated chat", body = Chat),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "not a group admin, or not a group", body = ErrorBody),
        (status = 404, description = "no such chat, or the caller is not a participant", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<ChatId>,
    AppJson(input): AppJson<UpdateChat>,
) -> AppResult<Json<Chat>> {
    Ok(Json(chats::update(&state, user.id, id, input).await?))
}

/// `POST /chat/:id/participants`.
#[utoipa::path(post, path = "/chat/{id}/participants", tag = "chats", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
    ),
    request_body = AddParticipants,
    responses(
        (status = 200, description = "the updated chat", body = Chat),
        (status = 400, description = "invalid input, e.g. an unknown user or too many members", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "not a group admin, or not a group", body = ErrorBody),
        (status = 404, description = "no such chat, or the caller is not a participant", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
    ))]
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
#[utoipa::path(delete, path = "/chat/{id}/participants/{userId}", tag = "chats", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
        ("userId" = i64, Path, description = "the member to remove (the caller's own id to leave)"),
    ),
    responses(
        (status = 200, description = "removed; the updated chat", body = Chat),
        (status = 204, description = "the caller left the chat"),
        (status = 400, description = "an id is not an integer", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "not a group admin", body = ErrorBody),
        (status = 404, description = "no such chat or member, or the caller is not a participant", body = ErrorBody),
        (status = 409, description = "conflicts with the chat's state", body = ErrorBody),
    ))]
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
#[utoipa::path(patch, path = "/chat/{id}/participants/{userId}", tag = "chats", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
        ("userId" = i64, Path, description = "the member"),
    ),
    request_body = SetAdmin,
    responses(
        (status = 200, description = "the updated chat", body = Chat),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "not a group admin, or not a group", body = ErrorBody),
        (status = 404, description = "no such chat or member, or the caller is not a participant", body = ErrorBody),
        (status = 409, description = "demoting the last admin", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
    ))]
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

/// `PATCH /chat/:id/settings`: the caller's own settings of the chat.
#[utoipa::path(patch, path = "/chat/{id}/settings", tag = "chats", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
    ),
    request_body = chats::ChatSettings,
    responses(
        (status = 200, description = "the chat as the caller sees it, with `mutedUntil`; the caller's other devices get `chat:updated`", body = Chat),
        (status = 400, description = "`mutedUntil` is not a time in ms or null", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "no such chat, or the caller is not a participant", body = ErrorBody),
    ))]
pub async fn settings(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<ChatId>,
    AppJson(input): AppJson<chats::ChatSettings>,
) -> AppResult<Json<Chat>> {
    Ok(Json(chats::settings(&state, user.id, id, input).await?))
}

/// `POST /chat/:id/clear`: 204; the chat's history is gone for the caller.
#[utoipa::path(post, path = "/chat/{id}/clear", tag = "chats", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
    ),
    responses(
        (status = 204, description = "every message up to the newest is gone for the caller (on every device)"),
        (status = 400, description = "the id is not an integer", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "no such chat, or the caller is not a participant", body = ErrorBody),
    ))]
pub async fn clear(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<ChatId>,
) -> AppResult<StatusCode> {
    chats::clear(&state, user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
