//! `/chat/:id/messages`, edits, deletes, receipts and read marks.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::auth::AuthUser;
use crate::db::messages::PageAt;
use crate::error::{AppError, AppResult};
use crate::http::chats::{limit_param, page_param};
use crate::http::extract::{AppJson, AppPath, AppQuery};
use crate::model::{ChatId, Items, Message, MessageId, Receipt};
use crate::ops::messages::{self, EditMessage, SendMessage};
use crate::ops::receipts::{self, MarkRead};
use crate::state::AppState;

/// `?limit&page` or `?before` / `?after`.
#[derive(Deserialize)]
pub struct HistoryQuery {
    limit: Option<i64>,
    page: Option<i64>,
    before: Option<i64>,
    after: Option<i64>,
}

/// `POST /chat/:id/messages`: 201, or 200 for a repeated `clientId`.
pub async fn send(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(chat): AppPath<ChatId>,
    AppJson(input): AppJson<SendMessage>,
) -> AppResult<Response> {
    let sent = messages::send(&state, user.id, chat, input).await?;
    let status = if sent.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(sent.message)).into_response())
}

/// `GET /chat/:id/messages`.
pub async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(chat): AppPath<ChatId>,
    AppQuery(q): AppQuery<HistoryQuery>,
) -> AppResult<Json<serde_json::Value>> {
    let limit = limit_param(q.limit, state.config().message_limit)?;
    let at = match (q.before, q.after) {
        (Some(_), Some(_)) => {
            return Err(AppError::invalid(
                "before",
                "give before or after, not both",
            ))
        }
        (Some(b), None) if b < 0 => {
            return Err(AppError::invalid("before", "before must be a message id"))
        }
        (None, Some(a)) if a < 0 => {
            return Err(AppError::invalid("after", "after must be a message id"))
        }
        (Some(b), None) => PageAt::Before(b),
        (None, Some(a)) => PageAt::After(a),
        (None, None) => PageAt::Page(page_param(q.page)?),
    };
    let (items, has_more) = messages::history(&state, user.id, chat, at, limit).await?;
    Ok(Json(json!({"items": items, "hasMore": has_more})))
}

/// `PATCH /chat/:chatId/messages/:messageId`.
pub async fn edit(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath((chat, message)): AppPath<(ChatId, MessageId)>,
    AppJson(input): AppJson<EditMessage>,
) -> AppResult<Json<Message>> {
    Ok(Json(
        messages::edit(&state, user.id, chat, message, input).await?,
    ))
}

/// `DELETE /chat/:chatId/messages/:messageId`: 200 with the tombstone.
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath((chat, message)): AppPath<(ChatId, MessageId)>,
) -> AppResult<Json<Message>> {
    Ok(Json(
        messages::delete(&state, user.id, chat, message).await?,
    ))
}

/// `GET /chat/:chatId/messages/:messageId/receipts`.
pub async fn receipts(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath((chat, message)): AppPath<(ChatId, MessageId)>,
) -> AppResult<Json<Items<Receipt>>> {
    let items = messages::receipts_of(&state, user.id, chat, message).await?;
    Ok(Json(Items { items }))
}

/// `POST /chat/:id/read` → `{unreadCount}`.
pub async fn mark_read(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(chat): AppPath<ChatId>,
    AppJson(input): AppJson<MarkRead>,
) -> AppResult<Json<serde_json::Value>> {
    let unread = receipts::mark_read(&state, user.id, chat, input).await?;
    Ok(Json(json!({"unreadCount": unread})))
}
