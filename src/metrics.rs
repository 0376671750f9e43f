//! Counters for `GET /metrics` (Prometheus text format). Plain atomics: the
//! hot paths only add to them; the handler reads them with the hub's gauges
//! and the database size.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the request latency histogram.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// Process-wide counters of one app.
#[derive(Default)]
pub struct Metrics {
    requests: AtomicU64,
    errors: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_micros: AtomicU64,
    messages_sent: AtomicU64,
    messages_delivered: AtomicU64,
    /// Link previews by outcome (`stored`, `refused_address`, ...): rare,
    /// so a map under a lock.
    link_previews: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Records one HTTP request.
    pub fn request(&self, elapsed: Duration, server_error: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if server_error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// A message was stored (REST or WebSocket).
    pub fn message_sent(&self) {
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// A `message:new` reached a recipient's device.
    pub fn message_delivered(&self) {
        self.messages_delivered.fetch_add(1, Ordering::Relaxed);
    }

    /// A link preview ended with `outcome`.
    pub fn link_preview(&self, outcome: &'static str) {
        if let Ok(mut map) = self.link_previews.lock() {
            *map.entry(outcome).or_default() += 1;
        }
    }

    /// The Prometheus exposition text.
    pub fn render(&self, sockets: usize, online: usize, stored: i64, db_bytes: u64) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        gauge(
            "natter_websocket_connections",
            "Open WebSocket connections.",
            "gauge",
            sockets.to_string(),
        );
        gauge(
            "natter_users_online",
            "Users online.",
            "gauge",
            online.to_string(),
        );
        gauge(
            "natter_messages_stored",
            "Messages ever stored (ids issued).",
            "gauge",
            stored.to_string(),
        );
        gauge(
            "natter_messages_sent_total",
            "Messages stored since start.",
            "counter",
            self.messages_sent.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            "natter_messages_delivered_total",
            "message:new frames written to recipients' sockets since start.",
            "counter",
            self.messages_delivered.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            "natter_database_bytes",
            "Size of the database and its WAL.",
            "gauge",
            db_bytes.to_string(),
        );
        gauge(
            "natter_http_server_errors_total",
            "HTTP responses with a 5xx status.",
            "counter",
            self.errors.load(Ordering::Relaxed).to_string(),
        );
        let total = self.requests.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP natter_http_request_duration_seconds HTTP request latency.\n# TYPE natter_http_request_duration_seconds histogram"
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "natter_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "natter_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {total}"
        );
        let _ = writeln!(
            out,
            "natter_http_request_duration_seconds_sum {}",
            self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "natter_http_request_duration_seconds_count {total}");
        let _ = writeln!(
            out,
            "# HELP natter_link_previews_total Link previews by outcome since start.\n# TYPE natter_link_previews_total counter"
        );
        if let Ok(map) = self.link_previews.lock() {
            for (outcome, n) in map.iter() {
                let _ = writeln!(
                    out,
                    "natter_link_previews_total{{outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out
    }
}
