//! Voice messages: the "played" receipt.

use crate::db::store::receipts::{advance, StatusEvents};
use crate::db::{chats, now_ms, receipts, voice as q, Db};
use crate::error::{AppError, AppResult};
use crate::model::{ChatId, MessageId, Status, UserId};

/// What marking a voice message played did.
pub struct PlayedOutcome {
    /// The message's sender (who is told).
    pub sender: UserId,
    /// When the caller played it (`None` for the sender's own message).
    pub played_at: Option<i64>,
    /// Who has played it.
    pub played_by: Vec<UserId>,
    /// Whether this call recorded something new.
    pub changed: bool,
    /// The message's overall ticks afterwards.
    pub message_status: Status,
    /// `message:status` events of the read position the play moved.
    pub read_events: StatusEvents,
}

impl Db {
    /// Marks voice message `message` of `chat` played by the caller: 404
    /// unless both are the caller's to see, 400 naming `messageId` when it
    /// is not a (not deleted) voice message. Playing reads it too (the
    /// read position moves up to it, never back). The sender playing their
    /// own recording records nothing. Playing again is a no-op.
    pub async fn mark_played(
        &self,
        caller: UserId,
        chat: ChatId,
        message: MessageId,
    ) -> AppResult<PlayedOutcome> {
        self.write(move |c| {
            chats::membership(c, chat, caller)?.ok_or_else(AppError::message_not_found)?;
            let (sender, deleted, voice) =
                q::voice_target(c, chat, message)?.ok_or_else(AppError::message_not_found)?;
            if deleted || !voice {
                return Err(AppError::invalid(
                    "messageId",
                    "messageId must be a voice message of this chat",
                ));
            }
            let positions = receipts::positions(c, chat)?;
            if sender == caller {
                return Ok(PlayedOutcome {
                    sender,
                    played_at: None,
                    played_by: q::played_by(c, message)?,
                    changed: false,
                    message_status: positions.status(sender, message),
                    read_events: Vec::new(),
                });
            }
            let now = now_ms();
            let changed = q::mark_played(c, chat, message, caller, now)?;
            let (read_events, positions) = if changed {
                advance(
                    c,
                    chat,
                    caller,
                    receipts::Kind::Read,
                    message,
                    now,
                    positions,
                )?
            } else {
                (Vec::new(), positions)
            };
            Ok(PlayedOutcome {
                sender,
                played_at: q::plays(c, message)?.get(&caller).copied(),
                played_by: q::played_by(c, message)?,
                changed,
                message_status: positions.status(sender, message),
                read_events,
            })
        })
        .await
    }
}
