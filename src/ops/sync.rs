//! `GET /sync`: everything a user missed since a cursor, as the same events
//! the WebSocket pushes, rebuilt from the current rows (so a deleted message's
//! content never comes back).

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::db::{events, messages, receipts};
use crate::error::AppResult;
use crate::model::{ChatId, EventId, MessageId, UserId};
use crate::ops::chats::chat_views;
use crate::ops::fill_chat;
use crate::realtime::frames::{
    raw_json, CHAT_CLEARED, CHAT_NEW, CHAT_REMOVED, CHAT_UPDATED, MESSAGE_DELETED, MESSAGE_HIDDEN,
    MESSAGE_NEW, MESSAGE_UPDATED,
};
use crate::state::AppState;

/// One replayed event.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncItem {
    /// `message:new`, `message:updated`, `message:deleted`, `message:hidden`,
    /// `chat:new`, `chat:updated`, `chat:removed` or `chat:cleared`.
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

/// Whether an event's payload is the message it names.
fn is_message_event(kind: &str) -> bool {
    matches!(kind, MESSAGE_NEW | MESSAGE_UPDATED | MESSAGE_DELETED)
}

/// Events after `after` for `user`, oldest first.
pub async fn page(
    state: &AppState,
    user: UserId,
    after: EventId,
    limit: u32,
) -> AppResult<SyncPage> {
    let st = state.clone();
    let page = state
        .db()
        .read(move |c| {
            let mut rows = events::page_for_user(c, user, after, limit + 1)?;
            let has_more = rows.len() > limit as usize;
            rows.truncate(limit as usize);
            let cursor = rows.last().map_or(after, |r| r.id);
            // One query for the page's messages, one positions read per chat.
            let ids: Vec<_> = rows
                .iter()
                .filter(|r| is_message_event(&r.kind))
                .filter_map(|r| r.message_id)
                .collect();
            let loaded = messages::load_many(c, &ids)?;
            // What is gone for this user: skipped, as in their history.
            let hidden = messages::hidden_among(c, user, &ids)?;
            let cleared = messages::cleared_positions(c, user)?;
            let mut positions: HashMap<ChatId, receipts::Positions> = HashMap::new();
            let mut delivered: HashMap<ChatId, MessageId> = HashMap::new();
            let mut items = Vec::with_capacity(rows.len());
            for row in rows {
                let data = match row.kind.as_str() {
                    CHAT_REMOVED => raw_json(&json!({"chatId": row.chat_id})),
                    MESSAGE_HIDDEN => {
                        raw_json(&json!({"chatId": row.chat_id, "messageId": row.message_id}))
                    }
                    CHAT_CLEARED => {
                        raw_json(&json!({"chatId": row.chat_id, "upToMessageId": row.message_id}))
                    }
                    CHAT_NEW | CHAT_UPDATED => match chat_views(c, row.chat_id, &[user])? {
                        Some(views) => {
                            let mut chat = views.chat;
                            chat.unread_count = views.unread.first().map_or(0, |u| u.1);
                            fill_chat(&st, &mut chat);
                            raw_json(&chat)
                        }
                        None => continue,
                    },
                    _ => {
                        let Some(id) = row.message_id else { continue };
                        if hidden.contains(&id)
                            || cleared.get(&row.chat_id).is_some_and(|&up_to| id <= up_to)
                        {
                            continue;
                        }
                        // an id can recur (new, then updated): clone, don't take
                        let Some(m) = loaded.get(&id).cloned() else {
                            continue;
                        };
                        let positions = match positions.entry(row.chat_id) {
                            Entry::Occupied(e) => e.into_mut(),
                            Entry::Vacant(e) => e.insert(receipts::positions(c, row.chat_id)?),
                        };
                        // Returned here = on the user's device: delivered.
                        if m.sender_id != user && !m.is_deleted {
                            let had = positions
                                .0
                                .iter()
                                .find(|p| p.user_id == user)
                                .map(|p| p.delivered.max(p.read));
                            if had.is_some_and(|had| had < m.id) {
                                let up_to = delivered.entry(row.chat_id).or_default();
                                *up_to = (*up_to).max(m.id);
                            }
                        }
                        raw_json(&messages::with_status(m, positions))
                    }
                };
                items.push(SyncItem {
                    event: row.kind,
                    data,
                });
            }
            Ok((
                SyncPage {
                    items,
                    cursor,
                    has_more,
                },
                delivered,
            ))
        })
        .await?;
    let (page, delivered) = page;
    crate::ops::receipts::mark_delivered_many(state, user, delivered.into_iter().collect()).await?;
    Ok(page)
}
