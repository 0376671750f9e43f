//! The SQLite store: opening, pragmas, the read pool and the single writer.
//!
//! Invariants:
//! - only the writer thread ([`writer`]) opens a write transaction, so
//!   concurrent requests never meet SQLITE_BUSY and many small writes share
//!   one commit;
//! - reads run on a pool of `query_only` connections inside `spawn_blocking`,
//!   never on tokio's worker threads;
//! - the per-resource modules (`users`, `chats`, ...) are plain functions over
//!   `&Connection`: they know SQL, not HTTP or sockets.

pub mod chats;
pub mod events;
mod ids;
pub mod messages;
pub mod migrate;
pub mod receipts;
pub mod uploads;
pub mod users;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use crate::config::Durability;
use crate::error::{AppError, AppResult};

pub use writer::Writer;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;

/// Connections in the read pool.
const READ_POOL_SIZE: u32 = 8;

/// The store: a read pool and the writer.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<SqliteConnectionManager>,
    writer: Writer,
    path: PathBuf,
    /// Dropping the last clone ends the checkpoint thread.
    _checkpointer: std::sync::Arc<std::sync::mpsc::Sender<()>>,
}

impl Db {
    /// Opens (creating or migrating) the database at `path` and starts the writer.
    pub fn open(path: &Path, durability: Durability) -> anyhow::Result<Db> {
        let mut conn = Connection::open(path)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        apply_pragmas(&conn, durability)?;
        migrate::migrate(&mut conn)?;
        // Room for every statement of the hot paths: rusqlite's default of
        // 16 made the send and receipt ops evict and re-parse each other's
        // statements.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            c.execute_batch(
                "PRAGMA busy_timeout = 5000;
                 PRAGMA foreign_keys = ON;
                 PRAGMA query_only = ON;
                 PRAGMA mmap_size = 268435456;
                 PRAGMA cache_size = -16000;",
            )
        });
        let pool = r2d2::Pool::builder()
            .max_size(READ_POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .context("cannot open the read pool")?;
        // Checkpoints run on their own thread and connection (PASSIVE: they
        // never block the writer); SQLite's automatic checkpoint would run
        // them inside the writer's commits instead.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        let checkpointer = start_checkpointer(path)?;
        let writer = Writer::start(conn)?;
        Ok(Db {
            pool,
            writer,
            path: path.to_path_buf(),
            _checkpointer: std::sync::Arc::new(checkpointer),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a pooled read connection off the async threads.
    pub async fn read<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> AppResult<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        match tokio::task::spawn_blocking(move || {
            let conn = pool
                .get()
                .map_err(|e| AppError::Internal(anyhow::anyhow!("read pool: {e}")))?;
            f(&conn)
        })
        .await
        {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => Err(AppError::Internal(anyhow::anyhow!("read task: {join}"))),
        }
    }

    /// Runs `f` inside the writer's transaction; resolves after COMMIT.
    pub async fn write<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> AppResult<T> + Send + 'static,
    {
        self.writer.write(f).await
    }

    /// Stops the writer after it has committed everything queued, and
    /// checkpoints the WAL into the main file.
    pub async fn close(&self) {
        self.writer.shutdown().await;
    }
}

/// How often the WAL is checkpointed into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

fn start_checkpointer(path: &Path) -> anyhow::Result<std::sync::mpsc::Sender<()>> {
    let conn = Connection::open(path)?;
    conn.execute_batch("PRAGMA busy_timeout = 5000;")?;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("natter-checkpoint".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(CHECKPOINT_EVERY)
            {
                if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
                    tracing::debug!(error = %e, "checkpoint skipped");
                }
            }
        })?;
    Ok(tx)
}

/// `page_size` only takes effect when the database file is created (an
/// existing database keeps its size until a `VACUUM`). 1 KiB instead of the
/// default 4 KiB: every commit writes each page it dirtied to the WAL in
/// full, and one message dirties a handful of scattered index pages, so
/// small pages cut the writer's bytes and checksums per message (direct
/// bench +15 % msgs/s, p99 126 → 91 ms; history reads unchanged or faster).
fn apply_pragmas(conn: &Connection, durability: Durability) -> anyhow::Result<()> {
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA page_size = 1024;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {synchronous};
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -32000;
         PRAGMA mmap_size = 268435456;"
    ))
    .context("cannot set database pragmas")?;
    Ok(())
}

/// Milliseconds since the Unix epoch, the unit of every stored timestamp.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
