//! natter: a self-hosted, WhatsApp-like chat server in one executable.
//!
//! `main.rs` parses flags and calls [`serve`]; integration tests and the load
//! generator call it too, on a listener they bound themselves (port 0).

pub mod admin;
pub mod auth;
pub mod bench;
pub mod config;
pub mod db;
pub mod error;
pub mod files;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod realtime;
pub mod state;

use std::future::Future;

use std::time::Duration;

use anyhow::Context;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::config::Config;
use crate::db::Db;
use crate::state::AppState;

/// Makes every file and folder natter creates private to its user: umask
/// 077, so the database, WAL, uploads, backups and temp files are 0600 and
/// folders 0700 whatever the caller's umask (the process-wide setting, set
/// before any file is created; `main` calls it first thing, `serve` again
/// for embedders and tests).
pub fn private_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// Opens the data dir and database and builds the shared state.
pub async fn open_state(config: Config) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(config.uploads_dir().join("chat"))
        .with_context(|| format!("cannot create {}", config.uploads_dir().display()))?;
    let path = config.db_path();
    let durability = config.durability;
    let db = tokio::task::spawn_blocking(move || Db::open(&path, durability)).await??;
    Ok(AppState::new(config, db))
}

/// Longest a client may take to send a request's headers (slowloris).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Longest wait for in-flight requests at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves natter on `listener` until `shutdown` resolves; then closes
/// WebSockets (1001), finishes in-flight requests, commits queued writes and
/// checkpoints the WAL.
///
/// Connections are served with hyper-util directly (not `axum::serve`) for
/// the limits a public server needs: a header read timeout, a bounded request
/// head, and TCP_NODELAY so small frames (acks, receipts) never wait.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    private_files();
    let _lock = admin::lock_data_dir(&config.data_dir)?;
    let state = open_state(config).await?;
    ops::typing::start_expiry(state.downgrade());
    files::start_sweeper(state.downgrade(), state.config().sweep_interval);
    ops::users::start_revocation_watch(state.downgrade());
    limits::start_cleanup(state.downgrade());
    let addr = listener.local_addr()?;
    tracing::info!("natter listening on http://{addr}");
    let app = http::router(state.clone());

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD_BYTES as u32);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    tracing::info!("shutting down");
    drop(listener);
    state.hub().close_all();
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish in time");
    }
    state.db().close().await;
    tracing::info!("stopped");
    Ok(())
}
