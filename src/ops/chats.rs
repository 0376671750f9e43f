//! Chats: create, list, get, rename, participants and admins.
//!
//! Here: input rules (names, URLs, id lists, group sizes) and publishing
//! `chat:*` events with each member's own view. The rules that need the
//! rows (membership, admin rights, the last admin) are checked by the
//! store's chat operations in the transaction that makes the change (see
//! `db::store::chats`).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;
use serde_json::json;
use tracing::instrument;
use utoipa::ToSchema;

use crate::db::chats as q;
use crate::db::store::chats::{ChatViews, NewChat, Notice};
use crate::error::{AppError, AppResult};
use crate::model::{Chat, ChatId, Message, MessageId, UserId};
use crate::ops::users::double_option;
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

fn check_ids(field: &str, ids: &[UserId]) -> AppResult<()> {
    if ids.len() > MAX_IDS {
        return Err(AppError::invalid(
            field,
            format!("{field} may list at most {MAX_IDS} ids"),
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
    let new = NewChat {
        others,
        is_group: input.is_group,
        name,
        avatar,
    };
    let (chat_id, created, notice) = state.db().create_chat(caller, new).await?;
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
    let (views, total) = state.db().chat_list(caller, page, limit).await?;
    deliver_last(state, caller, &views).await?;
    let mut chats: Vec<Chat> = views.into_iter().map(|v| v.chat).collect();
    for chat in &mut chats {
        fill_chat(state, chat);
    }
    Ok((chats, total))
}

/// `GET /chat/:id` (its `lastMessage` counts as delivered, as in the list).
pub async fn get(state: &AppState, caller: UserId, chat: ChatId) -> AppResult<Chat> {
    let view = state.db().chat_view(caller, chat).await?;
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
    let notice = state.db().update_chat(caller, chat, name, avatar).await?;
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
    let notice = state.db().add_participants(caller, chat, ids).await?;
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
    let notice = state.db().remove_participant(caller, chat, target).await?;
    state.bus().leave_all(state.hub(), target, chat);
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
        .set_chat_admin(caller, chat, target, input.is_admin)
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
    let up_to = state.db().clear_chat(caller, chat).await?;
    publish(
        state,
        CHAT_CLEARED,
        &json!({"chatId": chat, "upToMessageId": up_to}),
        &[caller],
    );
    Ok(())
}

/// Latest `mutedUntil` accepted (the end of year 9999, in ms): "forever"
/// is any far date.
pub const MAX_MUTED_UNTIL: i64 = 253_402_300_799_999;

/// `PATCH /chat/:id/settings` body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatSettings {
    /// No pushes for this chat before this time (ms since the epoch; a far
    /// date mutes for good); `null` unmutes; absent leaves it as it is.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub muted_until: Option<Option<i64>>,
}

/// A field that may be `null`: `Some(None)` for null, `None` when absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    <Option<i64> as serde::Deserialize>::deserialize(d).map(Some)
}

/// `PATCH /chat/:id/settings`: the caller's own settings of a chat (mute).
/// Their other devices get `chat:updated`.
#[instrument(skip_all, fields(user.id = caller.0, chat.id = chat.0))]
pub async fn settings(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    input: ChatSettings,
) -> AppResult<Chat> {
    if let Some(until) = input.muted_until {
        if let Some(t) = until {
            if !(0..=MAX_MUTED_UNTIL).contains(&t) {
                return Err(AppError::invalid(
                    "mutedUntil",
                    "mutedUntil must be a time in ms since 1970 (before the year 10000), or null",
                ));
            }
        }
        state.db().set_chat_muted(caller, chat, until).await?;
    }
    let chat = get(state, caller, chat).await?;
    publish(state, CHAT_UPDATED, &chat, &[caller]);
    Ok(chat)
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
    let views = state.db().chat_views(chat, viewers).await?;
    if let Some(ChatViews {
        mut chat,
        unread,
        mut last_for,
        muted,
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
                .entry((
                    new_for.contains(&user),
                    count,
                    last,
                    muted.get(&user).copied(),
                ))
                .or_default()
                .push(user);
        }
        let base_last = chat.last_message.take();
        for ((is_new, count, last, muted_until), users) in groups {
            chat.unread_count = count;
            chat.muted_until = muted_until;
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
/// own lastMessage id when it is not the first viewer's, their mute).
type ViewKey = (bool, i64, Option<Option<MessageId>>, Option<i64>);
