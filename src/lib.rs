//! natter: a self-hosted, WhatsApp-like chat server in one executable.
//!
//! `main.rs` parses flags and calls [`serve`]; integration tests and the load
//! generator call it too, on a listener they bound themselves (port 0).

pub mod admin;
pub mod audio;
pub mod auth;
pub mod bench;
pub mod config;
pub mod connections;
pub mod db;
pub mod error;
pub mod files;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod objects;
pub mod ops;
pub mod outbound;
pub mod previews;
pub mod push;
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

/// Opens the data dir, the database and the bus and builds the shared
/// state (the bus is read from once [`realtime::bus::Bus::start`] runs).
pub async fn open_state(mut config: Config) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(config.uploads_dir().join("chat"))
        .with_context(|| format!("cannot create {}", config.uploads_dir().display()))?;
    let url = config.database.clone();
    let durability = config.durability;
    let db = tokio::task::spawn_blocking(move || Db::open_url(&url, durability)).await??;
    let bus = match &config.bus {
        config::BusUrl::Local => realtime::bus::Bus::Local,
        // One SQLite file has one node (the data dir lock): its own id.
        nats if !config.database.is_postgres() => {
            realtime::bus::Bus::connect(nats, &config::random_secret()[..16]).await?
        }
        nats => {
            let cluster = db
                .shared_secret("cluster_id", config::random_secret()[..16].to_string())
                .await
                .map_err(|e| anyhow::anyhow!("cannot read or store the cluster id: {e}"))?;
            realtime::bus::Bus::connect(nats, &cluster).await?
        }
    };
    if config.vapid.is_none() {
        // PostgreSQL: one VAPID key for every node, kept in the database.
        let candidate = push::VapidKey::generate().to_stored();
        let stored = db
            .shared_secret("vapid_key", candidate)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read or store the shared VAPID key: {e}"))?;
        config.vapid = Some(push::VapidKey::from_stored(&stored)?);
    }
    if config.jwt_secret.is_empty() {
        // PostgreSQL without --jwt-secret: one key for every node, kept in
        // the database (seeded from an older data dir's file if there is one).
        let candidate = config::existing_secret(&config.data_dir.join("jwt-secret"))
            .unwrap_or_else(config::random_secret);
        let secret = db
            .shared_secret("jwt_secret", candidate)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read or store the shared JWT secret: {e}"))?;
        config.jwt_secret = secret.into_bytes();
    }
    let objects = objects::Objects::open(&config.uploads).await?;
    Ok(AppState::with_parts(config, db, bus, objects))
}

/// Longest a client may take to send a request's headers (slowloris).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Longest wait for in-flight requests at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Longest wait at shutdown for real-time sockets to send their close frame.
pub const SOCKET_CLOSE_GRACE: Duration = Duration::from_secs(2);
/// First pause after a failed `accept` (out of file descriptors and the
/// like); it doubles per failure in a row up to [`ACCEPT_BACKOFF_MAX`].
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause after failed `accept`s.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves natter on `listener` until `shutdown` resolves; then closes
/// WebSockets (1001), finishes in-flight requests, commits queued writes and
/// checkpoints the WAL.
///
/// Connections are served with hyper-util directly (not `axum::serve`) for
/// the limits a public server needs: a header read timeout, a bounded request
/// head, TCP_NODELAY so small frames (acks, receipts) never wait, and the
/// connection bounds of [`connections`] (idle deadline, per-IP and total
/// caps with eviction of idle connections).
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    private_files();
    let _lock = admin::lock_data_dir(&config.data_dir)?;
    let state = open_state(config).await?;
    state.bus().start(state.downgrade()).await?;
    ops::typing::start_expiry(state.downgrade());
    files::start_sweeper(state.downgrade(), state.config().sweep_interval);
    ops::users::start_revocation_watch(state.downgrade());
    limits::start_cleanup(state.downgrade());
    let nofile = connections::raise_fd_limit();
    let limits = state.config().connections;
    let max_total = limits
        .max_total
        .unwrap_or_else(|| connections::derived_max_total(nofile));
    tracing::info!(
        max_total,
        max_per_ip = limits.max_per_ip,
        idle_timeout_secs = limits.idle_timeout.as_secs(),
        "connection limits"
    );
    let tracker = connections::Tracker::new(
        max_total,
        limits.max_per_ip,
        limits.idle_timeout,
        state.config().trust_proxy.clone(),
    );
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
    let mut accept_errors = 0u64;
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off
                    // (doubling, capped), log once per burst, keep serving.
                    if accept_errors == 0 {
                        tracing::warn!(error = %e, "accept failed; backing off");
                    } else {
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    }
                    accept_errors += 1;
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = &mut shutdown => break,
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if accept_errors > 0 {
            tracing::warn!(failures = accept_errors, "accept works again");
            accept_errors = 0;
            backoff = ACCEPT_BACKOFF_MIN;
        }
        // Over the per-IP share, or full of busy connections: close it now.
        let Ok(handle) = tracker.admit(peer.ip()) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handle = std::sync::Arc::new(handle);
        let app = app.clone();
        let on_request = handle.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let guard = on_request.request();
                req.extensions_mut().insert(ConnectInfo(peer));
                let response = app.clone().oneshot(req.map(axum::body::Body::new));
                async move { response.await.map(|r| guard.attach(r)) }
            });
        let io = connections::TrackedIo::new(stream, handle.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Evicted or idle past the deadline: dropping the connection
            // closes its socket (an upgraded one lives on in its handler).
            tokio::select! {
                _ = conn => {}
                () = handle.closed() => {}
            }
        });
    }
    tracing::info!("shutting down");
    drop(listener);
    state.hub().close_all();
    // Upgraded sockets are not hyper's to wait for: give their writers a
    // moment to send the close frame (1001), so clients know to reconnect.
    let sockets_closed = tokio::time::Instant::now() + SOCKET_CLOSE_GRACE;
    while state.hub().writers_running() > 0 && tokio::time::Instant::now() < sockets_closed {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
