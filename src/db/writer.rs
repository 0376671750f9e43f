//! The single writer: the only connection that writes.
//!
//! Requests hand closures to one `std::thread` through a bounded channel. The
//! thread takes whatever is queued (up to [`MAX_BATCH`]) into one
//! `BEGIN IMMEDIATE` transaction, runs each closure inside its own SAVEPOINT
//! (so one failing op rolls back alone), COMMITs once, and only then answers
//! each caller: nothing is acknowledged before it is durable, and under load
//! many messages share one commit (group commit) without waiting for a timer.
//! It never talks to sockets or the hub; callers publish after the reply.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::error::{AppError, AppResult};

/// Ops committed together at most.
const MAX_BATCH: usize = 512;
/// Queued ops before callers wait for room (back-pressure, bounded memory).
const QUEUE: usize = 8192;

/// Tells a caller how its op ended once the batch's COMMIT is known.
type Completion = Box<dyn FnOnce(bool) + Send>;
/// One op: runs in a savepoint, says whether it succeeded.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

enum Msg {
    Job(Job),
    Shutdown(oneshot::Sender<()>),
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
}

impl Writer {
    /// Starts the writer thread on `conn` (already migrated).
    pub fn start(conn: Connection) -> anyhow::Result<Writer> {
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
        F: FnOnce(&Connection) -> AppResult<T> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel::<AppResult<T>>();
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |committed| {
                let result = if committed {
                    result
                } else {
                    Err(AppError::Internal(anyhow::anyhow!("commit failed")))
                };
                let _ = reply_tx.send(result);
            });
            (ok, completion)
        });
        self.tx
            .send(Msg::Job(job))
            .await
            .map_err(|_| AppError::Internal(anyhow::anyhow!("the writer has stopped")))?;
        reply_rx
            .await
            .map_err(|_| AppError::Internal(anyhow::anyhow!("write op panicked")))?
    }

    /// Commits what is queued, checkpoints the WAL and stops the thread.
    pub async fn shutdown(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(done_tx)).await.is_ok() {
            let _ = done_rx.await;
        }
    }
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut completions: Vec<Completion> = Vec::with_capacity(MAX_BATCH);
    loop {
        let mut shutdown = None;
        match rx.blocking_recv() {
            None => break,
            Some(Msg::Shutdown(done)) => shutdown = Some(done),
            Some(Msg::Job(job)) => batch.push(job),
        }
        while shutdown.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => batch.push(job),
                Ok(Msg::Shutdown(done)) => shutdown = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&conn, &mut batch, &mut completions);
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
                commit_batch(&conn, &mut batch, &mut completions);
            }
            if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
                tracing::warn!(error = %e, "WAL checkpoint at shutdown failed");
            }
            let _ = done.send(());
            return;
        }
    }
}

/// Runs a statement without parameters through the statement cache, so
/// the per-op `SAVEPOINT`/`RELEASE` are not parsed again for every op.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn commit_batch(conn: &Connection, batch: &mut Vec<Job>, completions: &mut Vec<Completion>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "cannot begin a write transaction");
        // Dropping the jobs drops their reply senders: callers get an error.
        batch.clear();
        return;
    }
    let undo = |conn: &Connection| {
        let _ = exec(conn, "ROLLBACK TO op").and_then(|()| exec(conn, "RELEASE op"));
    };
    for job in batch.drain(..) {
        if exec(conn, "SAVEPOINT op").is_err() {
            continue;
        }
        match catch_unwind(AssertUnwindSafe(|| job(conn))) {
            Ok((ok, completion)) => {
                if ok {
                    let _ = exec(conn, "RELEASE op");
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
    let committed = match exec(conn, "COMMIT") {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "commit failed");
            let _ = conn.execute_batch("ROLLBACK");
            false
        }
    };
    for completion in completions.drain(..) {
        completion(committed);
    }
}
