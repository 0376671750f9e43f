//! `GET /sync`: everything a user missed since a cursor, as the same events
//! the WebSocket pushes, rebuilt from the current rows (so a deleted message's
//! content never comes back).

use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::db::store::sync::SyncData;
use crate::error::AppResult;
use crate::model::{EventId, UserId};
use crate::ops::fill_chat;
use crate::realtime::frames::{raw_json, CHAT_CLEARED, CHAT_REMOVED};
use crate::state::AppState;

/// One replayed event.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncItem {
    /// `message:new`, `message:updated`, `message:deleted`, `message:hidden`,
    /// `chat:new`, `chat:updated`, `chat:removed`, `chat:cleared` or
    /// `message:reaction`.
    pub event: String,
    /// The event's payload, as on the WebSocket.
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncPage {
    pub items: Vec<SyncItem>,
    /// The `after` of the next call.
    #[schema(value_type = i64)]
    pub cursor: EventId,
    pub has_more: bool,
}

/// Events after `after` for `user`, oldest first.
pub async fn page(
    state: &AppState,
    user: UserId,
    after: EventId,
    limit: u32,
) -> AppResult<SyncPage> {
    let rows = state.db().sync_since(user, after, limit).await?;
    let items = rows
        .items
        .into_iter()
        .map(|item| {
            let data = match item.data {
                SyncData::Ids {
                    chat_id,
                    message_id,
                } => match item.kind.as_str() {
                    CHAT_REMOVED => raw_json(&json!({"chatId": chat_id})),
                    CHAT_CLEARED => {
                        raw_json(&json!({"chatId": chat_id, "upToMessageId": message_id}))
                    }
                    _ => raw_json(&json!({"chatId": chat_id, "messageId": message_id})),
                },
                SyncData::Chat(mut chat) => {
                    fill_chat(state, &mut chat);
                    raw_json(&chat)
                }
                SyncData::Message(message) => raw_json(&message),
                SyncData::Stored(data) => {
                    RawValue::from_string(data).unwrap_or_else(|_| raw_json(&json!({})))
                }
            };
            SyncItem {
                event: item.kind,
                data,
            }
        })
        .collect();
    let page = SyncPage {
        items,
        cursor: rows.cursor,
        has_more: rows.has_more,
    };
    crate::ops::receipts::mark_delivered_many(state, user, rows.delivered.into_iter().collect())
        .await?;
    Ok(page)
}
