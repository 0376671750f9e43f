//! Reactions (issue 19): each member has at most one reaction per message,
//! an emoji; a new one replaces the old (as in WhatsApp).
//!
//! `PUT /chat/:chatId/messages/:messageId/reaction {emoji}` (or the
//! `message:react` frame with `emoji`) sets it, `DELETE` (or `emoji: null`)
//! removes it; both answer the message. A change is logged as a
//! `message:reaction {chatId, messageId, userId, emoji|null, reactions}`
//! event (stored with its payload, so `/sync` replays it) and pushed to the
//! members who still see the message. A deleted message is 409.

use serde::Deserialize;
use tracing::instrument;
use unicode_segmentation::UnicodeSegmentation;
use utoipa::ToSchema;

use crate::error::{AppError, AppResult};
use crate::model::{ChatId, Message, MessageId, UserId};
use crate::ops::publish;
use crate::realtime::frames::MESSAGE_REACTION;
use crate::state::AppState;

/// Longest emoji accepted, in UTF-8 bytes.
pub const MAX_EMOJI_BYTES: usize = 32;

/// `PUT …/reaction` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetReaction {
    /// Exactly one emoji (ZWJ sequences, skin tones, flags and keycaps
    /// included), at most 32 bytes.
    pub emoji: String,
}

/// `emoji` if it is exactly one emoji grapheme of at most
/// [`MAX_EMOJI_BYTES`], else 400 naming `emoji`.
pub fn valid_emoji(emoji: &str) -> AppResult<String> {
    let bad = || {
        AppError::invalid(
            "emoji",
            format!("emoji must be exactly one emoji (at most {MAX_EMOJI_BYTES} bytes)"),
        )
    };
    if emoji.is_empty() || emoji.len() > MAX_EMOJI_BYTES || emoji.graphemes(true).count() != 1 {
        return Err(bad());
    }
    if is_emoji(emoji) {
        Ok(emoji.to_string())
    } else {
        Err(bad())
    }
}

/// Whether one grapheme is an emoji: by the Unicode emoji list (`emojis`),
/// also when it carries or lacks the emoji variation selector U+FE0F, or
/// carries skin tones on a base that takes them.
fn is_emoji(g: &str) -> bool {
    if emojis::get(g).is_some() {
        return true;
    }
    let bare: String = g.chars().filter(|&c| c != '\u{FE0F}').collect();
    // Digits, `#` and `*` are emoji only as keycaps (with U+20E3).
    if bare.is_ascii() {
        return false;
    }
    if emojis::get(&bare).is_some() {
        return true;
    }
    // "❤" written without U+FE0F after its first character.
    let mut chars = bare.chars();
    let first = chars.next().unwrap_or_default();
    let qualified: String = std::iter::once(first)
        .chain(std::iter::once('\u{FE0F}'))
        .chain(chars)
        .collect();
    if emojis::get(&qualified).is_some() {
        return true;
    }
    // Skin tones (U+1F3FB..U+1F3FF) on a base that supports them.
    let is_tone = |c: char| ('\u{1F3FB}'..='\u{1F3FF}').contains(&c);
    if g.chars().any(is_tone) {
        let untoned: String = g.chars().filter(|&c| !is_tone(c)).collect();
        return emojis::get(&untoned)
            .or_else(|| {
                emojis::get(
                    &untoned
                        .chars()
                        .filter(|&c| c != '\u{FE0F}')
                        .collect::<String>(),
                )
            })
            .is_some_and(|e| e.skin_tone().is_some());
    }
    false
}

/// Sets (`Some`) or removes (`None`) the caller's reaction; answers the
/// message and tells the members.
#[instrument(skip_all, fields(user.id = caller.0, chat.id = chat.0))]
pub async fn react(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    message: MessageId,
    emoji: Option<&str>,
) -> AppResult<Message> {
    let emoji = emoji.map(valid_emoji).transpose()?;
    let outcome = state.db().react(caller, chat, message, emoji).await?;
    if let Some(event) = &outcome.event {
        publish(state, MESSAGE_REACTION, event, &outcome.members);
    }
    Ok(outcome.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_emoji_grapheme_is_accepted() {
        for ok in [
            "👍",
            "👍🏽",
            "❤️",
            "❤",
            "👨‍👩‍👧‍👦",
            "🏳️‍🌈",
            "🇫🇷",
            "1️⃣",
            "#️⃣",
            "🧑🏿‍💻",
            "😂",
            "👩🏻‍❤️‍👨🏿",
        ] {
            assert!(valid_emoji(ok).is_ok(), "{ok:?} {:x?}", ok.as_bytes());
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "", " ", "a", "ab", "1", "#", "👍👍", "👍 ", "<b>", "\u{200D}", "\u{FE0F}", "🇫", "日",
            "👍a",
        ] {
            assert!(valid_emoji(bad).is_err(), "{bad:?}");
        }
        let long = "👍".repeat(9);
        assert!(valid_emoji(&long).is_err());
    }
}
