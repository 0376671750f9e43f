//! Chats: create, list, get, rename, participants and admins.
//!
//! Rules: every access checks the caller is a current member (else 404, so
//! existence does not leak); group changes need a group admin (403); a group
//! never ends without an admin (the oldest member is promoted).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;
use serde_json::json;
use tracing::instrument;
use utoipa::ToSchema;

use crate::db::Conn;
use crate::db::{self, chats as q, events, messages, now_ms};
use crate::error::{AppError, AppResult};
use crate::model::{Chat, ChatId, Message, MessageId, SystemAction, UserId};
use crate::ops::notes::{self, Note};
use crate::ops::users::{avatar_upload, double_option};
use crate::ops::{fill_chat, publish, valid_name, valid_url, MAX_GROUP_MEMBERS, MAX_IDS};
use crate::realtime::frames::{CHAT_CLEARED, CHAT_NEW, CHAT_REMOVED, CHAT_UPDATED, MESSAGE_NEW};
use crate::state::AppState;

/// `POST /chat`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateChat {
    /// The other members (the caller may be listed too).
    #[schema(value_type = Vec<i64>, max_items = 1024)]
    pub participant_ids: Vec<UserId>,
    #[serde(default)]
    pub is_group: bool,
    /// Required for a group.
    #[schema(max_length = 100)]
    pub name: Option<String>,
    /// One of the caller's own image uploads; it becomes readable by every
    /// signed-in user.
    #[schema(max_length = 2048)]
    pub group_avatar: Option<String>,
}

/// `PATCH /chat/:id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateChat {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// One of the caller's own image uploads (readable by every signed-in
    /// user from then on); `null` clears the avatar.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 2048)]
    pub group_avatar: Option<Option<String>>,
}

/// `POST /chat/:id/participants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddParticipants {
    #[schema(value_type = Vec<i64>, min_items = 1, max_items = 1024)]
    pub user_ids: Vec<UserId>,
}

/// `PATCH /chat/:id/participants/:userId`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetAdmin {
    pub is_admin: bool,
}

/// Who to tell what after a chat change.
#[derive(Default)]
struct Notice {
    new_for: Vec<UserId>,
    updated_for: Vec<UserId>,
    removed_for: Vec<UserId>,
    /// Group notes the change wrote, for the members after it.
    notes: Vec<Message>,
}

/// Loads the chat for `viewer`, 404 unless a member.
pub fn load_for_member(conn: &Conn, chat: ChatId, viewer: UserId) -> AppResult<Chat> {
    Ok(view_for_member(conn, chat, viewer)?.chat)
}

/// [`load_for_member`] with the viewer's delivered position.
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

fn check_ids(field: &str, ids: &[UserId]) -> AppResult<()> {
    if ids.len() > MAX_IDS {
        return Err(AppError::invalid(
            field,
            format!("{field} may list at most {MAX_IDS} ids"),
        ));
    }
    Ok(())
}

fn ensure_exist(conn: &Conn, field: &str, ids: &[UserId]) -> AppResult<()> {
    let found = db::users::existing_ids(conn, ids)?;
    if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
        return Err(AppError::invalid(
            field,
            format!("user {missing} does not exist"),
        ));
    }
    Ok(())
}

/// Creates a chat; `(chat, created)`; an existing 1-on-1 is returned as is.
#[instrument(skip_all, fields(user.id = caller.0))]
pub async fn create(
    state: &AppState,
    caller: UserId,
    input: CreateChat,
) -> AppResult<(Chat, bool)> {
    check_ids("participantIds", &input.participant_ids)?;
    let mut others: Vec<UserId> = input
        .participant_ids
        .iter()
        .copied()
        .filter(|&id| id != caller)
        .collect();
    others.sort_unstable();
    others.dedup();
    let name = match (&input.name, input.is_group) {
        (Some(n), true) => Some(valid_name("name", n)?),
        (None, true) => return Err(AppError::invalid("name", "name is required for a group")),
        (_, false) => None,
    };
    let avatar = valid_url("groupAvatar", input.group_avatar.as_deref())?;
    if !input.is_group && others.len() != 1 {
        return Err(AppError::invalid(
            "participantIds",
            "a 1-on-1 chat needs exactly one other participant",
        ));
    }
    if others.len() + 1 > MAX_GROUP_MEMBERS {
        return Err(AppError::invalid(
            "participantIds",
            format!("a group has at most {MAX_GROUP_MEMBERS} members"),
        ));
    }
    let is_group = input.is_group;
    let (chat_id, created, notice) = state
        .db()
        .write(move |c| {
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
        })
        .await?;
    notify(state, chat_id, notice).await?;
    let chat = get(state, caller, chat_id).await?;
    Ok((chat, created))
}

/// `GET /chat`: one page of the caller's chats. Each `lastMessage` shown
/// is thereby on the caller's device: delivered.
pub async fn list(
    state: &AppState,
    caller: UserId,
    page: u32,
    limit: u32,
) -> AppResult<(Vec<Chat>, i64)> {
    let (views, total) = state
        .db()
        .read(move |c| q::list_for_user(c, caller, page, limit))
        .await?;
    deliver_last(state, caller, &views).await?;
    let mut chats: Vec<Chat> = views.into_iter().map(|v| v.chat).collect();
    for chat in &mut chats {
        fill_chat(state, chat);
    }
    Ok((chats, total))
}

/// `GET /chat/:id` (its `lastMessage` counts as delivered, as in the list).
pub async fn get(state: &AppState, caller: UserId, chat: ChatId) -> AppResult<Chat> {
    let view = state
        .db()
        .read(move |c| view_for_member(c, chat, caller))
        .await?;
    deliver_last(state, caller, std::slice::from_ref(&view)).await?;
    let mut chat = view.chat;
    fill_chat(state, &mut chat);
    Ok(chat)
}

/// Advances the caller's delivered position to the last messages shown
/// (one writer op, only when something is new to the device).
async fn deliver_last(state: &AppState, caller: UserId, views: &[q::ChatView]) -> AppResult<()> {
    let marks = q::undelivered_last(views, caller);
    crate::ops::receipts::mark_delivered_many(state, caller, marks).await
}

/// `PATCH /chat/:id`: admins rename or change the avatar.
#[instrument(skip_all, fields(user.id = caller.0, chat.id = chat.0))]
pub async fn update(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    input: UpdateChat,
) -> AppResult<Chat> {
    let name = input
        .name
        .as_deref()
        .map(|n| valid_name("name", n))
        .transpose()?;
    let avatar = match &input.group_avatar {
        Some(a) => Some(valid_url("groupAvatar", a.as_deref())?),
        None => None,
    };
    let notice = state
        .db()
        .write(move |c| {
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
        .await?;
    notify(state, chat, notice).await?;
    get(state, caller, chat).await
}

/// `POST /chat/:id/participants`: admins add members.
#[instrument(skip_all, fields(user.id = caller.0, chat.id = chat.0))]
pub async fn add_participants(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    input: AddParticipants,
) -> AppResult<Chat> {
    check_ids("userIds", &input.user_ids)?;
    if input.user_ids.is_empty() {
        return Err(AppError::invalid("userIds", "userIds must not be empty"));
    }
    let mut ids = input.user_ids;
    ids.sort_unstable();
    ids.dedup();
    let notice = state
        .db()
        .write(move |c| {
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
        .await?;
    notify(state, chat, notice).await?;
    get(state, caller, chat).await
}

/// `DELETE /chat/:id/participants/:userId`: an admin removes someone, or a
/// member leaves. Returns the chat for the caller, or `None` if they left.
#[instrument(skip_all, fields(user.id = caller.0, chat.id = chat.0))]
pub async fn remove_participant(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    target: UserId,
) -> AppResult<Option<Chat>> {
    let notice = state
        .db()
        .write(move |c| {
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
        .await?;
    state.hub().leave_all(target, chat);
    notify(state, chat, notice).await?;
    if target == caller {
        Ok(None)
    } else {
        get(state, caller, chat).await.map(Some)
    }
}

/// `PATCH /chat/:id/participants/:userId`: admins promote or demote.
#[instrument(skip_all, fields(user.id = caller.0, chat.id = chat.0))]
pub async fn set_admin(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    target: UserId,
    input: SetAdmin,
) -> AppResult<Chat> {
    let notice = state
        .db()
        .write(move |c| {
            require_group_admin(require_member(c, chat, caller)?)?;
            let target_m = q::membership(c, chat, target)?
                .ok_or_else(|| AppError::NotFound("participant not found".into()))?;
            if target_m.is_admin == input.is_admin {
                return Ok(Notice::default());
            }
            if !input.is_admin && q::admin_count(c, chat)? <= 1 {
                return Err(AppError::Conflict(
                    "a group needs at least one admin: promote someone else first".into(),
                ));
            }
            q::set_admin(c, chat, target, input.is_admin)?;
            let now = now_ms();
            q::touch(c, chat, now)?;
            events::append(c, chat, CHAT_UPDATED, None, None, now)?;
            let action = if input.is_admin {
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
        .await?;
    notify(state, chat, notice).await?;
    get(state, caller, chat).await
}

/// `POST /chat/:id/clear`: hides every message up to the chat's newest for
/// the caller only (stored per member, so on every device); the chat stays
/// in their list with no `lastMessage` and no unread until something new
/// arrives. Tells the caller's connections `chat:cleared`.
#[instrument(skip_all, fields(user.id = caller.0, chat.id = chat.0))]
pub async fn clear(state: &AppState, caller: UserId, chat: ChatId) -> AppResult<()> {
    let up_to = state
        .db()
        .write(move |c| {
            require_member(c, chat, caller)?;
            let newest = messages::newest_id(c, chat)?;
            let up_to = q::clear_up_to(c, chat, caller, newest)?;
            events::append(c, chat, CHAT_CLEARED, Some(up_to), Some(caller), now_ms())?;
            Ok(up_to)
        })
        .await?;
    publish(
        state,
        CHAT_CLEARED,
        &json!({"chatId": chat, "upToMessageId": up_to}),
        &[caller],
    );
    Ok(())
}

/// Publishes chat events: each member gets the chat with its own unread
/// count. The chat (with every participant) is loaded and serialised once per
/// distinct (event, unread count), not once per member: in a 1,000-member
/// group a per-member copy was ~1,000 × the whole member list in memory.
async fn notify(state: &AppState, chat: ChatId, notice: Notice) -> AppResult<()> {
    if notice.new_for.is_empty()
        && notice.updated_for.is_empty()
        && notice.removed_for.is_empty()
        && notice.notes.is_empty()
    {
        return Ok(());
    }
    let viewers: Vec<UserId> = notice
        .new_for
        .iter()
        .chain(&notice.updated_for)
        .copied()
        .collect();
    let views = state
        .db()
        .read(move |c| chat_views(c, chat, &viewers))
        .await?;
    if let Some(ChatViews {
        mut chat,
        unread,
        mut last_for,
    }) = views
    {
        fill_chat(state, &mut chat);
        let new_for: HashSet<UserId> = notice.new_for.iter().copied().collect();
        // keyed by the lastMessage id too when it differs for a viewer
        let mut groups: BTreeMap<ViewKey, Vec<UserId>> = BTreeMap::new();
        let mut lasts: HashMap<Option<MessageId>, Option<Message>> = HashMap::new();
        for (user, count) in unread {
            let last = last_for.remove(&user).map(|m| {
                let id = m.as_ref().map(|m| m.id);
                lasts.entry(id).or_insert(m);
                id
            });
            groups
                .entry((new_for.contains(&user), count, last))
                .or_default()
                .push(user);
        }
        let base_last = chat.last_message.take();
        for ((is_new, count, last), users) in groups {
            chat.unread_count = count;
            chat.last_message = match last {
                None => base_last.clone(),
                Some(id) => lasts.get(&id).cloned().flatten(),
            };
            let event = if is_new { CHAT_NEW } else { CHAT_UPDATED };
            publish(state, event, &chat, &users);
        }
    }
    publish(
        state,
        CHAT_REMOVED,
        &json!({"chatId": chat}),
        &notice.removed_for,
    );
    let members: Vec<UserId> = notice
        .new_for
        .iter()
        .chain(&notice.updated_for)
        .copied()
        .collect();
    for note in &notice.notes {
        publish(state, MESSAGE_NEW, note, &members);
    }
    Ok(())
}

/// Members who get the same chat event: (new to them, unread count, their
/// own lastMessage id when it is not the first viewer's).
type ViewKey = (bool, i64, Option<Option<MessageId>>);

/// A chat loaded once, and each viewer's unread count in it.
pub struct ChatViews {
    /// The chat as the first viewer sees it (its `unreadCount` is theirs).
    pub chat: Chat,
    /// (viewer, unread count), in the order asked.
    pub unread: Vec<(UserId, i64)>,
    /// The `lastMessage` of viewers who see another one than the first
    /// viewer (the newest message is deleted for them, or cleared).
    pub last_for: HashMap<UserId, Option<Message>>,
}

/// The chat and each viewer's unread count (one load of the chat); `None`
/// when the chat is gone.
pub fn chat_views(conn: &Conn, chat: ChatId, viewers: &[UserId]) -> AppResult<Option<ChatViews>> {
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
    Ok(Some(ChatViews {
        chat: base,
        unread,
        last_for,
    }))
}
