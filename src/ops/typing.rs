//! Typing indicators: memory only, never echoed to the typist, expiring after
//! [`TYPING_TTL`](crate::realtime::hub::TYPING_TTL) without a refresh.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::error::{AppError, AppResult};
use crate::model::{ChatId, UserId};
use crate::realtime::frames::{Published, TYPING_UPDATE};
use crate::state::{AppState, WeakState};

/// Records a typing state and tells the other connections in the chat's room.
pub async fn update(
    state: &AppState,
    user: UserId,
    conn: u64,
    chat: ChatId,
    typing: bool,
) -> AppResult<()> {
    // A connection in the chat's room is a member: a removal takes it out
    // of the room. Otherwise read membership, and retry if a removal raced
    // with the read (see `Hub::set_typing`).
    for _ in 0..MEMBERSHIP_RETRIES {
        let ticket = state.hub().ticket();
        if !state.hub().has_joined(user, conn, chat) {
            state
                .db()
                .membership(chat, user)
                .await?
                .ok_or_else(AppError::chat_not_found)?;
        }
        if let Some(announce_it) = state.hub().set_typing(chat, user, conn, typing, ticket) {
            if announce_it {
                announce(state, chat, user, typing);
            }
            return Ok(());
        }
    }
    Err(AppError::RateLimited {
        retry_after_secs: 1,
    })
}

/// Membership reads retried when chat removals keep racing with them.
pub const MEMBERSHIP_RETRIES: usize = 8;

fn announce(state: &AppState, chat: ChatId, user: UserId, typing: bool) {
    let event = Published::new(
        TYPING_UPDATE,
        &json!({"chatId": chat, "userId": user, "isTyping": typing}),
    );
    state
        .bus()
        .publish_to_room(state.hub(), &std::sync::Arc::new(event), chat, user);
}

/// Sends `isTyping: false` for typing states nobody refreshed; runs until the
/// app is dropped.
pub fn start_expiry(state: WeakState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else { break };
            for (chat, user) in state.hub().expire_typing(Instant::now()) {
                announce(&state, chat, user, false);
            }
        }
    });
}
