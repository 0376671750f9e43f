//! Schema creation and migrations.
//!
//! SQLite: a fresh database (user_version 0, no tables) runs `schema.sql`.
//! An older one runs the numbered steps after its version, each in its own
//! transaction, logged. A database newer than this binary is refused rather
//! than guessed at.
//!
//! PostgreSQL runs the same `schema.sql`, rewritten mechanically by
//! [`postgres_schema`] (64-bit integers, identity columns, no SQLite
//! pragmas), and keeps its version in `natter_meta`. An empty database gets
//! the current schema; one that holds tables but no `natter_meta` belongs
//! to another program and is refused; a newer version is refused. Later
//! steps are written once, portable, and run on both engines.

use anyhow::Context;
use rusqlite::Connection;

/// The whole current schema.
pub const SCHEMA: &str = include_str!("../../schema.sql");

/// The version `schema.sql` sets.
pub const CURRENT_VERSION: i64 = 6;

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
    // 3 (issue 17): Web Push subscriptions, muted chats. Runs on PostgreSQL
    // too, through `postgres_schema`.
    "ALTER TABLE chat_participants ADD COLUMN muted_until INTEGER;
     CREATE TABLE push_subscriptions (
         id         INTEGER PRIMARY KEY AUTOINCREMENT,
         user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
         endpoint   TEXT NOT NULL UNIQUE,
         p256dh     TEXT NOT NULL,
         auth       TEXT NOT NULL,
         created_at INTEGER NOT NULL
     );
     CREATE INDEX push_by_user ON push_subscriptions(user_id);",
    // 4 (issue 20): voice messages and link previews.
    STEP_VOICE_AND_PREVIEWS,
    // 5 (issue 19): reactions, forwarded messages.
    STEP_REACTIONS_AND_FORWARDS,
    // 6 (issue 19): message search; taken from `schema.sql` ([`step_sql`]).
    STEP_SEARCH,
];

/// Placeholder of the step to version 6 in [`STEPS`]: the search section
/// of `schema.sql` (one text for both engines, see [`postgres_schema`]),
/// then the existing messages indexed ([`step_sql`]).
const STEP_SEARCH: &str = "-- search";

/// Marks the start of the search section in `schema.sql`.
const SEARCH_SECTION: &str = "-- Message search (issue 19).";

/// The SQL of a step: [`STEP_SEARCH`] resolved from `schema.sql`, with a
/// back-fill of the SQLite index (PostgreSQL's index builds itself).
fn step_sql(step: &'static str) -> std::borrow::Cow<'static, str> {
    if step != STEP_SEARCH {
        return step.into();
    }
    let start = SCHEMA
        .find(SEARCH_SECTION)
        .expect("schema.sql has the search section");
    let end = start
        + SCHEMA[start..]
            .find("PRAGMA user_version")
            .expect("schema.sql ends with its version");
    let section = &SCHEMA[start..end];
    let close = section
        .find(SQLITE_ONLY_END)
        .expect("the search section closes its SQLite part");
    format!(
        "{}INSERT INTO message_search (rowid, content, file_name)
         SELECT id, content, file_name FROM messages
          WHERE is_deleted = 0 AND message_type != 'SYSTEM'
            AND (content IS NOT NULL OR file_name IS NOT NULL);\n{}",
        &section[..close],
        &section[close..]
    )
    .into()
}

/// Lines of `schema.sql` from this one up to [`SQLITE_ONLY_END`] are
/// SQLite only (FTS5, triggers).
const SQLITE_ONLY_START: &str = "-- sqlite only {";
/// Ends a SQLite-only part.
const SQLITE_ONLY_END: &str = "-- }";
/// A line starting with this is a PostgreSQL statement (a comment to SQLite).
const POSTGRES_ONLY: &str = "-- postgres: ";

/// Step to version 5 (issue 19): reactions (one per member and message,
/// denormalised as JSON on the message row like `played_by`), the
/// forwarded flag, and a payload column for events that are not rebuilt
/// from rows (`message:reaction`). Self-contained, so it can be renumbered.
const STEP_REACTIONS_AND_FORWARDS: &str = "
     ALTER TABLE messages ADD COLUMN reactions TEXT;
     ALTER TABLE messages ADD COLUMN is_forwarded INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE events ADD COLUMN data TEXT;
     CREATE TABLE message_reactions (
         message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
         user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
         chat_id    INTEGER NOT NULL,
         emoji      TEXT NOT NULL,
         created_at INTEGER NOT NULL,
         PRIMARY KEY (message_id, user_id)
     ) WITHOUT ROWID;";

/// Step to version 4 (issue 20): voice messages (duration, waveform, who
/// played them) and link previews (the preview and its thumbnail upload).
/// Self-contained, so it can be renumbered if another step 4 lands first.
const STEP_VOICE_AND_PREVIEWS: &str = "
     ALTER TABLE messages ADD COLUMN duration_ms INTEGER;
     ALTER TABLE messages ADD COLUMN waveform TEXT;
     ALTER TABLE messages ADD COLUMN played_by TEXT;
     ALTER TABLE messages ADD COLUMN link_preview TEXT;
     ALTER TABLE messages ADD COLUMN preview_upload_id INTEGER REFERENCES uploads(id) ON DELETE SET NULL;
     CREATE INDEX messages_by_preview_upload ON messages(preview_upload_id) WHERE preview_upload_id IS NOT NULL;
     CREATE TABLE message_plays (
         message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
         user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
         chat_id    INTEGER NOT NULL,
         played_at  INTEGER NOT NULL,
         PRIMARY KEY (message_id, user_id)
     ) WITHOUT ROWID;";

/// The first schema version PostgreSQL supported: steps after it run there.
const FIRST_POSTGRES_VERSION: i64 = 2;

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
        tx.execute_batch(&step_sql(step))
            .with_context(|| format!("migration to schema version {target} failed"))?;
        tx.execute_batch(&format!("PRAGMA user_version = {target}"))?;
        tx.commit()?;
        tracing::info!(from = target - 1, to = target, "migrated database schema");
    }
    Ok(())
}

/// `schema.sql` for PostgreSQL: the same tables, columns, keys and
/// indexes; every integer 64-bit; ids as identity columns (explicit ids
/// stay allowed for `migrate-store`); no `WITHOUT ROWID`, no pragmas.
pub fn postgres_schema(schema: &str) -> String {
    let mut out = String::with_capacity(schema.len());
    let mut sqlite_only = false;
    for line in schema.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with(SQLITE_ONLY_START) {
            sqlite_only = true;
            continue;
        }
        if sqlite_only {
            sqlite_only = !trimmed.starts_with(SQLITE_ONLY_END);
            continue;
        }
        if let Some(statement) = trimmed.strip_prefix(POSTGRES_ONLY) {
            out.push_str(statement);
            out.push('\n');
            continue;
        }
        if trimmed.starts_with("PRAGMA") {
            continue;
        }
        let line = line
            .replace(
                "INTEGER PRIMARY KEY AUTOINCREMENT",
                "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            )
            .replace("INTEGER", "BIGINT")
            .replace(") WITHOUT ROWID;", ");");
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Creates or checks the schema on PostgreSQL (see the module comment).
/// Serialised by an advisory lock, so nodes starting together agree.
pub fn migrate_postgres(conn: &super::pg::PgConn) -> anyhow::Result<()> {
    use super::sql::Conn;
    let c = Conn::Pg(conn);
    c.execute_batch("BEGIN")?;
    let result = (|| -> anyhow::Result<()> {
        c.execute_batch(&format!(
            "SELECT pg_advisory_xact_lock({})",
            super::WRITE_LOCK
        ))?;
        let tables: i64 = c.query_row(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
            (),
            |r| r.get(0),
        )?;
        let has_meta: i64 = c.query_row(
            "SELECT count(*) FROM information_schema.tables
              WHERE table_schema = current_schema() AND table_name = 'natter_meta'",
            (),
            |r| r.get(0),
        )?;
        if has_meta == 0 {
            anyhow::ensure!(
                tables == 0,
                "the database holds {tables} tables of another program (no natter_meta table); \
                 give natter an empty database of its own"
            );
            c.execute_batch(&postgres_schema(SCHEMA))
                .context("cannot create the schema")?;
            c.execute_batch(
                "CREATE TABLE natter_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            )?;
            c.execute(
                "INSERT INTO natter_meta (key, value) VALUES ('schema_version', ?1)",
                [CURRENT_VERSION.to_string()],
            )?;
            tracing::info!(
                version = CURRENT_VERSION,
                "created database schema (PostgreSQL)"
            );
            return Ok(());
        }
        let version: String = c.query_row(
            "SELECT value FROM natter_meta WHERE key = 'schema_version'",
            (),
            |r| r.get(0),
        )?;
        let version: i64 = version.parse().context("natter_meta schema_version")?;
        if version > CURRENT_VERSION {
            anyhow::bail!(
                "database schema version {version} is newer than this natter ({CURRENT_VERSION}); \
                 upgrade natter"
            );
        }
        anyhow::ensure!(
            version >= FIRST_POSTGRES_VERSION,
            "database schema version {version} predates PostgreSQL support; \
             move it with natter migrate-store"
        );
        // Each later step in this transaction (under the lock: nodes
        // starting together migrate once).
        for (index, step) in STEPS.iter().enumerate() {
            let target = index as i64 + 2;
            if target <= version {
                continue;
            }
            c.execute_batch(&postgres_schema(&step_sql(step)))
                .with_context(|| format!("migration to schema version {target} failed"))?;
            c.execute(
                "UPDATE natter_meta SET value = ?1 WHERE key = 'schema_version'",
                [target.to_string()],
            )?;
            tracing::info!(
                from = target - 1,
                to = target,
                "migrated database schema (PostgreSQL)"
            );
        }
        Ok(())
    })();
    match result {
        Ok(()) => c.execute_batch("COMMIT")?,
        Err(_) => {
            let _ = c.execute_batch("ROLLBACK");
        }
    }
    result
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

    /// A version-3 database with data (the release before voice messages
    /// and link previews) gets step 4: the new columns empty, the new
    /// table, the same schema as a fresh database, rows kept.
    #[test]
    fn version_3_database_migrates_to_4() {
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(include_str!("../../tests/fixtures/schema_v1.sql"))
            .unwrap();
        for step in &STEPS[..2] {
            old.execute_batch(step).unwrap();
        }
        old.execute_batch(
            "PRAGMA user_version = 3;
             INSERT INTO users (email, email_norm, name, password_hash, created_at)
                 VALUES ('a@x', 'a@x', 'Ana', 'h', 1), ('b@x', 'b@x', 'Bob', 'h', 1);
             INSERT INTO uploads (name, uploader_id, file_name, file_size, mime_type, sha256, created_at)
                 VALUES ('v.ogg', 1, 'v.ogg', 9, 'audio/ogg', 's', 1);
             INSERT INTO chats (name, is_group, created_at, updated_at) VALUES (NULL, 0, 1, 1);
             INSERT INTO chat_participants (chat_id, user_id, joined_at) VALUES (1, 1, 1), (1, 2, 1);
             INSERT INTO messages (chat_id, sender_id, message_type, content, upload_id, file_url, created_at, updated_at)
                 VALUES (1, 1, 'TEXT', 'see https://example.com', NULL, NULL, 1, 1),
                        (1, 1, 'FILE', NULL, 1, '/uploads/chat/v.ogg', 2, 2);",
        )
        .unwrap();
        migrate(&mut old).unwrap();
        let v: i64 = old
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, CURRENT_VERSION);
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        let shape = |c: &Connection| -> Vec<String> {
            let mut stmt = c
                .prepare(
                    "SELECT m.name || '.' || p.name || ':' || p.type FROM sqlite_master m,
                        pragma_table_info(m.name) p WHERE m.type = 'table'
                     UNION ALL SELECT 'index ' || name FROM sqlite_master WHERE type = 'index'
                     ORDER BY 1",
                )
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(shape(&old), shape(&fresh));
        let (count, voiced, previewed): (i64, i64, i64) = old
            .query_row(
                "SELECT count(*), count(duration_ms), count(link_preview) FROM messages",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((count, voiced, previewed), (2, 0, 0));
        // The new table works with the old rows.
        old.execute_batch(
            "INSERT INTO message_plays (message_id, user_id, chat_id, played_at) VALUES (2, 2, 1, 3);
             UPDATE messages SET preview_upload_id = 1 WHERE id = 1;",
        )
        .unwrap();
    }

    /// A version-4 database with data gets steps 5 and 6: the same schema
    /// as a fresh one, messages not forwarded and without reactions, rows
    /// kept, and its messages in the search index.
    #[test]
    fn version_4_database_migrates_to_the_current_version() {
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(include_str!("../../tests/fixtures/schema_v1.sql"))
            .unwrap();
        for step in &STEPS[..3] {
            old.execute_batch(step).unwrap();
        }
        old.execute_batch(
            "PRAGMA user_version = 4;
             INSERT INTO users (email, email_norm, name, password_hash, created_at)
                 VALUES ('a@x', 'a@x', 'Ana', 'h', 1), ('b@x', 'b@x', 'Bob', 'h', 1);
             INSERT INTO chats (name, is_group, created_at, updated_at) VALUES (NULL, 0, 1, 1);
             INSERT INTO chat_participants (chat_id, user_id, joined_at) VALUES (1, 1, 1), (1, 2, 1);
             INSERT INTO messages (chat_id, sender_id, message_type, content, created_at, updated_at)
                 VALUES (1, 1, 'TEXT', 'hello', 1, 1);
             INSERT INTO events (chat_id, kind, message_id, user_id, created_at)
                 VALUES (1, 'message:new', 1, NULL, 1);",
        )
        .unwrap();
        migrate(&mut old).unwrap();
        let v: i64 = old
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, CURRENT_VERSION);
        let indexed: i64 = old
            .query_row(
                "SELECT count(*) FROM message_search WHERE message_search MATCH 'hello'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexed, 1, "step 6 indexes the messages already there");
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        let shape = |c: &Connection| -> Vec<String> {
            let mut stmt = c
                .prepare(
                    "SELECT m.name || '.' || p.name || ':' || p.type || ':' || p.\"notnull\"
                        FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'
                     UNION ALL SELECT 'index ' || name FROM sqlite_master WHERE type = 'index'
                     UNION ALL SELECT 'trigger ' || name FROM sqlite_master WHERE type = 'trigger'
                     ORDER BY 1",
                )
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(shape(&old), shape(&fresh));
        let (content, forwarded, reactions): (String, i64, Option<String>) = old
            .query_row(
                "SELECT content, is_forwarded, reactions FROM messages",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((content.as_str(), forwarded, reactions), ("hello", 0, None));
        old.execute_batch(
            "INSERT INTO message_reactions (message_id, user_id, chat_id, emoji, created_at)
                 VALUES (1, 2, 1, '👍', 2);
             INSERT INTO events (chat_id, kind, message_id, user_id, created_at, data)
                 VALUES (1, 'message:reaction', 1, NULL, 2, '{}');",
        )
        .unwrap();
    }

    #[test]
    fn postgres_schema_is_the_same_schema() {
        // SQL only: the comments may name what the translation removes.
        let code = |sql: &str| -> String {
            sql.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let (pg, schema) = (code(&postgres_schema(SCHEMA)), code(SCHEMA));
        assert!(!pg.contains("AUTOINCREMENT") && !pg.contains("PRAGMA"));
        assert!(!pg.contains("WITHOUT ROWID") && !pg.contains("INTEGER"));
        assert_eq!(
            pg.matches("CREATE TABLE").count(),
            schema.matches("CREATE TABLE").count()
        );
        assert_eq!(
            pg.matches("GENERATED BY DEFAULT AS IDENTITY").count(),
            schema.matches("AUTOINCREMENT").count()
        );
    }

    #[test]
    fn newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        assert!(migrate(&mut conn).is_err());
    }
}
