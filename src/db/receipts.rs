//! SQL for receipts.
//!
//! Receipts are positional, as in WhatsApp: each member has a delivered and a
//! read position (a message id) per chat. A message is delivered to / read by
//! a member when the member's position is at or past it. Each advance is
//! logged in `receipt_marks` with its time, which gives per-message
//! `deliveredAt`/`readAt` without a row per (message, member).

use crate::db::sql::{params, Conn, DbResult, OptionalExtension, Row};

use crate::error::AppResult;
use crate::model::{rfc3339, ChatId, MessageId, Receipt, Status, UserId};

/// Which position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Delivered = 0,
    Read = 1,
}

/// One member's positions.
#[derive(Debug, Clone, Copy)]
pub struct Position {
    pub user_id: UserId,
    pub delivered: MessageId,
    pub read: MessageId,
}

/// The current members' positions in one chat.
#[derive(Debug, Clone, Default)]
pub struct Positions(pub Vec<Position>);

impl Positions {
    /// The sender-side status of message `id` sent by `sender`: DELIVERED once
    /// every other member has it, READ once every other member read it.
    pub fn status(&self, sender: UserId, id: MessageId) -> Status {
        let mut status = Status::Read;
        for p in self.0.iter().filter(|p| p.user_id != sender) {
            if p.delivered.max(p.read) < id {
                return Status::Sent;
            }
            if p.read < id {
                status = Status::Delivered;
            }
        }
        status
    }

    /// One member's receipt state for message `id`.
    pub fn status_for(&self, user: UserId, id: MessageId) -> Status {
        match self.0.iter().find(|p| p.user_id == user) {
            Some(p) if p.read >= id => Status::Read,
            Some(p) if p.delivered >= id => Status::Delivered,
            _ => Status::Sent,
        }
    }
}

/// The positions of a chat's current members (`?1`: the chat).
pub const POSITIONS: &str = "SELECT user_id, delivered_up_to, read_up_to FROM chat_participants
     WHERE chat_id = ?1 AND left_at IS NULL";

/// One row of [`POSITIONS`].
pub fn position_from_row(r: &Row<'_>) -> DbResult<Position> {
    Ok(Position {
        user_id: r.get(0)?,
        delivered: r.get(1)?,
        read: r.get(2)?,
    })
}

/// Positions of the current members of `chat`.
pub fn positions(conn: &Conn, chat: ChatId) -> AppResult<Positions> {
    let mut stmt = conn.prepare_cached(POSITIONS)?;
    let rows = stmt.query_map([chat], position_from_row)?;
    Ok(Positions(rows.collect::<Result<_, _>>()?))
}

/// Positions of several chats, in one round trip on PostgreSQL.
pub fn positions_many(conn: &Conn, chats: &[ChatId]) -> AppResult<Vec<Positions>> {
    let sets: Vec<[ChatId; 1]> = chats.iter().map(|&c| [c]).collect();
    Ok(conn
        .query_map_many(POSITIONS, &sets, position_from_row)?
        .into_iter()
        .map(Positions)
        .collect())
}

/// Moves a member's position forward to `up_to` (never back), from `p`,
/// their positions as the op read them. Returns the old position when it
/// moved. Reading implies delivery, so a read advance also advances the
/// delivered position: one `UPDATE` and one insert of marks either way.
pub fn advance(
    conn: &Conn,
    chat: ChatId,
    p: &Position,
    kind: Kind,
    up_to: MessageId,
    now: i64,
) -> AppResult<Option<MessageId>> {
    let old = match kind {
        Kind::Delivered => p.delivered,
        Kind::Read => p.read,
    };
    if up_to <= old {
        return Ok(None);
    }
    // (update, insert of marks, both in one statement for PostgreSQL)
    macro_rules! sql {
        ($set:literal, $marks:literal) => {{
            const UPDATE: &str = concat!(
                "UPDATE chat_participants SET ",
                $set,
                " WHERE chat_id = ?1 AND user_id = ?2"
            );
            const INSERT: &str = concat!(
                "INSERT INTO receipt_marks (chat_id, user_id, kind, up_to, at) VALUES ",
                $marks,
                " ON CONFLICT DO NOTHING"
            );
            const BOTH: &str = concat!(
                "WITH u AS (UPDATE chat_participants SET ",
                $set,
                " WHERE chat_id = ?1 AND user_id = ?2) ",
                "INSERT INTO receipt_marks (chat_id, user_id, kind, up_to, at) VALUES ",
                $marks,
                " ON CONFLICT DO NOTHING"
            );
            (UPDATE, INSERT, BOTH)
        }};
    }
    let (update, insert, both) = match (kind, up_to > p.delivered) {
        (Kind::Read, true) => sql!(
            "read_up_to = ?3, delivered_up_to = ?3",
            "(?1, ?2, 1, ?3, ?4), (?1, ?2, 0, ?3, ?4)"
        ),
        (Kind::Read, false) => sql!("read_up_to = ?3", "(?1, ?2, 1, ?3, ?4)"),
        (Kind::Delivered, _) => sql!("delivered_up_to = ?3", "(?1, ?2, 0, ?3, ?4)"),
    };
    if conn.is_postgres() {
        conn.prepare_cached(both)?
            .execute_later(params![chat, p.user_id, up_to, now])?;
    } else {
        conn.prepare_cached(update)?
            .execute_later(params![chat, p.user_id, up_to])?;
        conn.prepare_cached(insert)?
            .execute_later(params![chat, p.user_id, up_to, now])?;
    }
    Ok(Some(old))
}

/// Moves many members' delivered positions of one chat at once: `moves`
/// are `(user, up_to)` already known to advance (see `store::receipts::Plan::make`). A few
/// statements per batch instead of three per member, which is what a big
/// group's receipts cost on PostgreSQL (a round trip each).
pub fn advance_delivered_bulk(
    conn: &Conn,
    chat: ChatId,
    moves: &[(UserId, MessageId)],
    now: i64,
) -> AppResult<()> {
    for part in moves.chunks(400) {
        let tuples = vec!["(CAST(? AS BIGINT), CAST(? AS BIGINT))"; part.len()].join(", ");
        // Bare `?` only, numbered in order of appearance: the chat comes last.
        let mut values: Vec<i64> = Vec::with_capacity(part.len() * 2 + 1);
        for (user, up_to) in part {
            values.extend([user.0, up_to.0]);
        }
        values.push(chat.0);
        conn.prepare_cached(&format!(
            "UPDATE chat_participants SET delivered_up_to = v.column2
             FROM (VALUES {tuples}) AS v
             WHERE chat_participants.user_id = v.column1 AND chat_participants.chat_id = ?"
        ))?
        .execute_later(&values)?;
        let marks = vec!["(?, ?, 0, ?, ?)"; part.len()].join(", ");
        let mut values: Vec<i64> = Vec::with_capacity(part.len() * 4);
        for (user, up_to) in part {
            values.extend([chat.0, user.0, up_to.0, now]);
        }
        conn.prepare_cached(&format!(
            "INSERT INTO receipt_marks (chat_id, user_id, kind, up_to, at) VALUES {marks}
             ON CONFLICT DO NOTHING"
        ))?
        .execute_later(&values)?;
    }
    Ok(())
}

/// When `user`'s position of `kind` first reached message `id`.
fn reached_at(
    conn: &Conn,
    chat: ChatId,
    user: UserId,
    kind: Kind,
    id: MessageId,
) -> AppResult<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT at FROM receipt_marks WHERE chat_id = ?1 AND user_id = ?2 AND kind = ?3 AND up_to >= ?4
             ORDER BY up_to LIMIT 1",
        )?
        .query_row(params![chat, user, kind as i64, id], |r| r.get(0))
        .optional()?)
}

/// Per-member receipts of message `id` sent by `sender` (the sender excluded).
pub fn for_message(
    conn: &Conn,
    chat: ChatId,
    sender: UserId,
    id: MessageId,
    positions: &Positions,
) -> AppResult<Vec<Receipt>> {
    let mut items = Vec::new();
    for p in positions.0.iter().filter(|p| p.user_id != sender) {
        let delivered_at = if p.delivered >= id {
            reached_at(conn, chat, p.user_id, Kind::Delivered, id)?
        } else {
            None
        };
        let read_at = if p.read >= id {
            reached_at(conn, chat, p.user_id, Kind::Read, id)?
        } else {
            None
        };
        items.push(Receipt {
            user_id: p.user_id,
            delivered_at: delivered_at.map(rfc3339),
            read_at: read_at.map(rfc3339),
            played_at: None,
        });
    }
    Ok(items)
}
