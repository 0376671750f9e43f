//! SQL for uploaded files and who may read them.

use crate::db::sql::{params, Conn, OptionalExtension};

use crate::error::AppResult;
use crate::model::UserId;

/// A stored upload.
#[derive(Debug, Clone)]
pub struct UploadRow {
    pub id: i64,
    pub name: String,
    pub uploader_id: UserId,
    pub file_name: String,
    pub file_size: i64,
    pub mime_type: String,
    pub sha256: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub thumb_name: Option<String>,
}

/// A finished upload to record.
pub struct NewUpload {
    pub name: String,
    pub uploader_id: UserId,
    pub file_name: String,
    pub file_size: i64,
    pub mime_type: String,
    pub sha256: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub thumb_name: Option<String>,
}

/// Records an upload made at `now`.
pub fn insert(conn: &Conn, u: &NewUpload, now: i64) -> AppResult<i64> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO uploads (name, uploader_id, file_name, file_size, mime_type, sha256, width, height, thumb_name, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
        )?
        .query_row(
            params![
                u.name, u.uploader_id, u.file_name, u.file_size, u.mime_type, u.sha256, u.width,
                u.height, u.thumb_name, now
            ],
            |r| r.get(0),
        )?)
}

/// An upload by its stored name.
pub fn find_by_name(conn: &Conn, name: &str) -> AppResult<Option<UploadRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, name, uploader_id, file_name, file_size, mime_type, sha256, width, height, thumb_name
             FROM uploads WHERE name = ?1",
        )?
        .query_row([name], |r| {
            Ok(UploadRow {
                id: r.get(0)?,
                name: r.get(1)?,
                uploader_id: r.get(2)?,
                file_name: r.get(3)?,
                file_size: r.get(4)?,
                mime_type: r.get(5)?,
                sha256: r.get(6)?,
                width: r.get(7)?,
                height: r.get(8)?,
                thumb_name: r.get(9)?,
            })
        })
        .optional()?)
}

/// Marks an upload as an avatar (a user's or a group's): readable by every
/// signed-in user from now on, and never swept as unsent.
pub fn mark_avatar(conn: &Conn, id: i64) -> AppResult<()> {
    conn.prepare_cached("UPDATE uploads SET is_avatar = 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Whether `user` (signed in) may read upload `id`: its uploader, anyone
/// when it is an avatar, or a current member of a chat where a (not
/// deleted) message carries it, as its file or as its link preview's
/// thumbnail.
pub fn can_read(conn: &Conn, id: i64, uploader: UserId, user: UserId) -> AppResult<bool> {
    if uploader == user {
        return Ok(true);
    }
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM uploads WHERE id = ?1 AND is_avatar = 1
             UNION ALL
             SELECT 1 FROM messages m JOIN chat_participants p
                 ON p.chat_id = m.chat_id AND p.user_id = ?2 AND p.left_at IS NULL
             WHERE m.upload_id = ?1
             UNION ALL
             SELECT 1 FROM messages m JOIN chat_participants p
                 ON p.chat_id = m.chat_id AND p.user_id = ?2 AND p.left_at IS NULL
             WHERE m.preview_upload_id = ?1 LIMIT 1",
        )?
        .exists(params![id, user])?)
}

/// An upload by its stored name or its preview's name; `true` when it is the preview.
pub fn find_by_any_name(conn: &Conn, name: &str) -> AppResult<Option<(UploadRow, bool)>> {
    if let Some(row) = find_by_name(conn, name)? {
        return Ok(Some((row, false)));
    }
    let base: Option<String> = conn
        .prepare_cached("SELECT name FROM uploads WHERE thumb_name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    match base {
        Some(base) => Ok(find_by_name(conn, &base)?.map(|r| (r, true))),
        None => Ok(None),
    }
}

/// Whether upload `u` (an alias in SQL) is someone's avatar or a group's
/// photo: those are kept although no message carries them.
const IS_AVATAR: &str = "(u.is_avatar = 1)";

/// Bytes of `user`'s uploads that no message carries (and that are not an
/// avatar): what the per-user upload quota counts.
pub fn unsent_bytes(conn: &Conn, user: UserId) -> AppResult<i64> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT CAST(coalesce(sum(u.file_size), 0) AS BIGINT) FROM uploads u
             WHERE u.uploader_id = ?1
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.upload_id = u.id)
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.preview_upload_id = u.id)
               AND NOT {IS_AVATAR}"
        ))?
        .query_row([user], |r| r.get(0))?)
}

/// Retention: deletes messages created before `cutoff` (if any) with their
/// events, then uploads created before `orphan_before` that no message
/// references and that are nobody's avatar. Returns the number of messages deleted and the stored file
/// names (uploads and previews) to remove from disk.
pub fn sweep(
    conn: &Conn,
    cutoff: Option<i64>,
    orphan_before: i64,
) -> AppResult<(usize, Vec<String>)> {
    let mut deleted = 0;
    if let Some(cutoff) = cutoff {
        conn.prepare_cached(
            "DELETE FROM events WHERE message_id IN (SELECT id FROM messages WHERE created_at < ?1)",
        )?
        .execute([cutoff])?;
        deleted = conn
            .prepare_cached("DELETE FROM messages WHERE created_at < ?1")?
            .execute([cutoff])?;
        if deleted > 0 {
            conn.execute(
                "UPDATE chats SET last_message_id = (SELECT max(id) FROM messages m WHERE m.chat_id = chats.id)
                 WHERE last_message_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = chats.last_message_id)",
                [],
            )?;
        }
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, name, thumb_name FROM uploads u
         WHERE u.created_at < ?1 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.upload_id = u.id)
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.preview_upload_id = u.id)
           AND NOT {IS_AVATAR}"
    ))?;
    let rows: Vec<(i64, String, Option<String>)> = stmt
        .query_map([orphan_before], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut files = Vec::new();
    for (id, name, thumb) in rows {
        conn.prepare_cached("DELETE FROM uploads WHERE id = ?1")?
            .execute([id])?;
        files.push(name);
        files.extend(thumb);
    }
    Ok((deleted, files))
}
