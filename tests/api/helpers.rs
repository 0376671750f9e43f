//! Test harness: the real router and server on 127.0.0.1:0 with a temp data
//! dir, real HTTP (reqwest) and real WebSockets (tokio-tungstenite).
//! Logs only with `TEST_LOG=1`.
//!
//! The store is SQLite in the data dir by default. With
//! `NATTER_TEST_DB=postgres` every server instead gets a fresh PostgreSQL
//! database `natter_test_<hex>` on `NATTER_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432`), created here and dropped when the
//! last holder lets go: the [`DataDir`] (which a restart hands from `stop` to
//! `spawn_in`) or the [`Server`]s started on that directory. The suite is one
//! harness for both stores; tests that only make sense on SQLite return early
//! on [`is_postgres`].

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use natter::config::{Config, ServeArgs};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    /// One node's own address: the same as `addr` except in cluster mode
    /// ([`is_cluster`]), where `addr` is the round-robin proxy. For
    /// Socket.IO long-polling, whose sessions live on one node (a load
    /// balancer needs sticky sessions for it; WebSockets do not).
    pub node_addr: SocketAddr,
    pub node_base: String,
    pub client: reqwest::Client,
    pub dir: DataDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The second node in cluster mode ([`is_cluster`]).
    peer: Option<Box<TestApp>>,
}

/// A registered user.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: i64,
    pub token: String,
    pub email: String,
    pub name: String,
}

fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_test_writer()
            .try_init();
    }
}

/// A `natter serve` child process (the real binary) on a data dir.
pub struct Server {
    pub child: std::process::Child,
    pub base: String,
    /// Its PostgreSQL database (PG mode); dropped after the child is killed.
    pub db: Option<Arc<TestDb>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A line of the child's `/proc/<pid>/status`, in kB (`VmRSS`, `VmHWM`).
    pub fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc status"))
    }
}

/// Starts the real binary: `natter serve --port 0 --data-dir DIR ARGS...`
/// (plus `--database <its test database>` in PG mode, unless ARGS name one),
/// `adjust` may change the command (environment, umask); returns once it
/// logged the URL it listens on, and fails with the child's stderr if it
/// exits first.
///
/// In PG mode a restart on the same DIR gets the same database as long as a
/// [`Server`] (or [`DataDir`]) of that DIR is still alive when the new one
/// starts — `server = spawn_binary(dir, ..)` over the old value does that.
pub fn spawn_binary(
    dir: &std::path::Path,
    args: &[&str],
    adjust: impl FnOnce(&mut std::process::Command),
) -> Server {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let db = if args.iter().any(|a| a.starts_with("--database")) {
        None
    } else {
        database_for(dir)
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_natter"));
    cmd.args(["serve", "--port", "0", "--data-dir"])
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(db) = &db {
        cmd.arg("--database").arg(&db.url);
    }
    adjust(&mut cmd);
    let mut child = cmd.spawn().expect("start natter");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Result<String, String>>();
    std::thread::spawn(move || {
        let mut sent = false;
        let mut early = String::new();
        let echo = std::env::var("TEST_LOG").is_ok();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if echo {
                eprintln!("[natter {}] {line}", std::process::id());
            }
            if !sent {
                if let Some(at) = line.find("http://127.0.0.1:") {
                    let url: String = line[at..]
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect();
                    let _ = tx.send(Ok(url));
                    sent = true;
                } else if early.len() < 16_384 {
                    early.push_str(&line);
                    early.push('\n');
                }
            }
        }
        if !sent {
            let _ = tx.send(Err(early));
        }
    });
    let base = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(base)) => base,
        Ok(Err(stderr)) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("natter serve exited before listening:\n{stderr}")
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("natter serve: no listening line in 20 s ({e})")
        }
    };
    Server { child, base, db }
}

/// Starts natter with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// Starts natter with adjusted settings.
pub async fn spawn_with(adjust: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    spawn_in(dir, adjust).await
}

/// Starts natter on an existing data dir (restart tests: a [`DataDir`] from
/// [`TestApp::stop`] keeps its PostgreSQL database in PG mode).
pub async fn spawn_in(dir: impl Into<DataDir>, adjust: impl FnOnce(&mut ServeArgs)) -> TestApp {
    init_logs();
    let mut dir: DataDir = dir.into();
    if dir.db.is_none() {
        dir.db = database_for(dir.path());
    }
    let cluster = is_cluster();
    if cluster && dir.bucket.is_none() {
        dir.bucket = Some(cluster_bucket().await);
    }
    let mut args = ServeArgs::with_data_dir(dir.path());
    args.database = dir.db.as_ref().map(|db| db.url.clone());
    args.jwt_secret = None;
    args.frontend_url = None;
    args.upload_max_size = 52_428_800;
    args.history_days = 0;
    args.message_limit = 50;
    args.registration = natter::config::Registration::Open;
    adjust(&mut args);
    if !cluster {
        return start_node(args, dir).await;
    }
    // A 2-node cluster behind a round-robin proxy: the same database, bus
    // and bucket; every new connection (each request: the client keeps none
    // open) goes to the next node.
    args.bus = nats_url();
    args.uploads = format!(
        "s3://{}?endpoint={}&region=us-east-1",
        dir.bucket.as_deref().unwrap(),
        s3_endpoint()
    );
    let peer_dir = DataDir {
        db: dir.db.clone(),
        bucket: dir.bucket.clone(),
        dir: tempfile::tempdir().expect("temp dir"),
    };
    let mut peer_args = args.clone();
    peer_args.data_dir = peer_dir.path().to_path_buf();
    let mut app = start_node(args, dir).await;
    let peer = start_node(peer_args, peer_dir).await;
    let proxy = round_robin(vec![app.addr, peer.addr]).await;
    app.addr = proxy;
    app.base = format!("http://{proxy}");
    app.client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    app.peer = Some(Box::new(peer));
    app
}

/// `NATTER_TEST_CLUSTER=1` (with `NATTER_TEST_DB=postgres`, a NATS server
/// and `NATTER_TEST_S3` pointing at an S3 endpoint; `./test.sh` sets it all
/// up): every server of the suite is two nodes behind a round-robin proxy.
pub fn is_cluster() -> bool {
    std::env::var("NATTER_TEST_CLUSTER").as_deref() == Ok("1")
}

/// The S3 endpoint of the cluster pass (`NATTER_TEST_S3`).
fn s3_endpoint() -> String {
    std::env::var("NATTER_TEST_S3")
        .expect("NATTER_TEST_CLUSTER=1 needs NATTER_TEST_S3 (an S3 endpoint)")
}

/// A fresh bucket on the cluster pass's S3 endpoint.
async fn cluster_bucket() -> String {
    assert!(
        is_postgres(),
        "NATTER_TEST_CLUSTER=1 needs NATTER_TEST_DB=postgres"
    );
    let name = format!("natter-{:016x}", rand::random::<u64>());
    let r = reqwest::Client::new()
        .put(format!("{}/{name}", s3_endpoint()))
        .send()
        .await
        .expect("create bucket");
    assert!(r.status().is_success(), "create bucket: {}", r.status());
    name
}

/// A TCP proxy on 127.0.0.1 handing each new connection to the next of
/// `nodes` (a load balancer's round robin); runs until the test ends.
async fn round_robin(nodes: Vec<SocketAddr>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind proxy");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut next = 0usize;
        while let Ok((inbound, _)) = listener.accept().await {
            let node = nodes[next % nodes.len()];
            next += 1;
            tokio::spawn(async move {
                let Ok(outbound) = TcpStream::connect(node).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                // Each direction on its own, as a load balancer does: a
                // server that answers (413) and closes before reading the
                // whole body still gets its answer through.
                let (mut in_r, mut in_w) = inbound.into_split();
                let (mut out_r, mut out_w) = outbound.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut in_r, &mut out_w).await;
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut out_w).await;
                });
                let _ = tokio::io::copy(&mut out_r, &mut in_w).await;
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut in_w).await;
                up.abort();
            });
        }
    });
    addr
}

/// The HTTP client of a [`TestApp`] (30 s per request).
fn test_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Runs `natter serve --port 0 --data-dir <temp> ARGS` (with the S3 test
/// credentials) expecting it to refuse to start; returns its stderr.
pub fn serve_refuses(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["serve", "--port", "0"])
        .args(args)
        .arg("--data-dir")
        .arg(dir.path())
        .envs(S3_ENV.iter().copied())
        .env_remove("DATABASE_URL")
        .output()
        .expect("run natter");
    assert!(!out.status.success(), "natter serve {args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts one in-process node with `args` on `dir`.
async fn start_node(args: ServeArgs, dir: DataDir) -> TestApp {
    let config = Config::from_args(&args).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(natter::serve(config, listener, async {
        let _ = rx.await;
    }));
    let app = TestApp {
        addr,
        base: format!("http://{addr}"),
        node_addr: addr,
        node_base: format!("http://{addr}"),
        client: test_client(),
        dir,
        shutdown: Some(tx),
        handle: Some(handle),
        peer: None,
    };
    // The listener is bound before serving starts, but the database opens
    // inside serve(): wait for /health, bounded.
    let mut app = app;
    for _ in 0..1000 {
        if let Ok(r) = app.client.get(format!("{}/health", app.base)).send().await {
            if r.status().is_success() {
                return app;
            }
        }
        if app.handle.as_ref().is_some_and(|h| h.is_finished()) {
            let result = app.handle.take().unwrap().await;
            panic!("server exited before it was healthy: {result:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("server did not become healthy in 10 s");
}

impl TestApp {
    /// Stops the server gracefully and returns its data dir (with its
    /// PostgreSQL database in PG mode, for a restart with [`spawn_in`]).
    pub async fn stop(mut self) -> DataDir {
        if let Some(peer) = self.peer.take() {
            Box::pin(peer.stop()).await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), h)
                .await
                .expect("shutdown in time")
                .expect("join")
                .expect("serve");
        }
        let dir = DataDir::from(tempfile::tempdir().unwrap());
        std::mem::replace(&mut self.dir, dir)
    }

    /// Any request; returns status and JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, user: &TestUser) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(&user.token), None).await
    }

    pub async fn post(&self, path: &str, user: &TestUser, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(&user.token), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, user: &TestUser, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(&user.token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, user: &TestUser) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(&user.token), None)
            .await
    }

    /// Registers a fresh user.
    pub async fn register(&self, name: &str) -> TestUser {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let email = format!("{}{}@example.com", name.to_lowercase(), n);
        let (status, body) = self
            .call(
                Method::POST,
                "/auth/register",
                None,
                Some(json!({"email": email, "password": "correct horse", "name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register: {body}");
        TestUser {
            id: body["user"]["id"].as_i64().unwrap(),
            token: body["token"].as_str().unwrap().to_string(),
            email,
            name: name.to_string(),
        }
    }

    /// Creates a 1-on-1 chat; returns its id.
    pub async fn direct_chat(&self, a: &TestUser, b: &TestUser) -> i64 {
        let (status, body) = self
            .post(
                "/chat",
                a,
                json!({"participantIds": [a.id, b.id], "isGroup": false}),
            )
            .await;
        assert!(status.is_success(), "create chat: {status} {body}");
        body["id"].as_i64().unwrap()
    }

    /// Creates a group (the creator is admin); returns its id.
    pub async fn group(&self, admin: &TestUser, members: &[&TestUser], name: &str) -> i64 {
        let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
        let (status, body) = self
            .post(
                "/chat",
                admin,
                json!({"participantIds": ids, "isGroup": true, "name": name}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create group: {body}");
        body["id"].as_i64().unwrap()
    }

    /// Sends a text message; returns the stored message.
    pub async fn send(&self, user: &TestUser, chat: i64, content: &str) -> Value {
        let (status, body) = self
            .post(
                &format!("/chat/{chat}/messages"),
                user,
                json!({"messageType": "TEXT", "content": content}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "send: {body}");
        body
    }

    /// Opens a WebSocket for `user` and reads its `ready` frame.
    pub async fn ws(&self, user: &TestUser) -> WsClient {
        let url = format!("ws://{}/ws?token={}", self.addr, user.token);
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let mut client = WsClient {
            stream,
            next_ack: 1,
            cursor: 0,
        };
        let ready = client.expect_event("ready").await;
        assert_eq!(ready["userId"].as_i64(), Some(user.id));
        client.cursor = ready["cursor"].as_i64().expect("cursor");
        client
    }
}

/// A WebSocket client.
pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ack: u64,
    /// From the `ready` frame.
    pub cursor: i64,
}

/// How long to wait for an expected frame.
pub const WAIT: Duration = Duration::from_secs(5);

impl WsClient {
    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(WsMessage::Text(text.to_string().into()))
            .await
            .expect("ws send");
    }

    /// Sends `{event, data}` without an ack.
    pub async fn emit(&mut self, event: &str, data: Value) {
        self.send_text(&json!({"event": event, "data": data}).to_string())
            .await;
    }

    /// Sends `{event, data, ack}` and waits for its reply (ack or error frame).
    pub async fn request(&mut self, event: &str, data: Value) -> Value {
        let ack = self.next_ack;
        self.next_ack += 1;
        self.send_text(&json!({"event": event, "data": data, "ack": ack}).to_string())
            .await;
        loop {
            let frame = self.next_frame().await.expect("reply before timeout");
            if frame["ack"].as_u64() == Some(ack) {
                return frame;
            }
        }
    }

    /// [`WsClient::request`] that gives up: `None` when no reply comes
    /// within `wait` or the socket closes (its server died).
    pub async fn request_within(
        &mut self,
        event: &str,
        data: Value,
        wait: Duration,
    ) -> Option<Value> {
        let ack = self.next_ack;
        self.next_ack += 1;
        let text = json!({"event": event, "data": data, "ack": ack}).to_string();
        self.stream.send(WsMessage::Text(text.into())).await.ok()?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.next_frame_within(left).await?;
            if frame["ack"].as_u64() == Some(ack) {
                return Some(frame);
            }
        }
    }

    /// The next frame (JSON), or None on timeout / close.
    pub async fn next_frame_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(wait, self.stream.next())
                .await
                .ok()??;
            match msg.ok()? {
                WsMessage::Text(t) => {
                    return Some(serde_json::from_str(t.as_str()).expect("json frame"))
                }
                WsMessage::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// True when the server ends this connection within `wait`; frames that
    /// arrive first (a delivery tick for another socket of the same user, say)
    /// are skipped. False on timeout, so a socket left open fails the caller.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.stream.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(WsMessage::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    pub async fn next_frame(&mut self) -> Option<Value> {
        self.next_frame_within(WAIT).await
    }

    /// Waits for a frame with this event name (skipping others); returns its data.
    pub async fn expect_event(&mut self, event: &str) -> Value {
        self.expect_event_within(event, WAIT).await
    }

    /// Like [`WsClient::expect_event`] with another timeout.
    pub async fn expect_event_within(&mut self, event: &str, wait: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self
                .next_frame_within(left)
                .await
                .unwrap_or_else(|| panic!("no {event} before timeout"));
            if frame["event"] == event {
                return frame["data"].clone();
            }
        }
    }

    /// All frames with this event name that arrive within `wait`.
    pub async fn collect_events(&mut self, event: &str, wait: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return out;
            }
            match self.next_frame_within(left).await {
                Some(f) if f["event"] == event => out.push(f["data"].clone()),
                Some(_) => {}
                None => return out,
            }
        }
    }

    /// Collects frames of `event` until one satisfies `done` (giving up after
    /// `WAIT`), then keeps collecting for `settle` to catch any extras — so a
    /// slow machine delays the test instead of failing it.
    pub async fn collect_until(
        &mut self,
        event: &str,
        done: impl Fn(&Value) -> bool,
        settle: Duration,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut out = Vec::new();
        while !out.iter().any(&done) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_frame_within(left).await {
                Some(f) if f["event"] == event => out.push(f["data"].clone()),
                Some(_) => {}
                None => return out,
            }
        }
        out.extend(self.collect_events(event, settle).await);
        out
    }

    /// Asserts no frame of this event arrives within `wait`.
    pub async fn expect_no_event(&mut self, event: &str, wait: Duration) {
        let got = self.collect_events(event, wait).await;
        assert!(got.is_empty(), "unexpected {event}: {got:?}");
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An HS256 token with arbitrary claims, signed with `secret`.
pub fn sign_token(secret: &[u8], claims: Value) -> String {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// An unsigned `alg: none` token.
pub fn alg_none_token(claims: Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        b64.encode(claims.to_string())
    )
}

/// Uploads one multipart part as the `file` field.
pub async fn upload_part(app: &TestApp, user: &TestUser, part: Part) -> (StatusCode, Value) {
    let form = Form::new().part("file", part);
    let resp = app
        .client
        .post(format!("{}/chat/upload", app.base))
        .bearer_auth(&user.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A small image (`w`×`h`) encoded in `format`.
pub fn image_bytes(w: u32, h: u32, format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 99])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .unwrap();
    out.into_inner()
}

/// Uploads a small PNG as `user`; returns its `fileUrl`.
pub async fn upload_image(app: &TestApp, user: &TestUser) -> String {
    let part = Part::bytes(image_bytes(8, 8, image::ImageFormat::Png)).file_name("face.png");
    let (status, body) = upload_part(app, user, part).await;
    assert_eq!(status, StatusCode::CREATED, "upload: {body}");
    body["fileUrl"].as_str().unwrap().to_string()
}

/// The stored name of an upload answer (the last part of its `fileUrl`).
pub fn stored_name(upload: &Value) -> String {
    upload["fileUrl"]
        .as_str()
        .expect("fileUrl")
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

// ------------------------------------------------------------------ stores

/// Whether this run targets PostgreSQL (`NATTER_TEST_DB=postgres`).
pub fn is_postgres() -> bool {
    matches!(
        std::env::var("NATTER_TEST_DB").as_deref(),
        Ok("postgres" | "postgresql" | "pg")
    )
}

/// The server URL of the test PostgreSQL, without a database
/// (`NATTER_TEST_PG`, default `postgres://postgres@127.0.0.1:5432`).
pub fn pg_base() -> String {
    std::env::var("NATTER_TEST_PG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_string())
        .trim_end_matches('/')
        .to_string()
}

/// The URL of database `name` on the test PostgreSQL.
pub fn pg_url(name: &str) -> String {
    format!("{}/{name}", pg_base())
}

/// Connects to `url` (tokio-postgres, no TLS); the connection runs on a
/// spawned task of the current runtime.
pub async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_postgres::connect(url, tokio_postgres::NoTls),
    )
    .await
    .unwrap_or_else(|_| panic!("connect to {url}: timeout"))
    .unwrap_or_else(|e| panic!("connect to {url}: {}", pg_error(e)));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Runs `f` with a connection to the maintenance database `postgres`, on a
/// plain thread with its own runtime, so it works from sync code, `Drop`
/// and any async runtime flavour alike; bounded to 20 s.
fn pg_admin_blocking<T: Send + 'static>(
    f: impl FnOnce(
            tokio_postgres::Client,
        ) -> futures_util::future::BoxFuture<'static, Result<T, String>>
        + Send
        + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                rt.block_on(async move {
                    let url = pg_url("postgres");
                    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                        .await
                        .map_err(|e| format!("connect to {url}: {}", pg_error(e)))?;
                    let task = tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    let out = f(client).await;
                    task.abort();
                    out
                })
            });
        let _ = tx.send(result);
    });
    rx.recv_timeout(Duration::from_secs(20))
        .map_err(|e| format!("PostgreSQL admin command: {e}"))?
}

/// A tokio-postgres error with the server's message (its `Display` alone
/// says only "db error").
pub fn pg_error(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(&e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// A PostgreSQL database made for a test; `DROP DATABASE ... WITH (FORCE)`
/// (best effort) when dropped.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    pub url: String,
}

/// The mark on every test database, so a later run can drop those whose
/// test process died before it could (`natter-test pid=<pid>`).
const DB_COMMENT: &str = "natter-test pid=";

impl TestDb {
    /// Creates an empty database `natter_test_<random hex>`.
    pub fn create() -> Arc<TestDb> {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(drop_stale_databases);
        let name = format!("natter_test_{:016x}", rand::random::<u64>());
        // template0: nobody is ever connected to it, so concurrent creates
        // (other tests, other test processes) cannot collide on the template
        let create = format!("CREATE DATABASE {name} TEMPLATE template0");
        let comment = format!(
            "COMMENT ON DATABASE {name} IS '{DB_COMMENT}{}'",
            std::process::id()
        );
        pg_admin_blocking(move |c| {
            Box::pin(async move {
                c.batch_execute(&create).await.map_err(pg_error)?;
                c.batch_execute(&comment).await.map_err(pg_error)
            })
        })
        .unwrap_or_else(|e| {
            panic!(
                "cannot create a test database on {} ({e}); is PostgreSQL running? \
                 (bash scripts/ensure-postgres.sh)",
                pg_base()
            )
        });
        Arc::new(TestDb {
            url: pg_url(&name),
            name,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = pg_admin_blocking(move |c| {
            Box::pin(async move { c.batch_execute(&sql).await.map_err(pg_error) })
        }) {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}

/// Drops test databases left behind by test processes that no longer run
/// (killed before their `Drop`s ran). Best effort.
fn drop_stale_databases() {
    let _ = pg_admin_blocking(|c| {
        Box::pin(async move {
            let rows = c
                .query(
                    "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database \
                     WHERE datname LIKE 'natter\\_test\\_%'",
                    &[],
                )
                .await
                .map_err(pg_error)?;
            for row in rows {
                let name: String = row.get(0);
                let comment: Option<String> = row.get(1);
                let Some(pid) = comment
                    .as_deref()
                    .and_then(|c| c.strip_prefix(DB_COMMENT))
                    .and_then(|p| p.parse::<u32>().ok())
                else {
                    continue;
                };
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = c
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            }
            Ok(())
        })
    });
}

/// The databases of live data dirs, so every server started on one
/// directory (a restart, a `spawn_binary` after `kill -9`) uses the same.
static DATABASES: LazyLock<Mutex<HashMap<PathBuf, Weak<TestDb>>>> = LazyLock::new(Mutex::default);

/// The PostgreSQL database of the data dir `dir` in PG mode (the one a live
/// holder already uses, else a new one); `None` on SQLite.
pub fn database_for(dir: &Path) -> Option<Arc<TestDb>> {
    if !is_postgres() {
        return None;
    }
    let mut map = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
    map.retain(|_, db| db.strong_count() > 0);
    if let Some(db) = map.get(dir).and_then(Weak::upgrade) {
        return Some(db);
    }
    let db = TestDb::create();
    map.insert(dir.to_path_buf(), Arc::downgrade(&db));
    Some(db)
}

/// The database a data dir already has in PG mode, without creating one
/// (a dir nobody holds a [`DataDir`] for has none).
pub fn existing_database_for(dir: &Path) -> Option<Arc<TestDb>> {
    if !is_postgres() {
        return None;
    }
    let map = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
    map.get(dir).and_then(Weak::upgrade)
}

/// A server's data directory and, in PG mode, its database: both live as
/// long as this value, so `stop` → `spawn_in` restarts on the same store.
pub struct DataDir {
    pub db: Option<Arc<TestDb>>,
    /// Its bucket in cluster mode ([`is_cluster`]).
    pub bucket: Option<String>,
    dir: TempDir,
}

impl DataDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `--database` URL in PG mode.
    pub fn database_url(&self) -> Option<&str> {
        self.db.as_ref().map(|db| db.url.as_str())
    }
}

impl From<TempDir> for DataDir {
    fn from(dir: TempDir) -> DataDir {
        DataDir {
            db: None,
            bucket: None,
            dir,
        }
    }
}

impl TestApp {
    /// The generated JWT secret: `<data-dir>/jwt-secret` on SQLite, the
    /// database's `natter_meta` row on PostgreSQL (shared by every node;
    /// no file is written then).
    pub async fn jwt_secret(&self) -> String {
        match self.dir.database_url() {
            Some(url) => {
                assert!(
                    !self.dir.path().join("jwt-secret").exists(),
                    "on PostgreSQL the secret lives in the database, not in a file"
                );
                let client = pg_connect(url).await;
                let row = client
                    .query_one(
                        "SELECT value FROM natter_meta WHERE key = 'jwt_secret'",
                        &[],
                    )
                    .await
                    .unwrap_or_else(|e| panic!("jwt secret: {}", pg_error(e)));
                row.get::<_, String>(0)
            }
            None => std::fs::read_to_string(self.dir.path().join("jwt-secret"))
                .expect("jwt-secret file")
                .trim()
                .to_string(),
        }
    }

    /// Runs SQL statements (literal values only, so the same text works on
    /// both stores) on this server's live database: SQLite `natter.db` in its
    /// data dir, or its PostgreSQL database. For tests that age rows.
    pub async fn exec_sql(&self, sql: &str) {
        let sql = sql.to_string();
        match self.dir.database_url() {
            Some(url) => {
                let client = pg_connect(url).await;
                client
                    .batch_execute(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {}", pg_error(e)));
            }
            None => {
                let path = self.dir.path().join("natter.db");
                tokio::task::spawn_blocking(move || {
                    let db = rusqlite::Connection::open(path).unwrap();
                    db.busy_timeout(Duration::from_secs(5)).unwrap();
                    db.execute_batch(&sql)
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                })
                .await
                .unwrap();
            }
        }
    }
}

/// A second server on the same PostgreSQL database as `app` (its own data
/// dir, the same JWT secret, so a token works on both), as many nodes will
/// run. PG mode only: SQLite's store is one process's file.
pub async fn spawn_peer(app: &TestApp, adjust: impl FnOnce(&mut ServeArgs)) -> TestApp {
    assert!(is_postgres(), "spawn_peer needs NATTER_TEST_DB=postgres");
    // No secret to copy: on PostgreSQL it lives in the database.
    let data = DataDir {
        db: app.dir.db.clone(),
        bucket: app.dir.bucket.clone(),
        dir: tempfile::tempdir().expect("temp dir"),
    };
    spawn_in(data, adjust).await
}

/// The NATS server cluster tests use (`NATTER_TEST_NATS`, default
/// `nats://127.0.0.1:4222`; `scripts/ensure-nats.sh` starts one).
pub fn nats_url() -> String {
    std::env::var("NATTER_TEST_NATS")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_string())
}

impl TestApp {
    /// A client of a server started elsewhere (a [`Server`] child): the
    /// same request helpers; stopping it is the [`Server`]'s business.
    pub fn attach(base: &str) -> TestApp {
        let addr: SocketAddr = base
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("server address");
        TestApp {
            addr,
            base: format!("http://{addr}"),
            node_addr: addr,
            node_base: format!("http://{addr}"),
            client: test_client(),
            dir: DataDir::from(tempfile::tempdir().unwrap()),
            shutdown: None,
            handle: None,
            peer: None,
        }
    }
}

impl DataDir {
    /// A data dir and its database (PG mode), e.g. of a [`Server`] child.
    pub fn new(dir: TempDir, db: Option<Arc<TestDb>>) -> DataDir {
        DataDir {
            db,
            bucket: None,
            dir,
        }
    }
}

impl TestApp {
    /// [`TestApp::attach`] that also owns the server's data dir (and its
    /// database in PG mode), so [`TestApp::exec_sql`] reaches its store.
    pub fn attach_in(base: &str, dir: DataDir) -> TestApp {
        let mut app = TestApp::attach(base);
        app.dir = dir;
        app
    }
}

/// A real S3-compatible server for the tests: moto (`moto_server` from PyPI,
/// installed by `scripts/ensure-s3.sh` into `target/moto-venv`, or
/// `NATTER_TEST_MOTO`), on 127.0.0.1 and a free port, with one bucket.
/// Killed when dropped.
pub struct S3Server {
    child: Option<std::process::Child>,
    pub endpoint: String,
    pub bucket: String,
}

/// Credentials moto accepts (it checks none); natter reads them from the
/// environment as it would AWS's.
pub const S3_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "natter-test"),
    ("AWS_SECRET_ACCESS_KEY", "natter-test-secret"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
];

impl S3Server {
    /// Starts moto and creates `bucket`.
    pub async fn start(bucket: &str) -> S3Server {
        let program = std::env::var("NATTER_TEST_MOTO").ok().unwrap_or_else(|| {
            format!(
                "{}/target/moto-venv/bin/moto_server",
                env!("CARGO_MANIFEST_DIR")
            )
        });
        assert!(
            Path::new(&program).exists(),
            "{program} is missing: run scripts/ensure-s3.sh (./test.sh does)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(format!(
            "{}/target/natter-moto-{port}.log",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("moto log");
        let child = std::process::Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start moto_server");
        let server = S3Server {
            child: Some(child),
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_string(),
        };
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(&server.endpoint).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "moto did not start in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = client
            .put(format!("{}/{bucket}", server.endpoint))
            .send()
            .await
            .expect("create bucket");
        assert!(r.status().is_success(), "create bucket: {}", r.status());
        server
    }

    /// The `--uploads` value for this bucket.
    pub fn uploads_url(&self) -> String {
        format!(
            "s3://{}?endpoint={}&region=us-east-1",
            self.bucket, self.endpoint
        )
    }

    /// Keys in the bucket.
    pub async fn keys(&self) -> Vec<String> {
        let body = reqwest::get(format!("{}/{}?list-type=2", self.endpoint, self.bucket))
            .await
            .expect("list bucket")
            .text()
            .await
            .unwrap();
        body.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }

    /// Stops the server (S3 "goes down").
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}

impl TestApp {
    /// One integer from a query on this server's live database (SQLite or
    /// PostgreSQL), e.g. `SELECT COUNT(*) FROM uploads`.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        let sql = sql.to_string();
        match self.dir.database_url() {
            Some(url) => {
                let client = pg_connect(url).await;
                let row = client
                    .query_one(&sql, &[])
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {}", pg_error(e)));
                row.get::<_, i64>(0)
            }
            None => {
                let path = self.dir.path().join("natter.db");
                tokio::task::spawn_blocking(move || {
                    let db = rusqlite::Connection::open(path).unwrap();
                    db.busy_timeout(Duration::from_secs(5)).unwrap();
                    db.query_row(&sql, [], |r| r.get::<_, i64>(0))
                        .unwrap_or_else(|e| panic!("{sql}: {e}"))
                })
                .await
                .unwrap()
            }
        }
    }
}
