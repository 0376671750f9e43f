//! Chats: create, list, load, rename, participants and admins, clear; each
//! change with its events rows and group notes in one writer op.
//!
//! Every access checks the caller is a current member (else 404, so
//! existence does not leak); group changes need a group admin (403); a group
//! never ends without an admin (the oldest member is promoted).

use std::collections::{HashMap, HashSet};

use crate::db::sql::params;
use crate::db::store::notes::{self, Note};
use crate::db::store::users::avatar_upload;
use crate::db::{chats as q, events, messages, now_ms, users, Conn, Db};
use crate::error::{AppError, AppResult};
use crate::model::{Chat, ChatId, Message, MessageId, SystemAction, UserId};
use crate::ops::MAX_GROUP_MEMBERS;
use crate::realtime::frames::{CHAT_CLEARED, CHAT_NEW, CHAT_REMOVED, CHAT_UPDATED};

/// Who to tell what after a chat change.
#[derive(Default)]
pub struct Notice {
    pub new_for: Vec<UserId>,
    pub updated_for: Vec<UserId>,
    pub removed_for: Vec<UserId>,
    /// Group notes the change wrote, for the members after it.
    pub notes: Vec<Message>,
}

/// A new chat as validated: the other members (sorted, distinct, without
/// the caller), and for a group its name and avatar URL.
pub struct NewChat {
    pub others: Vec<UserId>,
    pub is_group: bool,
    pub name: Option<String>,
    pub avatar: Option<String>,
}

impl Db {
    /// Creates a chat; `(chat, created, notice)`. An existing 1-on-1 is
    /// returned as is (and comes back for a member who had left it).
    pub async fn create_chat(
        &self,
        caller: UserId,
        new: NewChat,
    ) -> AppResult<(ChatId, bool, Notice)> {
        self.write(move |c| create_chat(c, caller, new)).await
    }

    /// One page of `caller`'s chats and their total.
    pub async fn chat_list(
        &self,
        caller: UserId,
        page: u32,
        limit: u32,
    ) -> AppResult<(Vec<q::ChatView>, i64)> {
        self.read(move |c| q::list_for_user(c, caller, page, limit))
            .await
    }

    /// The chat as `viewer` sees it, 404 unless a member.
    pub async fn chat_view(&self, viewer: UserId, chat: ChatId) -> AppResult<q::ChatView> {
        self.read(move |c| view_for_member(c, chat, viewer)).await
    }

    /// Renames a group or changes its avatar (`Some(None)` clears it);
    /// group admins only.
    pub async fn update_chat(
        &self,
        caller: UserId,
        chat: ChatId,
        name: Option<String>,
        avatar: Option<Option<String>>,
    ) -> AppResult<Notice> {
        self.write(move |c| {
            require_group_admin(require_member(c, chat, caller)?)?;
            let avatar = match avatar {
                Some(Some(url)) => Some(Some(avatar_upload(c, caller, &url, "groupAvatar")?)),
                other => other,
            };
            let (old_name, old_avatar) = q::name_and_avatar(c, chat)?;
            let now = now_ms();
            q::update_chat(
                c,
                chat,
                name.as_deref(),
                avatar.as_ref().map(|a| a.as_deref()),
                now,
            )?;
            events::append(c, chat, CHAT_UPDATED, None, None, now)?;
            let mut notes = Vec::new();
            if name.is_some() && name != old_name {
                let what = Note {
                    name: name.as_deref(),
                    ..Note::about(SystemAction::Renamed, &[])
                };
                notes.push(notes::write(c, chat, caller, what, now)?);
            }
            if let Some(avatar) = avatar.filter(|a| *a != old_avatar) {
                let what = Note {
                    photo_removed: avatar.is_none(),
                    ..Note::about(SystemAction::Avatar, &[])
                };
                notes.push(notes::write(c, chat, caller, what, now)?);
            }
            Ok(Notice {
                updated_for: q::member_ids(c, chat)?,
                notes,
                ..Notice::default()
            })
        })
        .await
    }

    /// Adds members to a group (`ids` sorted and distinct); group admins only.
    pub async fn add_participants(
        &self,
        caller: UserId,
        chat: ChatId,
        ids: Vec<UserId>,
    ) -> AppResult<Notice> {
        self.write(move |c| {
            require_group_admin(require_member(c, chat, caller)?)?;
            ensure_exist(c, "userIds", &ids)?;
            let existing = q::member_ids(c, chat)?;
            let added: Vec<UserId> = ids
                .into_iter()
                .filter(|id| !existing.contains(id))
                .collect();
            if existing.len() + added.len() > MAX_GROUP_MEMBERS {
                return Err(AppError::invalid(
                    "userIds",
                    format!("a group has at most {MAX_GROUP_MEMBERS} members"),
                ));
            }
            if added.is_empty() {
                return Ok(Notice::default());
            }
            let now = now_ms();
            let updated = events::append(c, chat, CHAT_UPDATED, None, None, now)?;
            let newest = messages::newest_id(c, chat)?;
            for &user in &added {
                q::add_participant(c, chat, user, false, now, updated, newest)?;
                events::append(c, chat, CHAT_NEW, None, Some(user), now)?;
            }
            q::touch(c, chat, now)?;
            let note = notes::write(
                c,
                chat,
                caller,
                Note::about(SystemAction::Added, &added),
                now,
            )?;
            Ok(Notice {
                new_for: added,
                updated_for: existing,
                removed_for: Vec::new(),
                notes: vec![note],
            })
        })
        .await
    }

    /// An admin removes `target`, or a member leaves (`target == caller`).
    pub async fn remove_participant(
        &self,
        caller: UserId,
        chat: ChatId,
        target: UserId,
    ) -> AppResult<Notice> {
        self.write(move |c| {
            let m = require_member(c, chat, caller)?;
            if target != caller {
                require_group_admin(m)?;
            }
            let now = now_ms();
            if !q::remove_participant(c, chat, target, now)? {
                return Err(AppError::NotFound("participant not found".into()));
            }
            if m.is_group && q::admin_count(c, chat)? == 0 {
                if let Some(oldest) = q::oldest_member(c, chat)? {
                    q::set_admin(c, chat, oldest, true)?;
                }
            }
            q::touch(c, chat, now)?;
            events::append(c, chat, CHAT_UPDATED, None, None, now)?;
            events::append(c, chat, CHAT_REMOVED, None, Some(target), now)?;
            let mut notes = Vec::new();
            if m.is_group {
                let action = if target == caller {
                    SystemAction::Left
                } else {
                    SystemAction::Removed
                };
                notes.push(notes::write(
                    c,
                    chat,
                    caller,
                    Note::about(action, &[target]),
                    now,
                )?);
            }
            Ok(Notice {
                updated_for: q::member_ids(c, chat)?,
                removed_for: vec![target],
                notes,
                ..Notice::default()
            })
        })
        .await
    }

    /// Promotes or demotes `target`; group admins only, and never the last
    /// admin.
    pub async fn set_chat_admin(
        &self,
        caller: UserId,
        chat: ChatId,
        target: UserId,
        is_admin: bool,
    ) -> AppResult<Notice> {
        self.write(move |c| {
            require_group_admin(require_member(c, chat, caller)?)?;
            let target_m = q::membership(c, chat, target)?
                .ok_or_else(|| AppError::NotFound("participant not found".into()))?;
            if target_m.is_admin == is_admin {
                return Ok(Notice::default());
            }
            if !is_admin && q::admin_count(c, chat)? <= 1 {
                return Err(AppError::Conflict(
                    "a group needs at least one admin: promote someone else first".into(),
                ));
            }
            q::set_admin(c, chat, target, is_admin)?;
            let now = now_ms();
            q::touch(c, chat, now)?;
            events::append(c, chat, CHAT_UPDATED, None, None, now)?;
            let action = if is_admin {
                SystemAction::Promoted
            } else {
                SystemAction::Demoted
            };
            let note = notes::write(c, chat, caller, Note::about(action, &[target]), now)?;
            Ok(Notice {
                updated_for: q::member_ids(c, chat)?,
                notes: vec![note],
                ..Notice::default()
            })
        })
        .await
    }

    /// Hides every message up to the chat's newest for the caller; returns
    /// that newest id.
    pub async fn clear_chat(&self, caller: UserId, chat: ChatId) -> AppResult<MessageId> {
        self.write(move |c| {
            require_member(c, chat, caller)?;
            let newest = messages::newest_id(c, chat)?;
            let up_to = q::clear_up_to(c, chat, caller, newest)?;
            events::append(c, chat, CHAT_CLEARED, Some(up_to), Some(caller), now_ms())?;
            Ok(up_to)
        })
        .await
    }

    /// The chat and each viewer's unread count (one load of the chat);
    /// `None` when the chat is gone or nobody is asking.
    /// `caller`'s mute of `chat`: no pushes before `until` (ms), `None`
    /// unmutes. 404 for a chat they are not a member of.
    pub async fn set_chat_muted(
        &self,
        caller: UserId,
        chat: ChatId,
        until: Option<i64>,
    ) -> AppResult<()> {
        self.write(move |c| {
            let changed = c.execute(
                "UPDATE chat_participants SET muted_until = ?3
                  WHERE chat_id = ?1 AND user_id = ?2 AND left_at IS NULL",
                params![chat, caller, until],
            )?;
            if changed == 0 {
                return Err(AppError::chat_not_found());
            }
            Ok(())
        })
        .await
    }

    pub async fn chat_views(
        &self,
        chat: ChatId,
        viewers: Vec<UserId>,
    ) -> AppResult<Option<ChatViews>> {
        self.read(move |c| chat_views(c, chat, &viewers)).await
    }
}

fn create_chat(c: &Conn, caller: UserId, new: NewChat) -> AppResult<(ChatId, bool, Notice)> {
    let NewChat {
        others,
        is_group,
        name,
        avatar,
    } = new;
    ensure_exist(c, "participantIds", &others)?;
    let avatar = avatar
        .map(|url| avatar_upload(c, caller, &url, "groupAvatar"))
        .transpose()?;
    let now = now_ms();
    let key = (!is_group).then(|| q::direct_key(caller, others[0]));
    let (chat_id, created) = q::insert_chat(
        c,
        &q::NewChat {
            name: name.as_deref(),
            is_group,
            group_avatar: avatar.as_deref(),
            direct_key: key.as_deref(),
            now,
        },
    )?;
    let mut notice = Notice::default();
    let members: Vec<UserId> = std::iter::once(caller)
        .chain(others.iter().copied())
        .collect();
    if created {
        let cursor = events::cursor(c)?;
        for &m in &members {
            q::add_participant(
                c,
                chat_id,
                m,
                is_group && m == caller,
                now,
                cursor,
                MessageId(0),
            )?;
        }
        let event = events::append(c, chat_id, CHAT_NEW, None, None, now)?;
        q::set_activity(c, chat_id, event)?;
        if is_group {
            let what = Note {
                name: name.as_deref(),
                ..Note::about(SystemAction::Created, &others)
            };
            notice
                .notes
                .push(notes::write(c, chat_id, caller, what, now)?);
        }
        notice.new_for = members;
    } else {
        // A 1-on-1 someone had left comes back for both.
        for &m in &members {
            if q::membership(c, chat_id, m)?.is_none() {
                let cursor = events::cursor(c)?;
                let newest = messages::newest_id(c, chat_id)?;
                q::add_participant(c, chat_id, m, false, now, cursor, newest)?;
                events::append(c, chat_id, CHAT_NEW, None, Some(m), now)?;
                notice.new_for.push(m);
            }
        }
    }
    Ok((chat_id, created, notice))
}

/// The chat with the viewer's delivered position, 404 unless a member.
fn view_for_member(conn: &Conn, chat: ChatId, viewer: UserId) -> AppResult<q::ChatView> {
    q::membership(conn, chat, viewer)?.ok_or_else(AppError::chat_not_found)?;
    q::load_chat_view(conn, chat, viewer)?.ok_or_else(AppError::chat_not_found)
}

fn require_member(conn: &Conn, chat: ChatId, user: UserId) -> AppResult<q::Membership> {
    q::membership(conn, chat, user)?.ok_or_else(AppError::chat_not_found)
}

fn require_group_admin(m: q::Membership) -> AppResult<()> {
    if !m.is_group {
        return Err(AppError::Forbidden("only group chats have admins".into()));
    }
    if !m.is_admin {
        return Err(AppError::Forbidden("only group admins can do that".into()));
    }
    Ok(())
}

fn ensure_exist(conn: &Conn, field: &str, ids: &[UserId]) -> AppResult<()> {
    let found = users::existing_ids(conn, ids)?;
    if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
        return Err(AppError::invalid(
            field,
            format!("user {missing} does not exist"),
        ));
    }
    Ok(())
}

/// A chat loaded once, and each viewer's unread count in it.
pub struct ChatViews {
    /// The chat as the first viewer sees it (its `unreadCount` is theirs).
    pub chat: Chat,
    /// (viewer, unread count), in the order asked.
    pub unread: Vec<(UserId, i64)>,
    /// The `lastMessage` of viewers who see another one than the first
    /// viewer (the newest message is deleted for them, or cleared).
    pub last_for: HashMap<UserId, Option<Message>>,
    /// Each viewer's `mutedUntil` (only those with a running mute).
    pub muted: HashMap<UserId, i64>,
}

/// The chat and each viewer's unread count (one load of the chat); `None`
/// when the chat is gone.
pub(crate) fn chat_views(
    conn: &Conn,
    chat: ChatId,
    viewers: &[UserId],
) -> AppResult<Option<ChatViews>> {
    let Some(&first) = viewers.first() else {
        return Ok(None);
    };
    let Some(base) = q::load_chat(conn, chat, first)? else {
        return Ok(None);
    };
    let mut unread = Vec::with_capacity(viewers.len());
    for &viewer in viewers {
        unread.push((viewer, messages::unread_count(conn, chat, viewer)?));
    }
    // Usually everyone sees the chat's newest message: one query finds the
    // few for whom it is gone, and only they cost a walk back.
    let mut last_for = HashMap::new();
    let newest = match viewers.len() {
        1 => None,
        _ => q::last_message_id(conn, chat)?,
    };
    if let Some(newest) = newest {
        let gone: HashSet<UserId> = messages::hidden_from(conn, chat, newest)?
            .into_iter()
            .collect();
        let base_id = base.last_message.as_ref().map(|m| m.id);
        let positions = crate::db::receipts::positions(conn, chat)?;
        let mut newest_msg = None;
        for &viewer in &viewers[1..] {
            if gone.contains(&viewer) {
                let last = match messages::viewer(conn, chat, viewer)? {
                    Some(v) => messages::newest_visible(conn, chat, &v, &positions)?,
                    None => None,
                };
                if last.as_ref().map(|m| m.id) != base_id {
                    last_for.insert(viewer, last);
                }
            } else if base_id != Some(newest) {
                if newest_msg.is_none() {
                    newest_msg = Some(messages::load(conn, newest, &positions)?);
                }
                last_for.insert(viewer, newest_msg.clone().flatten());
            }
        }
    }
    let muted: HashMap<UserId, i64> = conn
        .prepare_cached(
            "SELECT user_id, muted_until FROM chat_participants
              WHERE chat_id = ?1 AND left_at IS NULL AND muted_until > ?2",
        )?
        .query_map(params![chat, now_ms()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(Some(ChatViews {
        chat: base,
        unread,
        last_for,
        muted,
    }))
}
