//! Messages: send (REST and WebSocket share this), history, edit, delete.
//!
//! The send path: validate (pure) → the store's `send_message`, one writer
//! op (membership, clientId de-duplication, reply and file checks, insert,
//! chat activity, events row, members) → COMMIT → publish `message:new`
//! once, serialised once. A retried `clientId` returns the stored message
//! and publishes nothing.

use std::sync::Arc;

use serde::Deserialize;
use tracing::instrument;
use utoipa::ToSchema;

use crate::db::{self, messages as q};
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
    /// Required unless `forwardedFromId` is given (then the forwarded
    /// message's type is used).
    pub message_type: Option<MessageType>,
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
    /// Voice messages (with `waveform`, on a `FILE` whose upload is audio
    /// by its bytes): the recording's length, 1 to 3,600,000 ms.
    #[schema(minimum = 1, maximum = 3600000)]
    pub duration_ms: Option<i64>,
    /// Voice messages (with `durationMs`): 1 to 256 amplitude bytes
    /// (0–255), base64.
    pub waveform: Option<String>,
    /// Forward: a message the caller can see, in any of their chats. The
    /// new message copies its type, content and file (the same stored
    /// upload) and carries `isForwarded: true`. Not with `content`,
    /// `fileUrl` or a voice note's fields; 404 for a message the caller
    /// cannot see (as for an unknown id), 409 for a deleted one.
    #[schema(value_type = Option<i64>)]
    pub forwarded_from_id: Option<MessageId>,
}

impl SendMessage {
    /// The message's type (TEXT until validated; a forward's is the
    /// forwarded message's, decided in the store).
    pub fn kind(&self) -> MessageType {
        self.message_type.unwrap_or(MessageType::Text)
    }
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
    /// The stored `message_type`.
    pub fn as_str(self) -> &'static str {
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

fn validate(input: &mut SendMessage) -> AppResult<(Option<String>, Option<String>)> {
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
    if let Some(from) = input.forwarded_from_id {
        if from < MessageId(1) {
            return Err(AppError::invalid(
                "forwardedFromId",
                "forwardedFromId must be a message id",
            ));
        }
        if input.content.is_some()
            || input.file_url.is_some()
            || input.duration_ms.is_some()
            || input.waveform.is_some()
        {
            return Err(AppError::invalid(
                "forwardedFromId",
                "a forward copies its message: give no content, fileUrl, durationMs or waveform",
            ));
        }
        return Ok((None, client_id));
    }
    let Some(kind) = input.message_type else {
        return Err(AppError::invalid("messageType", "messageType is required"));
    };
    if let Some((duration, waveform)) = crate::ops::voice::validate(input)? {
        input.duration_ms = Some(duration);
        input.waveform = Some(waveform);
    }
    if kind == MessageType::System {
        return Err(AppError::invalid(
            "messageType",
            "SYSTEM messages are written by the server only",
        ));
    }
    let needs_text = matches!(kind, MessageType::Text | MessageType::Link);
    let content = valid_content(input.content.as_deref(), needs_text)?;
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
    submit(state, caller, chat, input).await?.await
}

/// What [`submit`] resolves to: the send's commit and publish.
pub type Submitted = db::store::messages::BoxFuture<AppResult<Sent>>;

/// [`send`] in two steps, for pipelined sends: validates, applies the rate
/// limit and queues the send in the writer, then resolves (sends submitted
/// one after another get ids in that order). The returned future waits for
/// the COMMIT and publishes `message:new`; it resolves only after the
/// message is durable.
pub async fn submit(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    mut input: SendMessage,
) -> AppResult<Submitted> {
    let (content, client_id) = match validate(&mut input) {
        Ok(valid) => valid,
        // Someone outside the chat learns nothing from the body's problems:
        // 404 as for every other request about a chat they are not in.
        Err(e) => {
            let member = state.db().membership(chat, caller).await?;
            return Err(member.map_or_else(AppError::chat_not_found, |_| e));
        }
    };
    state.limits().send(caller)?;
    let stored = state
        .db()
        .submit_message(caller, chat, input, content, client_id)
        .await?;
    let state = state.clone();
    Ok(Box::pin(async move {
        let db::store::messages::Stored {
            message,
            members,
            created,
            receipts_changed,
        } = stored.await?;
        crate::ops::receipts::send_status(&state, receipts_changed);
        if created {
            state.metrics().message_sent();
            let mut event = Published::new(MESSAGE_NEW, &message);
            event.delivery = Some(Delivery {
                chat_id: chat,
                message_id: message.id,
                sender_id: caller,
            });
            state.bus().publish(state.hub(), &Arc::new(event), &members);
            if let Some(pusher) = state.pusher() {
                pusher.message_sent(&state, &message, &members);
            }
            crate::previews::message_stored(&state, &message);
        }
        Ok(Sent { message, created })
    }))
}

/// A page of history for a member; fetching counts as delivery.
pub async fn history(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    at: q::PageAt,
    limit: u32,
) -> AppResult<db::store::messages::HistoryPage> {
    let page = state.db().history_page(caller, chat, at, limit).await?;
    let (items, delivered) = (&page.items, page.delivered);
    let newest_from_others = items
        .iter()
        .filter(|m| m.sender_id != caller)
        .map(|m| m.id)
        .max()
        .unwrap_or(MessageId(0));
    if newest_from_others > delivered {
        crate::ops::receipts::mark_delivered(state, caller, chat, newest_from_others).await?;
    }
    Ok(page)
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
                .check_message_access(caller, chat, message)
                .await?;
            return Err(e);
        }
    };
    let (updated, members) = state
        .db()
        .edit_message(caller, chat, message, content)
        .await?;
    publish(state, MESSAGE_UPDATED, &updated, &members);
    crate::previews::message_edited(state, &updated);
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
        .delete_message(caller, chat, message, window)
        .await?;
    publish(state, MESSAGE_DELETED, &tombstone, &members);
    Ok(tombstone)
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
    let hidden = state.db().hide_message(caller, chat, message).await?;
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
    state.db().message_receipts(caller, chat, message).await
}
