//! The PostgreSQL side of the facade: tokio-postgres connections from a
//! deadpool pool, driven synchronously from the store's blocking threads
//! (the writer thread and `spawn_blocking` readers) with `Handle::block_on`,
//! so every operation in `src/db/` runs unchanged on either engine.
//!
//! Why tokio-postgres + deadpool-postgres rather than sqlx: the store
//! already owns its SQL and its row mapping (the facade), so it needs a
//! driver, not a query layer; tokio-postgres is the driver sqlx-free Rust
//! services use, with per-connection prepared statements (deadpool keeps a
//! statement cache per pooled connection), binary row decoding and no
//! compile-time database; deadpool is the small pool made for it.

use std::error::Error as StdError;

use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio::runtime::Handle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql as PgFromSql, IsNull, ToSql as PgToSql, Type};
use tokio_postgres::{NoTls, Statement};

use super::sql::{to_postgres, DbError, DbResult, Value};

/// One PostgreSQL connection, usable from a blocking thread: a pooled one
/// (reads; its I/O runs on the server's runtime), or the writer's own, whose
/// I/O runs on the writer thread itself (a current-thread runtime), so each
/// of the writer's round trips costs no wake-up of another thread.
///
/// The writer's own connection also pipelines: a statement whose result the
/// op does not read (a savepoint, an `UPDATE` of a position, a receipt row)
/// is queued by [`PgConn::execute_later`] and sent together with the next
/// statement that needs an answer, in one round trip. PostgreSQL answers in
/// order, so the queued statements run first, as written; their errors are
/// reported by the next statement (or [`PgConn::flush`] at the op's end),
/// which the writer then rolls back to the op's savepoint.
pub struct PgConn {
    client: Client,
    rt: Exec,
}

/// A statement sent but not yet answered.
type Pending =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, tokio_postgres::Error>> + Send>>;

/// Queued statements past which the writer waits for answers anyway (a
/// bound on memory and on what one error report covers).
const MAX_PENDING: usize = 24;

enum Client {
    Pooled(Object),
    Own {
        client: std::sync::Arc<tokio_postgres::Client>,
        cache: std::cell::RefCell<std::collections::HashMap<String, Statement>>,
        pending: std::cell::RefCell<Vec<Pending>>,
        /// Statements without parameters queued back to back (an op's
        /// `RELEASE` and the next op's `SAVEPOINT`): sent as one message.
        pending_sql: std::cell::RefCell<String>,
    },
}

enum Exec {
    Shared(Handle),
    Own(std::sync::Arc<tokio::runtime::Runtime>),
}

impl Exec {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match self {
            Exec::Shared(h) => h.block_on(f),
            Exec::Own(rt) => rt.block_on(f),
        }
    }
}

impl PgConn {
    /// Wraps a pooled connection.
    pub fn new(client: Object, rt: Handle) -> PgConn {
        PgConn {
            client: Client::Pooled(client),
            rt: Exec::Shared(rt),
        }
    }

    /// Opens a connection driven by `rt`, a current-thread runtime that only
    /// the calling thread uses (the writer's).
    pub fn connect_own(url: &str, rt: std::sync::Arc<tokio::runtime::Runtime>) -> DbResult<PgConn> {
        let (client, connection) = rt
            .block_on(tokio_postgres::connect(url, NoTls))
            .map_err(|e| pg_error(&e, None))?;
        rt.spawn(connection);
        Ok(PgConn {
            client: Client::Own {
                client: std::sync::Arc::new(client),
                cache: std::cell::RefCell::default(),
                pending: std::cell::RefCell::default(),
                pending_sql: std::cell::RefCell::default(),
            },
            rt: Exec::Own(rt),
        })
    }

    fn client(&self) -> &tokio_postgres::Client {
        match &self.client {
            Client::Pooled(o) => o,
            Client::Own { client, .. } => client,
        }
    }

    /// Runs `f` to completion, sending the queued statements ahead of it in
    /// the same round trip. An error of a queued statement wins over `f`'s
    /// (after one, PostgreSQL refuses the rest of the transaction).
    fn run<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
        sql: Option<&str>,
    ) -> DbResult<T> {
        self.seal();
        let queued = match &self.client {
            Client::Own { pending, .. } => std::mem::take(&mut *pending.borrow_mut()),
            Client::Pooled(_) => Vec::new(),
        };
        if queued.is_empty() {
            return self.rt.block_on(f).map_err(|e| pg_error(&e, sql));
        }
        // join_all polls its futures in order, then `f`: each sends its
        // request when first polled, so they go out in the order written.
        let (earlier, result) = self.rt.block_on(futures_util::future::join(
            futures_util::future::join_all(queued),
            f,
        ));
        if let Some(e) = earlier.into_iter().find_map(Result::err) {
            return Err(pg_error(&e, None));
        }
        result.map_err(|e| pg_error(&e, sql))
    }

    /// Queues a statement whose result nobody reads (the writer's own
    /// connection; elsewhere it runs at once).
    pub fn execute_later(&self, stmt: &Statement, values: &[Value<'_>]) -> DbResult<()> {
        let Client::Own {
            client, pending, ..
        } = &self.client
        else {
            return self.execute(stmt, values).map(|_| ());
        };
        self.seal();
        let client = client.clone();
        let stmt = stmt.clone();
        let owned: Vec<PgValue> = values.iter().map(PgValue::from).collect();
        pending.borrow_mut().push(Box::pin(async move {
            let params: Vec<&(dyn PgToSql + Sync)> =
                owned.iter().map(|v| v as &(dyn PgToSql + Sync)).collect();
            client.execute(&stmt, &params).await
        }));
        if pending.borrow().len() >= MAX_PENDING {
            self.flush()?;
        }
        Ok(())
    }

    /// Like [`PgConn::execute_later`] for a statement without parameters;
    /// consecutive ones travel as one simple-protocol message.
    pub fn batch_later(&self, sql: &str) -> DbResult<()> {
        let Client::Own { pending_sql, .. } = &self.client else {
            return self.batch(sql);
        };
        let mut queued = pending_sql.borrow_mut();
        queued.push_str(sql);
        queued.push_str("; ");
        Ok(())
    }

    /// Turns the statements queued by `batch_later` into one pending request.
    fn seal(&self) {
        let Client::Own {
            client,
            pending,
            pending_sql,
            ..
        } = &self.client
        else {
            return;
        };
        let sql = std::mem::take(&mut *pending_sql.borrow_mut());
        if sql.is_empty() {
            return;
        }
        let client = client.clone();
        pending.borrow_mut().push(Box::pin(async move {
            client.batch_execute(&sql).await.map(|()| 0)
        }));
    }

    /// Waits for the queued statements; the first error among them.
    pub fn flush(&self) -> DbResult<()> {
        self.run(async { Ok(()) }, None)
    }

    /// Whether the server closed this connection.
    pub fn is_closed(&self) -> bool {
        self.client().is_closed()
    }

    /// Prepares (translated, cached per connection).
    pub fn prepare(&self, sql: &str) -> DbResult<Statement> {
        let translated = to_postgres(sql);
        match &self.client {
            Client::Pooled(o) => self
                .rt
                .block_on(o.prepare_cached(&translated))
                .map_err(|e| pg_error(&e, Some(&translated))),
            Client::Own { client, cache, .. } => {
                if let Some(s) = cache.borrow().get(sql) {
                    return Ok(s.clone());
                }
                let stmt = self.run(client.prepare(&translated), Some(&translated))?;
                cache.borrow_mut().insert(sql.to_string(), stmt.clone());
                Ok(stmt)
            }
        }
    }

    /// Prepares without caching (statements whose text varies).
    pub fn prepare_once(&self, sql: &str) -> DbResult<Statement> {
        let translated = to_postgres(sql);
        self.run(self.client().prepare(&translated), Some(&translated))
    }

    /// Rows of a prepared query.
    pub fn query(
        &self,
        stmt: &Statement,
        values: &[Value<'_>],
    ) -> DbResult<Vec<tokio_postgres::Row>> {
        self.run(self.client().query(stmt, &refs(values)), None)
    }

    /// Prepared queries, all sent together (one round trip); the rows of
    /// each, in order. Parameters in the driver's types, so PostgreSQL-only
    /// statements can pass arrays (`unnest`).
    pub fn query_all(
        &self,
        queries: &[(&Statement, &[&(dyn PgToSql + Sync)])],
    ) -> DbResult<Vec<Vec<tokio_postgres::Row>>> {
        let client = self.client();
        self.run(
            async {
                futures_util::future::join_all(
                    queries
                        .iter()
                        .map(|&(stmt, params)| client.query(stmt, params)),
                )
                .await
                .into_iter()
                .collect()
            },
            None,
        )
    }

    /// [`PgConn::query_all`] of `$N`-parameter SQL texts (prepared, cached).
    pub fn query_native(
        &self,
        queries: &[(&str, &[&(dyn PgToSql + Sync)])],
    ) -> DbResult<Vec<Vec<tokio_postgres::Row>>> {
        let stmts = queries
            .iter()
            .map(|(sql, _)| self.prepare(sql))
            .collect::<DbResult<Vec<_>>>()?;
        let with: Vec<_> = stmts
            .iter()
            .zip(queries)
            .map(|(stmt, &(_, params))| (stmt, params))
            .collect();
        self.query_all(&with)
    }

    /// Runs a prepared statement; returns the rows it changed.
    pub fn execute(&self, stmt: &Statement, values: &[Value<'_>]) -> DbResult<usize> {
        self.run(self.client().execute(stmt, &refs(values)), None)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Runs statements without parameters (DDL, BEGIN/COMMIT, ...).
    pub fn batch(&self, sql: &str) -> DbResult<()> {
        self.run(self.client().batch_execute(sql), Some(sql))
    }
}

/// Parameters as the driver takes them.
pub fn refs<'a>(values: &'a [Value<'_>]) -> Vec<&'a (dyn PgToSql + Sync)> {
    values.iter().map(|v| v as &(dyn PgToSql + Sync)).collect()
}

/// Maps a driver error: lost connections are `Unavailable` (503, retried by
/// clients), constraint violations `Constraint`, the rest `Other`.
pub fn pg_error(e: &tokio_postgres::Error, sql: Option<&str>) -> DbError {
    if e.is_closed() {
        return DbError::Unavailable(e.to_string());
    }
    match e.code() {
        None => DbError::Unavailable(format!("{e}")),
        Some(code) => {
            let class = &code.code()[..2];
            if class == "08" || class == "57" || *code == SqlState::CANNOT_CONNECT_NOW {
                DbError::Unavailable(describe(e))
            } else if class == "23" {
                DbError::Constraint(describe(e))
            } else if *code == SqlState::DISK_FULL {
                DbError::Full
            } else {
                let mut msg = describe(e);
                if let Some(sql) = sql {
                    msg.push_str(&format!(
                        " (in: {})",
                        sql.split_whitespace().collect::<Vec<_>>().join(" ")
                    ));
                }
                DbError::Other(anyhow::anyhow!(msg))
            }
        }
    }
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// A pool for `url`; connections are made lazily.
pub fn pool(url: &str, max: usize) -> anyhow::Result<Pool> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| anyhow::anyhow!("--database: not a valid PostgreSQL URL: {e}"))?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max)
        .wait_timeout(Some(std::time::Duration::from_secs(10)))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot create the PostgreSQL pool: {e}"))
}

/// The schema version natter keeps in a PostgreSQL database; `None` when it
/// holds no natter schema. Changes nothing.
pub async fn schema_version(url: &str) -> anyhow::Result<Option<i64>> {
    let host = host_of(url);
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {host}: {e}"))?;
    let task = tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT value FROM natter_meta WHERE key = 'schema_version'",
            &[],
        )
        .await;
    drop(client);
    let _ = task.await;
    match rows {
        Ok(rows) => match rows.first() {
            Some(r) => Ok(Some(r.get::<_, String>(0).parse()?)),
            None => Ok(None),
        },
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(e) => Err(anyhow::anyhow!("PostgreSQL at {host}: {e}")),
    }
}

/// Host (and port) of a URL, for error messages.
pub fn host_of(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(c) => {
            let host = c
                .get_hosts()
                .first()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_else(|| "localhost".into());
            let port = c.get_ports().first().copied().unwrap_or(5432);
            format!("{host}:{port}")
        }
        Err(_) => "?".into(),
    }
}

impl PgToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                #[allow(clippy::cast_precision_loss)]
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => Err(format!("cannot bind an integer to {ty}").into()),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                #[allow(clippy::cast_possible_truncation)]
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                _ => Err(format!("cannot bind a float to {ty}").into()),
            },
            Value::Text(s) => s.to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A column of any type the store uses, decoded (or a parameter, owned).
#[derive(Debug)]
pub enum PgValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl PgValue {
    /// Borrowed, for [`super::sql::FromSql`].
    pub fn as_ref(&self) -> Value<'_> {
        match self {
            PgValue::Null => Value::Null,
            PgValue::Int(i) => Value::Int(*i),
            PgValue::Real(f) => Value::Real(*f),
            PgValue::Text(s) => Value::Text(s),
            PgValue::Blob(b) => Value::Blob(b),
        }
    }
}

impl From<&Value<'_>> for PgValue {
    fn from(v: &Value<'_>) -> PgValue {
        match *v {
            Value::Null => PgValue::Null,
            Value::Int(i) => PgValue::Int(i),
            Value::Real(f) => PgValue::Real(f),
            Value::Text(s) => PgValue::Text(s.to_string()),
            Value::Blob(b) => PgValue::Blob(b.to_vec()),
        }
    }
}

impl PgToSql for PgValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        self.as_ref().to_sql(ty, out)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

impl<'a> PgFromSql<'a> for PgValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(match *ty {
            Type::INT8 => PgValue::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => PgValue::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => PgValue::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => PgValue::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => PgValue::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => PgValue::Real(f32::from_sql(ty, raw)?.into()),
            Type::BYTEA => PgValue::Blob(Vec::<u8>::from_sql(ty, raw)?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                PgValue::Text(String::from_sql(ty, raw)?)
            }
            _ => return Err(format!("unsupported column type {ty}").into()),
        })
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(PgValue::Null)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}
