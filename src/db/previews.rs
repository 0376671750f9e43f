//! SQL for link previews: a message's preview (JSON in
//! `messages.link_preview`) and its thumbnail (`preview_upload_id`, an
//! upload row readable by the chat's members like the chat's files).

use crate::db::sql::{params, Conn, OptionalExtension};
use crate::error::AppResult;
use crate::model::{ChatId, LinkPreview, MessageId, UserId};

/// What a preview fill needs to know about its message.
pub struct Target {
    pub chat_id: ChatId,
    pub sender_id: UserId,
    pub content: Option<String>,
    pub is_deleted: bool,
    pub has_preview: bool,
}

/// The message a preview is for, if it still exists.
pub fn target(conn: &Conn, id: MessageId) -> AppResult<Option<Target>> {
    Ok(conn
        .prepare_cached(
            "SELECT chat_id, sender_id, content, is_deleted, link_preview IS NOT NULL
             FROM messages WHERE id = ?1 AND message_type IN ('TEXT', 'LINK')",
        )?
        .query_row([id], |r| {
            Ok(Target {
                chat_id: r.get(0)?,
                sender_id: r.get(1)?,
                content: r.get(2)?,
                is_deleted: r.get(3)?,
                has_preview: r.get(4)?,
            })
        })
        .optional()?)
}

/// A message's content (before an edit).
pub fn content_of(conn: &Conn, id: MessageId) -> AppResult<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT content FROM messages WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .flatten())
}

/// Attaches `preview` (and its thumbnail upload, if any) to a message.
pub fn set(
    conn: &Conn,
    id: MessageId,
    preview: &LinkPreview,
    upload: Option<i64>,
) -> AppResult<()> {
    let json = serde_json::to_string(preview).map_err(|e| anyhow::anyhow!(e))?;
    conn.prepare_cached(
        "UPDATE messages SET link_preview = ?2, preview_upload_id = ?3 WHERE id = ?1",
    )?
    .execute(params![id, json, upload])?;
    Ok(())
}

/// Removes a message's preview (its thumbnail is swept once unreferenced).
pub fn clear(conn: &Conn, id: MessageId) -> AppResult<()> {
    conn.prepare_cached(
        "UPDATE messages SET link_preview = NULL, preview_upload_id = NULL WHERE id = ?1",
    )?
    .execute([id])?;
    Ok(())
}
