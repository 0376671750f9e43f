//! SQL for messages: insert, edit, soft delete, pages and cursors.
//!
//! Every history query walks the `messages_by_chat (chat_id, id)` index.
//! A message's `status` is derived from the members' receipt positions
//! ([`receipts::Positions`]), never stored per message.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::db::sql::{params, Conn, OptionalExtension, Row, ToSql, Value};

use crate::db::receipts::Positions;
use crate::error::AppResult;
use crate::model::{rfc3339, ChatId, Message, MessageId, UserId};

/// URL prefix of stored uploads.
pub const UPLOADS_PREFIX: &str = "/uploads/chat/";

pub(crate) const MESSAGE_COLUMNS: &str = "m.id, m.chat_id, m.sender_id, m.content, m.message_type,
    m.file_url, m.file_name, m.file_size, m.file_mime_type, m.reply_to_id, m.client_id,
    m.is_edited, m.is_deleted, m.created_at, m.updated_at, up.thumb_name, up.width, up.height,
    m.system, m.duration_ms, m.waveform, m.played_by, m.link_preview,
    m.reactions, m.is_forwarded";

const FROM: &str = "FROM messages m LEFT JOIN uploads up ON up.id = m.upload_id";

pub(crate) fn from_row(r: &Row<'_>) -> crate::db::sql::DbResult<Message> {
    Ok(Message {
        id: r.get(0)?,
        chat_id: r.get(1)?,
        sender_id: r.get(2)?,
        content: r.get(3)?,
        message_type: r.get(4)?,
        file_url: r.get(5)?,
        file_name: r.get(6)?,
        file_size: r.get(7)?,
        file_mime_type: r.get(8)?,
        reply_to_id: r.get(9)?,
        client_id: r.get(10)?,
        is_edited: r.get(11)?,
        is_deleted: r.get(12)?,
        created_at: rfc3339(r.get(13)?),
        updated_at: rfc3339(r.get(14)?),
        thumbnail_url: r
            .get::<_, Option<String>>(15)?
            .map(|t| format!("{UPLOADS_PREFIX}{t}")),
        width: r.get(16)?,
        height: r.get(17)?,
        is_read: false,
        status: crate::model::Status::Sent,
        system: r
            .get::<_, Option<String>>(18)?
            .and_then(|j| serde_json::from_str(&j).ok()),
        duration_ms: r.get(19)?,
        waveform: r.get(20)?,
        played_by: r
            .get::<_, Option<String>>(21)?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
        link_preview: r
            .get::<_, Option<String>>(22)?
            .and_then(|j| serde_json::from_str(&j).ok()),
        reactions: r
            .get::<_, Option<String>>(23)?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
        is_forwarded: r.get(24)?,
    })
}

/// Sets `status`/`isRead` from the members' positions.
pub fn with_status(mut m: Message, positions: &Positions) -> Message {
    m.status = positions.status(m.sender_id, m.id);
    m.is_read = m.status == crate::model::Status::Read;
    m
}

/// A new message row (already validated).
pub struct NewMessage<'a> {
    pub chat_id: ChatId,
    pub sender_id: UserId,
    pub message_type: &'a str,
    pub content: Option<&'a str>,
    pub upload_id: Option<i64>,
    pub file_url: Option<&'a str>,
    pub file_name: Option<&'a str>,
    pub file_size: Option<i64>,
    pub file_mime_type: Option<&'a str>,
    pub reply_to_id: Option<MessageId>,
    pub client_id: Option<&'a str>,
    /// A group note's [`crate::model::SystemNote`] as JSON.
    pub system: Option<&'a str>,
    /// A copy of another message (`forwardedFromId`).
    pub is_forwarded: bool,
    pub now: i64,
}

/// The insert of a message row, without its `RETURNING` (shared by
/// [`insert`] and [`insert_sent`]).
const INSERT: &str = "INSERT INTO messages (chat_id, sender_id, message_type, content, upload_id,
     file_url, file_name, file_size, file_mime_type, reply_to_id, client_id, created_at,
     updated_at, system, is_forwarded)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14)";

impl NewMessage<'_> {
    /// `?1`..`?14` of [`INSERT`].
    fn values(&self) -> [Value<'_>; 14] {
        [
            self.chat_id.to_value(),
            self.sender_id.to_value(),
            self.message_type.to_value(),
            self.content.to_value(),
            self.upload_id.to_value(),
            self.file_url.to_value(),
            self.file_name.to_value(),
            self.file_size.to_value(),
            self.file_mime_type.to_value(),
            self.reply_to_id.to_value(),
            self.client_id.to_value(),
            self.now.to_value(),
            self.system.to_value(),
            self.is_forwarded.to_value(),
        ]
    }
}

/// Inserts a message; returns its id.
pub fn insert(conn: &Conn, m: &NewMessage<'_>) -> AppResult<MessageId> {
    static SQL: LazyLock<String> = LazyLock::new(|| format!("{INSERT} RETURNING id"));
    Ok(conn
        .prepare_cached(&SQL)?
        .query_row(&m.values(), |r| r.get(0))?)
}

/// Stores a sent message: the row, its `kind` event (`message:new`) and
/// the chat's activity; returns the stored message (status not yet set:
/// [`with_status`]). On PostgreSQL all of it is one statement
/// (data-modifying `WITH`s), one round trip.
pub fn insert_sent(conn: &Conn, m: &NewMessage<'_>, kind: &str) -> AppResult<Message> {
    if !conn.is_postgres() {
        let id = insert(conn, m)?;
        let event = super::events::append(conn, m.chat_id, kind, Some(id), None, m.now)?;
        super::chats::bump_activity(conn, m.chat_id, id, event, m.now)?;
        return load_row(conn, id)?.ok_or_else(|| anyhow::anyhow!("message vanished").into());
    }
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH m AS ({INSERT} RETURNING *),
             e AS (
               INSERT INTO events (chat_id, kind, message_id, user_id, created_at)
               SELECT ?1, ?15, m.id, NULL, ?12 FROM m
               RETURNING id),
             c AS (
               UPDATE chats SET last_message_id = (SELECT id FROM m),
                 last_activity = (SELECT id FROM e), updated_at = ?12
               WHERE id = ?1)
             SELECT {MESSAGE_COLUMNS} FROM m LEFT JOIN uploads up ON up.id = m.upload_id"
        )
    });
    let mut values = m.values().to_vec();
    values.push(kind.to_value());
    Ok(conn.prepare_cached(&SQL)?.query_row(values, from_row)?)
}

/// What a send needs to know before it writes.
pub struct SendCheck {
    /// The message already sent with the send's `clientId` (a retry).
    pub existing: Option<MessageId>,
    /// Whether the sender has unread messages from others in the chat.
    pub unread: bool,
}

/// What a send needs to know before it writes, with the chat's positions,
/// in one round trip: `None` when `user` is not a current member of `chat`.
pub fn send_check(
    conn: &Conn,
    chat: ChatId,
    user: UserId,
    client_id: Option<&str>,
) -> AppResult<(Option<SendCheck>, Positions)> {
    let (check, positions) = conn.query_map2(
        (
            "SELECT
               (SELECT id FROM messages WHERE chat_id = ?1 AND sender_id = ?2 AND client_id = ?3),
               EXISTS (SELECT 1 FROM messages m
                       WHERE m.chat_id = ?1 AND m.id > p.read_up_to AND m.sender_id != ?2
                         AND m.is_deleted = 0 AND m.message_type != 'SYSTEM')
             FROM chat_participants p
             WHERE p.chat_id = ?1 AND p.user_id = ?2 AND p.left_at IS NULL",
            params![chat, user, client_id],
            |r| {
                Ok(SendCheck {
                    existing: r.get(0)?,
                    unread: r.get(1)?,
                })
            },
        ),
        (
            super::receipts::POSITIONS,
            params![chat],
            super::receipts::position_from_row,
        ),
    )?;
    Ok((check.into_iter().next(), Positions(positions)))
}

/// The upload a message carries (its file), if any.
pub fn upload_of(conn: &Conn, id: MessageId) -> AppResult<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT upload_id FROM messages WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .flatten())
}

/// Sender and chat of a message, if it exists.
pub fn owner(conn: &Conn, id: MessageId) -> AppResult<Option<(ChatId, UserId, bool)>> {
    Ok(conn
        .prepare_cached("SELECT chat_id, sender_id, is_deleted FROM messages WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

/// When a message was sent (ms), if it exists.
pub fn created_at(conn: &Conn, id: MessageId) -> AppResult<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT created_at FROM messages WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

/// Whether a message is a group note (`SYSTEM`).
pub fn is_system(conn: &Conn, id: MessageId) -> AppResult<bool> {
    Ok(conn
        .prepare_cached("SELECT message_type = 'SYSTEM' FROM messages WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

/// One message with its status.
pub fn load(conn: &Conn, id: MessageId, positions: &Positions) -> AppResult<Option<Message>> {
    Ok(load_row(conn, id)?.map(|m| with_status(m, positions)))
}

/// One message, its status not yet set.
pub(crate) fn load_row(conn: &Conn, id: MessageId) -> AppResult<Option<Message>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {MESSAGE_COLUMNS} {FROM} WHERE m.id = ?1"));
    Ok(conn
        .prepare_cached(&SQL)?
        .query_row([id], from_row)
        .optional()?)
}

/// Several messages by id in one query, keyed by id, without their status
/// (apply [`with_status`] with the chat's positions). Missing ids are absent.
pub fn load_many(conn: &Conn, ids: &[MessageId]) -> AppResult<HashMap<MessageId, Message>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let marks = vec!["?"; ids.len()].join(",");
    let mut stmt = conn.prepare(&format!(
        "SELECT {MESSAGE_COLUMNS} {FROM} WHERE m.id IN ({marks})"
    ))?;
    let rows = stmt.query_map(ids, from_row)?;
    let mut out = HashMap::with_capacity(ids.len());
    for m in rows {
        let m = m?;
        out.insert(m.id, m);
    }
    Ok(out)
}

/// Where a page starts.
#[derive(Debug, Clone, Copy)]
pub enum PageAt {
    /// Page N counted from the newest (1 = newest `limit`).
    Page(u32),
    /// The newest `limit` older than this id.
    Before(MessageId),
    /// The oldest `limit` newer than this id.
    After(MessageId),
    /// The page centred on this message of the chat ([`page_around`]).
    Around(MessageId),
}

/// What one member sees of a chat's history: nothing up to the position
/// they cleared, none of the messages they deleted for themselves, and only
/// the group notes written since they (last) joined.
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    pub user: UserId,
    /// `joined_at` of their membership (ms).
    pub joined_at: i64,
    /// "Clear chat" position: messages up to this id are gone for them.
    pub cleared_up_to: MessageId,
}

/// The SQL condition a message row `m` must meet to be visible to
/// `Viewer` bound as ?4 (cleared), ?5 (joined) and ?6 (user). The hidden
/// probe is one primary-key lookup per row walked.
const VISIBLE: &str = "m.id > ?4 AND (m.message_type != 'SYSTEM' OR m.created_at >= ?5)
    AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = ?6 AND h.message_id = m.id)";

/// `user`'s view of `chat` if they are a current member.
pub fn viewer(conn: &Conn, chat: ChatId, user: UserId) -> AppResult<Option<Viewer>> {
    Ok(conn
        .prepare_cached(
            "SELECT joined_at, cleared_up_to FROM chat_participants
             WHERE chat_id = ?1 AND user_id = ?2 AND left_at IS NULL",
        )?
        .query_row(params![chat, user], |r| {
            Ok(Viewer {
                user,
                joined_at: r.get(0)?,
                cleared_up_to: r.get(1)?,
            })
        })
        .optional()?)
}

/// The newest message of `chat` that `viewer` sees, if any (walks the
/// chat's ids down from the newest; the chat list's `lastMessage` when the
/// newest one is gone for them).
pub fn newest_visible(
    conn: &Conn,
    chat: ChatId,
    viewer: &Viewer,
    positions: &Positions,
) -> AppResult<Option<Message>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} {FROM} WHERE m.chat_id = ?1 AND {}
             ORDER BY m.id DESC LIMIT 1",
            // `VISIBLE` numbers its parameters from 4; every parameter must
            // be used (PostgreSQL types each one from where it appears)
            VISIBLE
                .replace("?4", "?2")
                .replace("?5", "?3")
                .replace("?6", "?4")
        ))?
        .query_row(
            params![chat, viewer.cleared_up_to, viewer.joined_at, viewer.user],
            from_row,
        )
        .optional()?
        .map(|m| with_status(m, positions)))
}

/// A page of history as `viewer` sees it, oldest first, and whether more
/// lie beyond it in the direction of travel.
pub fn page(
    conn: &Conn,
    chat: ChatId,
    at: PageAt,
    limit: u32,
    viewer: &Viewer,
    positions: &Positions,
) -> AppResult<(Vec<Message>, bool)> {
    let fetch = i64::from(limit) + 1;
    let (sql, a, b) = match at {
        PageAt::Page(n) => (
            format!("SELECT {MESSAGE_COLUMNS} {FROM} WHERE m.chat_id = ?1 AND {VISIBLE} ORDER BY m.id DESC LIMIT ?2 OFFSET ?3"),
            fetch,
            i64::from(n.saturating_sub(1)) * i64::from(limit),
        ),
        PageAt::Before(id) => (
            format!("SELECT {MESSAGE_COLUMNS} {FROM} WHERE m.chat_id = ?1 AND m.id < ?3 AND {VISIBLE} ORDER BY m.id DESC LIMIT ?2"),
            fetch,
            i64::from(id),
        ),
        PageAt::After(id) => (
            format!("SELECT {MESSAGE_COLUMNS} {FROM} WHERE m.chat_id = ?1 AND m.id > ?3 AND {VISIBLE} ORDER BY m.id ASC LIMIT ?2"),
            fetch,
            i64::from(id),
        ),
        PageAt::Around(id) => {
            let around = page_around(conn, chat, id, limit, viewer, positions)?;
            return Ok((around.items, around.has_more_before));
        }
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            chat,
            a,
            b,
            viewer.cleared_up_to,
            viewer.joined_at,
            viewer.user
        ],
        from_row,
    )?;
    let mut items: Vec<Message> = rows
        .map(|m| m.map(|m| with_status(m, positions)))
        .collect::<Result<_, _>>()?;
    let has_more = items.len() > limit as usize;
    items.truncate(limit as usize);
    if !matches!(at, PageAt::After(_)) {
        items.reverse();
    }
    Ok((items, has_more))
}

/// A page centred on one message.
pub struct Around {
    /// Oldest first; the target is among them.
    pub items: Vec<Message>,
    pub has_more_before: bool,
    pub has_more_after: bool,
}

/// The page of `limit` messages around `target` as `viewer` sees it: about
/// half older, the target, the rest newer (more on one side when the other
/// runs out). 404 unless `target` is a message of `chat` they see.
pub fn page_around(
    conn: &Conn,
    chat: ChatId,
    target: MessageId,
    limit: u32,
    viewer: &Viewer,
    positions: &Positions,
) -> AppResult<Around> {
    let (found, _) = page(
        conn,
        chat,
        PageAt::After(MessageId(target.0.saturating_sub(1))),
        1,
        viewer,
        positions,
    )?;
    let Some(middle) = found.into_iter().next().filter(|m| m.id == target) else {
        return Err(crate::error::AppError::message_not_found());
    };
    let others = limit.saturating_sub(1);
    let (mut older, more_older) = page(
        conn,
        chat,
        PageAt::Before(target),
        others,
        viewer,
        positions,
    )?;
    let (mut newer, more_newer) =
        page(conn, chat, PageAt::After(target), others, viewer, positions)?;
    let others = others as usize;
    let half = others / 2;
    let n_older = older
        .len()
        .min(half.max(others.saturating_sub(newer.len())));
    let n_newer = newer.len().min(others - n_older);
    let has_more_before = more_older || older.len() > n_older;
    let has_more_after = more_newer || newer.len() > n_newer;
    // `older` is oldest first: keep its newest `n_older`.
    let mut items = older.split_off(older.len() - n_older);
    items.push(middle);
    newer.truncate(n_newer);
    items.extend(newer);
    Ok(Around {
        items,
        has_more_before,
        has_more_after,
    })
}

/// `user`'s unread count in `chat`: messages from others after their read
/// position (and their "clear chat" position) that are not deleted, not
/// group notes and not deleted for them; 0 for a non-member.
pub fn unread_count(conn: &Conn, chat: ChatId, user: UserId) -> AppResult<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM chat_participants p JOIN messages m
                 ON m.chat_id = p.chat_id AND m.id > p.read_up_to AND m.id > p.cleared_up_to
             WHERE p.chat_id = ?1 AND p.user_id = ?2 AND p.left_at IS NULL
               AND m.sender_id != ?2 AND m.is_deleted = 0 AND m.message_type != 'SYSTEM'
               AND NOT EXISTS (SELECT 1 FROM hidden_messages h
                               WHERE h.user_id = ?2 AND h.message_id = m.id)",
        )?
        .query_row(params![chat, user], |r| r.get(0))?)
}

/// Deletes a message for `user` only; `false` if it already was.
pub fn hide(conn: &Conn, user: UserId, chat: ChatId, id: MessageId) -> AppResult<bool> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO hidden_messages (user_id, message_id, chat_id) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![user, id, chat])?
        == 1)
}

/// Members of `chat` for whom message `id` is gone (deleted for them, or
/// cleared): its edits and deletion are not pushed to them.
pub fn hidden_from(conn: &Conn, chat: ChatId, id: MessageId) -> AppResult<Vec<UserId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id FROM hidden_messages WHERE message_id = ?2
         UNION
         SELECT user_id FROM chat_participants
         WHERE chat_id = ?1 AND left_at IS NULL AND cleared_up_to >= ?2",
    )?;
    let rows = stmt.query_map(params![chat, id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Which of `ids` `user` deleted for themselves (one query for a `/sync`
/// page).
pub fn hidden_among(
    conn: &Conn,
    user: UserId,
    ids: &[MessageId],
) -> AppResult<std::collections::HashSet<MessageId>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let marks = vec!["?"; ids.len()].join(",");
    let mut stmt = conn.prepare(&format!(
        "SELECT message_id FROM hidden_messages WHERE user_id = ? AND message_id IN ({marks})"
    ))?;
    let params: Vec<i64> = std::iter::once(user.0)
        .chain(ids.iter().map(|id| id.0))
        .collect();
    let rows = stmt.query_map(params, |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `user`'s "clear chat" positions, for the chats where they cleared.
pub fn cleared_positions(conn: &Conn, user: UserId) -> AppResult<HashMap<ChatId, MessageId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT chat_id, cleared_up_to FROM chat_participants
         WHERE user_id = ?1 AND cleared_up_to > 0",
    )?;
    let rows = stmt.query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Replaces the content and sets `isEdited`.
pub fn edit(conn: &Conn, id: MessageId, content: &str, now: i64) -> AppResult<()> {
    conn.prepare_cached(
        "UPDATE messages SET content = ?2, is_edited = 1, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, content, now])?;
    Ok(())
}

/// Soft delete: the row stays as a tombstone with content and file cleared.
pub fn soft_delete(conn: &Conn, id: MessageId, now: i64) -> AppResult<()> {
    conn.prepare_cached(
        "UPDATE messages SET is_deleted = 1, content = NULL, upload_id = NULL, file_url = NULL,
             file_name = NULL, file_size = NULL, file_mime_type = NULL, updated_at = ?2,
             duration_ms = NULL, waveform = NULL, played_by = NULL, link_preview = NULL,
             preview_upload_id = NULL, reactions = NULL
         WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    conn.prepare_cached("DELETE FROM message_reactions WHERE message_id = ?1")?
        .execute([id])?;
    Ok(())
}

/// The newest message id of a chat (0 when empty).
pub fn newest_id(conn: &Conn, chat: ChatId) -> AppResult<MessageId> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(id), 0) FROM messages WHERE chat_id = ?1")?
        .query_row([chat], |r| r.get(0))?)
}

/// The newest message id of a chat that is `<= up_to` (0 when none).
pub fn newest_at_or_before(conn: &Conn, chat: ChatId, up_to: MessageId) -> AppResult<MessageId> {
    Ok(conn
        .prepare_cached(
            "SELECT coalesce(max(id), 0) FROM messages WHERE chat_id = ?1 AND id <= ?2",
        )?
        .query_row(params![chat, up_to], |r| r.get(0))?)
}

/// Non-deleted, non-system messages of `chat` in `(after, up_to]`, newest
/// first, at most `limit`, optionally not those sent by `not_from`: whose
/// ticks a position move from `after` to `up_to` changes.
const BETWEEN: &str = "SELECT id, sender_id FROM messages
     WHERE chat_id = ?1 AND id > ?2 AND id <= ?3 AND is_deleted = 0
       AND message_type != 'SYSTEM' AND (CAST(?4 AS BIGINT) IS NULL OR sender_id != ?4)
     ORDER BY id DESC LIMIT ?5";

/// One range for [`between_many`]: chat, after, up_to, not_from.
pub type Range = (ChatId, MessageId, MessageId, Option<UserId>);

/// [`BETWEEN`] for several ranges, in one round trip on PostgreSQL.
pub fn between_many(
    conn: &Conn,
    ranges: &[Range],
    limit: u32,
) -> AppResult<Vec<Vec<(MessageId, UserId)>>> {
    let sets: Vec<[Value<'_>; 5]> = ranges
        .iter()
        .map(|(chat, after, up_to, not_from)| {
            [
                chat.to_value(),
                after.to_value(),
                up_to.to_value(),
                not_from.to_value(),
                limit.to_value(),
            ]
        })
        .collect();
    Ok(conn.query_map_many(BETWEEN, &sets, |r| Ok((r.get(0)?, r.get(1)?)))?)
}
