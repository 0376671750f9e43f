//! `PUT`/`DELETE /chat/:chatId/messages/:messageId/reaction`.

use axum::extract::State;
use axum::Json;

use crate::auth::AuthUser;
use crate::error::AppResult;
use crate::http::extract::{AppJson, AppPath};
use crate::http::openapi::ErrorBody;
use crate::model::{ChatId, Message, MessageId};
use crate::ops::reactions::{self, SetReaction};
use crate::state::AppState;

/// `PUT …/reaction {emoji}`: sets the caller's one reaction (replacing theirs).
#[utoipa::path(put, path = "/chat/{id}/messages/{messageId}/reaction", tag = "messages", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
        ("messageId" = i64, Path, description = "message id"),
    ),
    request_body = SetReaction,
    responses(
        (status = 200, description = "the message with its `reactions`; members get `message:reaction`", body = Message),
        (status = 400, description = "`emoji` is not exactly one emoji of at most 32 bytes (`field: \"emoji\"`), or the body is malformed", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "no such chat or message, the caller is not a participant, or the message is not theirs to see (sent before they joined, cleared, deleted for them)", body = ErrorBody),
        (status = 409, description = "the message is deleted", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
    ))]
pub async fn set(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath((chat, message)): AppPath<(ChatId, MessageId)>,
    AppJson(input): AppJson<SetReaction>,
) -> AppResult<Json<Message>> {
    Ok(Json(
        reactions::react(&state, user.id, chat, message, Some(&input.emoji)).await?,
    ))
}

/// `DELETE …/reaction`: removes the caller's reaction (200 also when there was none).
#[utoipa::path(delete, path = "/chat/{id}/messages/{messageId}/reaction", tag = "messages", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
        ("messageId" = i64, Path, description = "message id"),
    ),
    responses(
        (status = 200, description = "the message with its `reactions` (also when the caller had none)", body = Message),
        (status = 400, description = "an id is not an integer", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "no such chat or message, the caller is not a participant, or the message is not theirs to see", body = ErrorBody),
        (status = 409, description = "the message is deleted", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath((chat, message)): AppPath<(ChatId, MessageId)>,
) -> AppResult<Json<Message>> {
    Ok(Json(
        reactions::react(&state, user.id, chat, message, None).await?,
    ))
}
