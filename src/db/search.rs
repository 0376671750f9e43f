//! SQL for message search: the user's words turned into an index query
//! (never FTS or tsquery syntax from the user), the visibility rules a hit
//! must meet, and the match ranges computed here, in code points.
//!
//! SQLite searches the FTS5 table `message_search` (schema.sql), PostgreSQL
//! a GIN index over `to_tsvector('simple', ...)` of the same text. Both
//! walk hits newest first and stop after `limit + 1` visible ones.

use std::sync::LazyLock;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use crate::db::messages::{from_row, MESSAGE_COLUMNS};
use crate::db::sql::{Conn, ToSql, Value};
use crate::error::AppResult;
use crate::model::{ChatId, Message, MessageId, UserId};

/// Most words a query keeps (the rest are ignored).
pub const MAX_TERMS: usize = 16;

/// A search as the user typed it, split into index words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// Lowercased words, in order; the last one may be a prefix.
    pub words: Vec<String>,
    /// Whether the last word matches as a prefix (the user may still be
    /// typing it: the query does not end in a space).
    pub prefix: bool,
}

/// The words of `text` with their `[start, end)` code point offsets: runs
/// of letters and digits, as FTS5's `unicode61` tokenizer splits them.
pub fn words(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None; // (code point, byte)
    let mut cp = 0;
    for (byte, ch) in text.char_indices() {
        let word_char = ch.is_alphanumeric() || is_combining_mark(ch);
        match (word_char, start) {
            (true, None) => start = Some((cp, byte)),
            (false, Some((s, b))) => {
                out.push((s, cp, &text[b..byte]));
                start = None;
            }
            _ => {}
        }
        cp += 1;
    }
    if let Some((s, b)) = start {
        out.push((s, cp, &text[b..]));
    }
    out
}

/// A word folded the way the SQLite index folds it: lowercase, without
/// diacritics (`é` → `e`).
pub fn fold(word: &str) -> String {
    word.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

impl Terms {
    /// The words of a query; `None` when it has none (only punctuation).
    pub fn parse(q: &str) -> Option<Terms> {
        let mut words: Vec<String> = words(q)
            .into_iter()
            .map(|(_, _, w)| w.to_lowercase())
            .collect();
        if words.is_empty() {
            return None;
        }
        words.truncate(MAX_TERMS);
        let prefix = q
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || is_combining_mark(c));
        Some(Terms { words, prefix })
    }

    /// The FTS5 query: every word a quoted string (so `OR`, `NEAR`, `*`,
    /// `-`, `^` and quotes are plain text), the last one a prefix.
    pub fn fts5(&self) -> String {
        let last = self.words.len() - 1;
        self.words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let quoted = format!("\"{}\"", w.replace('"', "\"\""));
                if i == last && self.prefix {
                    quoted + "*"
                } else {
                    quoted
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The PostgreSQL `to_tsquery('simple', ...)` text: each word quoted
    /// as a lexeme, `&` between them, `:*` on a prefix.
    pub fn tsquery(&self) -> String {
        let last = self.words.len() - 1;
        self.words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let quoted = format!("'{}'", w.replace('\\', "\\\\").replace('\'', "''"));
                if i == last && self.prefix {
                    quoted + ":*"
                } else {
                    quoted
                }
            })
            .collect::<Vec<_>>()
            .join(" & ")
    }

    /// `[start, end)` code point ranges of the words of `text` that match:
    /// equal to a query word, or starting with the last one when it is a
    /// prefix (compared folded, as the index compares).
    pub fn ranges(&self, text: &str) -> Vec<[usize; 2]> {
        let folded: Vec<String> = self.words.iter().map(|w| fold(w)).collect();
        let last = folded.len() - 1;
        words(text)
            .into_iter()
            .filter(|(_, _, w)| {
                let w = fold(w);
                folded.iter().enumerate().any(|(i, q)| {
                    *q == w || (i == last && self.prefix && w.starts_with(q.as_str()))
                })
            })
            .map(|(s, e, _)| [s, e])
            .collect()
    }
}

/// Which hits a search returns.
pub struct Scope {
    pub caller: UserId,
    /// Only this chat (the caller is a member: checked before).
    pub chat: Option<ChatId>,
    /// Only hits older than this message id (`None`: from the newest).
    pub before: Option<MessageId>,
    pub limit: u32,
}

/// The visibility rules for a hit `m` of the caller `?2`, through their
/// current membership `p`: after they joined, after their "clear chat"
/// position, not deleted, not deleted for them.
const VISIBLE: &str = "p.left_at IS NULL AND m.created_at >= p.joined_at
    AND m.id > p.cleared_up_to AND m.is_deleted = 0 AND m.message_type != 'SYSTEM'
    AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = ?2 AND h.message_id = m.id)";

/// The caller's visible messages matching `terms`, newest first, at most
/// `limit + 1` (the extra one tells `hasMore`); status not yet set.
pub fn search(conn: &Conn, terms: &Terms, scope: &Scope) -> AppResult<Vec<Message>> {
    // ?1 query, ?2 caller, ?3 chat or NULL, ?4 before, ?5 limit. `before`
    // is always bound (a range FTS5 walks from, not an OR it cannot use).
    static SQLITE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {MESSAGE_COLUMNS}
             FROM message_search s
             JOIN messages m ON m.id = s.rowid
             JOIN chat_participants p ON p.chat_id = m.chat_id AND p.user_id = ?2
             LEFT JOIN uploads up ON up.id = m.upload_id
             WHERE message_search MATCH ?1
               AND s.rowid < ?4
               AND (?3 IS NULL OR m.chat_id = ?3)
               AND {VISIBLE}
             ORDER BY s.rowid DESC
             LIMIT ?5"
        )
    });
    static POSTGRES: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {MESSAGE_COLUMNS}
             FROM messages m
             JOIN chat_participants p ON p.chat_id = m.chat_id AND p.user_id = ?2
             LEFT JOIN uploads up ON up.id = m.upload_id
             WHERE to_tsvector('simple', regexp_replace(coalesce(m.content, '') || ' ' ||
                       coalesce(m.file_name, ''), '[[:space:][:punct:]]+', ' ', 'g'))
                   @@ to_tsquery('simple', ?1)
               AND m.id < ?4
               AND (CAST(?3 AS BIGINT) IS NULL OR m.chat_id = ?3)
               AND {VISIBLE}
             ORDER BY m.id DESC
             LIMIT ?5"
        )
    });
    let (sql, query) = if conn.is_postgres() {
        (POSTGRES.as_str(), terms.tsquery())
    } else {
        (SQLITE.as_str(), terms.fts5())
    };
    let before = scope.before.map_or(i64::MAX, |b| b.0);
    let fetch = i64::from(scope.limit) + 1;
    let params: [Value<'_>; 5] = [
        query.as_str().to_value(),
        scope.caller.to_value(),
        scope.chat.to_value(),
        before.to_value(),
        fetch.to_value(),
    ];
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_have_code_point_offsets() {
        let w = words("Zoë's café, 明天 ok");
        let spans: Vec<_> = w.iter().map(|(s, e, t)| (*s, *e, *t)).collect();
        assert_eq!(
            spans,
            vec![
                (0, 3, "Zoë"),
                (4, 5, "s"),
                (6, 10, "café"),
                (12, 14, "明天"),
                (15, 17, "ok")
            ]
        );
        assert_eq!(words("👍 🎉 -- \"").len(), 0);
    }

    #[test]
    fn user_syntax_is_quoted_text() {
        let t = Terms::parse("\"release* -date NEAR OR ^x").unwrap();
        assert_eq!(t.words, ["release", "date", "near", "or", "x"]);
        assert!(t.prefix);
        assert_eq!(t.fts5(), "\"release\" \"date\" \"near\" \"or\" \"x\"*");
        assert_eq!(t.tsquery(), "'release' & 'date' & 'near' & 'or' & 'x':*");
        let done = Terms::parse("release date ").unwrap();
        assert!(!done.prefix);
        assert_eq!(done.fts5(), "\"release\" \"date\"");
        assert_eq!(Terms::parse("\"*-- ^ ()"), None);
    }

    #[test]
    fn ranges_fold_case_and_accents_and_match_the_prefix() {
        let t = Terms::parse("zoe rel").unwrap();
        assert_eq!(
            t.ranges("ZOË: the Release is on Friday, relax"),
            vec![[0, 3], [9, 16], [31, 36]]
        );
        let exact = Terms::parse("rel ").unwrap();
        assert_eq!(exact.ranges("release rel"), vec![[8, 11]]);
        // offsets count code points, not bytes or UTF-16 units
        let emoji = Terms::parse("party").unwrap();
        assert_eq!(emoji.ranges("🎉🎉 party"), vec![[3, 8]]);
    }
}
