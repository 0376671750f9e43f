//! Voice messages: the recording's metadata checked at send, and the
//! "played" receipt (WhatsApp's blue microphone).
//!
//! A voice message is a `FILE` message (so clients that know nothing of
//! voice still show a file) whose upload is audio by its bytes, carrying
//! `durationMs` and `waveform`, both computed by the sender's client and
//! checked here for shape and range. The store checks the upload itself
//! (own upload, `audio/*` as sniffed by `crate::audio`).
//!
//! `played` is per message, not positional: `POST /chat/:id/played
//! {messageId}` (or the `message:played` frame) records it once per
//! member, also reads the chat up to that message, and sends
//! `message:status {…, status: "PLAYED", playedBy}` to the sender's
//! connections and the player's own (so their other devices show it
//! played). Receipts are not replayed by `/sync`; history carries
//! `playedBy`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use tracing::instrument;
use utoipa::ToSchema;

use crate::error::{AppError, AppResult};
use crate::model::{rfc3339, ChatId, MessageId, Status, UserId};
use crate::ops::messages::{MessageType, SendMessage};
use crate::ops::publish;
use crate::realtime::frames::MESSAGE_STATUS;
use crate::state::AppState;

/// Longest voice message, in milliseconds (one hour).
pub const MAX_DURATION_MS: i64 = 3_600_000;
/// Most waveform bars (bytes before base64).
pub const MAX_WAVEFORM_BYTES: usize = 256;

/// A send's voice fields, validated: `None` for an ordinary message.
/// The waveform is re-encoded (standard base64 with padding), so what is
/// stored is canonical whatever the client sent.
pub fn validate(input: &SendMessage) -> AppResult<Option<(i64, String)>> {
    let (duration, waveform) = match (input.duration_ms, input.waveform.as_deref()) {
        (None, None) => return Ok(None),
        (Some(d), Some(w)) => (d, w),
        (None, Some(_)) => {
            return Err(AppError::invalid(
                "durationMs",
                "durationMs is required with a waveform",
            ))
        }
        (Some(_), None) => {
            return Err(AppError::invalid(
                "waveform",
                "waveform is required with durationMs",
            ))
        }
    };
    if input.kind() != MessageType::File {
        return Err(AppError::invalid(
            "messageType",
            "voice messages (durationMs, waveform) are FILE messages",
        ));
    }
    if !(1..=MAX_DURATION_MS).contains(&duration) {
        return Err(AppError::invalid(
            "durationMs",
            format!("durationMs must be 1 to {MAX_DURATION_MS} (an hour)"),
        ));
    }
    let bytes = STANDARD
        .decode(waveform.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(waveform.trim()))
        .map_err(|_| AppError::invalid("waveform", "waveform must be base64"))?;
    if bytes.is_empty() || bytes.len() > MAX_WAVEFORM_BYTES {
        return Err(AppError::invalid(
            "waveform",
            format!("waveform must hold 1 to {MAX_WAVEFORM_BYTES} bytes"),
        ));
    }
    Ok(Some((duration, STANDARD.encode(bytes))))
}

/// `POST /chat/:id/played` (and `message:played`, plus `chatId`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MarkPlayed {
    /// A voice message of this chat.
    #[schema(value_type = i64)]
    pub message_id: MessageId,
}

/// What `POST /chat/:id/played` answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Played {
    #[schema(value_type = i64)]
    pub chat_id: ChatId,
    #[schema(value_type = i64)]
    pub message_id: MessageId,
    /// When the caller (first) played it; `null` for the sender's own message.
    #[schema(required = true, format = DateTime)]
    pub played_at: Option<String>,
    /// Everyone who has played it.
    #[schema(value_type = Vec<i64>)]
    pub played_by: Vec<UserId>,
}

/// `message:status` for a play.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PlayedStatus {
    chat_id: ChatId,
    message_id: MessageId,
    user_id: UserId,
    /// Always `PLAYED`.
    status: &'static str,
    message_status: Status,
    played_by: Vec<UserId>,
}

/// Marks a voice message played by the caller.
#[instrument(skip_all, fields(user.id = caller.0, chat.id = chat.0))]
pub async fn mark_played(
    state: &AppState,
    caller: UserId,
    chat: ChatId,
    input: MarkPlayed,
) -> AppResult<Played> {
    let message = input.message_id;
    let outcome = state.db().mark_played(caller, chat, message).await?;
    crate::ops::receipts::send_status(state, outcome.read_events);
    if outcome.changed {
        let event = PlayedStatus {
            chat_id: chat,
            message_id: message,
            user_id: caller,
            status: "PLAYED",
            message_status: outcome.message_status,
            played_by: outcome.played_by.clone(),
        };
        publish(state, MESSAGE_STATUS, &event, &[outcome.sender, caller]);
    }
    Ok(Played {
        chat_id: chat,
        message_id: message,
        played_at: outcome.played_at.map(rfc3339),
        played_by: outcome.played_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(kind: MessageType, duration: Option<i64>, waveform: Option<&str>) -> SendMessage {
        serde_json::from_value(serde_json::json!({
            "messageType": kind.as_str(), "fileUrl": "/uploads/chat/x.weba",
            "durationMs": duration, "waveform": waveform,
        }))
        .unwrap()
    }

    #[test]
    fn voice_fields_are_checked_and_the_waveform_made_canonical() {
        let bars = STANDARD.encode([7u8; 64]);
        let ok = validate(&send(MessageType::File, Some(1500), Some(&bars))).unwrap();
        assert_eq!(ok, Some((1500, bars.clone())));
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode([1u8, 2]);
        assert_eq!(
            validate(&send(MessageType::File, Some(9), Some(&unpadded))).unwrap(),
            Some((9, "AQI=".to_string()))
        );
        assert_eq!(
            validate(&send(MessageType::File, None, None)).unwrap(),
            None
        );
        let field = |r: AppResult<Option<(i64, String)>>| match r {
            Err(AppError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(validate(&send(MessageType::File, Some(0), Some(&bars)))),
            "durationMs"
        );
        assert_eq!(
            field(validate(&send(
                MessageType::File,
                Some(MAX_DURATION_MS + 1),
                Some(&bars)
            ))),
            "durationMs"
        );
        assert_eq!(
            field(validate(&send(MessageType::File, Some(5), None))),
            "waveform"
        );
        assert_eq!(
            field(validate(&send(MessageType::File, None, Some(&bars)))),
            "durationMs"
        );
        assert_eq!(
            field(validate(&send(
                MessageType::File,
                Some(5),
                Some("not base64!")
            ))),
            "waveform"
        );
        assert_eq!(
            field(validate(&send(MessageType::File, Some(5), Some("")))),
            "waveform"
        );
        let long = STANDARD.encode([1u8; MAX_WAVEFORM_BYTES + 1]);
        assert_eq!(
            field(validate(&send(MessageType::File, Some(5), Some(&long)))),
            "waveform"
        );
        assert_eq!(
            field(validate(&send(MessageType::Image, Some(5), Some(&bars)))),
            "messageType"
        );
    }
}
