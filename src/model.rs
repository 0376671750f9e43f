//! Wire types: what clients see, camelCase, timestamps as RFC 3339 UTC.
//!
//! These are plain data. The database layer builds them from rows; presence
//! (`online`) is filled in from the hub by the layer above, since it lives in
//! memory, not in SQLite.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares an id newtype: a transparent `i64` on the wire (JSON numbers,
/// path and query strings) that does not mix with the other ids in code.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Default,
            Clone,
            Copy,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            Serialize,
            Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}

id_type!(
    /// A user id.
    UserId
);
id_type!(
    /// A chat id.
    ChatId
);
id_type!(
    /// A message id: grows over the whole server.
    MessageId
);
id_type!(
    /// An event id in the `/sync` change log: grows over the whole server; a
    /// client's cursor is the last one it has seen.
    EventId
);

/// Formats stored milliseconds as RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A user as other users see it (the email is visible to logged-in users,
/// as in the seed).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[schema(value_type = i64)]
    pub id: UserId,
    pub email: String,
    pub name: String,
    #[schema(required = true)]
    pub avatar_url: Option<String>,
    pub online: bool,
    #[schema(required = true, format = DateTime)]
    pub last_seen: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A member of a chat.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub user: User,
    pub is_admin: bool,
    #[schema(format = DateTime)]
    pub joined_at: String,
}

/// Someone who left a chat or was removed: kept so their name and avatar
/// stay resolvable in old messages and previews.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FormerParticipant {
    pub user: User,
    #[schema(format = DateTime)]
    pub left_at: String,
}

/// A chat as one caller sees it (`unreadCount` is the caller's).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    #[schema(value_type = i64)]
    pub id: ChatId,
    #[schema(required = true)]
    pub name: Option<String>,
    pub is_group: bool,
    #[schema(required = true)]
    pub group_avatar: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub participants: Vec<Participant>,
    /// People who left or were removed (`[]` when none).
    pub former_participants: Vec<FormerParticipant>,
    #[schema(required = true)]
    pub last_message: Option<Message>,
    pub unread_count: i64,
    /// The viewer's own setting: no pushes for this chat before this time
    /// (ms since the epoch); `null` when not muted (or the mute ran out).
    #[schema(required = true)]
    pub muted_until: Option<i64>,
}

/// Sender-side delivery state (the ticks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Sent,
    Delivered,
    Read,
}

/// A message.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    #[schema(value_type = i64)]
    pub id: MessageId,
    #[schema(value_type = i64)]
    pub chat_id: ChatId,
    #[schema(value_type = i64)]
    pub sender_id: UserId,
    #[schema(required = true)]
    pub content: Option<String>,
    #[schema(value_type = crate::ops::messages::MessageType)]
    pub message_type: String,
    #[schema(required = true)]
    pub file_url: Option<String>,
    #[schema(required = true)]
    pub file_name: Option<String>,
    #[schema(required = true)]
    pub file_size: Option<i64>,
    #[schema(required = true)]
    pub file_mime_type: Option<String>,
    #[schema(required = true)]
    pub thumbnail_url: Option<String>,
    #[schema(required = true)]
    pub width: Option<i64>,
    #[schema(required = true)]
    pub height: Option<i64>,
    #[schema(value_type = Option<i64>, required = true)]
    pub reply_to_id: Option<MessageId>,
    #[schema(required = true)]
    pub client_id: Option<String>,
    pub is_edited: bool,
    pub is_deleted: bool,
    pub is_read: bool,
    pub status: Status,
    /// What a `SYSTEM` message (group note) records; `null` for the others.
    #[schema(required = true)]
    pub system: Option<SystemNote>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Voice messages (a `FILE` whose upload is audio): the recording's
    /// length in milliseconds; `null` for every other message.
    #[schema(required = true)]
    pub duration_ms: Option<i64>,
    /// Voice messages: the amplitude bars the sender's client computed
    /// (1–256 bytes, 0–255 each, base64); `null` for every other message.
    #[schema(required = true)]
    pub waveform: Option<String>,
    /// Voice messages: who played it (`[]` until someone does, and for
    /// every other message).
    #[schema(value_type = Vec<i64>)]
    pub played_by: Vec<UserId>,
    /// The first link's preview, filled in after the send (then
    /// `message:updated`); `null` until then, or when there is none.
    #[schema(required = true)]
    pub link_preview: Option<LinkPreview>,
    /// Reactions, one group per emoji in order of first use (`[]` when
    /// none; a deleted message loses its reactions).
    pub reactions: Vec<Reaction>,
    /// Sent with `forwardedFromId`: a copy of another message.
    pub is_forwarded: bool,
}

/// The members who reacted to a message with one emoji.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    /// One emoji grapheme.
    pub emoji: String,
    /// How many members reacted with it (`userIds.len()`).
    pub count: usize,
    /// Who, first reaction first.
    #[schema(value_type = Vec<i64>)]
    pub user_ids: Vec<UserId>,
}

/// A link preview: what the page at `url` says about itself. Plain text;
/// `imageUrl` is a thumbnail stored on this server (an upload path), never
/// the third-party image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkPreview {
    /// The link as it appears (normalised) in the message.
    pub url: String,
    #[schema(required = true)]
    pub title: Option<String>,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(required = true)]
    pub site_name: Option<String>,
    /// `/uploads/chat/<name>`: readable by the chat's members, like its files.
    #[schema(required = true)]
    pub image_url: Option<String>,
}

/// What happened in a group, as a `SYSTEM` message records it (stored as
/// JSON in `messages.system`); `content` says the same in English.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemNote {
    pub action: SystemAction,
    /// Who did it (also the message's `senderId`).
    #[schema(value_type = i64)]
    pub actor_id: UserId,
    /// Whom it was done to (added, removed, promoted, ...; `[]` for a rename).
    #[schema(value_type = Vec<i64>)]
    pub user_ids: Vec<UserId>,
    /// The group's name for `created` and `renamed`, else `null`.
    #[schema(required = true)]
    pub name: Option<String>,
}

/// Kinds of group note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SystemAction {
    Created,
    Added,
    Removed,
    Left,
    Renamed,
    Avatar,
    Promoted,
    Demoted,
}

/// One member's receipt for one message.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    #[schema(value_type = i64)]
    pub user_id: UserId,
    #[schema(required = true, format = DateTime)]
    pub delivered_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub read_at: Option<String>,
    /// Voice messages: when this member played it (`null`: not yet, or not
    /// a voice message).
    #[schema(required = true, format = DateTime)]
    pub played_at: Option<String>,
}

/// `{items: [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}
