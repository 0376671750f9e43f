//! The single writer: the only connection that writes.
//!
//! Requests hand closures to one `std::thread` through a bounded channel. The
//! thread takes whatever is queued (up to [`MAX_BATCH`]) into one
//! transaction (SQLite `BEGIN IMMEDIATE`; PostgreSQL `BEGIN` plus a
//! transaction-level advisory lock, see [`super::Db`]), runs each closure inside its own SAVEPOINT
//! (so one failing op rolls back alone), COMMITs once, and only then answers
//! each caller: nothing is acknowledged before it is durable, and under load
//! many messages share one commit (group commit) without waiting for a timer.
//! It never talks to sockets or the hub; callers publish after the reply.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread;

use tokio::sync::{mpsc, oneshot};

use super::sql::{Conn, DbError, DbResult};
use crate::error::{AppError, AppResult};

/// Ops committed together at most.
const MAX_BATCH: usize = 512;
/// Queued ops before callers wait for room (back-pressure, bounded memory).
const QUEUE: usize = 8192;

/// How a batch ended, told to each op's caller.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Committed,
    Failed,
    /// The database could not be reached: nothing of the batch is stored.
    Unavailable,
}

/// Tells a caller how its op ended once the batch's COMMIT is known.
type Completion = Box<dyn FnOnce(Outcome) + Send>;
/// One op: runs in a savepoint (or, with `None`, is told the database is
/// unreachable), says whether it succeeded.
type Job = Box<dyn FnOnce(Option<Conn<'_>>) -> (bool, Completion) + Send>;

enum Msg {
    Job(Job),
    Shutdown(oneshot::Sender<()>),
}

/// The writer's connection: SQLite's one connection, or a PostgreSQL
/// connection that is replaced when the server drops it.
pub trait WriteConn: Send + 'static {
    /// Opens the batch's transaction (reconnecting first if needed).
    fn begin(&mut self) -> DbResult<()>;
    /// The connection, between `begin` and `commit`.
    fn conn(&self) -> Conn<'_>;
    /// Runs a statement without parameters (savepoints).
    fn exec(&self, sql: &str) -> DbResult<()>;
    /// Like `exec`, but may be sent with the next statement (PostgreSQL
    /// pipelines it; its error shows there).
    fn exec_later(&self, sql: &str) -> DbResult<()> {
        self.exec(sql)
    }
    /// Commits the batch.
    fn commit(&mut self) -> DbResult<()>;
    /// Abandons the batch.
    fn rollback(&mut self);
    /// Last words at shutdown (SQLite: checkpoint the WAL).
    fn close(&mut self) {}
    /// Ops committed together at most.
    fn max_batch(&self) -> usize {
        MAX_BATCH
    }
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
}

impl Writer {
    /// Starts the writer thread on `conn` (already migrated).
    pub fn start(conn: impl WriteConn) -> anyhow::Result<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE);
        thread::Builder::new()
            .name("natter-writer".into())
            .spawn(move || run(conn, rx))?;
        Ok(Writer { tx })
    }

    /// Runs `f` in the next batch; resolves after the batch committed.
    pub async fn write<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> AppResult<T> + Send + 'static,
    {
        self.submit(f).await?.await
    }

    /// Queues `f` for the next batch and resolves once it is queued (ops
    /// queued one after another run, and commit, in that order); the
    /// returned future resolves after its batch committed. Dropping that
    /// future does not cancel the op.
    pub async fn submit<T, F>(
        &self,
        f: F,
    ) -> AppResult<impl std::future::Future<Output = AppResult<T>> + Send + 'static>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> AppResult<T> + Send + 'static,
    {
        Ok(self.slot().await?.submit(f))
    }

    /// Waits for room in the writer's queue (back-pressure); the slot then
    /// queues one op without waiting.
    pub async fn slot(&self) -> AppResult<Slot<'_>> {
        self.tx
            .reserve()
            .await
            .map(Slot)
            .map_err(|_| AppError::Internal(anyhow::anyhow!("the writer has stopped")))
    }

    /// Commits what is queued, lets the connection say its last words
    /// (SQLite checkpoints the WAL) and stops the thread.
    pub async fn shutdown(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(done_tx)).await.is_ok() {
            let _ = done_rx.await;
        }
    }
}

/// Room for one op in the writer's queue (see [`Writer::slot`]).
pub struct Slot<'a>(mpsc::Permit<'a, Msg>);

impl Slot<'_> {
    /// Queues `f` now; the future resolves after its batch committed.
    pub fn submit<T, F>(
        self,
        f: F,
    ) -> impl std::future::Future<Output = AppResult<T>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> AppResult<T> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel::<AppResult<T>>();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                // Queued writes are part of the op: their errors are its
                // (waited for even when the op failed, so none is left over).
                Some(conn) => {
                    let result = f(&conn);
                    let flushed = conn.flush();
                    result.and_then(|v| flushed.map(|()| v).map_err(Into::into))
                }
                None => Err(AppError::Unavailable),
            };
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |outcome| {
                let result = match outcome {
                    Outcome::Committed => result,
                    Outcome::Unavailable => Err(AppError::Unavailable),
                    Outcome::Failed => match result {
                        // The op's own error says more than "commit failed".
                        Err(e) => Err(e),
                        Ok(_) => Err(AppError::Internal(anyhow::anyhow!("commit failed"))),
                    },
                };
                let _ = reply_tx.send(result);
            });
            (ok, completion)
        });
        self.0.send(Msg::Job(job));
        async move {
            reply_rx
                .await
                .map_err(|_| AppError::Internal(anyhow::anyhow!("write op panicked")))?
        }
    }
}

fn run(mut conn: impl WriteConn, mut rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut completions: Vec<Completion> = Vec::with_capacity(MAX_BATCH);
    loop {
        let mut shutdown = None;
        match rx.blocking_recv() {
            None => break,
            Some(Msg::Shutdown(done)) => shutdown = Some(done),
            Some(Msg::Job(job)) => batch.push(job),
        }
        while shutdown.is_none() && batch.len() < conn.max_batch() {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => batch.push(job),
                Ok(Msg::Shutdown(done)) => shutdown = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut conn, &mut batch, &mut completions);
        }
        if let Some(done) = shutdown {
            rx.close();
            // Ops already queued behind the shutdown still get committed.
            while let Ok(msg) = rx.try_recv() {
                if let Msg::Job(job) = msg {
                    batch.push(job);
                }
            }
            if !batch.is_empty() {
                commit_batch(&mut conn, &mut batch, &mut completions);
            }
            conn.close();
            let _ = done.send(());
            return;
        }
    }
}

fn commit_batch(
    conn: &mut impl WriteConn,
    batch: &mut Vec<Job>,
    completions: &mut Vec<Completion>,
) {
    if let Err(e) = conn.begin() {
        let outcome = if matches!(e, DbError::Unavailable(_)) {
            tracing::warn!(error = %e, "database unavailable; writes answer 503");
            Outcome::Unavailable
        } else {
            tracing::error!(error = %e, "cannot begin a write transaction");
            Outcome::Failed
        };
        for job in batch.drain(..) {
            if let Ok((_, completion)) = catch_unwind(AssertUnwindSafe(|| job(None))) {
                completion(outcome);
            }
        }
        return;
    }
    for job in batch.drain(..) {
        if conn.exec_later("SAVEPOINT op").is_err() {
            // The connection is gone mid-batch: the op cannot run; COMMIT
            // below fails too and every caller hears so.
            if let Ok((_, completion)) = catch_unwind(AssertUnwindSafe(|| job(None))) {
                completions.push(completion);
            }
            continue;
        }
        match catch_unwind(AssertUnwindSafe(|| job(Some(conn.conn())))) {
            Ok((ok, completion)) => {
                if ok {
                    let _ = conn.exec_later("RELEASE SAVEPOINT op");
                } else {
                    undo(conn);
                }
                completions.push(completion);
            }
            Err(_) => {
                tracing::error!("a write op panicked; rolled back alone");
                undo(conn);
            }
        }
    }
    let outcome = match conn.commit() {
        Ok(()) => Outcome::Committed,
        Err(e) => {
            tracing::error!(error = %e, "commit failed");
            conn.rollback();
            if matches!(e, DbError::Unavailable(_)) {
                Outcome::Unavailable
            } else {
                Outcome::Failed
            }
        }
    };
    for completion in completions.drain(..) {
        completion(outcome);
    }
}

/// Rolls one op back to its savepoint.
fn undo(conn: &impl WriteConn) {
    // Both, whatever the first says: a queued statement's error can be
    // reported by the ROLLBACK TO that nonetheless ran.
    let _ = conn.exec("ROLLBACK TO SAVEPOINT op");
    let _ = conn.exec("RELEASE SAVEPOINT op");
}
