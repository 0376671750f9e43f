//! `/sync`: a user's events after a cursor, rebuilt from the current rows
//! (so a deleted message's content never comes back), in one read.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use crate::db::store::chats::chat_views;
use crate::db::{events, messages, receipts, Db};
use crate::error::AppResult;
use crate::model::{Chat, ChatId, EventId, Message, MessageId, UserId};
use crate::realtime::frames::{
    CHAT_CLEARED, CHAT_NEW, CHAT_REMOVED, CHAT_UPDATED, MESSAGE_DELETED, MESSAGE_HIDDEN,
    MESSAGE_NEW, MESSAGE_REACTION, MESSAGE_UPDATED,
};

/// What one event carries.
pub enum SyncData {
    /// `chat:removed`, `message:hidden`, `chat:cleared`: the event row's ids.
    Ids {
        chat_id: ChatId,
        message_id: Option<MessageId>,
    },
    /// `chat:new`, `chat:updated`: the chat as the user sees it now.
    Chat(Chat),
    /// `message:new`, `message:updated`, `message:deleted`: the message now.
    Message(Message),
    /// `message:reaction`: the payload stored with the event.
    Stored(String),
}

/// One event of a page.
pub struct SyncEvent {
    pub kind: String,
    pub data: SyncData,
}

/// A page of events.
pub struct SyncRows {
    pub items: Vec<SyncEvent>,
    /// The `after` of the next call.
    pub cursor: EventId,
    pub has_more: bool,
    /// Per chat, the newest message from others this page puts on the
    /// user's device for the first time (to mark delivered).
    pub delivered: HashMap<ChatId, MessageId>,
}

/// Whether an event's payload is the message it names.
fn is_message_event(kind: &str) -> bool {
    matches!(kind, MESSAGE_NEW | MESSAGE_UPDATED | MESSAGE_DELETED)
}

impl Db {
    /// Events after `after` for `user`, oldest first, at most `limit`.
    pub async fn sync_since(
        &self,
        user: UserId,
        after: EventId,
        limit: u32,
    ) -> AppResult<SyncRows> {
        self.read(move |c| {
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
                    CHAT_REMOVED | MESSAGE_HIDDEN | CHAT_CLEARED => SyncData::Ids {
                        chat_id: row.chat_id,
                        message_id: row.message_id,
                    },
                    MESSAGE_REACTION => {
                        let (Some(id), Some(data)) = (row.message_id, row.data) else {
                            continue;
                        };
                        if cleared.get(&row.chat_id).is_some_and(|&up_to| id <= up_to)
                            || messages::hidden_among(c, user, &[id])?.contains(&id)
                        {
                            continue;
                        }
                        SyncData::Stored(data)
                    }
                    CHAT_NEW | CHAT_UPDATED => match chat_views(c, row.chat_id, &[user])? {
                        Some(views) => {
                            let mut chat = views.chat;
                            chat.unread_count = views.unread.first().map_or(0, |u| u.1);
                            SyncData::Chat(chat)
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
                        SyncData::Message(messages::with_status(m, positions))
                    }
                };
                items.push(SyncEvent {
                    kind: row.kind,
                    data,
                });
            }
            Ok(SyncRows {
                items,
                cursor,
                has_more,
                delivered,
            })
        })
        .await
    }
}
