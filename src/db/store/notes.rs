//! Group notes: "Ana added Cara", "Bob left", ... stored as `SYSTEM`
//! messages, so they are in history, `/sync`, `message:new` and the chat
//! list's `lastMessage` like any message, for clients that know nothing of
//! them too (`content` is an English sentence; `system` says it for
//! machines). They never count as unread and carry no receipts.
//!
//! [`write`] runs inside the writer op of the chat change it records (see
//! [`super::chats`]), so the change and its note commit together; the
//! caller publishes the returned message after the commit.

use crate::db::sql::{Conn, OptionalExtension};
use crate::db::{chats, events, messages as q, receipts};
use crate::error::AppResult;
use crate::model::{ChatId, Message, SystemAction, SystemNote, UserId};
use crate::ops::messages::SYSTEM;
use crate::realtime::frames::MESSAGE_NEW;

/// Names listed in one note before "and N others".
const MAX_NAMES: usize = 10;

/// What a note says.
pub(crate) struct Note<'a> {
    pub action: SystemAction,
    /// Whom it was done to.
    pub users: &'a [UserId],
    /// The group's (new) name, for `created` and `renamed`.
    pub name: Option<&'a str>,
    /// For `avatar`: the photo was removed rather than changed.
    pub photo_removed: bool,
}

impl<'a> Note<'a> {
    /// A note about `users`.
    pub fn about(action: SystemAction, users: &'a [UserId]) -> Self {
        Note {
            action,
            users,
            name: None,
            photo_removed: false,
        }
    }
}

/// Stores a note by `actor` in `chat`; returns it.
pub(crate) fn write(
    c: &Conn,
    chat: ChatId,
    actor: UserId,
    what: Note<'_>,
    now: i64,
) -> AppResult<Message> {
    let note = SystemNote {
        action: what.action,
        actor_id: actor,
        user_ids: what.users.to_vec(),
        name: what.name.map(str::to_string),
    };
    let content = sentence(c, &note, what.photo_removed)?;
    let json = serde_json::to_string(&note).map_err(|e| anyhow::anyhow!(e))?;
    let id = q::insert(
        c,
        &q::NewMessage {
            chat_id: chat,
            sender_id: actor,
            message_type: SYSTEM,
            is_forwarded: false,
            content: Some(&content),
            upload_id: None,
            file_url: None,
            file_name: None,
            file_size: None,
            file_mime_type: None,
            reply_to_id: None,
            client_id: None,
            system: Some(&json),
            now,
        },
    )?;
    let event = events::append(c, chat, MESSAGE_NEW, Some(id), None, now)?;
    chats::bump_activity(c, chat, id, event, now)?;
    let positions = receipts::positions(c, chat)?;
    Ok(q::load(c, id, &positions)?.ok_or_else(|| anyhow::anyhow!("note vanished"))?)
}

fn user_name(c: &Conn, id: UserId) -> AppResult<String> {
    Ok(c.prepare_cached("SELECT name FROM users WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .unwrap_or_else(|| "Someone".to_string()))
}

/// "Cara", "Cara and Dan", "Cara, Dan and Eve", "Cara, ... and 5 others".
fn name_list(c: &Conn, ids: &[UserId]) -> AppResult<String> {
    let mut names = Vec::new();
    for &id in ids.iter().take(MAX_NAMES) {
        names.push(user_name(c, id)?);
    }
    let rest = ids.len().saturating_sub(MAX_NAMES);
    if rest > 0 {
        names.push(if rest == 1 {
            "1 other".to_string()
        } else {
            format!("{rest} others")
        });
    }
    Ok(match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, init)) => format!("{} and {last}", init.join(", ")),
    })
}

/// The English sentence of a note.
fn sentence(c: &Conn, note: &SystemNote, photo_removed: bool) -> AppResult<String> {
    let actor = user_name(c, note.actor_id)?;
    let users = name_list(c, &note.user_ids)?;
    let name = note.name.as_deref().unwrap_or_default();
    Ok(match note.action {
        SystemAction::Created => format!("{actor} created the group \"{name}\""),
        SystemAction::Added => format!("{actor} added {users}"),
        SystemAction::Removed => format!("{actor} removed {users}"),
        SystemAction::Left => format!("{actor} left"),
        SystemAction::Renamed => format!("{actor} changed the group name to \"{name}\""),
        SystemAction::Avatar if photo_removed => format!("{actor} removed the group photo"),
        SystemAction::Avatar => format!("{actor} changed the group photo"),
        SystemAction::Promoted => format!("{actor} made {users} an admin"),
        SystemAction::Demoted => format!("{actor} removed {users} as admin"),
    })
}
