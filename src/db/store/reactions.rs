//! Reactions: set or remove the caller's one reaction on a message.

use crate::db::store::messages::still_seeing;
use crate::db::{events, messages as q, now_ms, reactions, receipts, Db};
use crate::error::{AppError, AppResult};
use crate::model::{ChatId, Message, MessageId, UserId};
use crate::realtime::frames::MESSAGE_REACTION;

/// What a reaction change did.
pub struct ReactOutcome {
    /// The message with its reactions now.
    pub message: Message,
    /// The members to tell (empty when nothing changed).
    pub members: Vec<UserId>,
    /// The `message:reaction` payload, when something changed.
    pub event: Option<serde_json::Value>,
}

impl Db {
    /// Sets (`Some`, replacing theirs) or removes (`None`) the caller's
    /// reaction on `message` of `chat`: 404 unless the caller is a member
    /// who sees the message ([`reactions::visible_to`]), 409 when it is
    /// deleted. Setting the same emoji again or removing a reaction that is
    /// not there changes nothing and logs no event.
    pub async fn react(
        &self,
        caller: UserId,
        chat: ChatId,
        message: MessageId,
        emoji: Option<String>,
    ) -> AppResult<ReactOutcome> {
        self.write(move |c| {
            let viewer = q::viewer(c, chat, caller)?.ok_or_else(AppError::message_not_found)?;
            let deleted = reactions::visible_to(c, chat, message, &viewer)?
                .ok_or_else(AppError::message_not_found)?;
            if deleted {
                return Err(AppError::Conflict(
                    "a deleted message cannot be reacted to".into(),
                ));
            }
            let now = now_ms();
            let changed = match emoji.as_deref() {
                Some(e) => reactions::set(c, chat, message, caller, e, now)?,
                None => reactions::remove(c, message, caller)?,
            };
            let positions = receipts::positions(c, chat)?;
            let loaded =
                q::load(c, message, &positions)?.ok_or_else(AppError::message_not_found)?;
            if !changed {
                return Ok(ReactOutcome {
                    message: loaded,
                    members: Vec::new(),
                    event: None,
                });
            }
            let event = serde_json::json!({
                "chatId": chat,
                "messageId": message,
                "userId": caller,
                "emoji": emoji,
                "reactions": loaded.reactions,
            });
            events::append_with_data(
                c,
                chat,
                MESSAGE_REACTION,
                Some(message),
                &event.to_string(),
                now,
            )?;
            let members = still_seeing(c, chat, message, &positions)?;
            Ok(ReactOutcome {
                message: loaded,
                members,
                event: Some(event),
            })
        })
        .await
    }
}
