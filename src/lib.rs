//! natter: a self-hosted, WhatsApp-like chat server in one executable.
//!
//! `main.rs` parses flags and calls [`serve`]; integration tests and the load
//! generator call it too, on a listener they bound themselves (port 0).

pub mod auth;
pub mod bench;
pub mod config;
pub mod db;
pub mod error;
pub mod files;
pub mod http;
pub mod model;
pub mod ops;
pub mod realtime;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::db::Db;
use crate::state::AppState;

/// Opens the data dir and database and builds the shared state.
pub async fn open_state(config: Config) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(config.uploads_dir().join("chat"))
        .with_context(|| format!("cannot create {}", config.uploads_dir().display()))?;
    let path = config.db_path();
    let durability = config.durability;
    let db = tokio::task::spawn_blocking(move || Db::open(&path, durability)).await??;
    let state = AppState::new(config, db);
    ops::typing::start_expiry(state.downgrade());
    files::start_sweeper(state.downgrade(), state.config().sweep_interval);
    Ok(state)
}

/// Serves natter on `listener` until `shutdown` resolves; then closes
/// WebSockets (1001), finishes in-flight requests, commits queued writes and
/// checkpoints the WAL.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = open_state(config).await?;
    let addr = listener.local_addr()?;
    tracing::info!("natter listening on http://{addr}");
    let app = http::router(state.clone());
    let hub_state = state.clone();
    // Small frames (acks, receipts) must not wait for Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down");
        hub_state.hub().close_all();
    })
    .await?;
    state.db().close().await;
    tracing::info!("stopped");
    Ok(())
}
