//! SQL for voice messages: the recording's metadata on the message row and
//! the "played" receipts (`message_plays`, one row per member who played a
//! message; `messages.played_by` keeps the same ids as JSON so every
//! message query carries them without a join).

use std::collections::HashMap;

use crate::db::sql::{params, Conn, OptionalExtension};
use crate::error::AppResult;
use crate::model::{MessageId, UserId};

/// Stores a voice message's duration and waveform (validated already).
pub fn set_voice(conn: &Conn, id: MessageId, duration_ms: i64, waveform: &str) -> AppResult<()> {
    conn.prepare_cached("UPDATE messages SET duration_ms = ?2, waveform = ?3 WHERE id = ?1")?
        .execute(params![id, duration_ms, waveform])?;
    Ok(())
}

/// Sender, whether deleted, and whether it is a voice message, of a
/// message in `chat` (`None` when it is not one of that chat's).
pub fn voice_target(
    conn: &Conn,
    chat: crate::model::ChatId,
    id: MessageId,
) -> AppResult<Option<(UserId, bool, bool)>> {
    Ok(conn
        .prepare_cached(
            "SELECT sender_id, is_deleted, duration_ms IS NOT NULL FROM messages
             WHERE id = ?1 AND chat_id = ?2",
        )?
        .query_row(params![id, chat], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

/// Records that `user` played message `id` at `now`; `false` when they had
/// already. Keeps `messages.played_by` in step.
pub fn mark_played(
    conn: &Conn,
    chat: crate::model::ChatId,
    id: MessageId,
    user: UserId,
    now: i64,
) -> AppResult<bool> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO message_plays (message_id, user_id, chat_id, played_at)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )?
        .execute(params![id, user, chat, now])?
        == 1;
    if inserted {
        let ids: Vec<UserId> = played_by(conn, id)?;
        let json = serde_json::to_string(&ids).map_err(|e| anyhow::anyhow!(e))?;
        conn.prepare_cached("UPDATE messages SET played_by = ?2 WHERE id = ?1")?
            .execute(params![id, json])?;
    }
    Ok(inserted)
}

/// Who played message `id`, first player first.
pub fn played_by(conn: &Conn, id: MessageId) -> AppResult<Vec<UserId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id FROM message_plays WHERE message_id = ?1 ORDER BY played_at, user_id",
    )?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// When each member played message `id` (ms).
pub fn plays(conn: &Conn, id: MessageId) -> AppResult<HashMap<UserId, i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT user_id, played_at FROM message_plays WHERE message_id = ?1")?;
    let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
