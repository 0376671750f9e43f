//! Message search: the caller's visible messages matching their words.

use std::collections::HashMap;

use crate::db::search::{self as q, Scope, Terms};
use crate::db::{messages, receipts, Db};
use crate::error::{AppError, AppResult};
use crate::model::{ChatId, Message};

/// One hit: the message (with its status) and where the words matched.
pub struct Hit {
    pub message: Message,
    /// `[start, end)` code point ranges in `content`.
    pub ranges: Vec<[usize; 2]>,
    /// The same in `fileName`.
    pub file_name_ranges: Vec<[usize; 2]>,
}

impl Db {
    /// Hits for `terms` in the chats the caller is in now, newest first,
    /// and whether more exist. With `scope.chat`, 404 unless the caller is
    /// a member of it.
    pub async fn search(&self, terms: Terms, scope: Scope) -> AppResult<(Vec<Hit>, bool)> {
        self.read(move |c| {
            if let Some(chat) = scope.chat {
                crate::db::chats::membership(c, chat, scope.caller)?
                    .ok_or_else(AppError::chat_not_found)?;
            }
            let mut found = q::search(c, &terms, &scope)?;
            let has_more = found.len() > scope.limit as usize;
            found.truncate(scope.limit as usize);
            let mut chats: Vec<ChatId> = found.iter().map(|m| m.chat_id).collect();
            chats.sort_unstable();
            chats.dedup();
            let positions: HashMap<ChatId, receipts::Positions> = chats
                .iter()
                .copied()
                .zip(receipts::positions_many(c, &chats)?)
                .collect();
            let hits = found
                .into_iter()
                .map(|m| {
                    let m = match positions.get(&m.chat_id) {
                        Some(p) => messages::with_status(m, p),
                        None => m,
                    };
                    Hit {
                        ranges: terms.ranges(m.content.as_deref().unwrap_or_default()),
                        file_name_ranges: terms.ranges(m.file_name.as_deref().unwrap_or_default()),
                        message: m,
                    }
                })
                .collect();
            Ok((hits, has_more))
        })
        .await
    }
}
