//! Read and delivery receipts, and `message:status` to senders.
//!
//! Positions only move forward. Delivery reported by connections (a
//! `message:new` written to a recipient's socket) is batched by
//! [`DeliveryBatcher`]: whatever arrives within a few milliseconds becomes one
//! writer op, so receipts cost little even at high message rates.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::error::{AppError, AppResult};
use crate::model::{ChatId, MessageId, Status, UserId};
use crate::ops::{publish, MAX_IDS};
use crate::realtime::frames::MESSAGE_STATUS;
use crate::state::{AppState, WeakState};

/// How long deliveries gather before one write.
const DELIVERY_BATCH_WINDOW: Duration = Duration::from_millis(5);

/// `POST /chat/:id/read` (and `message:read`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MarkRead {
    /// The newest listed id of this chat counts; others are ignored.
    #[schema(value_type = Option<Vec<i64>>, max_items = 1024)]
    pub message_ids: Option<Vec<MessageId>>,
    #[schema(value_type = Option<i64>)]
    pub up_to_message_id: Option<MessageId>,
}

/// `message:status` data.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusEvent {
    pub chat_id: ChatId,
    pub message_id: MessageId,
    /// Whose receipt changed.
    pub user_id: UserId,
    /// That member's receipt for the message.
    pub status: Status,
    /// The message's overall status (the sender's ticks).
    pub message_status: Status,
}

/// Chats up to this size get a `message:status` for every member's receipt;
/// larger groups only when a message's overall ticks change (a 1,000-member
/// group would otherwise send its sender 999 frames per message).
pub const PER_MEMBER_RECEIPTS_UP_TO: usize = 32;

/// Publishes `message:status` events to their senders.
pub(crate) fn send_status(state: &AppState, events: crate::db::store::receipts::StatusEvents) {
    for (sender, event) in events {
        publish(state, MESSAGE_STATUS, &event, &[sender]);
    }
}

/// Marks messages read; returns the caller's unread count afterwards.
/// Receipts are positional: reading a message reads everything before it.
pub async fn mark_read(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    input: MarkRead,
) -> AppResult<i64> {
    if input.message_ids.is_none() && input.up_to_message_id.is_none() {
        return Err(AppError::invalid(
            "messageIds",
            "give messageIds or upToMessageId",
        ));
    }
    if input
        .message_ids
        .as_ref()
        .is_some_and(|ids| ids.len() > MAX_IDS)
    {
        return Err(AppError::invalid(
            "messageIds",
            format!("messageIds may list at most {MAX_IDS} ids"),
        ));
    }
    let (unread, events) = state.db().mark_read(caller, chat, input).await?;
    send_status(state, events);
    Ok(unread)
}

/// Marks messages up to `up_to` delivered to `user` now (history fetches).
pub async fn mark_delivered(
    state: &AppState,
    user: UserId,
    chat: ChatId,
    up_to: MessageId,
) -> AppResult<()> {
    mark_delivered_many(state, user, vec![(chat, up_to)]).await
}

/// Marks messages delivered to `user` in several chats at once, `(chat,
/// up_to)`, in one writer op (a chat list page, a `/sync` page). Resolves
/// after the commit, so the sender's ticks are right by the time the fetch
/// that delivered them is answered.
pub async fn mark_delivered_many(
    state: &AppState,
    user: UserId,
    marks: Vec<(ChatId, MessageId)>,
) -> AppResult<()> {
    if marks.is_empty() {
        return Ok(());
    }
    let events = state.db().mark_delivered(user, marks).await?;
    send_status(state, events);
    Ok(())
}

/// Gathers "reached a device" reports into batched writes.
pub struct DeliveryBatcher {
    tx: mpsc::UnboundedSender<(UserId, ChatId, MessageId)>,
    rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<(UserId, ChatId, MessageId)>>>,
}

impl Default for DeliveryBatcher {
    fn default() -> Self {
        Self::new()
    }
}

impl DeliveryBatcher {
    /// A batcher; [`DeliveryBatcher::start`] runs it.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        DeliveryBatcher {
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
        }
    }

    /// Reports that `message` of `chat` reached one of `user`'s connections.
    pub fn delivered(&self, user: UserId, chat: ChatId, message: MessageId) {
        let _ = self.tx.send((user, chat, message));
    }

    /// Starts the batching task; it ends when the app is dropped.
    pub fn start(&self, state: WeakState) {
        let Some(mut rx) = self.rx.lock().ok().and_then(|mut r| r.take()) else {
            return;
        };
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut pending: HashMap<ChatId, HashMap<UserId, MessageId>> = HashMap::new();
                pending.entry(first.1).or_default().insert(first.0, first.2);
                tokio::time::sleep(DELIVERY_BATCH_WINDOW).await;
                while let Ok((user, chat, msg)) = rx.try_recv() {
                    let e = pending.entry(chat).or_default().entry(user).or_insert(msg);
                    *e = (*e).max(msg);
                }
                let Some(state) = state.upgrade() else { break };
                let result = state.db().mark_delivered_batch(pending).await;
                match result {
                    Ok(events) => send_status(&state, events),
                    Err(e) => e.log(),
                }
            }
        });
    }
}
