//! Read and delivery positions, and the `message:status` events a move
//! causes (returned to the caller, who publishes them after COMMIT).

use std::collections::HashMap;

use crate::db::{chats, messages, now_ms, receipts as q, Conn, Db};
use crate::error::{AppError, AppResult};
use crate::model::{ChatId, MessageId, UserId};
use crate::ops::receipts::{MarkRead, StatusEvent, PER_MEMBER_RECEIPTS_UP_TO};

/// Most `message:status` events one advance sends (newest first).
const MAX_STATUS_EVENTS: u32 = 200;

/// `message:status` events to send: (sender, event).
pub type StatusEvents = Vec<(UserId, StatusEvent)>;

impl Db {
    /// Marks messages of `chat` read by the caller (404 unless a member):
    /// the newest of `input`'s ids in this chat, or the newest message at or
    /// before `upToMessageId`. Returns the caller's unread count afterwards
    /// and the status events to send.
    pub async fn mark_read(
        &self,
        caller: UserId,
        chat: ChatId,
        input: MarkRead,
    ) -> AppResult<(i64, StatusEvents)> {
        self.write(move |c| {
            chats::membership(c, chat, caller)?.ok_or_else(AppError::chat_not_found)?;
            let mut target = MessageId(0);
            if let Some(up_to) = input.up_to_message_id {
                target = messages::newest_at_or_before(c, chat, up_to)?;
            }
            for id in input.message_ids.iter().flatten() {
                if *id > target
                    && matches!(messages::owner(c, *id)?, Some((m_chat, _, _)) if m_chat == chat)
                {
                    target = *id;
                }
            }
            let events = if target > MessageId(0) {
                let before = q::positions(c, chat)?;
                advance(c, chat, caller, q::Kind::Read, target, now_ms(), before)?.0
            } else {
                Vec::new()
            };
            let unread = messages::unread_count(c, chat, caller)?;
            Ok((unread, events))
        })
        .await
    }

    /// Marks messages delivered to `user` in several chats, `(chat, up_to)`,
    /// in one writer op.
    pub async fn mark_delivered(
        &self,
        user: UserId,
        marks: Vec<(ChatId, MessageId)>,
    ) -> AppResult<StatusEvents> {
        self.write(move |c| {
            let now = now_ms();
            let mut events = Vec::new();
            for (chat, up_to) in marks {
                let before = q::positions(c, chat)?;
                events.extend(advance(c, chat, user, q::Kind::Delivered, up_to, now, before)?.0);
            }
            Ok(events)
        })
        .await
    }

    /// Marks batched deliveries, per chat `user → up_to`, in one writer op.
    pub async fn mark_delivered_batch(
        &self,
        pending: HashMap<ChatId, HashMap<UserId, MessageId>>,
    ) -> AppResult<StatusEvents> {
        self.write(move |c| {
            let now = now_ms();
            let mut events = Vec::new();
            for (chat, users) in pending {
                let moves: Vec<_> = users.into_iter().collect();
                events.extend(advance_many(c, chat, q::Kind::Delivered, &moves, now)?);
            }
            Ok(events)
        })
        .await
    }
}

/// Moves `user`'s position in `chat` from `before` (the chat's positions
/// as the op read them) and returns the status events to send (sender,
/// event) and the positions after. Runs inside a writer op.
pub(crate) fn advance(
    c: &Conn,
    chat: ChatId,
    user: UserId,
    kind: q::Kind,
    up_to: MessageId,
    now: i64,
    before: q::Positions,
) -> AppResult<(StatusEvents, q::Positions)> {
    advance_from(c, chat, kind, &[(user, up_to)], now, before)
}

/// Moves several members' positions in one chat (one positions read), and
/// returns the status events to send.
fn advance_many(
    c: &Conn,
    chat: ChatId,
    kind: q::Kind,
    moves: &[(UserId, MessageId)],
    now: i64,
) -> AppResult<StatusEvents> {
    let before = q::positions(c, chat)?;
    Ok(advance_from(c, chat, kind, moves, now, before)?.0)
}

fn advance_from(
    c: &Conn,
    chat: ChatId,
    kind: q::Kind,
    moves: &[(UserId, MessageId)],
    now: i64,
    before: q::Positions,
) -> AppResult<(StatusEvents, q::Positions)> {
    let mut after = before.clone();
    let mut moved = Vec::new();
    if kind == q::Kind::Delivered && moves.len() > 1 && c.is_postgres() {
        // Many members at once (a big group's deliveries) on PostgreSQL,
        // where each statement is a round trip: the positions read above
        // decide who moves; a few statements write them all. (SQLite's
        // statements are in-process calls; one per member stays cheaper.)
        let mut bulk = Vec::new();
        for &(user, up_to) in moves {
            let Some(p) = after.0.iter_mut().find(|p| p.user_id == user) else {
                continue;
            };
            if up_to > p.delivered {
                moved.push((user, p.delivered, up_to));
                bulk.push((user, up_to));
                p.delivered = up_to;
            }
        }
        q::advance_delivered_bulk(c, chat, &bulk, now)?;
    } else {
        for &(user, up_to) in moves {
            let Some(p) = after.0.iter_mut().find(|p| p.user_id == user) else {
                continue;
            };
            let Some(old) = q::advance(c, chat, p, kind, up_to, now)? else {
                continue;
            };
            moved.push((user, old, up_to));
            p.delivered = p.delivered.max(up_to);
            if kind == q::Kind::Read {
                p.read = p.read.max(up_to);
            }
        }
    }
    let event = |sender: UserId, message_id: MessageId, user: UserId| {
        (
            sender,
            StatusEvent {
                chat_id: chat,
                message_id,
                user_id: user,
                status: after.status_for(user, message_id),
                message_status: after.status(sender, message_id),
            },
        )
    };
    let mut events = Vec::new();
    if before.0.len() <= PER_MEMBER_RECEIPTS_UP_TO {
        for &(user, old, up_to) in &moved {
            for (message_id, sender) in
                messages::between(c, chat, old, up_to, Some(user), MAX_STATUS_EVENTS)?
            {
                events.push(event(sender, message_id, user));
            }
        }
    } else if let (Some(lo), Some(hi), Some(&(last, _, _))) = (
        moved.iter().map(|m| m.1).min(),
        moved.iter().map(|m| m.2).max(),
        moved.last(),
    ) {
        for (message_id, sender) in messages::between(c, chat, lo, hi, None, MAX_STATUS_EVENTS)? {
            if before.status(sender, message_id) != after.status(sender, message_id) {
                events.push(event(sender, message_id, last));
            }
        }
    }
    Ok((events, after))
}
