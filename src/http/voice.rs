//! `POST /chat/:id/played`: the "played" receipt of a voice message.

use axum::extract::State;
use axum::Json;

use crate::auth::AuthUser;
use crate::error::AppResult;
use crate::http::extract::{AppJson, AppPath};
use crate::http::openapi::ErrorBody;
use crate::model::ChatId;
use crate::ops::voice::{self, MarkPlayed, Played};
use crate::state::AppState;

/// `POST /chat/:id/played` `{messageId}` → `{chatId, messageId, playedAt, playedBy}`.
#[utoipa::path(post, path = "/chat/{id}/played", tag = "messages", security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "chat id"),
    ),
    request_body = MarkPlayed,
    responses(
        (status = 200, description = "recorded (also when it already was); playing also reads the chat up to the message. The sender gets `message:status` with `status: \"PLAYED\"`", body = Played),
        (status = 400, description = "`messageId` is not a voice message (or is deleted), or the body is malformed", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "no such chat or message, or the caller is not a participant", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
    ))]
pub async fn played(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(chat): AppPath<ChatId>,
    AppJson(input): AppJson<MarkPlayed>,
) -> AppResult<Json<Played>> {
    Ok(Json(
        voice::mark_played(&state, user.id, chat, input).await?,
    ))
}
