//! Test harness: the real router and server on 127.0.0.1:0 with a temp data
//! dir, real HTTP (reqwest) and real WebSockets (tokio-tungstenite).
//! Logs only with `TEST_LOG=1`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
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
    pub client: reqwest::Client,
    pub dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
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

/// Starts natter with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// Starts natter with adjusted settings.
pub async fn spawn_with(adjust: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    spawn_in(dir, adjust).await
}

/// Starts natter on an existing data dir (restart tests).
pub async fn spawn_in(dir: TempDir, adjust: impl FnOnce(&mut ServeArgs)) -> TestApp {
    init_logs();
    let mut args = ServeArgs::with_data_dir(dir.path());
    args.jwt_secret = None;
    args.frontend_url = None;
    args.upload_max_size = 52_428_800;
    args.history_days = 0;
    args.message_limit = 50;
    args.registration = natter::config::Registration::Open;
    adjust(&mut args);
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
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        dir,
        shutdown: Some(tx),
        handle: Some(handle),
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
    /// Stops the server gracefully and returns its data dir.
    pub async fn stop(mut self) -> TempDir {
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
        let dir = tempfile::tempdir().unwrap();
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
