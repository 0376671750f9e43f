//! `GET /search`: message search across the caller's chats.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::db::search::{Scope, Terms};
use crate::error::{AppError, AppResult};
use crate::http::chats::limit_param;
use crate::http::extract::AppQuery;
use crate::http::openapi::ErrorBody;
use crate::model::{ChatId, Message, MessageId};
use crate::state::AppState;

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Hits per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 20;

/// `?q&chatId&before&limit`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct SearchQuery {
    /// The words to find (1 to 200 characters; plain text: quotes, `*`,
    /// `-`, `OR`, `NEAR` are searched as text). The last word matches as a
    /// prefix unless the query ends with a space.
    #[param(min_length = 1, max_length = 200)]
    q: Option<String>,
    /// Only this chat (404 unless the caller is a member).
    #[param(value_type = Option<i64>)]
    chat_id: Option<ChatId>,
    /// Only hits older than this message id: the last hit's `message.id`
    /// for the next page.
    #[param(value_type = Option<i64>, minimum = 1)]
    before: Option<MessageId>,
    /// Hits per page (default 20).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// One search hit.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub message: Message,
    #[schema(value_type = i64)]
    pub chat_id: ChatId,
    /// `[start, end)` offsets of the matched words in `message.content`,
    /// counted in Unicode code points (not bytes, not UTF-16 units).
    #[schema(value_type = Vec<Vec<i64>>)]
    pub ranges: Vec<[usize; 2]>,
    /// The same for `message.fileName` (a file found by its name).
    #[schema(value_type = Vec<Vec<i64>>)]
    pub file_name_ranges: Vec<[usize; 2]>,
}

/// A page of hits, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    pub items: Vec<SearchHit>,
    /// More hits exist (older than the last one).
    pub has_more: bool,
}

/// `GET /search`.
#[utoipa::path(get, path = "/search", tag = "messages", security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "hits in chats the caller is a member of now, only messages sent since they joined, not deleted, newest first", body = SearchPage),
        (status = 400, description = "`q` missing, blank or longer than 200 characters; a bad `limit`, `before` or `chatId`", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "`chatId` names a chat the caller is not a member of", body = ErrorBody),
    ))]
pub async fn search(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(query): AppQuery<SearchQuery>,
) -> AppResult<Json<SearchPage>> {
    let q = query.q.unwrap_or_default();
    if q.trim().is_empty() {
        return Err(AppError::invalid("q", "q must not be empty"));
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(AppError::invalid(
            "q",
            format!("q must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    let limit = limit_param(query.limit, DEFAULT_LIMIT)?;
    if query.before.is_some_and(|b| b < MessageId(1)) {
        return Err(AppError::invalid("before", "before must be a message id"));
    }
    if query.chat_id.is_some_and(|c| c.0 < 1) {
        return Err(AppError::invalid("chatId", "chatId must be a chat id"));
    }
    // Only punctuation or symbols: nothing can match.
    let Some(terms) = Terms::parse(&q) else {
        if let Some(chat) = query.chat_id {
            state
                .db()
                .membership(chat, user.id)
                .await?
                .ok_or_else(AppError::chat_not_found)?;
        }
        return Ok(Json(SearchPage {
            items: Vec::new(),
            has_more: false,
        }));
    };
    let scope = Scope {
        caller: user.id,
        chat: query.chat_id,
        before: query.before,
        limit,
    };
    let (hits, has_more) = state.db().search(terms, scope).await?;
    Ok(Json(SearchPage {
        items: hits
            .into_iter()
            .map(|h| SearchHit {
                chat_id: h.message.chat_id,
                message: h.message,
                ranges: h.ranges,
                file_name_ranges: h.file_name_ranges,
            })
            .collect(),
        has_more,
    }))
}
