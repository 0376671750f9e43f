//! The named store operations: the only way the rest of natter reaches
//! the database.
//!
//! Each operation is an async method on [`Db`](super::Db) (`send_message`,
//! `mark_read`, `history_page`, `sync_since`, `create_chat`, ...) that runs
//! one function over a [`Conn`](super::Conn) either on the read pool or as
//! one op of the single writer (so everything it checks and writes commits
//! together, or not at all). The checks that need the database inside that
//! transaction live here too: membership, group admin rights, `clientId`
//! de-duplication, reply targets, own uploads. Validation that needs no
//! database, authorisation from request context, and publishing stay in
//! `ops/`, which calls these and never sees a connection or a driver type.
//!
//! The files follow the resources: [`messages`], [`receipts`], [`chats`]
//! (with group [`notes`]), [`users`], [`uploads`] and [`sync`].

pub mod chats;
pub mod messages;
mod notes;
pub mod previews;
pub mod push;
pub mod reactions;
pub mod receipts;
pub mod search;
pub(crate) mod send_batch;
pub mod sync;
pub mod uploads;
pub mod users;
pub mod voice;

use crate::db::{chats as q, events, Db};
use crate::error::AppResult;
use crate::model::{ChatId, EventId, UserId};

impl Db {
    /// `user`'s membership of `chat`, `None` when not a current member.
    pub async fn membership(&self, chat: ChatId, user: UserId) -> AppResult<Option<q::Membership>> {
        self.read(move |c| q::membership(c, chat, user)).await
    }

    /// The newest event id: where a fresh connection's `/sync` cursor starts.
    pub async fn event_cursor(&self) -> AppResult<EventId> {
        self.read(events::cursor).await
    }
}
