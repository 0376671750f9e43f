//! Each user-visible operation, once: validate, authorise, call a named
//! store operation, publish.
//!
//! REST handlers and WebSocket frames both call these, so the two transports
//! cannot drift. `ops/` checks what needs no database (input rules, rate
//! limits, who the caller is), then calls one named operation of the store
//! (`state.db().send_message(..)`, `.mark_read(..)`, `.history_page(..)`,
//! `.sync_since(..)`, `.create_chat(..)`, ...; see `db::store`), which runs
//! the checks that need the rows (membership, admin rights, `clientId`
//! de-duplication) in the same transaction as its writes. It never sees a
//! connection, SQL or a driver type. Writes commit before anything is
//! published; publishing goes through the hub only.

pub mod chats;
pub mod messages;
pub mod push;
pub mod reactions;
pub mod receipts;
pub mod sync;
pub mod typing;
pub mod users;
pub mod voice;

use std::sync::Arc;

use serde::Serialize;

use crate::error::{AppError, AppResult};
use crate::model::{Chat, User, UserId};
use crate::realtime::frames::Published;
use crate::state::AppState;

/// Longest user or chat name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Largest group.
pub const MAX_GROUP_MEMBERS: usize = 1024;
/// Longest URL field (avatars).
pub const MAX_URL_CHARS: usize = 2048;
/// Most ids accepted in one request.
pub const MAX_IDS: usize = 1024;

/// Sets `online` from the hub.
pub fn fill_user(state: &AppState, user: &mut User) {
    user.online = state.hub().is_online(user.id);
}

/// Sets `online` for every participant.
pub fn fill_chat(state: &AppState, chat: &mut Chat) {
    for p in &mut chat.participants {
        fill_user(state, &mut p.user);
    }
    for p in &mut chat.former_participants {
        fill_user(state, &mut p.user);
    }
}

/// Serialises once and sends to every connection of `users`.
pub fn publish<T: Serialize>(state: &AppState, event: &'static str, data: &T, users: &[UserId]) {
    if users.is_empty() {
        return;
    }
    state
        .bus()
        .publish(state.hub(), &Arc::new(Published::new(event, data)), users);
}

/// A trimmed, non-empty name of at most [`MAX_NAME_CHARS`] characters.
pub fn valid_name(field: &str, value: &str) -> AppResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AppError::invalid(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::invalid(
            field,
            format!("{field} must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    if trimmed.chars().any(is_invisible_or_bidi) {
        return Err(AppError::invalid(
            field,
            format!("{field} must not contain invisible or text-direction override characters"),
        ));
    }
    Ok(trimmed.to_string())
}

/// Characters that hide or reorder text without showing: bidi embeddings,
/// overrides and isolates (`U+202E` turns `exe.txt` into `txt.exe`), marks,
/// zero-width space and word joiner, BOM, soft hyphen. The zero-width
/// (non-)joiners stay allowed: emoji sequences and several scripts need them.
pub fn is_invisible_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
    )
}

/// An optional URL field (avatar): at most [`MAX_URL_CHARS`], empty = none.
pub fn valid_url(field: &str, value: Option<&str>) -> AppResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.chars().count() > MAX_URL_CHARS => Err(AppError::invalid(
            field,
            format!("{field} must be at most {MAX_URL_CHARS} characters"),
        )),
        Some(v) if v.chars().any(char::is_whitespace) => {
            Err(AppError::invalid(field, format!("{field} must be a URL")))
        }
        Some(v) => Ok(Some(v.to_string())),
    }
}
