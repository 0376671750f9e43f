//! Frame types of the real-time protocol and the event names, spelled as in
//! SPEC.md. A server event is serialised once ([`Published`]) and the same
//! bytes go to every connection it reaches.

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::model::{ChatId, MessageId, UserId};

pub const READY: &str = "ready";
pub const ACK: &str = "ack";
pub const ERROR: &str = "error";
pub const MESSAGE_NEW: &str = "message:new";
pub const MESSAGE_UPDATED: &str = "message:updated";
pub const MESSAGE_DELETED: &str = "message:deleted";
pub const MESSAGE_STATUS: &str = "message:status";
pub const TYPING_UPDATE: &str = "typing:update";
pub const USER_ONLINE: &str = "user:online";
pub const CHAT_NEW: &str = "chat:new";
pub const CHAT_UPDATED: &str = "chat:updated";
pub const CHAT_REMOVED: &str = "chat:removed";
/// To the caller's own connections: a message they deleted for themselves.
pub const MESSAGE_HIDDEN: &str = "message:hidden";
/// To the caller's own connections: they cleared a chat's history.
pub const CHAT_CLEARED: &str = "chat:cleared";
/// To a chat's members: someone set or removed their reaction
/// `{chatId, messageId, userId, emoji|null, reactions}`.
pub const MESSAGE_REACTION: &str = "message:reaction";

/// Every event the server sends (the bus maps names back to these).
pub const SERVER_EVENTS: &[&str] = &[
    MESSAGE_NEW,
    MESSAGE_UPDATED,
    MESSAGE_DELETED,
    MESSAGE_STATUS,
    TYPING_UPDATE,
    USER_ONLINE,
    CHAT_NEW,
    CHAT_UPDATED,
    CHAT_REMOVED,
    MESSAGE_HIDDEN,
    CHAT_CLEARED,
    MESSAGE_REACTION,
];

pub const CHAT_JOIN: &str = "chat:join";
pub const CHAT_LEAVE: &str = "chat:leave";
pub const MESSAGE_SEND: &str = "message:send";
pub const MESSAGE_TYPING: &str = "message:typing";
pub const MESSAGE_READ: &str = "message:read";
/// A voice message was played: `{chatId, messageId}`.
pub const MESSAGE_PLAYED: &str = "message:played";
/// Set or remove a reaction: `{chatId, messageId, emoji|null}`.
pub const MESSAGE_REACT: &str = "message:react";

/// A frame from a client.
#[derive(Debug, Deserialize)]
pub struct ClientFrame {
    pub event: String,
    #[serde(default)]
    pub data: Option<Box<RawValue>>,
    #[serde(default)]
    pub ack: Option<u64>,
}

#[derive(Serialize)]
struct ServerFrame<'a, T: Serialize> {
    event: &'a str,
    data: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    ack: Option<u64>,
}

/// Serialises `{event, data[, ack]}`.
pub fn frame<T: Serialize>(event: &str, data: &T, ack: Option<u64>) -> String {
    serde_json::to_string(&ServerFrame { event, data, ack }).unwrap_or_else(|_| {
        format!(
            r#"{{"event":"{ERROR}","data":{{"code":"internal_error","message":"internal error"}}}}"#
        )
    })
}

/// An event serialised once for every connection it goes to.
#[derive(Debug)]
pub struct Published {
    /// Event name (socket.io emits it separately from the data).
    pub event: &'static str,
    /// The `data` object as JSON.
    pub data: Box<RawValue>,
    /// The whole `/ws` text frame.
    pub frame: Utf8Bytes,
    /// For `message:new`: delivering it to a recipient's device is a
    /// delivery receipt.
    pub delivery: Option<Delivery>,
}

/// What a delivered `message:new` acknowledges.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub chat_id: ChatId,
    pub message_id: MessageId,
    pub sender_id: UserId,
}

/// Serialises a payload once, straight to JSON text (no `Value` tree); `{}`
/// if it cannot be (our payloads always can).
pub fn raw_json<T: Serialize>(data: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(data)
        .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("valid json"))
}

impl Published {
    /// Serialises an event once.
    pub fn new<T: Serialize>(event: &'static str, data: &T) -> Published {
        Published::from_raw(event, raw_json(data))
    }

    /// An event whose data is JSON already (from the bus).
    pub fn from_raw(event: &'static str, data: Box<RawValue>) -> Published {
        let frame = frame(event, &data, None);
        Published {
            event,
            data,
            frame: Utf8Bytes::from(frame),
            delivery: None,
        }
    }
}
