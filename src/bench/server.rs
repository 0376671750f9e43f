//! The server under test and the client side of the load generator.
//!
//! [`Target`] is either a natter child process started from this very binary
//! (`serve --port 0` on a temp data dir, so its CPU, RSS and startup are its
//! own) or a server the admin named with `--url`, which must be on loopback.
//! [`Api`] is a thin reqwest client for the REST calls the scenarios need, and
//! [`connect`] opens a real WebSocket and waits for `ready`. Nothing here is
//! used by the serving code.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::Durability;

/// A client WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest wait for a single setup step (a REST call, a `ready` frame).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts only loopback URLs: the load generator must never aim at another host.
pub fn check_loopback(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--url {url:?} is not a URL"))?;
    ensure!(
        parsed.scheme() == "http",
        "--url must be http://127.0.0.1:PORT (got {url})"
    );
    let host = parsed.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ok = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    };
    ensure!(
        ok,
        "--url must point at this machine (127.0.0.1, localhost or [::1]); refusing {url}"
    );
    Ok(url.trim_end_matches('/').to_string())
}

/// The natter being measured.
pub struct Target {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    child: Option<Child>,
    /// The child's data dir (kept until drop).
    pub data_dir: Option<PathBuf>,
    _temp: Option<tempfile::TempDir>,
    /// When the child was exec'd.
    pub started: Option<Instant>,
}

/// `bench --database`: the PostgreSQL store started servers use.
static DATABASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every server this bench starts use `url` (PostgreSQL).
pub fn set_database(url: String) {
    let _ = DATABASE.set(url);
}

/// `bench --nodes`: the bus started servers share.
static BUS: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every server this bench starts join the bus at `url`.
pub fn set_bus(url: String) {
    let _ = BUS.set(url);
}

/// `bench --server-bin`: the binary started servers run.
static SERVER_BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Makes every server this bench starts run `bin` instead of this binary.
pub fn set_server_bin(bin: PathBuf) {
    let _ = SERVER_BIN.set(bin);
}

/// The PostgreSQL store of this bench run, if any.
pub fn database() -> Option<&'static str> {
    DATABASE.get().map(String::as_str)
}

impl Target {
    /// `--url` or a fresh child on a temp data dir.
    pub fn open(url: Option<&str>, durability: Durability) -> anyhow::Result<Target> {
        match url {
            Some(u) => Ok(Target {
                base: check_loopback(u)?,
                child: None,
                data_dir: None,
                _temp: None,
                started: None,
            }),
            None => {
                let temp = tempfile::Builder::new().prefix("natter-bench").tempdir()?;
                let mut t = Target::spawn(temp.path(), durability)?;
                t._temp = Some(temp);
                Ok(t)
            }
        }
    }

    /// Starts `natter serve --port 0` on `dir` and waits for its listening line.
    pub fn spawn(dir: &Path, durability: Durability) -> anyhow::Result<Target> {
        let exe = match SERVER_BIN.get() {
            Some(bin) => bin.clone(),
            None => std::env::current_exe().context("cannot find the natter binary")?,
        };
        let durability = match durability {
            Durability::Normal => "normal",
            Durability::Full => "full",
        };
        let started = Instant::now();
        let mut child = Command::new(exe)
            .args(["serve", "--port", "0", "--bind", "127.0.0.1", "--data-dir"])
            .arg(dir)
            .args([
                "--durability",
                durability,
                "--log-level",
                "warn,natter=info",
                // A load test is a flood on purpose: no per-user rate limits.
                "--send-rate",
                "0",
                "--login-rate",
                "0",
                "--register-rate",
                "0",
                "--upload-rate",
                "0",
                // `idle` shares users among many sockets (up to 100 each).
                "--max-sockets-per-user",
                "0",
            ])
            .args(database().map(|d| ["--database", d]).into_iter().flatten())
            .args(
                BUS.get()
                    .map(|b| ["--bus", b.as_str()])
                    .into_iter()
                    .flatten(),
            )
            .env("NO_COLOR", "1")
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .env_remove("PORT")
            .env_remove("JWT_SECRET")
            .env_remove("NATTER_REGISTRATION")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start natter serve")?;
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // Drains the child's log for its whole life so it never blocks on a
        // full pipe; the first listening line goes back to us.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(pos) = line.find("listening on http://") {
                        let url: String = line[pos + "listening on ".len()..]
                            .chars()
                            .take_while(|c| !c.is_whitespace() && !c.is_control())
                            .collect();
                        let _ = tx.send(url);
                        sent = true;
                        continue;
                    }
                }
                if line.contains("ERROR") || line.contains("WARN") {
                    eprintln!("natter: {line}");
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                bail!("natter serve did not print its listening line within 60 s");
            }
        };
        Ok(Target {
            base,
            child: Some(child),
            data_dir: Some(dir.to_path_buf()),
            _temp: None,
            started: Some(started),
        })
    }

    /// The child's pid, when we started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The child's resident set size in bytes (`VmRSS`).
    pub fn rss(&self) -> Option<u64> {
        rss_of(self.pid()?)
    }

    /// The child's CPU time (user + system) so far, from /proc.
    pub fn cpu(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Some(Duration::from_millis(ticks * 1000 / hz))
    }

    /// Stops the child with SIGTERM (graceful: commits, checkpoints), bounded.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill(2) on the pid of our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait()? {
                ensure!(status.success(), "natter serve exited with {status}");
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("natter serve did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `VmRSS` of a process in bytes.
pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Raises this process's open-file limit (the server's own helper).
pub use crate::connections::raise_fd_limit;

/// A registered bench user.
#[derive(Debug, Clone)]
pub struct User {
    /// Server id.
    pub id: i64,
    /// Bearer token.
    pub token: String,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// REST calls of the scenarios.
#[derive(Clone)]
pub struct Api {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Pooled keep-alive client.
    pub http: reqwest::Client,
}

impl Api {
    /// A client for `base`.
    pub fn new(base: &str) -> anyhow::Result<Api> {
        Ok(Api {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .timeout(STEP_TIMEOUT)
                .pool_max_idle_per_host(64)
                .no_proxy()
                .build()?,
        })
    }

    /// GET with a token; the JSON body of a 2xx, else an error.
    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        let status = r.status();
        let body = r.text().await?;
        ensure!(status.is_success(), "GET {path}: {status} {body}");
        Ok(serde_json::from_str(&body)?)
    }

    /// POST JSON (with a token when given); the JSON body of a 2xx.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> anyhow::Result<Value> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await?;
        let status = r.status();
        let text = r.text().await?;
        ensure!(status.is_success(), "POST {path}: {status} {text}");
        Ok(serde_json::from_str(&text)?)
    }

    /// `GET /health` answered 200.
    pub async fn healthy(&self) -> bool {
        match self.http.get(format!("{}/health", self.base)).send().await {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        }
    }

    /// Registers one user with a unique email.
    pub async fn register(&self, tag: &str) -> anyhow::Result<User> {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let nonce = std::process::id();
        let body = self
            .post(
                "/auth/register",
                None,
                json!({
                    "email": format!("bench-{tag}-{nonce}-{n}@bench.invalid"),
                    "password": "bench password",
                    "name": format!("bench {tag} {n}"),
                }),
            )
            .await?;
        Ok(User {
            id: body["user"]["id"]
                .as_i64()
                .context("register: no user id")?,
            token: body["token"]
                .as_str()
                .context("register: no token")?
                .to_string(),
        })
    }

    /// Registers `n` users, `parallel` at a time (argon2 runs per sign-up).
    pub async fn register_many(
        &self,
        tag: &str,
        n: usize,
        parallel: usize,
    ) -> anyhow::Result<Vec<User>> {
        let stream = futures_util::stream::iter(0..n)
            .map(|_| self.register(tag))
            .buffered(parallel.max(1));
        let users: Vec<anyhow::Result<User>> = stream.collect().await;
        users.into_iter().collect()
    }

    /// Creates a chat as `creator` with `others` (plus the creator); its id.
    pub async fn create_chat(
        &self,
        creator: &User,
        others: &[i64],
        group: bool,
    ) -> anyhow::Result<i64> {
        let mut ids = vec![creator.id];
        ids.extend_from_slice(others);
        let mut body = json!({"participantIds": ids, "isGroup": group});
        if group {
            body["name"] = json!("bench group");
        }
        let chat = self.post("/chat", Some(&creator.token), body).await?;
        chat["id"].as_i64().context("create chat: no id")
    }

    /// Every message id of `chat` through `GET /chat/:id/messages?after=`
    /// pages, oldest first, bounded by `max_pages`; group notes (`SYSTEM`,
    /// written by the server) are not counted.
    pub async fn all_message_ids(
        &self,
        user: &User,
        chat: i64,
        max_pages: usize,
    ) -> anyhow::Result<Vec<i64>> {
        let mut ids = Vec::new();
        let mut after = 0i64;
        for _ in 0..max_pages {
            let page = self
                .get(
                    &format!("/chat/{chat}/messages?after={after}&limit=200"),
                    &user.token,
                )
                .await?;
            let items = page["items"].as_array().context("history: no items")?;
            for m in items {
                let id = m["id"].as_i64().context("history: no id")?;
                after = after.max(id);
                if m["messageType"] != "SYSTEM" {
                    ids.push(id);
                }
            }
            if !page["hasMore"].as_bool().unwrap_or(false) {
                return Ok(ids);
            }
        }
        bail!("chat {chat} has more than {max_pages} pages of history")
    }
}

/// Opens `/ws` for `token` with a small read buffer and waits for `ready`;
/// returns the socket and the `ready` cursor.
pub async fn connect(base: &str, token: &str) -> anyhow::Result<(Ws, i64)> {
    let url = format!("{}/ws?token={token}", base.replacen("http://", "ws://", 1));
    // 4 KiB instead of the default 128 KiB: thousands of sockets per process.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(url, Some(config), true),
    )
    .await
    .context("ws connect timed out")??;
    let ready = tokio::time::timeout(STEP_TIMEOUT, async {
        while let Some(msg) = ws.next().await {
            if let WsMessage::Text(t) = msg? {
                let v: Value = serde_json::from_str(t.as_str())?;
                if v["event"] == "ready" {
                    return Ok::<_, anyhow::Error>(v["data"]["cursor"].as_i64().unwrap_or(0));
                }
            }
        }
        bail!("socket closed before ready")
    })
    .await
    .context("no ready frame")??;
    Ok((ws, ready))
}

/// What a server frame is, read without a full JSON parse (the bench reads
/// hundreds of thousands per second on the same two cores as the server).
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// `message:new`: id, sender, and the content (the bench puts its send
    /// timestamp there).
    New { id: i64, sender: i64, content: i64 },
    /// `ack` of a send: the ack number and the stored message id.
    Ack { ack: u64, id: i64 },
    /// An `error` frame.
    Error(String),
    /// Anything else (receipts, presence, pings).
    Other,
}

pub(crate) fn number_after(text: &str, key: &str) -> Option<i64> {
    let start = text.find(key)? + key.len();
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

/// Classifies a text frame.
pub fn classify(text: &str) -> Frame {
    if text.starts_with(r#"{"event":"message:new""#) {
        let data = &text[text.find(r#""data":"#).unwrap_or(0)..];
        return match (
            number_after(data, r#""id":"#),
            number_after(data, r#""senderId":"#),
        ) {
            (Some(id), Some(sender)) => Frame::New {
                id,
                sender,
                content: number_after(data, r#""content":""#).unwrap_or(-1),
            },
            _ => Frame::Error(format!("unreadable message:new {text}")),
        };
    }
    if text.starts_with(r#"{"event":"ack""#) {
        let ack = text
            .rfind(r#","ack":"#)
            .and_then(|p| number_after(&text[p..], r#""ack":"#));
        // The ack's data is a JSON map with sorted keys: find `"id":` anywhere.
        let id = number_after(text, r#""id":"#);
        return match (ack, id) {
            (Some(ack), Some(id)) => Frame::Ack {
                ack: ack as u64,
                id,
            },
            _ => Frame::Error(format!("unreadable ack {text}")),
        };
    }
    if text.starts_with(r#"{"event":"error""#) {
        return Frame::Error(text.to_string());
    }
    Frame::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_classified() {
        assert_eq!(
            classify(
                r#"{"event":"message:new","data":{"id":12,"chatId":3,"senderId":7,"content":"991","x":1}}"#
            ),
            Frame::New {
                id: 12,
                sender: 7,
                content: 991
            }
        );
        assert_eq!(
            classify(
                r#"{"event":"ack","data":{"chatId":3,"clientId":"b1","content":"1","id":12,"replyToId":null},"ack":5}"#
            ),
            Frame::Ack { ack: 5, id: 12 }
        );
        assert!(matches!(
            classify(r#"{"event":"error","data":{}}"#),
            Frame::Error(_)
        ));
        assert_eq!(
            classify(r#"{"event":"message:status","data":{}}"#),
            Frame::Other
        );
    }

    #[test]
    fn only_loopback_urls() {
        assert!(check_loopback("http://127.0.0.1:4000").is_ok());
        assert!(check_loopback("http://localhost:4000/").is_ok());
        assert!(check_loopback("http://[::1]:4000").is_ok());
        assert!(check_loopback("http://example.com").is_err());
        assert!(check_loopback("http://10.0.0.1:4000").is_err());
    }
}
