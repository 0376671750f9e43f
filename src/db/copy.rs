//! `natter migrate-store`: copies a whole SQLite store into an empty
//! PostgreSQL database, ids and all.
//!
//! - The source is opened read-only and read inside one read transaction,
//!   so the copy is one consistent snapshot (the server should still be
//!   stopped: what it writes after the snapshot would not be copied).
//! - The target must be empty: no tables at all, or natter's schema at the
//!   current version with no rows. The schema is created by the same
//!   [`super::migrate::migrate_postgres`] that `serve` runs.
//! - Every table is copied in dependency order inside one PostgreSQL
//!   transaction that also holds the store's write lock
//!   ([`super::WRITE_LOCK`]), in multi-row INSERTs; identity sequences are
//!   then moved past the highest id SQLite ever handed out (its
//!   `sqlite_sequence`, not just `max(id)`: ids are never reused); row
//!   counts and highest ids of both sides are compared before COMMIT, and
//!   any difference rolls everything back.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rusqlite::{Connection, OpenFlags};
use tokio::runtime::Handle;

use super::pg::{self, PgConn};
use super::sql::{Conn, Value};

/// Every table of `schema.sql`, parents before children (foreign keys).
pub const TABLES: &[&str] = &[
    "users",
    "chats",
    "uploads",
    "chat_participants",
    "messages",
    "hidden_messages",
    "receipt_marks",
    "message_plays",
    "message_reactions",
    "events",
    "push_subscriptions",
];

/// Tables with an `id` identity column (`INTEGER PRIMARY KEY AUTOINCREMENT`).
const WITH_ID: &[&str] = &[
    "users",
    "chats",
    "uploads",
    "messages",
    "events",
    "push_subscriptions",
];

/// Rows per INSERT (fewer for wide tables: PostgreSQL takes at most 65,535
/// parameters per statement).
const BATCH_ROWS: usize = 1000;
const MAX_PARAMS: usize = 60_000;

/// One table's outcome.
#[derive(Debug, Clone)]
pub struct TableCount {
    pub table: &'static str,
    /// Rows in the SQLite snapshot.
    pub source: i64,
    /// Rows in PostgreSQL after the copy (before COMMIT).
    pub target: i64,
}

/// What a finished copy did.
#[derive(Debug)]
pub struct Summary {
    pub tables: Vec<TableCount>,
    pub elapsed: Duration,
}

/// A column value read from SQLite, owned.
enum Owned {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Owned {
    fn as_value(&self) -> Value<'_> {
        match self {
            Owned::Null => Value::Null,
            Owned::Int(i) => Value::Int(*i),
            Owned::Real(f) => Value::Real(*f),
            Owned::Text(s) => Value::Text(s),
            Owned::Blob(b) => Value::Blob(b),
        }
    }
}

/// Copies the SQLite store at `from` into the PostgreSQL database `to`
/// (see the module comment). Runs on a blocking thread; `rt` drives the
/// PostgreSQL driver. `progress` hears each table as it is done.
pub fn sqlite_to_postgres(
    from: &Path,
    to: &str,
    rt: &Handle,
    progress: &mut dyn FnMut(&TableCount),
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let place = crate::config::redact_password(to);
    let source = open_source(from)?;

    let host = pg::host_of(to);
    let pool = pg::pool(to, 1)?;
    let client = rt
        .block_on(pool.get())
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {host}: {}", chain(&e)))?;
    let target = PgConn::new(client, rt.clone());
    check_target_is_empty(&target, &place)?;
    super::migrate::migrate_postgres(&target).with_context(|| format!("PostgreSQL at {host}"))?;

    // One read snapshot of SQLite for the whole copy.
    source.execute_batch("BEGIN")?;
    let result = copy_all(&source, &target, &place, progress);
    let _ = source.execute_batch("ROLLBACK");
    let tables = result?;
    Ok(Summary {
        tables,
        elapsed: started.elapsed(),
    })
}

/// Opens the source read-only and checks it is a natter store of this
/// version.
fn open_source(from: &Path) -> anyhow::Result<Connection> {
    if !from.is_file() {
        bail!(
            "--from: no SQLite database at {} (is the path right?)",
            from.display()
        );
    }
    let conn = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", from.display()))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .with_context(|| format!("{} is not an SQLite database", from.display()))?;
    let current = super::migrate::CURRENT_VERSION;
    if version == 0 {
        bail!("{} is not a natter database", from.display());
    }
    if version < current {
        bail!(
            "{} has schema version {version}, older than this natter's {current}: \
             run `natter serve` on it once to migrate it, stop it, then run migrate-store",
            from.display()
        );
    }
    if version > current {
        bail!(
            "{} has schema version {version}, newer than this natter's {current}: \
             use the natter that wrote it",
            from.display()
        );
    }
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master
          WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
            AND name NOT LIKE 'message\\_search%' ESCAPE '\\'",
    )?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    drop(stmt);
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !TABLES.contains(&n.as_str()))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "{} has tables this natter does not know ({}); not copying it",
            from.display(),
            join(&unknown)
        );
    }
    Ok(conn)
}

/// Refuses a target that holds anything: another program's tables, or
/// natter rows. An empty natter schema (a `serve` that started once and
/// stored nothing) is fine.
fn check_target_is_empty(target: &PgConn, place: &str) -> anyhow::Result<()> {
    let c = Conn::Pg(target);
    let names = c
        .prepare(
            "SELECT table_name::text FROM information_schema.tables
              WHERE table_schema = current_schema() ORDER BY 1",
        )?
        .query_map((), |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    if names.is_empty() {
        return Ok(());
    }
    let foreign: Vec<&String> = names
        .iter()
        .filter(|n| *n != "natter_meta" && !TABLES.contains(&n.as_str()))
        .collect();
    if !foreign.is_empty() || !names.iter().any(|n| n == "natter_meta") {
        let shown: Vec<&String> = if foreign.is_empty() {
            names.iter().collect()
        } else {
            foreign
        };
        bail!(
            "--to {place} holds tables of another program ({}): \
             migrate-store copies into an empty database only",
            join(&shown)
        );
    }
    let rows = natter_rows(&c)?;
    if !rows.is_empty() {
        bail!(
            "--to {place} already holds natter data ({}): \
             migrate-store copies into an empty database only",
            rows.join(", ")
        );
    }
    Ok(())
}

/// `"12 users", ...` for every natter table that has rows.
fn natter_rows(c: &Conn<'_>) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for table in TABLES {
        let n: i64 = c.query_row(&format!("SELECT count(*) FROM {table}"), (), |r| r.get(0))?;
        if n > 0 {
            out.push(format!("{n} {table}"));
        }
    }
    Ok(out)
}

/// The copy transaction on PostgreSQL.
fn copy_all(
    source: &Connection,
    target: &PgConn,
    place: &str,
    progress: &mut dyn FnMut(&TableCount),
) -> anyhow::Result<Vec<TableCount>> {
    let c = Conn::Pg(target);
    c.execute_batch("BEGIN")?;
    let result = (|| -> anyhow::Result<Vec<TableCount>> {
        // Servers on this database wait; and none may have written since
        // the check.
        c.execute_batch(&format!(
            "SELECT pg_advisory_xact_lock({})",
            super::WRITE_LOCK
        ))?;
        let rows = natter_rows(&c)?;
        if !rows.is_empty() {
            bail!(
                "--to {place} received natter data meanwhile ({}): is a server running on it? \
                 migrate-store copies into an empty database only",
                rows.join(", ")
            );
        }
        let mut counts = Vec::new();
        for &table in TABLES {
            let copied =
                copy_table(source, &c, table).with_context(|| format!("copying table {table}"))?;
            let target_rows: i64 =
                c.query_row(&format!("SELECT count(*) FROM {table}"), (), |r| r.get(0))?;
            let source_rows: i64 =
                source.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            let count = TableCount {
                table,
                source: source_rows,
                target: target_rows,
            };
            if copied != source_rows || target_rows != source_rows {
                bail!(
                    "table {table}: {source_rows} rows in SQLite, {copied} copied, \
                     {target_rows} in PostgreSQL; rolled back, nothing was kept"
                );
            }
            progress(&count);
            counts.push(count);
        }
        for &table in WITH_ID {
            advance_identity(source, &c, table)?;
        }
        Ok(counts)
    })();
    match result {
        Ok(counts) => {
            c.execute_batch("COMMIT")?;
            Ok(counts)
        }
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Copies one table in multi-row INSERTs; returns the rows copied.
fn copy_table(source: &Connection, c: &Conn<'_>, table: &str) -> anyhow::Result<i64> {
    let columns = columns_of(source, table)?;
    let per_row = columns.len();
    let batch = BATCH_ROWS.min(MAX_PARAMS / per_row.max(1)).max(1);
    let list = columns.join(", ");
    let mut stmt = source.prepare(&format!("SELECT {list} FROM {table}"))?;
    let mut rows = stmt.query([])?;
    let mut pending: Vec<Owned> = Vec::with_capacity(batch * per_row);
    let mut copied = 0i64;
    while let Some(row) = rows.next()? {
        for (i, column) in columns.iter().enumerate() {
            use rusqlite::types::ValueRef as V;
            pending.push(match row.get_ref(i)? {
                V::Null => Owned::Null,
                V::Integer(n) => Owned::Int(n),
                V::Real(f) => Owned::Real(f),
                V::Text(t) => Owned::Text(
                    String::from_utf8(t.to_vec())
                        .with_context(|| format!("{table}.{column}: text is not UTF-8"))?,
                ),
                V::Blob(b) => Owned::Blob(b.to_vec()),
            });
        }
        if pending.len() == batch * per_row {
            copied += insert(c, table, &list, per_row, &pending)?;
            pending.clear();
        }
    }
    if !pending.is_empty() {
        copied += insert(c, table, &list, per_row, &pending)?;
    }
    Ok(copied)
}

/// One multi-row INSERT of `values` (row after row).
fn insert(
    c: &Conn<'_>,
    table: &str,
    list: &str,
    per_row: usize,
    values: &[Owned],
) -> anyhow::Result<i64> {
    let rows = values.len() / per_row;
    let mut sql = format!("INSERT INTO {table} ({list}) VALUES ");
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for col in 0..per_row {
            if col > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("${n}"));
            n += 1;
        }
        sql.push(')');
    }
    let params: Vec<Value<'_>> = values.iter().map(Owned::as_value).collect();
    let inserted = c.execute(&sql, params)?;
    Ok(i64::try_from(inserted).unwrap_or(i64::MAX))
}

/// The columns of `table` in SQLite, which (same schema version) are the
/// columns PostgreSQL has.
fn columns_of(source: &Connection, table: &str) -> anyhow::Result<Vec<String>> {
    let mut stmt = source.prepare(&format!("PRAGMA table_info({table})"))?;
    let columns = stmt
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<Result<Vec<_>, _>>()?;
    anyhow::ensure!(!columns.is_empty(), "table {table} has no columns");
    Ok(columns)
}

/// Moves `table`'s identity sequence past every id SQLite handed out, and
/// checks the highest ids agree.
fn advance_identity(source: &Connection, c: &Conn<'_>, table: &str) -> anyhow::Result<()> {
    let max_source: i64 = source.query_row(
        &format!("SELECT coalesce(max(id), 0) FROM {table}"),
        [],
        |r| r.get(0),
    )?;
    let sequence: i64 = source
        .query_row(
            "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap_or(0);
    let max_target: i64 = c.query_row(
        &format!("SELECT coalesce(max(id), 0) FROM {table}"),
        (),
        |r| r.get(0),
    )?;
    anyhow::ensure!(
        max_source == max_target,
        "table {table}: highest id {max_source} in SQLite, {max_target} in PostgreSQL"
    );
    let next_after = max_source.max(sequence);
    if next_after > 0 {
        // pg_get_serial_sequence also names an identity column's sequence.
        c.query_row(
            "SELECT setval(pg_get_serial_sequence(?1, 'id'), ?2)",
            vec![Value::Text(table), Value::Int(next_after)],
            |r| r.get::<_, i64>(0),
        )?;
    }
    Ok(())
}

fn join(names: &[&String]) -> String {
    let shown: Vec<&str> = names.iter().take(8).map(|s| s.as_str()).collect();
    let more = names.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{}, and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// An error with its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table added to `schema.sql` must be added to [`TABLES`] (in
    /// dependency order), or migrate-store would leave it behind.
    #[test]
    fn every_schema_table_is_copied() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::migrate(&mut conn).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table'
                  AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
                  AND name NOT LIKE 'message\\_search%' ESCAPE '\\' ORDER BY name",
            )
            .unwrap();
        let mut names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        names.sort();
        let mut ours: Vec<String> = TABLES.iter().map(|s| s.to_string()).collect();
        ours.sort();
        assert_eq!(names, ours);
        for table in WITH_ID {
            let has_id: i64 = conn
                .query_row(
                    &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = 'id' AND pk = 1"),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(has_id, 1, "{table}.id");
        }
    }
}
