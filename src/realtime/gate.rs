//! The gate in front of `/socket.io/`: what socketioxide is not asked to do.
//!
//! - **Pending sessions are capped.** An Engine.IO handshake creates a
//!   session before anyone is authenticated (the token comes with the
//!   namespace connect that follows). Each handshake takes a slot that is
//!   freed when the session authenticates or ends (the slot rides in the
//!   handshake request's extensions, which the session keeps for its
//!   lifetime; an unauthenticated session ends after [`CONNECT_TIMEOUT`]).
//!   At [`MAX_PENDING`] slots in total, or [`MAX_PENDING_PER_IP`] for one
//!   client IP (proxy peers exempt), a handshake is refused with 429 before
//!   a session exists, so handshakes without a token cannot grow memory.
//! - **Every request of a session is checked for `Origin`.** A later request
//!   (`sid=`: polls, posts, the upgrade to WebSocket) with a browser
//!   `Origin` that `/ws` would refuse is answered 403, unless the session was
//!   opened from that same origin: such a session is refused at its
//!   namespace connect (`connect_error: origin not allowed`, which the
//!   socket.io client understands), and its polls must reach that answer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::connections::is_proxy_peer;
use crate::error::AppError;
use crate::realtime::{origin_allowed, peer_of};
use crate::state::AppState;

/// Path prefix of the Engine.IO endpoint.
pub const PATH: &str = "/socket.io/";
/// Unauthenticated sessions in total.
pub const MAX_PENDING: usize = 1024;
/// Unauthenticated sessions per client IP (proxy peers exempt).
pub const MAX_PENDING_PER_IP: usize = 32;
/// How long a session may stay without connecting to the namespace.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest handshake answer read to learn a session id.
const HANDSHAKE_BYTES: usize = 4096;

#[derive(Default)]
struct Inner {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    /// Session id → the foreign `Origin` it was opened from.
    foreign: HashMap<String, HeaderValue>,
}

/// Pending Engine.IO sessions of one server.
#[derive(Default)]
pub struct Gate {
    inner: Mutex<Inner>,
}

impl Gate {
    /// An empty gate.
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of pending (unauthenticated) sessions.
    pub fn pending(&self) -> usize {
        self.lock().total
    }

    fn acquire(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        proxies: &crate::config::TrustedProxies,
    ) -> Option<PendingSlot> {
        let mut inner = self.lock();
        if inner.total >= MAX_PENDING {
            return None;
        }
        let ip = ip.filter(|ip| !is_proxy_peer(*ip, proxies));
        if let Some(ip) = ip {
            let n = inner.per_ip.entry(ip).or_default();
            if *n >= MAX_PENDING_PER_IP {
                return None;
            }
            *n += 1;
        }
        inner.total += 1;
        Some(PendingSlot {
            gate: self.clone(),
            ip,
            sid: OnceLock::new(),
            held: Mutex::new(true),
        })
    }
}

/// One pending session's slot; freed by [`PendingSlot::authenticated`] or
/// when dropped with the session.
pub struct PendingSlot {
    gate: Arc<Gate>,
    ip: Option<IpAddr>,
    /// Set when the session was opened from a foreign origin.
    sid: OnceLock<String>,
    held: Mutex<bool>,
}

impl PendingSlot {
    /// The session authenticated: it no longer counts as pending.
    pub fn authenticated(&self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if !std::mem::replace(&mut *held, false) {
            return;
        }
        let mut inner = self.gate.lock();
        inner.total -= 1;
        if let Some(ip) = self.ip {
            if let Some(n) = inner.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    inner.per_ip.remove(&ip);
                }
            }
        }
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.authenticated();
        if let Some(sid) = self.sid.get() {
            self.gate.lock().foreign.remove(sid);
        }
    }
}

/// The extension a handshake request carries into its session.
#[derive(Clone)]
pub struct Pending(pub Arc<PendingSlot>);

/// State of [`check`].
#[derive(Clone)]
pub struct GateState {
    pub app: AppState,
    pub gate: Arc<Gate>,
}

fn query_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The middleware (in front of the Socket.IO layer).
pub async fn check(State(s): State<GateState>, mut req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with(PATH) {
        return next.run(req).await;
    }
    let peer = peer_of(req.extensions());
    let origin_ok = origin_allowed(&s.app, req.headers(), peer);
    if let Some(sid) = query_param(&req, "sid") {
        if origin_ok {
            return next.run(req).await;
        }
        let opened_from = s.gate.lock().foreign.get(sid).cloned();
        if opened_from.is_some() && opened_from.as_ref() == req.headers().get(header::ORIGIN) {
            return next.run(req).await;
        }
        return AppError::Forbidden("origin not allowed".into()).into_response();
    }
    // A handshake: it needs a slot before a session is created.
    let Some(slot) = s
        .gate
        .acquire(peer.map(|p| p.ip()), &s.app.config().trust_proxy)
    else {
        return AppError::RateLimited {
            retry_after_secs: CONNECT_TIMEOUT.as_secs(),
        }
        .into_response();
    };
    let slot = Arc::new(slot);
    req.extensions_mut().insert(Pending(slot.clone()));
    let polling = query_param(&req, "transport") == Some("polling");
    let origin = req.headers().get(header::ORIGIN).cloned();
    let response = next.run(req).await;
    let (Some(origin), false, true) = (origin, origin_ok, polling) else {
        return response;
    };
    // Opened from a foreign origin over polling: remember the session so
    // its polls get to the `connect_error`.
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, HANDSHAKE_BYTES)
        .await
        .unwrap_or_default();
    let sid = bytes
        .strip_prefix(b"0")
        .and_then(|open| serde_json::from_slice::<serde_json::Value>(open).ok())
        .and_then(|open| open["sid"].as_str().map(str::to_string));
    if let Some(sid) = sid {
        if slot.sid.set(sid.clone()).is_ok() {
            s.gate.lock().foreign.insert(sid, origin);
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}
