//! `/chat/:id/messages`, edits, deletes, receipts and read marks.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::db::messages::PageAt;
use crate::error::{AppError, AppResult};
use crate::http::chats::{limit_param, page_param};
use crate::http::extract::{AppJson, AppPath, AppQuery};
use crate::http::openapi::ErrorBody;
use crate::model::{ChatId, Items, Message, MessageId, Receipt};
use crate::ops::messages::{self, EditMessage, SendMessage};
use crate::ops::receipts::{self, MarkRead};
use crate::state::AppState;

/// `?limit&page` or `?before` / `?after`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Page size (default `--message-limit`, 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// 1 = the newest `limit` messages, 2 the block before (ignored with a cursor).
    #[param(minimum = 1, maximum = 1_000_000)]
    page: Option<i64>,
    /// The newest `limit` messages older than this id (not with `after`).
    #[param(value_type = Option<i64>, minimum = 0)]
    before: Option<MessageId>,
    /// The oldest `limit` messages newer than this id; 0 = from the start.
    #[param(value_type = Option<i64>, minimum = 0)]
    after: Option<MessageId>,
    /// The page of `limit` messages centred on this message of the chat
    /// (jump to a search hit or a quoted reply): about half older, the
    /// message, the rest newer; `hasMoreBefore`/`hasMoreAfter` say where
    /// more lie. Not with `before`/`after`/`page`; 404 if the caller does
    /// not see that message in this chat.
    #[param(value_type = Option<i64>, minimum = 1)]
    around: Option<MessageId>,
}

/// A page of history, oldest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    pub items: Vec<Message>,
    /// More exist beyond this page in the direction of travel (with
    /// `around`: the same as `hasMoreBefore`).
    pub has_more: bool,
    /// `around` only: older messages exist before the page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_more_before: Option<bool>,
    /// `around` only: newer messages exist after the page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_more_after: Option<bool>,
}

/// `{unreadCount}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnreadCount {
    /// The caller's unread messages in the chat.
    pub unread_count: i64,
}

/// `POST /chat/:id/messages`: 201, or 200 for a repeated `clientId`.
#[utoipa::path(post, path = "/chat/{id}/messages", tag = "messages", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
    ),
    request_body = SendMessage,
    responses(
        (status = 201, description = "stored", body = Message),
        (status = 200, description = "the message first stored with this `clientId`", body = Message),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "no such chat, or the caller is not a participant", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 429, description = "rate limited; see `Retry-After`", body = ErrorBody),
    ))]
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
#[utoipa::path(get, path = "/chat/{id}/messages", tag = "messages", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "a page of history", body = MessagePage),
        (status = 400, description = "invalid query, or both before and after, or around with another cursor", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "no such chat, or the caller is not a participant; with `around`, also a message the caller does not see in this chat", body = ErrorBody),
    ))]
pub async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(chat): AppPath<ChatId>,
    AppQuery(q): AppQuery<HistoryQuery>,
) -> AppResult<Json<MessagePage>> {
    let limit = limit_param(q.limit, state.config().message_limit)?;
    let at = match (q.around, q.before, q.after) {
        (Some(_), ..) if q.before.is_some() || q.after.is_some() || q.page.is_some() => {
            return Err(AppError::invalid(
                "around",
                "give around alone, not with before, after or page",
            ))
        }
        (Some(a), ..) if a < MessageId(1) => {
            return Err(AppError::invalid("around", "around must be a message id"))
        }
        (Some(a), ..) => PageAt::Around(a),
        (None, Some(_), Some(_)) => {
            return Err(AppError::invalid(
                "before",
                "give before or after, not both",
            ))
        }
        (None, Some(b), None) if b < MessageId(0) => {
            return Err(AppError::invalid("before", "before must be a message id"))
        }
        (None, None, Some(a)) if a < MessageId(0) => {
            return Err(AppError::invalid("after", "after must be a message id"))
        }
        (None, Some(b), None) => PageAt::Before(b),
        (None, None, Some(a)) => PageAt::After(a),
        (None, None, None) => PageAt::Page(page_param(q.page)?),
    };
    let page = messages::history(&state, user.id, chat, at, limit).await?;
    Ok(Json(MessagePage {
        has_more_before: page.has_more_after.map(|_| page.has_more),
        has_more_after: page.has_more_after,
        items: page.items,
        has_more: page.has_more,
    }))
}

/// `PATCH /chat/:chatId/messages/:messageId`.
#[utoipa::path(patch, path = "/chat/{id}/messages/{messageId}", tag = "messages", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
        ("messageId" = i64, Path, description = "message id"),
    ),
    request_body = EditMessage,
    responses(
        (status = 200, description = "the edited message", body = Message),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "not the sender", body = ErrorBody),
        (status = 404, description = "no such chat or message, or the caller is not a participant", body = ErrorBody),
        (status = 409, description = "the message is deleted", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
    ))]
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

/// `?for=me|everyone`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// `everyone` (default): soft delete for all; `me`: gone for the caller only.
    #[serde(rename = "for")]
    #[param(rename = "for", pattern = "^(me|everyone)$")]
    scope: Option<String>,
}

/// `DELETE /chat/:chatId/messages/:messageId`: 200 with the tombstone, or
/// 204 for `?for=me`.
#[utoipa::path(delete, path = "/chat/{id}/messages/{messageId}", tag = "messages", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
        ("messageId" = i64, Path, description = "message id"),
        DeleteQuery,
    ),
    responses(
        (status = 200, description = "deleted for everyone: the tombstone (also when already deleted)", body = Message),
        (status = 204, description = "`for=me`: gone for the caller (also when it already was)"),
        (status = 400, description = "an id is not an integer, or `for` is neither `me` nor `everyone`", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "for everyone: neither the sender nor a group admin, a group note, or older than `--delete-window` (`delete_window_passed`)", body = ErrorBody),
        (status = 404, description = "no such chat or message, or the caller is not a participant", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath((chat, message)): AppPath<(ChatId, MessageId)>,
    AppQuery(q): AppQuery<DeleteQuery>,
) -> AppResult<Response> {
    match q.scope.as_deref() {
        Some("me") => {
            messages::delete_for_me(&state, user.id, chat, message).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None | Some("everyone") => {
            let tombstone = messages::delete(&state, user.id, chat, message).await?;
            Ok(Json(tombstone).into_response())
        }
        Some(_) => Err(AppError::invalid("for", "for must be me or everyone")),
    }
}

/// `GET /chat/:chatId/messages/:messageId/receipts`.
#[utoipa::path(get, path = "/chat/{id}/messages/{messageId}/receipts", tag = "messages", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
        ("messageId" = i64, Path, description = "message id"),
    ),
    responses(
        (status = 200, description = "each other member's receipt", body = Items<Receipt>),
        (status = 400, description = "an id is not an integer", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "no such chat or message, or the caller is not a participant", body = ErrorBody),
    ))]
pub async fn receipts(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath((chat, message)): AppPath<(ChatId, MessageId)>,
) -> AppResult<Json<Items<Receipt>>> {
    let items = messages::receipts_of(&state, user.id, chat, message).await?;
    Ok(Json(Items { items }))
}

/// `POST /chat/:id/read` → `{unreadCount}`.
#[utoipa::path(post, path = "/chat/{id}/read", tag = "messages", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
    ),
    request_body = MarkRead,
    responses(
        (status = 200, description = "the caller's unread count afterwards", body = UnreadCount),
        (status = 400, description = "neither messageIds nor upToMessageId, or too many ids", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "no such chat, or the caller is not a participant", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
    ))]
pub async fn mark_read(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(chat): AppPath<ChatId>,
    AppJson(input): AppJson<MarkRead>,
) -> AppResult<Json<UnreadCount>> {
    let unread_count = receipts::mark_read(&state, user.id, chat, input).await?;
    Ok(Json(UnreadCount { unread_count }))
}
