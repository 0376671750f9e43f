//! Wire types: what clients see, camelCase, timestamps as RFC 3339 UTC.
//!
//! These are plain data. The database layer builds them from rows; presence
//! (`online`) is filled in from the hub by the layer above, since it lives in
//! memory, not in SQLite.

use serde::Serialize;

/// A user id.
pub type UserId = i64;
/// A chat id.
pub type ChatId = i64;
/// A message id: grows over the whole server.
pub type MessageId = i64;

/// Formats stored milliseconds as RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A user as other users see it (the email is visible to logged-in users,
/// as in the seed).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub avatar_url: Option<String>,
    pub online: bool,
    pub last_seen: Option<String>,
    pub created_at: String,
}

/// A member of a chat.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub user: User,
    pub is_admin: bool,
    pub joined_at: String,
}

/// A chat as one caller sees it (`unreadCount` is the caller's).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    pub id: ChatId,
    pub name: Option<String>,
    pub is_group: bool,
    pub group_avatar: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub participants: Vec<Participant>,
    pub last_message: Option<Message>,
    pub unread_count: i64,
}

/// Sender-side delivery state (the ticks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Sent,
    Delivered,
    Read,
}

/// A message.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: MessageId,
    pub chat_id: ChatId,
    pub sender_id: UserId,
    pub content: Option<String>,
    pub message_type: String,
    pub file_url: Option<String>,
    pub file_name: Option<String>,
    pub file_size: Option<i64>,
    pub file_mime_type: Option<String>,
    pub thumbnail_url: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub reply_to_id: Option<MessageId>,
    pub client_id: Option<String>,
    pub is_edited: bool,
    pub is_deleted: bool,
    pub is_read: bool,
    pub status: Status,
    pub created_at: String,
    pub updated_at: String,
}

/// One member's receipt for one message.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub user_id: UserId,
    pub delivered_at: Option<String>,
    pub read_at: Option<String>,
}

/// `{items: [...]}`.
#[derive(Debug, Serialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}
