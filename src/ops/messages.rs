//! Messages: send (REST and WebSocket share this), history, edit, delete.
//!
//! The send path: validate (pure) → one writer op (membership, clientId
//! de-duplication, reply and file checks, insert, chat activity, events row,
//! members) → COMMIT → publish `message:new` once, serialised once. A retried
//! `clientId` returns the stored message and publishes nothing.

use std::sync::Arc;

use serde::Deserialize;
use tracing::instrument;
use utoipa::ToSchema;

use crate::db::Conn;
use crate::db::{self, chats, events, messages as q, now_ms, receipts};
use crate::error::{AppError, AppResult};
use crate::model::{ChatId, Message, MessageId, UserId};
use crate::ops::publish;
use crate::realtime::frames::{
    Delivery, Published, MESSAGE_DELETED, MESSAGE_HIDDEN, MESSAGE_NEW, MESSAGE_UPDATED,
};
use crate::state::AppState;

/// Longest message, in Unicode characters.
pub const MAX_CONTENT_CHARS: usize = 10_000;
/// `messageType` of group notes.
pub const SYSTEM: &str = "SYSTEM";

/// Longest `clientId`.
pub const MAX_CLIENT_ID_CHARS: usize = 64;

/// The body of a send (REST) or `message:send` (WebSocket, plus `chatId`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendMessage {
    pub message_type: MessageType,
    /// Required (non-blank) for TEXT and LINK.
    #[schema(max_length = 10000)]
    pub content: Option<String>,
    /// Required for IMAGE and FILE: a `fileUrl` from the caller's upload.
    pub file_url: Option<String>,
    pub file_name: Option<String>,
    pub file_size: Option<i64>,
    pub file_mime_type: Option<String>,
    #[schema(value_type = Option<i64>)]
    pub reply_to_id: Option<MessageId>,
    /// Makes the send idempotent per sender and chat.
    #[schema(max_length = 64)]
    pub client_id: Option<String>,
}

/// Kinds of message. `SYSTEM` (group notes) is written by the server only:
/// a client sending it gets 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum MessageType {
    Text,
    Image,
    File,
    Link,
    System,
}

impl MessageType {
    fn as_str(self) -> &'static str {
        match self {
            MessageType::Text => "TEXT",
            MessageType::Image => "IMAGE",
            MessageType::File => "FILE",
            MessageType::Link => "LINK",
            MessageType::System => SYSTEM,
        }
    }
}

/// `PATCH /chat/:chatId/messages/:messageId`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EditMessage {
    #[schema(min_length = 1, max_length = 10000)]
    pub content: String,
}

/// A stored message and whether this call created it.
pub struct Sent {
    pub message: Message,
    pub created: bool,
}

/// Content rules: non-blank, at most [`MAX_CONTENT_CHARS`] characters.
pub fn valid_content(content: Option<&str>, required: bool) -> AppResult<Option<String>> {
    match content {
        Some(c) if c.chars().count() > MAX_CONTENT_CHARS => Err(AppError::invalid(
            "content",
            format!("content must be at most {MAX_CONTENT_CHARS} characters"),
        )),
        Some(c) if c.trim().is_empty() && required => {
            Err(AppError::invalid("content", "content must not be empty"))
        }
        Some(c) if c.trim().is_empty() => Ok(None),
        Some(c) => Ok(Some(c.to_string())),
        None if required => Err(AppError::invalid("content", "content is required")),
        None => Ok(None),
    }
}

fn validate(input: &SendMessage) -> AppResult<(Option<String>, Option<String>)> {
    if input.message_type == MessageType::System {
        return Err(AppError::invalid(
            "messageType",
            "SYSTEM messages are written by the server only",
        ));
    }
    let needs_text = matches!(input.message_type, MessageType::Text | MessageType::Link);
    let content = valid_content(input.content.as_deref(), needs_text)?;
    let client_id = match input.client_id.as_deref() {
        None | Some("") => None,
        Some(id) if id.chars().count() > MAX_CLIENT_ID_CHARS => {
            return Err(AppError::invalid(
                "clientId",
                format!("clientId must be at most {MAX_CLIENT_ID_CHARS} characters"),
            ))
        }
        Some(id) => Some(id.to_string()),
    };
    if !needs_text
        && input
            .file_url
            .as_deref()
            .is_none_or(|u| u.trim().is_empty())
    {
        return Err(AppError::invalid(
            "fileUrl",
            "fileUrl is required for IMAGE and FILE messages",
        ));
    }
    Ok((content, client_id))
}

/// Sends a message (REST and WebSocket).
#[instrument(skip_all, fields(user.id = caller.0, chat.id = chat.0))]
pub async fn send(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    input: SendMessage,
) -> AppResult<Sent> {
    let (content, client_id) = match validate(&input) {
        Ok(valid) => valid,
        // Someone outside the chat learns nothing from the body's problems:
        // 404 as for every other request about a chat they are not in.
        Err(e) => {
            let member = state
                .db()
                .read(move |c| chats::membership(c, chat, caller))
                .await?;
            return Err(member.map_or_else(AppError::chat_not_found, |_| e));
        }
    };
    state.limits().send(caller)?;
    let (message, members, created, receipts_changed) = state
        .db()
        .write(move |c| {
            chats::membership(c, chat, caller)?.ok_or_else(AppError::chat_not_found)?;
            if let Some(cid) = &client_id {
                if let Some(existing) = q::find_by_client_id(c, chat, caller, cid)? {
                    let positions = receipts::positions(c, chat)?;
                    let message = q::load(c, existing, &positions)?
                        .ok_or_else(|| anyhow::anyhow!("message vanished"))?;
                    return Ok((message, Vec::new(), false, Vec::new()));
                }
            }
            if let Some(reply) = input.reply_to_id {
                match q::owner(c, reply)? {
                    Some((reply_chat, _, _)) if reply_chat == chat => {}
                    _ => {
                        return Err(AppError::invalid(
                            "replyToId",
                            "replyToId must be a message of this chat",
                        ))
                    }
                }
            }
            let file = match input.message_type {
                MessageType::Image | MessageType::File => {
                    let file = own_upload(
                        c,
                        caller,
                        input.file_url.as_deref().unwrap_or_default(),
                        "fileUrl",
                    )?;
                    if input.message_type == MessageType::Image && !file.is_image() {
                        return Err(AppError::invalid(
                            "messageType",
                            "IMAGE messages need an image file",
                        ));
                    }
                    Some(file)
                }
                _ => None,
            };
            let now = now_ms();
            let id = q::insert(
                c,
                &q::NewMessage {
                    chat_id: chat,
                    sender_id: caller,
                    message_type: input.message_type.as_str(),
                    content: content.as_deref(),
                    upload_id: file.as_ref().map(|f| f.id),
                    file_url: file.as_ref().map(|f| f.url.as_str()),
                    file_name: file.as_ref().map(|f| f.row.file_name.as_str()),
                    file_size: file.as_ref().map(|f| f.row.file_size),
                    file_mime_type: file.as_ref().map(|f| f.row.mime_type.as_str()),
                    reply_to_id: input.reply_to_id,
                    client_id: client_id.as_deref(),
                    system: None,
                    now,
                },
            )?;
            let event = events::append(c, chat, MESSAGE_NEW, Some(id), None, now)?;
            chats::bump_activity(c, chat, id, event, now)?;
            // Whoever writes in a chat has read it (as in WhatsApp): their
            // unread count drops to zero and earlier messages turn READ. Only
            // when something from others is unread: the sender's position
            // over their own messages is never observable, and skipping it
            // spares the writer four row writes per message.
            let receipts_changed = if q::has_unread_before(c, chat, caller, id)? {
                crate::ops::receipts::advance(c, chat, caller, receipts::Kind::Read, id, now)?
            } else {
                Vec::new()
            };
            let positions = receipts::positions(c, chat)?;
            let members = positions.0.iter().map(|p| p.user_id).collect();
            let message =
                q::load(c, id, &positions)?.ok_or_else(|| anyhow::anyhow!("message vanished"))?;
            Ok((message, members, true, receipts_changed))
        })
        .await?;
    crate::ops::receipts::send_status(state, receipts_changed);
    if created {
        state.metrics().message_sent();
        let mut event = Published::new(MESSAGE_NEW, &message);
        event.delivery = Some(Delivery {
            chat_id: chat,
            message_id: message.id,
            sender_id: caller,
        });
        state.hub().publish(&Arc::new(event), &members);
    }
    Ok(Sent { message, created })
}

/// One of the caller's uploads, found by its URL.
pub(crate) struct OwnUpload {
    pub id: i64,
    /// The canonical `/uploads/chat/<name>`.
    pub url: String,
    pub row: db::uploads::UploadRow,
}

impl OwnUpload {
    /// Whether the upload is an image (`image/*`).
    pub fn is_image(&self) -> bool {
        self.row.mime_type.starts_with("image/")
    }
}

/// The caller's own upload behind `url`, else 400 naming `field`.
pub(crate) fn own_upload(c: &Conn, caller: UserId, url: &str, field: &str) -> AppResult<OwnUpload> {
    let name = url
        .trim()
        .strip_prefix(q::UPLOADS_PREFIX)
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| {
            AppError::invalid(
                field,
                format!("{field} must be a URL returned by /chat/upload"),
            )
        })?;
    let row = db::uploads::find_by_name(c, name)?
        .filter(|r| r.uploader_id == caller)
        .ok_or_else(|| {
            AppError::invalid(field, format!("{field} must be one of your own uploads"))
        })?;
    Ok(OwnUpload {
        id: row.id,
        url: format!("{}{}", q::UPLOADS_PREFIX, row.name),
        row,
    })
}

/// A page of history for a member; fetching counts as delivery.
pub async fn history(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    at: q::PageAt,
    limit: u32,
) -> AppResult<(Vec<Message>, bool)> {
    let (items, has_more, delivered) = state
        .db()
        .read(move |c| {
            let viewer = q::viewer(c, chat, caller)?.ok_or_else(AppError::chat_not_found)?;
            let positions = receipts::positions(c, chat)?;
            let (items, has_more) = q::page(c, chat, at, limit, &viewer, &positions)?;
            let delivered = positions
                .0
                .iter()
                .find(|p| p.user_id == caller)
                .map_or(MessageId(0), |p| p.delivered.max(p.read));
            Ok((items, has_more, delivered))
        })
        .await?;
    let newest_from_others = items
        .iter()
        .filter(|m| m.sender_id != caller)
        .map(|m| m.id)
        .max()
        .unwrap_or(MessageId(0));
    if newest_from_others > delivered {
        crate::ops::receipts::mark_delivered(state, caller, chat, newest_from_others).await?;
    }
    Ok((items, has_more))
}

/// Loads a message of a chat the caller is in, or 404.
fn member_message(
    c: &Conn,
    caller: UserId,
    chat: ChatId,
    message: MessageId,
) -> AppResult<(chats::Membership, UserId, bool)> {
    let m = chats::membership(c, chat, caller)?.ok_or_else(AppError::message_not_found)?;
    match q::owner(c, message)? {
        Some((msg_chat, sender, deleted)) if msg_chat == chat => Ok((m, sender, deleted)),
        _ => Err(AppError::message_not_found()),
    }
}

/// Edits the caller's own message.
#[instrument(skip_all, fields(user.id = caller.0, chat.id = chat.0))]
pub async fn edit(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    message: MessageId,
    input: EditMessage,
) -> AppResult<Message> {
    let content = match valid_content(Some(&input.content), true) {
        Ok(content) => content.unwrap_or_default(),
        // as for a send: outside the chat (or no such message) it is a 404
        Err(e) => {
            state
                .db()
                .read(move |c| member_message(c, caller, chat, message))
                .await?;
            return Err(e);
        }
    };
    let (updated, members) = state
        .db()
        .write(move |c| {
            let (_, sender, deleted) = member_message(c, caller, chat, message)?;
            if q::is_system(c, message)? {
                return Err(AppError::Forbidden("group notes cannot be edited".into()));
            }
            if sender != caller {
                return Err(AppError::Forbidden(
                    "only the sender can edit a message".into(),
                ));
            }
            if deleted {
                return Err(AppError::Conflict(
                    "a deleted message cannot be edited".into(),
                ));
            }
            let now = now_ms();
            q::edit(c, message, &content, now)?;
            events::append(c, chat, MESSAGE_UPDATED, Some(message), None, now)?;
            let positions = receipts::positions(c, chat)?;
            let members = still_seeing(c, chat, message, &positions)?;
            let updated =
                q::load(c, message, &positions)?.ok_or_else(AppError::message_not_found)?;
            Ok((updated, members))
        })
        .await?;
    publish(state, MESSAGE_UPDATED, &updated, &members);
    Ok(updated)
}

/// Soft-deletes a message for everyone: its sender, or a group admin, and
/// with `--delete-window` only that long after it was sent (403
/// `delete_window_passed`; deleting again an already deleted one stays 200).
#[instrument(skip_all, fields(user.id = caller.0, chat.id = chat.0))]
pub async fn delete(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    message: MessageId,
) -> AppResult<Message> {
    let window = state.config().delete_window_secs;
    let (tombstone, members) = state
        .db()
        .write(move |c| {
            let (m, sender, deleted) = member_message(c, caller, chat, message)?;
            if q::is_system(c, message)? {
                return Err(AppError::Forbidden(
                    "group notes cannot be deleted for everyone (delete them for you)".into(),
                ));
            }
            if sender != caller && !(m.is_group && m.is_admin) {
                return Err(AppError::Forbidden(
                    "only the sender or a group admin can delete a message".into(),
                ));
            }
            let positions = receipts::positions(c, chat)?;
            if deleted {
                let msg =
                    q::load(c, message, &positions)?.ok_or_else(AppError::message_not_found)?;
                return Ok((msg, Vec::new()));
            }
            let now = now_ms();
            if let Some(window) = window {
                let sent = q::created_at(c, message)?.unwrap_or(now);
                if now.saturating_sub(sent)
                    > i64::try_from(window.saturating_mul(1000)).unwrap_or(i64::MAX)
                {
                    return Err(AppError::DeleteWindowPassed(window));
                }
            }
            q::soft_delete(c, message, now)?;
            events::append(c, chat, MESSAGE_DELETED, Some(message), None, now)?;
            let members = still_seeing(c, chat, message, &positions)?;
            let msg = q::load(c, message, &positions)?.ok_or_else(AppError::message_not_found)?;
            Ok((msg, members))
        })
        .await?;
    publish(state, MESSAGE_DELETED, &tombstone, &members);
    Ok(tombstone)
}

/// The members a change to `message` is pushed to: those for whom it is not
/// gone (deleted for them, or cleared).
fn still_seeing(
    c: &Conn,
    chat: ChatId,
    message: MessageId,
    positions: &receipts::Positions,
) -> AppResult<Vec<UserId>> {
    let gone = q::hidden_from(c, chat, message)?;
    Ok(positions
        .0
        .iter()
        .map(|p| p.user_id)
        .filter(|u| !gone.contains(u))
        .collect())
}

/// Deletes a message for the caller only (any message of a chat they are
/// in, theirs or not, group notes too): from then on it is gone from their
/// history, `/sync`, chat list and unread count, on every device.
#[instrument(skip_all, fields(user.id = caller.0, chat.id = chat.0))]
pub async fn delete_for_me(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    message: MessageId,
) -> AppResult<()> {
    let hidden = state
        .db()
        .write(move |c| {
            member_message(c, caller, chat, message)?;
            if !q::hide(c, caller, chat, message)? {
                return Ok(false);
            }
            events::append(
                c,
                chat,
                MESSAGE_HIDDEN,
                Some(message),
                Some(caller),
                now_ms(),
            )?;
            Ok(true)
        })
        .await?;
    if hidden {
        publish(
            state,
            MESSAGE_HIDDEN,
            &serde_json::json!({"chatId": chat, "messageId": message}),
            &[caller],
        );
    }
    Ok(())
}

/// Per-member receipts of a message.
pub async fn receipts_of(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    message: MessageId,
) -> AppResult<Vec<crate::model::Receipt>> {
    state
        .db()
        .read(move |c| {
            let (_, sender, _) = member_message(c, caller, chat, message)?;
            let positions = receipts::positions(c, chat)?;
            receipts::for_message(c, chat, sender, message, &positions)
        })
        .await
}
