//! `natter bench <scenario>`: the load generator.
//!
//! Each scenario starts natter as a child process on a temp data dir (or
//! targets a loopback `--url`), creates users and chats through the REST API,
//! connects real WebSockets, runs bounded in time (`--seconds`) and size, then
//! checks that every message reached every intended recipient exactly once and
//! is stored. It prints a table, and with `--json` one JSON object on the last
//! line; a failed check exits non-zero. Serving code never imports this module.

mod direct;
mod group;
mod history;
mod idle;
mod load;
pub mod server;
mod sio;
mod startup;
mod words;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::config::Durability;

/// The scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// N users in N/2 1-on-1 pairs, all sending (closed loop or `--rate`).
    Direct,
    /// One group of `--members`, `--senders` sending at `--rate` in total.
    Group,
    /// `--connections` WebSockets held; server RSS per connection.
    Idle,
    /// `--messages` seeded, then history pages, chat list and /sync timed.
    History,
    /// `--messages` seeded like history, then `GET /search` timed.
    Search,
    /// Exec to `/health`, idle RSS, binary size.
    Startup,
}

/// Flags of `natter bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub scenario: Scenario,

    /// Target a running natter (loopback only) instead of starting one.
    #[arg(long)]
    pub url: Option<String>,

    /// Longest sending/measuring phase, in seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,

    /// direct: users (N/2 pairs); idle: distinct users sharing the connections.
    #[arg(long)]
    pub users: Option<usize>,

    /// group: members of the group.
    #[arg(long, default_value_t = 1000)]
    pub members: usize,

    /// group: how many members send.
    #[arg(long, default_value_t = 4)]
    pub senders: usize,

    /// idle: WebSocket connections to hold.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,

    /// history: messages to seed (default 1,000,000); direct/group: stop after
    /// this many sends in total.
    #[arg(long)]
    pub messages: Option<u64>,

    /// Messages per second in total (direct: default closed loop; group: default 200).
    #[arg(long)]
    pub rate: Option<f64>,

    /// direct: sends in flight per sender in closed loop.
    #[arg(long, default_value_t = 8)]
    pub window: usize,

    /// direct: the endpoint the clients use: `ws` (`/ws`) or `socketio`
    /// (`/socket.io/`, Engine.IO v4 over WebSocket).
    #[arg(long, value_enum, default_value_t = sio::Transport::Ws)]
    pub transport: sio::Transport,

    /// Start this natter binary as the server instead of this one (to
    /// measure another build with this load generator; ignored with --url).
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<std::path::PathBuf>,

    /// history: chats the seeded messages are spread over.
    #[arg(long, default_value_t = 20)]
    pub chats: usize,

    /// history: timed requests per endpoint.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,

    /// Durability of the started server (ignored with --url).
    #[arg(long, value_enum, default_value_t = Durability::Normal)]
    pub durability: Durability,

    /// Print one JSON object on the last line too.
    #[arg(long)]
    pub json: bool,

    /// direct: start this many nodes on one PostgreSQL database (needs
    /// --database) joined by --bus; each pair's two users sit on different
    /// nodes, so every message crosses nodes.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,

    /// The bus the started nodes share (with --nodes > 1).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub bus: String,

    /// Run the started server on this PostgreSQL database instead of SQLite
    /// (an empty database: `createdb natter_bench`; the bench leaves its
    /// rows there, so use a fresh one per run).
    #[arg(long)]
    pub database: Option<String>,
}

/// The result of a run; `--json` prints it as one line.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub scenario: String,
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub msgs_per_sec: f64,
    pub deliveries_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_ms: Option<f64>,
    /// Scenario-specific figures (name → value), also in the table.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Problems found by the correctness checks.
    pub errors: Vec<String>,
}

impl Report {
    fn new(scenario: Scenario) -> Report {
        Report {
            scenario: format!("{scenario:?}").to_lowercase(),
            ..Report::default()
        }
    }

    /// Adds a scenario-specific figure.
    fn put(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.extra.insert(key.to_string(), value.into());
    }

    /// Fills p50/p90/p99/max from latencies in microseconds.
    fn latencies(&mut self, lat: &mut [u64]) {
        let s = Percentiles::of(lat);
        self.p50_ms = s.p50;
        self.p90_ms = s.p90;
        self.p99_ms = s.p99;
        self.max_ms = s.max;
    }

    fn print_table(&self) {
        let mut rows: Vec<(String, String)> = vec![
            ("scenario".into(), self.scenario.clone()),
            ("sent".into(), self.sent.to_string()),
            ("delivered".into(), self.delivered.to_string()),
            ("lost".into(), self.lost.to_string()),
            ("duplicates".into(), self.duplicates.to_string()),
            ("msgs/s".into(), format!("{:.0}", self.msgs_per_sec)),
            (
                "deliveries/s".into(),
                format!("{:.0}", self.deliveries_per_sec),
            ),
            ("p50 ms".into(), format!("{:.2}", self.p50_ms)),
            ("p90 ms".into(), format!("{:.2}", self.p90_ms)),
            ("p99 ms".into(), format!("{:.2}", self.p99_ms)),
            ("max ms".into(), format!("{:.2}", self.max_ms)),
        ];
        if let Some(r) = self.rss_bytes {
            rows.push((
                "server RSS".into(),
                format!("{:.1} MiB", r as f64 / 1048576.0),
            ));
        }
        if let Some(c) = self.connections {
            rows.push(("connections".into(), c.to_string()));
        }
        if let Some(s) = self.startup_ms {
            rows.push(("startup ms".into(), format!("{s:.1}")));
        }
        for (k, v) in &self.extra {
            let v = match v {
                serde_json::Value::Number(n) if n.is_f64() => {
                    format!("{:.3}", n.as_f64().unwrap_or_default())
                }
                other => other.to_string(),
            };
            rows.push((k.clone(), v));
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        println!("{:-<1$}", "", width + 24);
        for (k, v) in rows {
            println!("{k:<width$}  {v}");
        }
        println!("{:-<1$}", "", width + 24);
        for e in &self.errors {
            println!("FAILED: {e}");
        }
    }
}

/// p50/p90/p99/max in milliseconds.
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// From microseconds (sorted in place); zeros when empty.
    pub fn of(us: &mut [u64]) -> Percentiles {
        us.sort_unstable();
        let at = |q: f64| -> f64 {
            if us.is_empty() {
                return 0.0;
            }
            let i = ((us.len() as f64 * q).ceil() as usize).clamp(1, us.len()) - 1;
            us[i] as f64 / 1000.0
        };
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// Counters shown by the progress line.
#[derive(Default)]
pub struct Progress {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub delivered: AtomicU64,
    pub stage: std::sync::Mutex<String>,
}

impl Progress {
    fn set_stage(&self, s: &str) {
        if let Ok(mut g) = self.stage.lock() {
            *g = s.to_string();
        }
    }
}

/// Prints a progress line to stderr every second until dropped.
struct ProgressLine {
    done: Arc<AtomicBool>,
}

impl ProgressLine {
    fn start(name: &'static str, p: Arc<Progress>) -> ProgressLine {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let t0 = Instant::now();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            while !d.load(Ordering::Relaxed) {
                tick.tick().await;
                if d.load(Ordering::Relaxed) {
                    break;
                }
                let stage = p.stage.lock().map(|s| s.clone()).unwrap_or_default();
                eprintln!(
                    "[{name}] {:>5.1}s {stage}: sent {} delivered {}",
                    t0.elapsed().as_secs_f64(),
                    p.sent.load(Ordering::Relaxed),
                    p.delivered.load(Ordering::Relaxed)
                );
            }
        });
        ProgressLine { done }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// Runs one scenario, prints its report; an error when a check failed.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(u) = &args.url {
        server::check_loopback(u)?;
    }
    server::raise_fd_limit();
    if let Some(db) = &args.database {
        let url = crate::config::DatabaseUrl::parse(Some(db), std::path::Path::new("."));
        anyhow::ensure!(
            matches!(url, Ok(crate::config::DatabaseUrl::Postgres(_))),
            "bench --database takes a postgres:// URL (SQLite is the default)"
        );
        server::set_database(db.clone());
    }
    if let Some(bin) = &args.server_bin {
        anyhow::ensure!(
            bin.is_file(),
            "--server-bin {} is not a file",
            bin.display()
        );
        server::set_server_bin(bin.clone());
    }
    if args.nodes > 1 {
        anyhow::ensure!(
            args.scenario == Scenario::Direct && args.url.is_none(),
            "--nodes is for bench direct on servers it starts"
        );
        anyhow::ensure!(
            args.database.is_some(),
            "--nodes needs --database postgres://… (the nodes share it)"
        );
        let bus = crate::config::BusUrl::parse(&args.bus)?;
        anyhow::ensure!(
            bus != crate::config::BusUrl::Local,
            "--nodes needs a shared --bus (nats://…)"
        );
        server::set_bus(args.bus.clone());
    }
    let progress = Arc::new(Progress::default());
    let name: &'static str = match args.scenario {
        Scenario::Direct => "direct",
        Scenario::Group => "group",
        Scenario::Idle => "idle",
        Scenario::History => "history",
        Scenario::Search => "search",
        Scenario::Startup => "startup",
    };
    let line = ProgressLine::start(name, progress.clone());
    let mut report = Report::new(args.scenario);
    let outcome = match args.scenario {
        Scenario::Direct => direct::run(&args, &progress, &mut report).await,
        Scenario::Group => group::run(&args, &progress, &mut report).await,
        Scenario::Idle => idle::run(&args, &progress, &mut report).await,
        Scenario::History => history::run(&args, &progress, &mut report).await,
        Scenario::Search => history::run_search(&args, &progress, &mut report).await,
        Scenario::Startup => startup::run(&args, &progress, &mut report).await,
    };
    drop(line);
    if let Err(e) = outcome {
        report.errors.push(format!("{e:#}"));
    }
    if report.lost > 0 {
        report
            .errors
            .push(format!("{} deliveries lost", report.lost));
    }
    if report.duplicates > 0 {
        report
            .errors
            .push(format!("{} duplicate deliveries", report.duplicates));
    }
    if report.errors.len() > 20 {
        let more = report.errors.len() - 20;
        report.errors.truncate(20);
        report.errors.push(format!("... and {more} more"));
    }
    report.print_table();
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    if report.errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("bench {name} FAILED: {}", report.errors.join("; "))
    }
}

/// Microseconds since `base`.
fn micros_since(base: Instant) -> u64 {
    base.elapsed().as_micros() as u64
}
