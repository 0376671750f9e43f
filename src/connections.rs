//! Open TCP connections: how many, from whom, and which may be shed.
//!
//! Every accepted connection is registered with the [`Tracker`] before it is
//! served, and released when its socket is closed (the [`TrackedIo`] wrapper
//! releases it on drop, so a connection upgraded to a WebSocket keeps
//! counting until the WebSocket is gone).
//!
//! Bounds:
//! - **Idle deadline.** A connection with no request in flight (and not
//!   upgraded) is closed [`ConnLimits::idle_timeout`] after it was accepted or
//!   its last response finished. This covers a client that never sends a
//!   byte (the HTTP/1 header timeout only starts with the first byte, and
//!   the HTTP/1-or-2 sniffing read had none) and idle keep-alive.
//! - **Per client IP.** A peer already holding
//!   [`ConnLimits::max_per_ip`] connections gets its new one closed at once.
//!   Proxy peers ([`is_proxy_peer`]: loopback and the `--trust-proxy` list) are exempt, since every client
//!   behind them shares their address; they still count in the total.
//! - **Total.** At [`ConnLimits::max_total`] open connections a new one is
//!   let in by **evicting the oldest connection that has no request in
//!   flight**: connections that never sent a byte first, then idle ones
//!   (keep-alive between requests, or a request head still arriving), oldest
//!   accepted first. A connection with a request in flight (a long-poll, a
//!   download) or upgraded to a WebSocket is never evicted. Only when every
//!   open connection is busy is the new one refused. So a flood of idle
//!   connections cannot lock out a new client (`/health` keeps answering),
//!   and the total stays below the file-descriptor limit.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::TrustedProxies;

/// File descriptors kept out of the derived connection cap (database, WAL,
/// uploads being written or served, the listener, logs).
pub const FD_RESERVE: u64 = 128;

/// Connection bounds (from the `serve` flags).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Open connections in total; `None` derives it from the fd limit at
    /// start ([`derived_max_total`]).
    pub max_total: Option<usize>,
    /// Open connections per client IP (proxy peers exempt); 0 = no limit.
    pub max_per_ip: usize,
    /// Longest a connection may stay without a request in flight.
    pub idle_timeout: Duration,
}

/// The default total cap for an open-file limit: 80 % of it, minus
/// [`FD_RESERVE`] (at least 16).
pub fn derived_max_total(nofile: u64) -> usize {
    let cap = (nofile / 5 * 4).saturating_sub(FD_RESERVE).max(16);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (logging both) and
/// returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            tracing::warn!("cannot read the open-file limit; assuming 1024");
            return 1024;
        }
        let soft = lim.rlim_cur;
        // macOS reports an unlimited hard limit but refuses more than OPEN_MAX.
        let target = if cfg!(target_os = "macos") {
            lim.rlim_max.min(10_240)
        } else {
            lim.rlim_max
        };
        if target > soft {
            let raised = libc::rlimit {
                rlim_cur: target,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                tracing::info!(
                    soft = soft,
                    hard = lim.rlim_max,
                    now = target,
                    "raised the open-file limit"
                );
                return target;
            }
            tracing::warn!(
                soft = soft,
                hard = lim.rlim_max,
                "cannot raise the open-file limit"
            );
        } else {
            tracing::info!(soft = soft, hard = lim.rlim_max, "open-file limit");
        }
        soft
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

/// Whether connections from this peer come from a reverse proxy (or the
/// host itself) and so carry many clients: such peers have no per-IP
/// connection cap. Loopback peers, and the proxies of `--trust-proxy`.
pub fn is_proxy_peer(ip: IpAddr, trusted: &TrustedProxies) -> bool {
    crate::config::canonical_ip(ip).is_loopback() || trusted.contains(ip)
}

struct Entry {
    ip: IpAddr,
    in_flight: u32,
    upgraded: bool,
    /// When it was accepted or its last response ended.
    idle_since: Instant,
    evict: CancellationToken,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    conns: HashMap<u64, Entry>,
    /// Connections that have not sent a byte, by age (ids grow).
    fresh: BTreeSet<u64>,
    /// Connections with bytes but no request in flight, by age.
    idle: BTreeSet<u64>,
    per_ip: HashMap<IpAddr, usize>,
    /// Connections shed in the current burst (for one log line when it
    /// starts and one when it ends), and when the last one was.
    shed: u64,
    last_shed: Option<Instant>,
}

/// Quiet time after which a burst of shedding counts as over.
const SHED_QUIET: Duration = Duration::from_secs(10);

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The peer holds its per-IP share.
    PerIp,
    /// The total cap is reached and every connection is busy.
    Full,
}

/// The open connections of one server.
pub struct Tracker {
    inner: Mutex<Inner>,
    max_total: usize,
    max_per_ip: usize,
    idle_timeout: Duration,
    /// Peers exempt from the per-IP cap besides loopback.
    proxies: TrustedProxies,
}

impl Tracker {
    /// A tracker with these bounds (`max_total` resolved).
    pub fn new(
        max_total: usize,
        max_per_ip: usize,
        idle_timeout: Duration,
        proxies: TrustedProxies,
    ) -> Arc<Tracker> {
        Arc::new(Tracker {
            inner: Mutex::new(Inner::default()),
            max_total: max_total.max(1),
            max_per_ip,
            idle_timeout,
            proxies,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of open connections.
    pub fn open(&self) -> usize {
        self.lock().conns.len()
    }

    /// Registers a new connection from `ip`, evicting the oldest idle one if
    /// the total cap is reached.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnHandle, Refused> {
        let mut inner = self.lock();
        if self.max_per_ip > 0
            && !is_proxy_peer(ip, &self.proxies)
            && inner.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip
        {
            self.note_shed(&mut inner);
            return Err(Refused::PerIp);
        }
        if inner.conns.len() >= self.max_total {
            let victim = inner.fresh.first().or_else(|| inner.idle.first()).copied();
            let Some(victim) = victim else {
                self.note_shed(&mut inner);
                return Err(Refused::Full);
            };
            remove(&mut inner, victim);
            self.note_shed(&mut inner);
        } else if inner.shed > 0 && inner.last_shed.is_some_and(|t| t.elapsed() >= SHED_QUIET) {
            tracing::info!(shed = inner.shed, "no longer shedding connections");
            inner.shed = 0;
        }
        inner.next_id += 1;
        let id = inner.next_id;
        let evict = CancellationToken::new();
        let changed = Arc::new(Notify::new());
        inner.conns.insert(
            id,
            Entry {
                ip,
                in_flight: 0,
                upgraded: false,
                idle_since: Instant::now(),
                evict: evict.clone(),
            },
        );
        inner.fresh.insert(id);
        *inner.per_ip.entry(ip).or_default() += 1;
        Ok(ConnHandle {
            tracker: self.clone(),
            id,
            evict,
            changed,
        })
    }

    fn note_shed(&self, inner: &mut Inner) {
        if inner.shed == 0 {
            tracing::warn!(
                open = inner.conns.len(),
                max = self.max_total,
                per_ip = self.max_per_ip,
                "connection cap or a per-IP share reached: shedding connections"
            );
        }
        inner.shed += 1;
        inner.last_shed = Some(Instant::now());
    }
}

/// Forgets a connection and cancels it (eviction or release).
fn remove(inner: &mut Inner, id: u64) {
    let Some(entry) = inner.conns.remove(&id) else {
        return;
    };
    entry.evict.cancel();
    inner.fresh.remove(&id);
    inner.idle.remove(&id);
    if let Some(n) = inner.per_ip.get_mut(&entry.ip) {
        *n -= 1;
        if *n == 0 {
            inner.per_ip.remove(&entry.ip);
        }
    }
}

/// One registered connection.
pub struct ConnHandle {
    tracker: Arc<Tracker>,
    id: u64,
    evict: CancellationToken,
    changed: Arc<Notify>,
}

/// What the connection's task should do next.
enum Wait {
    /// A request is in flight or the connection was upgraded: wait for a
    /// change.
    Busy,
    /// Idle: close it at this instant unless something changes.
    Until(Instant),
    /// Evicted or released.
    Gone,
}

impl ConnHandle {
    /// Connection id (for logs).
    pub fn id(&self) -> u64 {
        self.id
    }

    fn wait(&self) -> Wait {
        let inner = self.tracker.lock();
        match inner.conns.get(&self.id) {
            None => Wait::Gone,
            Some(e) if e.in_flight > 0 || e.upgraded => Wait::Busy,
            Some(e) => Wait::Until(e.idle_since + self.tracker.idle_timeout),
        }
    }

    /// Resolves when the connection should be closed: evicted, or idle past
    /// the deadline. Never resolves while a request is in flight or after
    /// an upgrade.
    pub async fn closed(&self) {
        loop {
            let changed = self.changed.notified();
            match self.wait() {
                Wait::Gone => return,
                Wait::Busy => {
                    tokio::select! {
                        _ = changed => {}
                        _ = self.evict.cancelled() => return,
                    }
                }
                Wait::Until(at) => {
                    tokio::select! {
                        _ = changed => {}
                        _ = self.evict.cancelled() => return,
                        _ = tokio::time::sleep_until(at) => {
                            if matches!(self.wait(), Wait::Until(at) if at <= Instant::now()) {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The connection's first byte arrived.
    fn first_byte(&self) {
        let mut inner = self.tracker.lock();
        if inner.fresh.remove(&self.id)
            && inner.conns.get(&self.id).is_some_and(|e| e.in_flight == 0)
        {
            inner.idle.insert(self.id);
        }
    }

    /// A request arrived; the guard ends it when dropped.
    pub fn request(self: &Arc<Self>) -> RequestGuard {
        let mut inner = self.tracker.lock();
        if let Some(e) = inner.conns.get_mut(&self.id) {
            e.in_flight += 1;
        }
        inner.fresh.remove(&self.id);
        inner.idle.remove(&self.id);
        drop(inner);
        self.changed.notify_one();
        RequestGuard { conn: self.clone() }
    }

    fn request_done(&self) {
        let mut inner = self.tracker.lock();
        let id = self.id;
        let Some(e) = inner.conns.get_mut(&id) else {
            return;
        };
        e.in_flight = e.in_flight.saturating_sub(1);
        if e.in_flight == 0 && !e.upgraded {
            e.idle_since = Instant::now();
            inner.idle.insert(id);
        }
        drop(inner);
        self.changed.notify_one();
    }

    fn upgraded(&self) {
        let mut inner = self.tracker.lock();
        if let Some(e) = inner.conns.get_mut(&self.id) {
            e.upgraded = true;
        }
        inner.idle.remove(&self.id);
    }
}

impl Drop for ConnHandle {
    fn drop(&mut self) {
        remove(&mut self.tracker.lock(), self.id);
    }
}

/// A request in flight on a connection.
pub struct RequestGuard {
    conn: Arc<ConnHandle>,
}

impl RequestGuard {
    /// Keeps the request in flight until the response body is finished
    /// (or dropped); a `101 Switching Protocols` marks the connection as
    /// upgraded for good.
    pub fn attach(self, response: Response<Body>) -> Response<Body> {
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            self.conn.upgraded();
        }
        response.map(|body| Body::new(GuardedBody { body, _guard: self }))
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.conn.request_done();
    }
}

struct GuardedBody {
    body: Body,
    _guard: RequestGuard,
}

impl http_body::Body for GuardedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A TCP stream that tells its [`ConnHandle`] about its first byte and
/// keeps the connection registered for as long as the socket is open.
pub struct TrackedIo {
    stream: TcpStream,
    conn: Arc<ConnHandle>,
    fresh: bool,
}

impl TrackedIo {
    /// Wraps an accepted stream.
    pub fn new(stream: TcpStream, conn: Arc<ConnHandle>) -> Self {
        TrackedIo {
            stream,
            conn,
            fresh: true,
        }
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if self.fresh && buf.filled().len() > before {
            self.fresh = false;
            self.conn.first_byte();
        }
        polled
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn per_ip_cap_spares_proxy_peers() {
        let t = Tracker::new(100, 2, Duration::from_secs(10), TrustedProxies::default());
        let a = t.admit(ip("203.0.113.7")).unwrap();
        let _b = t.admit(ip("203.0.113.7")).unwrap();
        assert_eq!(t.admit(ip("203.0.113.7")).err(), Some(Refused::PerIp));
        assert!(t.admit(ip("203.0.113.8")).is_ok());
        let _many: Vec<_> = (0..5).map(|_| t.admit(ip("127.0.0.1")).unwrap()).collect();
        assert!(t.admit(ip("::ffff:127.0.0.1")).is_ok());
        drop(a);
        assert!(t.admit(ip("203.0.113.7")).is_ok());
    }

    #[tokio::test]
    async fn the_total_cap_evicts_fresh_then_idle_never_busy() {
        let t = Tracker::new(3, 0, Duration::from_secs(10), TrustedProxies::default());
        let busy = Arc::new(t.admit(ip("10.0.0.1")).unwrap());
        let _req = busy.request();
        let idle = Arc::new(t.admit(ip("10.0.0.2")).unwrap());
        idle.first_byte();
        let fresh = t.admit(ip("10.0.0.3")).unwrap();
        // Full: the fresh one goes first, then the oldest idle one, never
        // the busy one.
        let d = t.admit(ip("10.0.0.4")).unwrap();
        assert!(fresh.evict.is_cancelled());
        assert!(!idle.evict.is_cancelled());
        d.first_byte();
        let _e = t.admit(ip("10.0.0.5")).unwrap();
        assert!(!d.evict.is_cancelled());
        assert!(idle.evict.is_cancelled());
        assert!(!busy.evict.is_cancelled());
        assert_eq!(t.open(), 3);
    }
}
