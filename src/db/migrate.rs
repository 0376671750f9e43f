//! Schema creation and migrations.
//!
//! A fresh database (user_version 0, no tables) runs `schema.sql`. An older
//! one runs the numbered steps after its version, each in its own
//! transaction, logged. A database newer than this binary is refused rather
//! than guessed at.

use anyhow::Context;
use rusqlite::Connection;

/// The whole current schema.
pub const SCHEMA: &str = include_str!("../../schema.sql");

/// The version `schema.sql` sets.
pub const CURRENT_VERSION: i64 = 2;

/// Steps from version N-1 to N, indexed by N-2 (the step to version 2 first).
const STEPS: &[&str] = &[
    // 2 (issue 13): clear chat, group notes, delete for me, public avatars.
    "ALTER TABLE chat_participants ADD COLUMN cleared_up_to INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE messages ADD COLUMN system TEXT;
     ALTER TABLE uploads ADD COLUMN is_avatar INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE hidden_messages (
         user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
         message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
         chat_id    INTEGER NOT NULL,
         PRIMARY KEY (user_id, message_id)
     ) WITHOUT ROWID;
     CREATE INDEX hidden_by_message ON hidden_messages(message_id);
     UPDATE uploads SET is_avatar = 1
      WHERE '/uploads/chat/' || name IN (SELECT avatar_url FROM users WHERE avatar_url IS NOT NULL)
         OR '/uploads/chat/' || name IN (SELECT group_avatar FROM chats WHERE group_avatar IS NOT NULL);",
];

/// Brings the database to [`CURRENT_VERSION`].
pub fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > CURRENT_VERSION {
        anyhow::bail!(
            "database schema version {version} is newer than this natter ({CURRENT_VERSION}); \
             upgrade natter or restore a backup"
        );
    }
    if version == 0 {
        let tx = conn.transaction()?;
        tx.execute_batch(SCHEMA)
            .context("cannot create the schema")?;
        tx.commit()?;
        tracing::info!(version = CURRENT_VERSION, "created database schema");
        return Ok(());
    }
    for (index, step) in STEPS.iter().enumerate() {
        let target = index as i64 + 2;
        if target <= version {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(step)
            .with_context(|| format!("migration to schema version {target} failed"))?;
        tx.execute_batch(&format!("PRAGMA user_version = {target}"))?;
        tx.commit()?;
        tracing::info!(from = target - 1, to = target, "migrated database schema");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_sets_the_current_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, CURRENT_VERSION);
        assert_eq!(STEPS.len() as i64, CURRENT_VERSION - 1);
        // idempotent on an up-to-date database
        migrate(&mut conn).unwrap();
    }

    /// A database made by the previous release migrates to the same schema
    /// a fresh one gets, keeping its rows.
    #[test]
    fn version_1_database_migrates() {
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(include_str!("../../tests/fixtures/schema_v1.sql"))
            .unwrap();
        old.execute_batch(
            "INSERT INTO users (email, email_norm, name, password_hash, avatar_url, created_at)
                 VALUES ('a@x', 'a@x', 'Ana', 'h', '/uploads/chat/a.png', 1);
             INSERT INTO uploads (name, uploader_id, file_name, file_size, mime_type, sha256, created_at)
                 VALUES ('a.png', 1, 'a.png', 1, 'image/png', 's', 1),
                        ('b.png', 1, 'b.png', 1, 'image/png', 's', 1);
             INSERT INTO chats (name, is_group, created_at, updated_at) VALUES ('G', 1, 1, 1);
             INSERT INTO chat_participants (chat_id, user_id, joined_at) VALUES (1, 1, 1);
             INSERT INTO messages (chat_id, sender_id, message_type, content, created_at, updated_at)
                 VALUES (1, 1, 'TEXT', 'hi', 1, 1);",
        )
        .unwrap();
        migrate(&mut old).unwrap();
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        let columns = |c: &Connection| -> Vec<(String, String)> {
            let mut stmt = c
                .prepare(
                    "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
                     WHERE m.type = 'table' ORDER BY m.name, p.name",
                )
                .unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(columns(&old), columns(&fresh));
        let indexes = |c: &Connection| -> Vec<String> {
            let mut stmt = c
                .prepare("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(indexes(&old), indexes(&fresh));
        let v: i64 = old
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, CURRENT_VERSION);
        // rows kept; an upload already used as an avatar became public
        let avatars: Vec<String> = old
            .prepare("SELECT name FROM uploads WHERE is_avatar = 1")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(avatars, ["a.png"]);
        let content: String = old
            .query_row("SELECT content FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(content, "hi");
    }

    #[test]
    fn newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        assert!(migrate(&mut conn).is_err());
    }
}
