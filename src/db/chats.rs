//! SQL for chats and their participants.
//!
//! A member is a `chat_participants` row with `left_at IS NULL`; a row with
//! `left_at` set is kept for history and revived if the user is added again.

use crate::db::sql::{params, Conn, OptionalExtension};

use crate::db::users::{user_from_row, USER_COLUMNS};
use crate::db::{messages, now_ms, receipts};
use crate::error::AppResult;
use crate::model::{
    rfc3339, Chat, ChatId, EventId, FormerParticipant, MessageId, Participant, UserId,
};

/// The `direct_key` of the 1-on-1 between two users: the same whoever asks.
pub fn direct_key(a: UserId, b: UserId) -> String {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

/// The 1-on-1 chat with this key, if it exists.
pub fn find_direct(conn: &Conn, key: &str) -> AppResult<Option<ChatId>> {
    Ok(conn
        .prepare_cached("SELECT id FROM chats WHERE direct_key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

/// A new chat row.
pub struct NewChat<'a> {
    pub name: Option<&'a str>,
    pub is_group: bool,
    pub group_avatar: Option<&'a str>,
    pub direct_key: Option<&'a str>,
    pub now: i64,
}

/// Inserts a chat. For a 1-on-1 whose key exists, returns `(existing, false)`:
/// the UNIQUE index on `direct_key` is what rules out duplicates.
pub fn insert_chat(conn: &Conn, new: &NewChat<'_>) -> AppResult<(ChatId, bool)> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO chats (name, is_group, group_avatar, direct_key, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT(direct_key) DO NOTHING
             RETURNING id",
        )?
        .query_row(
            params![
                new.name,
                new.is_group,
                new.group_avatar,
                new.direct_key,
                new.now
            ],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = inserted {
        return Ok((id, true));
    }
    let key = new.direct_key.unwrap_or_default();
    let existing = find_direct(conn, key)?
        .ok_or_else(|| anyhow::anyhow!("chat insert ignored without a direct key"))?;
    Ok((existing, false))
}

/// Makes `user` a member (new or returning). Its receipt positions start at
/// `position` so older messages do not count as unread.
pub fn add_participant(
    conn: &Conn,
    chat: ChatId,
    user: UserId,
    is_admin: bool,
    now: i64,
    joined_event: EventId,
    position: MessageId,
) -> AppResult<()> {
    conn.prepare_cached(
        "INSERT INTO chat_participants
             (chat_id, user_id, is_admin, joined_at, joined_event, delivered_up_to, read_up_to)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT(chat_id, user_id) DO UPDATE SET
             is_admin = excluded.is_admin, joined_at = excluded.joined_at, left_at = NULL,
             joined_event = excluded.joined_event,
             delivered_up_to = CASE WHEN excluded.delivered_up_to > chat_participants.delivered_up_to
                 THEN excluded.delivered_up_to ELSE chat_participants.delivered_up_to END,
             read_up_to = CASE WHEN excluded.read_up_to > chat_participants.read_up_to
                 THEN excluded.read_up_to ELSE chat_participants.read_up_to END",
    )?
    .execute(params![chat, user, is_admin, now, joined_event, position])?;
    Ok(())
}

/// The caller's membership of a chat.
#[derive(Debug, Clone, Copy)]
pub struct Membership {
    pub is_admin: bool,
    pub is_group: bool,
}

/// `Some` if `user` is a current member of `chat`.
pub fn membership(conn: &Conn, chat: ChatId, user: UserId) -> AppResult<Option<Membership>> {
    Ok(conn
        .prepare_cached(
            "SELECT p.is_admin, c.is_group FROM chat_participants p JOIN chats c ON c.id = p.chat_id
             WHERE p.chat_id = ?1 AND p.user_id = ?2 AND p.left_at IS NULL",
        )?
        .query_row(params![chat, user], |r| {
            Ok(Membership {
                is_admin: r.get(0)?,
                is_group: r.get(1)?,
            })
        })
        .optional()?)
}

/// Ids of the current members.
pub fn member_ids(conn: &Conn, chat: ChatId) -> AppResult<Vec<UserId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id FROM chat_participants WHERE chat_id = ?1 AND left_at IS NULL ORDER BY joined_at, user_id",
    )?;
    let ids = stmt.query_map([chat], |r| r.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// The current members with their users, oldest member first.
pub fn participants(conn: &Conn, chat: ChatId) -> AppResult<Vec<Participant>> {
    Ok(members_and_former(conn, chat)?.0)
}

/// The current members (oldest first) and the former ones (most recently
/// gone first), in one walk of the chat's participant rows.
pub fn members_and_former(
    conn: &Conn,
    chat: ChatId,
) -> AppResult<(Vec<Participant>, Vec<FormerParticipant>)> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT p.is_admin, p.joined_at, p.left_at, {USER_COLUMNS}
         FROM chat_participants p JOIN users u ON u.id = p.user_id
         WHERE p.chat_id = ?1
         ORDER BY p.left_at IS NOT NULL, p.joined_at, p.user_id"
    ))?;
    let (mut members, mut former) = (Vec::new(), Vec::new());
    for row in stmt.query_map([chat], |r| {
        let user = user_from_row(r, 3)?;
        match r.get::<_, Option<i64>>(2)? {
            None => members.push(Participant {
                is_admin: r.get(0)?,
                joined_at: rfc3339(r.get(1)?),
                user,
            }),
            Some(left_at) => former.push((left_at, user)),
        }
        Ok(())
    })? {
        row?;
    }
    former.sort_by_key(|f| std::cmp::Reverse(f.0));
    let former = former
        .into_iter()
        .map(|(left_at, user)| FormerParticipant {
            user,
            left_at: rfc3339(left_at),
        })
        .collect();
    Ok((members, former))
}

/// The chat as `viewer` sees it: members, last message, viewer's unread count.
pub fn load_chat(conn: &Conn, chat: ChatId, viewer: UserId) -> AppResult<Option<Chat>> {
    Ok(load_chat_view(conn, chat, viewer)?.map(|v| v.chat))
}

/// A chat as one viewer sees it, and what the viewer's device has of it.
pub struct ChatView {
    pub chat: Chat,
    /// The viewer's delivered position (0 when not a member).
    pub delivered: MessageId,
}

/// [`load_chat`], plus the viewer's delivered position: whoever is shown
/// `lastMessage` has it on a device (DELIVERED), so callers advance it.
pub fn load_chat_view(conn: &Conn, chat: ChatId, viewer: UserId) -> AppResult<Option<ChatView>> {
    let viewer_id = viewer;
    let row = conn
        .prepare_cached(
            "SELECT c.id, c.name, c.is_group, c.group_avatar, c.created_at, c.updated_at,
                    c.last_message_id, p.read_up_to, p.delivered_up_to, p.joined_at,
                    p.cleared_up_to,
                    EXISTS (SELECT 1 FROM hidden_messages h
                            WHERE h.user_id = ?2 AND h.message_id = c.last_message_id),
                    p.muted_until
             FROM chats c LEFT JOIN chat_participants p
                  ON p.chat_id = c.id AND p.user_id = ?2 AND p.left_at IS NULL
             WHERE c.id = ?1",
        )?
        .query_row(params![chat, viewer], |r| {
            let viewer = match r.get::<_, Option<i64>>(9)? {
                Some(joined_at) => Some(messages::Viewer {
                    user: viewer,
                    joined_at,
                    cleared_up_to: r.get(10)?,
                }),
                None => None,
            };
            Ok((
                Chat {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    is_group: r.get(2)?,
                    group_avatar: r.get(3)?,
                    created_at: rfc3339(r.get(4)?),
                    updated_at: rfc3339(r.get(5)?),
                    participants: Vec::new(),
                    former_participants: Vec::new(),
                    last_message: None,
                    unread_count: 0,
                    muted_until: r
                        .get::<_, Option<i64>>(12)?
                        .filter(|&until| until > now_ms()),
                },
                r.get::<_, Option<MessageId>>(6)?,
                r.get::<_, Option<MessageId>>(7)?,
                r.get::<_, Option<MessageId>>(8)?,
                viewer,
                r.get::<_, bool>(11)?,
            ))
        })
        .optional()?;
    let Some((mut chat, last_message_id, read_up_to, delivered, viewer, last_hidden)) = row else {
        return Ok(None);
    };
    (chat.participants, chat.former_participants) = members_and_former(conn, chat.id)?;
    let positions = receipts::positions(conn, chat.id)?;
    if let Some(id) = last_message_id {
        chat.last_message = match viewer {
            // the newest message is gone for this member: the newest they see
            Some(v) if last_hidden || id <= v.cleared_up_to => {
                messages::newest_visible(conn, chat.id, &v, &positions)?
            }
            _ => messages::load(conn, id, &positions)?,
        };
    }
    if viewer.is_some() {
        chat.unread_count = messages::unread_count(conn, chat.id, viewer_id)?;
    }
    let delivered = delivered
        .unwrap_or_default()
        .max(read_up_to.unwrap_or_default());
    Ok(Some(ChatView { chat, delivered }))
}

/// What `viewer` newly has on a device when shown these chats: `(chat,
/// lastMessage id)` for each last message from someone else past the
/// viewer's delivered position.
pub fn undelivered_last(views: &[ChatView], viewer: UserId) -> Vec<(ChatId, MessageId)> {
    views
        .iter()
        .filter_map(|v| {
            let m = v.chat.last_message.as_ref()?;
            (m.sender_id != viewer && m.id > v.delivered).then_some((v.chat.id, m.id))
        })
        .collect()
}

/// One page of `user`'s chats, most recent activity first, and the total.
pub fn list_for_user(
    conn: &Conn,
    user: UserId,
    page: u32,
    limit: u32,
) -> AppResult<(Vec<ChatView>, i64)> {
    let total: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM chat_participants WHERE user_id = ?1 AND left_at IS NULL",
        )?
        .query_row([user], |r| r.get(0))?;
    let offset = i64::from(page.saturating_sub(1)) * i64::from(limit);
    let ids: Vec<ChatId> = {
        let mut stmt = conn.prepare_cached(
            "SELECT c.id FROM chat_participants p JOIN chats c ON c.id = p.chat_id
             WHERE p.user_id = ?1 AND p.left_at IS NULL
             ORDER BY c.last_activity DESC, c.id DESC LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt.query_map(params![user, limit, offset], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut chats = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(chat) = load_chat_view(conn, id, user)? {
            chats.push(chat);
        }
    }
    Ok((chats, total))
}

/// Renames and/or changes the avatar of a chat.
pub fn update_chat(
    conn: &Conn,
    chat: ChatId,
    name: Option<&str>,
    group_avatar: Option<Option<&str>>,
    now: i64,
) -> AppResult<()> {
    if let Some(name) = name {
        conn.prepare_cached("UPDATE chats SET name = ?2 WHERE id = ?1")?
            .execute(params![chat, name])?;
    }
    if let Some(avatar) = group_avatar {
        conn.prepare_cached("UPDATE chats SET group_avatar = ?2 WHERE id = ?1")?
            .execute(params![chat, avatar])?;
    }
    touch(conn, chat, now)
}

/// The id of a chat's newest message, if any.
pub fn last_message_id(conn: &Conn, chat: ChatId) -> AppResult<Option<MessageId>> {
    Ok(conn
        .prepare_cached("SELECT last_message_id FROM chats WHERE id = ?1")?
        .query_row([chat], |r| r.get(0))
        .optional()?
        .flatten())
}

/// A chat's current name and avatar.
pub fn name_and_avatar(conn: &Conn, chat: ChatId) -> AppResult<(Option<String>, Option<String>)> {
    Ok(conn
        .prepare_cached("SELECT name, group_avatar FROM chats WHERE id = ?1")?
        .query_row([chat], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// Sets `updated_at`.
pub fn touch(conn: &Conn, chat: ChatId, now: i64) -> AppResult<()> {
    conn.prepare_cached("UPDATE chats SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![chat, now])?;
    Ok(())
}

/// Records a new last message and moves the chat up its members' lists.
/// `event` is the id of the event that logged it: ids only grow, so the
/// order is strict even for changes within one millisecond.
pub fn bump_activity(
    conn: &Conn,
    chat: ChatId,
    message: MessageId,
    event: EventId,
    now: i64,
) -> AppResult<()> {
    conn.prepare_cached(
        "UPDATE chats SET last_message_id = ?2, last_activity = ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute_later(params![chat, message, event, now])?;
    Ok(())
}

/// Sets the activity position of a new chat (the id of its `chat:new` event).
pub fn set_activity(conn: &Conn, chat: ChatId, event: EventId) -> AppResult<()> {
    conn.prepare_cached("UPDATE chats SET last_activity = ?2 WHERE id = ?1")?
        .execute(params![chat, event])?;
    Ok(())
}

/// Moves `user`'s "clear chat" position in `chat` to `up_to` (never back);
/// returns the position afterwards.
pub fn clear_up_to(
    conn: &Conn,
    chat: ChatId,
    user: UserId,
    up_to: MessageId,
) -> AppResult<MessageId> {
    Ok(conn
        .prepare_cached(
            "UPDATE chat_participants SET cleared_up_to = CASE WHEN ?3 > cleared_up_to THEN ?3 ELSE cleared_up_to END
             WHERE chat_id = ?1 AND user_id = ?2 AND left_at IS NULL
             RETURNING cleared_up_to",
        )?
        .query_row(params![chat, user, up_to], |r| r.get(0))?)
}

/// Marks a member as gone.
pub fn remove_participant(conn: &Conn, chat: ChatId, user: UserId, now: i64) -> AppResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE chat_participants SET left_at = ?3, is_admin = 0
             WHERE chat_id = ?1 AND user_id = ?2 AND left_at IS NULL",
        )?
        .execute(params![chat, user, now])?;
    Ok(n == 1)
}

/// Grants or revokes admin.
pub fn set_admin(conn: &Conn, chat: ChatId, user: UserId, is_admin: bool) -> AppResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE chat_participants SET is_admin = ?3
             WHERE chat_id = ?1 AND user_id = ?2 AND left_at IS NULL",
        )?
        .execute(params![chat, user, is_admin])?;
    Ok(n == 1)
}

/// How many admins a chat has.
pub fn admin_count(conn: &Conn, chat: ChatId) -> AppResult<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM chat_participants WHERE chat_id = ?1 AND left_at IS NULL AND is_admin = 1",
        )?
        .query_row([chat], |r| r.get(0))?)
}

/// The member who joined first (promoted when the last admin leaves).
pub fn oldest_member(conn: &Conn, chat: ChatId) -> AppResult<Option<UserId>> {
    Ok(conn
        .prepare_cached(
            "SELECT user_id FROM chat_participants WHERE chat_id = ?1 AND left_at IS NULL
             ORDER BY joined_at, user_id LIMIT 1",
        )?
        .query_row([chat], |r| r.get(0))
        .optional()?)
}

/// Everyone who shares at least one chat with `user` (presence goes to them).
pub fn co_members(conn: &Conn, user: UserId) -> AppResult<Vec<UserId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT p2.user_id FROM chat_participants p1
         JOIN chat_participants p2 ON p2.chat_id = p1.chat_id AND p2.left_at IS NULL
         WHERE p1.user_id = ?1 AND p1.left_at IS NULL AND p2.user_id != ?1",
    )?;
    let ids = stmt.query_map([user], |r| r.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}
