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
            // Every chat's positions in one round trip, the writes queued,
            // then every chat's lookups in one more (on PostgreSQL; SQLite
            // runs the same statements one by one, in-process).
            let chats: Vec<(ChatId, Vec<(UserId, MessageId)>)> = pending
                .into_iter()
                .map(|(chat, users)| (chat, users.into_iter().collect()))
                .collect();
            let ids: Vec<ChatId> = chats.iter().map(|(chat, _)| *chat).collect();
            let positions = q::positions_many(c, &ids)?;
            let mut plans = Vec::with_capacity(chats.len());
            for ((chat, moves), before) in chats.into_iter().zip(positions) {
                plans.push(Plan::make(
                    c,
                    chat,
                    q::Kind::Delivered,
                    &moves,
                    now,
                    before,
                )?);
            }
            Ok(status_events(c, &plans)?.into_iter().flatten().collect())
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
    let plan = Plan::make(c, chat, kind, &[(user, up_to)], now, before)?;
    let events = status_events(c, std::slice::from_ref(&plan))?;
    Ok((events.into_iter().flatten().collect(), plan.after))
}

/// The status events of each plan, with every plan's lookups in one round
/// trip on PostgreSQL (after the plans' queued writes).
pub(super) fn status_events(c: &Conn, plans: &[Plan]) -> AppResult<Vec<StatusEvents>> {
    let ranges: Vec<Vec<messages::Range>> = plans.iter().map(Plan::ranges).collect();
    let flat: Vec<messages::Range> = ranges.iter().flatten().copied().collect();
    let mut found = messages::between_many(c, &flat, MAX_STATUS_EVENTS)?.into_iter();
    Ok(plans
        .iter()
        .zip(&ranges)
        .map(|(plan, ranges)| plan.events(found.by_ref().take(ranges.len()).collect()))
        .collect())
}

/// An advance in one chat whose writes are queued, and the lookups that
/// turn it into `message:status` events (run for many chats at once by
/// `mark_delivered_batch`).
pub(super) struct Plan {
    chat: ChatId,
    before: q::Positions,
    pub(super) after: q::Positions,
    /// (user, old position, new position)
    moved: Vec<(UserId, MessageId, MessageId)>,
}

impl Plan {
    /// Decides who moves from `before` and queues the writes.
    pub(super) fn make(
        c: &Conn,
        chat: ChatId,
        kind: q::Kind,
        moves: &[(UserId, MessageId)],
        now: i64,
        before: q::Positions,
    ) -> AppResult<Plan> {
        let mut after = before.clone();
        let mut moved = Vec::new();
        if kind == q::Kind::Delivered && moves.len() > 1 && c.is_postgres() {
            // Many members at once (a big group's deliveries) on PostgreSQL,
            // where each statement costs a round trip: the positions read
            // above decide who moves; a few statements write them all.
            // (SQLite's statements are in-process calls; one per member
            // stays cheaper.)
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
        Ok(Plan {
            chat,
            before,
            after,
            moved,
        })
    }

    /// Small chats: one range per member who moved (others' messages in
    /// it). Big ones: one range over every move, filtered by status change.
    fn per_member(&self) -> bool {
        self.before.0.len() <= PER_MEMBER_RECEIPTS_UP_TO
    }

    fn ranges(&self) -> Vec<messages::Range> {
        if self.per_member() {
            self.moved
                .iter()
                .map(|&(user, old, up_to)| (self.chat, old, up_to, Some(user)))
                .collect()
        } else {
            match (
                self.moved.iter().map(|m| m.1).min(),
                self.moved.iter().map(|m| m.2).max(),
            ) {
                (Some(lo), Some(hi)) => vec![(self.chat, lo, hi, None)],
                _ => Vec::new(),
            }
        }
    }

    /// The status events, from what [`Plan::ranges`] found (same order).
    fn events(&self, found: Vec<Vec<(MessageId, UserId)>>) -> StatusEvents {
        let event = |sender: UserId, message_id: MessageId, user: UserId| {
            (
                sender,
                StatusEvent {
                    chat_id: self.chat,
                    message_id,
                    user_id: user,
                    status: self.after.status_for(user, message_id),
                    message_status: self.after.status(sender, message_id),
                },
            )
        };
        let mut events = Vec::new();
        if self.per_member() {
            for (&(user, _, _), rows) in self.moved.iter().zip(found) {
                for (message_id, sender) in rows {
                    events.push(event(sender, message_id, user));
                }
            }
        } else if let (Some(&(last, _, _)), Some(rows)) = (self.moved.last(), found.first()) {
            for &(message_id, sender) in rows {
                if self.before.status(sender, message_id) != self.after.status(sender, message_id) {
                    events.push(event(sender, message_id, last));
                }
            }
        }
        events
    }
}
