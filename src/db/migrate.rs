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
pub const CURRENT_VERSION: i64 = 1;

/// Steps from version N-1 to N, indexed by N-2 (the step to version 2 first).
const STEPS: &[&str] = &[];

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

    #[test]
    fn newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        assert!(migrate(&mut conn).is_err());
    }
}
