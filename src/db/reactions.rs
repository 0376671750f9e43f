//! SQL for reactions: `message_reactions` holds one row per member and
//! message (a new reaction replaces the old); `messages.reactions` keeps the
//! same rows grouped as JSON (`[{emoji, count, userIds}]`, by first use) so
//! every message query carries them without a join, like `played_by`.

use crate::db::messages::Viewer;
use crate::db::sql::{params, Conn, OptionalExtension};
use crate::error::AppResult;
use crate::model::{ChatId, MessageId, Reaction, UserId};

/// Whether message `id` of `chat` is deleted, if `viewer` may see it: not
/// cleared, not deleted for them, not a group note from before they joined,
/// and not sent before they (last) joined. `None` otherwise (a 404).
pub fn visible_to(
    conn: &Conn,
    chat: ChatId,
    id: MessageId,
    viewer: &Viewer,
) -> AppResult<Option<bool>> {
    Ok(conn
        .prepare_cached(
            "SELECT m.is_deleted FROM messages m
             WHERE m.id = ?1 AND m.chat_id = ?2 AND m.id > ?3 AND m.created_at >= ?4
               AND NOT EXISTS (SELECT 1 FROM hidden_messages h
                               WHERE h.user_id = ?5 AND h.message_id = m.id)",
        )?
        .query_row(
            params![
                id,
                chat,
                viewer.cleared_up_to,
                viewer.joined_at,
                viewer.user
            ],
            |r| r.get(0),
        )
        .optional()?)
}

/// Sets `user`'s reaction on message `id` (replacing theirs); `false` when
/// it already was this emoji. Keeps `messages.reactions` in step.
pub fn set(
    conn: &Conn,
    chat: ChatId,
    id: MessageId,
    user: UserId,
    emoji: &str,
    now: i64,
) -> AppResult<bool> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO message_reactions (message_id, user_id, chat_id, emoji, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (message_id, user_id) DO UPDATE
                SET emoji = excluded.emoji, created_at = excluded.created_at
                WHERE message_reactions.emoji != excluded.emoji",
        )?
        .execute(params![id, user, chat, emoji, now])?
        == 1;
    if changed {
        refresh(conn, id)?;
    }
    Ok(changed)
}

/// Removes `user`'s reaction on message `id`; `false` when there was none.
pub fn remove(conn: &Conn, id: MessageId, user: UserId) -> AppResult<bool> {
    let changed = conn
        .prepare_cached("DELETE FROM message_reactions WHERE message_id = ?1 AND user_id = ?2")?
        .execute(params![id, user])?
        == 1;
    if changed {
        refresh(conn, id)?;
    }
    Ok(changed)
}

/// The reactions of message `id`, grouped by emoji in order of first use.
pub fn of(conn: &Conn, id: MessageId) -> AppResult<Vec<Reaction>> {
    let mut stmt = conn.prepare_cached(
        "SELECT emoji, user_id FROM message_reactions WHERE message_id = ?1
         ORDER BY created_at, user_id",
    )?;
    let rows = stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
    let mut out: Vec<Reaction> = Vec::new();
    for row in rows {
        let (emoji, user): (String, UserId) = row?;
        match out.iter_mut().find(|g| g.emoji == emoji) {
            Some(g) => {
                g.count += 1;
                g.user_ids.push(user);
            }
            None => out.push(Reaction {
                emoji,
                count: 1,
                user_ids: vec![user],
            }),
        }
    }
    Ok(out)
}

/// Rewrites `messages.reactions` from the rows.
fn refresh(conn: &Conn, id: MessageId) -> AppResult<()> {
    let groups = of(conn, id)?;
    let json = if groups.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&groups).map_err(|e| anyhow::anyhow!(e))?)
    };
    conn.prepare_cached("UPDATE messages SET reactions = ?2 WHERE id = ?1")?
        .execute(params![id, json])?;
    Ok(())
}
