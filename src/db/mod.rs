//! The store: SQLite (default) or PostgreSQL behind one interface.
//!
//! Invariants, on both engines:
//! - only the writer thread ([`writer`]) writes, so concurrent requests never
//!   meet lock conflicts and many small writes share one commit;
//! - on PostgreSQL every write batch also takes a transaction-level advisory
//!   lock ([`WRITE_LOCK`]) before its first statement: batches of all
//!   processes on one database commit one after another, so event ids are
//!   assigned in commit order and a `/sync` reader at cursor N never later
//!   meets an event below N that was still in flight (the design Synapse
//!   calls a single-writer stream; see docs/ARCHITECTURE.md);
//! - reads run on a pool of connections inside `spawn_blocking`, never on
//!   tokio's worker threads;
//! - the per-resource modules (`users`, `chats`, ...) are plain functions over
//!   a [`sql::Conn`] of either engine: they know SQL, not HTTP or sockets;
//! - the seam: the rest of natter calls only the named operations of
//!   [`store`], async methods on [`Db`] (`send_message`, `mark_read`,
//!   `history_page`, `sync_since`, `create_chat`, ...). Each runs one
//!   function over a connection on the read pool or as one writer op
//!   (`Db::read`/`Db::write` are private to this module), with the checks
//!   that must hold in its transaction (membership, admin rights, `clientId`
//!   de-duplication). Nothing outside `src/db/` sees a connection, SQL or a
//!   driver type; `ops/` validates, authorises, calls the store, publishes.

pub mod backup;
pub mod chats;
pub mod copy;
pub mod events;
mod ids;
pub mod messages;
pub mod migrate;
pub mod pg;
pub mod previews;
pub mod reactions;
pub mod receipts;
pub mod search;
pub mod seed;
pub mod sql;
pub mod store;
pub mod uploads;
pub mod users;
pub mod voice;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use tokio::runtime::Handle;

use crate::config::{DatabaseUrl, Durability};
use crate::error::{AppError, AppResult};

pub use sql::Conn;
pub use writer::Writer;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;

/// Connections in the read pool.
const READ_POOL_SIZE: u32 = 8;

/// A log filter directive that keeps the PostgreSQL driver below debug
/// level: there it logs every statement's parameters (message text,
/// password hashes). Named here so that only `src/db/` names the driver.
pub const QUIET_DRIVER_LOGS: &str = "tokio_postgres=info";

/// Key of the PostgreSQL advisory lock every write batch holds until COMMIT.
pub const WRITE_LOCK: i64 = 0x6e61_7474_6572; // "natter"

/// Where reads go.
#[derive(Clone)]
enum Reads {
    Sqlite(r2d2::Pool<SqliteConnectionManager>),
    Pg(deadpool_postgres::Pool, Handle),
}

/// The store: a read pool and the writer.
#[derive(Clone)]
pub struct Db {
    reads: Reads,
    writer: Writer,
    path: Option<PathBuf>,
    /// Dropping the last clone ends the checkpoint thread (SQLite).
    _checkpointer: Option<std::sync::Arc<std::sync::mpsc::Sender<()>>>,
    /// Plain sends waiting to be written together (PostgreSQL).
    sends: Option<std::sync::Arc<store::send_batch::SendQueue>>,
}

impl Db {
    /// Opens the store `url` names (creating or migrating its schema) and
    /// starts the writer. Runs on a blocking thread (PostgreSQL connects
    /// through the current runtime).
    pub fn open_url(url: &DatabaseUrl, durability: Durability) -> anyhow::Result<Db> {
        match url {
            DatabaseUrl::Sqlite(path) => Db::open(path, durability),
            DatabaseUrl::Postgres(url) => Db::open_postgres(url),
        }
    }

    /// Opens (creating or migrating) the SQLite database at `path` and starts the writer.
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
        let writer = Writer::start(SqliteWriter(conn))?;
        Ok(Db {
            reads: Reads::Sqlite(pool),
            writer,
            path: Some(path.to_path_buf()),
            _checkpointer: Some(std::sync::Arc::new(checkpointer)),
            sends: None,
        })
    }

    /// Connects to PostgreSQL, creates or checks the schema, starts the writer.
    pub fn open_postgres(url: &str) -> anyhow::Result<Db> {
        let rt = Handle::current();
        let host = pg::host_of(url);
        let reads = pg::pool(url, READ_POOL_SIZE as usize)?;
        let first = rt.block_on(reads.get()).map_err(|e| {
            anyhow::anyhow!("cannot connect to PostgreSQL at {host}: {}", pool_error(&e))
        })?;
        let first = pg::PgConn::new(first, rt.clone());
        migrate::migrate_postgres(&first).with_context(|| format!("PostgreSQL at {host}"))?;
        drop(first);
        // The writer's connection runs on the writer thread's own runtime.
        let own = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the writer's runtime")?;
        let writer = Writer::start(PgWriter {
            url: url.to_string(),
            rt: std::sync::Arc::new(own),
            conn: None,
        })?;
        Ok(Db {
            reads: Reads::Pg(reads, rt),
            writer,
            path: None,
            _checkpointer: None,
            sends: Some(std::sync::Arc::default()),
        })
    }

    /// The SQLite database file; `None` on PostgreSQL.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs `f` on a pooled read connection off the async threads.
    async fn read<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> AppResult<T> + Send + 'static,
    {
        let reads = self.reads.clone();
        match tokio::task::spawn_blocking(move || match reads {
            Reads::Sqlite(pool) => {
                let conn = pool
                    .get()
                    .map_err(|e| AppError::Internal(anyhow::anyhow!("read pool: {e}")))?;
                f(&Conn::Sqlite(&conn))
            }
            Reads::Pg(pool, rt) => {
                let client = rt.block_on(pool.get()).map_err(|e| {
                    tracing::warn!(error = %pool_error(&e), "database unavailable");
                    AppError::Unavailable
                })?;
                let conn = pg::PgConn::new(client, rt);
                f(&Conn::Pg(&conn))
            }
        })
        .await
        {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => Err(AppError::Internal(anyhow::anyhow!("read task: {join}"))),
        }
    }

    /// Runs `f` inside the writer's transaction; resolves after COMMIT.
    async fn write<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> AppResult<T> + Send + 'static,
    {
        self.writer.write(f).await
    }

    /// Queues `f` in the writer; resolves once queued, to the future of its
    /// commit (see [`Writer::submit`]).
    async fn submit<T, F>(
        &self,
        f: F,
    ) -> AppResult<impl std::future::Future<Output = AppResult<T>> + Send + 'static>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> AppResult<T> + Send + 'static,
    {
        self.writer.submit(f).await
    }

    /// For `/metrics`: the highest message id ever stored and the bytes
    /// the database takes (SQLite: file plus WAL; PostgreSQL: the database).
    pub async fn stats(&self) -> AppResult<(i64, u64)> {
        let path = self.path.clone();
        self.read(move |c| {
            let stored: i64 =
                c.query_row("SELECT coalesce(max(id), 0) FROM messages", (), |r| {
                    r.get(0)
                })?;
            let bytes = match &path {
                Some(path) => {
                    let mut wal = path.clone().into_os_string();
                    wal.push("-wal");
                    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                    size(path) + size(Path::new(&wal))
                }
                None => c.query_row("SELECT pg_database_size(current_database())", (), |r| {
                    r.get(0)
                })?,
            };
            Ok((stored, bytes))
        })
        .await
    }

    /// Stops the writer after it has committed everything queued (SQLite:
    /// and checkpoints the WAL into the main file).
    pub async fn close(&self) {
        self.writer.shutdown().await;
    }
}

/// A pool error in one line, naming the cause (refused, timed out, ...).
fn pool_error(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                msg = format!("{msg}: {s}");
                source = s.source();
            }
            msg
        }
        other => other.to_string(),
    }
}

/// The SQLite writer connection.
struct SqliteWriter(Connection);

impl SqliteWriter {
    /// Runs a statement without parameters through the statement cache, so
    /// the per-op `SAVEPOINT`/`RELEASE` are not parsed again for every op.
    fn cached(&self, sql: &str) -> sql::DbResult<()> {
        Ok(self.0.prepare_cached(sql)?.execute([]).map(|_| ())?)
    }
}

impl writer::WriteConn for SqliteWriter {
    fn begin(&mut self) -> sql::DbResult<()> {
        self.cached("BEGIN IMMEDIATE")
    }
    fn conn(&self) -> Conn<'_> {
        Conn::Sqlite(&self.0)
    }
    fn exec(&self, sql: &str) -> sql::DbResult<()> {
        self.cached(sql)
    }
    fn commit(&mut self) -> sql::DbResult<()> {
        self.cached("COMMIT")
    }
    fn rollback(&mut self) {
        let _ = self.0.execute_batch("ROLLBACK");
    }
    fn close(&mut self) {
        if let Err(e) = self.0.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
            tracing::warn!(error = %e, "WAL checkpoint at shutdown failed");
        }
    }
}

/// The PostgreSQL writer connection: taken from its own one-connection
/// pool, replaced when the server closed it.
struct PgWriter {
    url: String,
    rt: std::sync::Arc<tokio::runtime::Runtime>,
    conn: Option<pg::PgConn>,
}

impl writer::WriteConn for PgWriter {
    fn begin(&mut self) -> sql::DbResult<()> {
        if self.conn.as_ref().is_some_and(pg::PgConn::is_closed) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(pg::PgConn::connect_own(&self.url, self.rt.clone())?);
        }
        let conn = self.conn.as_ref().expect("connected above");
        // One round trip: the simple protocol takes both statements at once.
        let began = conn.batch(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
        ));
        if began.is_err() {
            self.conn = None;
        }
        began
    }
    /// Each op runs in a savepoint, a subtransaction; PostgreSQL caches 64
    /// subtransaction ids per backend, past which every other session's
    /// visibility checks go through `pg_subtrans` (a known cliff).
    fn max_batch(&self) -> usize {
        60
    }
    fn conn(&self) -> Conn<'_> {
        Conn::Pg(self.conn.as_ref().expect("begin connected"))
    }
    fn exec(&self, sql: &str) -> sql::DbResult<()> {
        match &self.conn {
            Some(c) => c.batch(sql),
            None => Err(sql::DbError::Unavailable("no connection".into())),
        }
    }
    fn exec_later(&self, sql: &str) -> sql::DbResult<()> {
        match &self.conn {
            Some(c) => c.batch_later(sql),
            None => Err(sql::DbError::Unavailable("no connection".into())),
        }
    }
    fn commit(&mut self) -> sql::DbResult<()> {
        let result = self.exec("COMMIT");
        if matches!(result, Err(sql::DbError::Unavailable(_))) {
            self.conn = None;
        }
        result
    }
    fn rollback(&mut self) {
        if self.exec("ROLLBACK").is_err() {
            self.conn = None;
        }
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
