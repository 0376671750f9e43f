//! `GET /ws`: the native WebSocket endpoint.
//!
//! Upgrade: the `Origin` must be the server's own or `FRONTEND_URL`, and the
//! JWT comes from `?token=` or `Authorization`. Each connection has a reader
//! (decodes frames, calls `ops`, queues replies) and a writer task (the only
//! one touching the socket sink: the hub queue, replies, pings). The first
//! frame is `ready {userId, cursor}`. A connection that does not answer pings
//! within [`IDLE_TIMEOUT`] is closed. Writes to the database go through `ops`
//! only.

pub mod bus;
pub mod frames;
pub mod gate;
pub mod hub;
pub mod pipeline;
pub mod socketio;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::auth;
use crate::config::normalize_origin;
use crate::error::{AppError, AppResult};
use crate::http::extract::parse_json;
use crate::model::{ChatId, UserId};
use crate::ops;
use crate::realtime::frames::*;
use crate::realtime::hub::ConnRx;
use crate::realtime::pipeline::Pipeline;
use crate::state::{AppState, WeakState};

/// Largest accepted client frame.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Ping interval.
pub const PING_EVERY: Duration = Duration::from_secs(25);
/// Silence after which a connection is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a single write to a client may block.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Replies (acks, errors) queued for one connection.
const REPLY_QUEUE: usize = 64;

/// `?token=`.
#[derive(Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

/// Whether a browser `Origin` may open a socket: the server's own host, or
/// `FRONTEND_URL`. Non-browser clients send no Origin and are let through
/// (they still need a token). The host is the `Host` header, or
/// `X-Forwarded-Host` when the peer is one of the `--trust-proxy` proxies;
/// otherwise any client could name its own origin there.
pub fn origin_allowed(state: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(origin) = origin.to_str().ok().and_then(normalize_origin) else {
        return false;
    };
    if state.config().frontend_origin.as_deref() == Some(origin.as_str()) {
        return true;
    }
    let from_proxy = peer.is_some_and(|p| state.config().trust_proxy.contains(p.ip()));
    let forwarded = headers.get("x-forwarded-host").filter(|_| from_proxy);
    let host = forwarded
        .or_else(|| headers.get(header::HOST))
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    let origin_host = origin.split_once("://").map(|(_, h)| h);
    host.is_some() && origin_host == host.as_deref()
}

/// The peer address the serve loop attached to a request.
pub fn peer_of(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}

/// The upgrade handler.
#[utoipa::path(get, path = "/ws", tag = "realtime",
    security(("bearer" = [])),
    params(("token" = Option<String>, Query, description = "the JWT (or send `Authorization: Bearer`)")),
    responses(
        (status = 101, description = "switched to the WebSocket protocol; frames are described in docs/PROTOCOL.md"),
        (status = 400, description = "not a WebSocket upgrade request", content_type = "text/plain", body = String),
        (status = 401, description = "missing, invalid or expired token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "browser Origin not allowed", body = crate::http::openapi::ErrorBody),
        (status = 405, description = "not a GET", content_type = "text/plain", body = String),
        (status = 426, description = "the connection cannot be upgraded", content_type = "text/plain", body = String),
    ))]
pub async fn ws_handler(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(query): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&state, &headers, peer.map(|Extension(ConnectInfo(p))| p)) {
        return AppError::Forbidden("origin not allowed".into()).into_response();
    }
    let token = query
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .or_else(|| auth::bearer(&headers));
    let Some(token) = token else {
        return AppError::Unauthorized("missing token".into()).into_response();
    };
    let user = match auth::authenticate(&state, token).await {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(4096)
        // Frames fed in one batch share a buffer and go out in one write at
        // the flush; with 0 every frame was its own send(2), and a socket
        // that fell behind stayed behind (bench group: fan-out p99 1.3 s →
        // 68 ms). An idle socket's buffer stays empty.
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| {
            let span = tracing::info_span!("ws", user.id = user.0);
            run(state, user, socket).instrument(span)
        })
}

async fn run(state: AppState, user: UserId, socket: WebSocket) {
    let conn = register(&state, user);
    let conn_id = conn.id;
    let cursor = match state.db().event_cursor().await {
        Ok(c) => c,
        Err(e) => {
            e.log();
            disconnected(&state, user, conn_id);
            return;
        }
    };
    let (mut sink, mut stream) = socket.split();
    let ready = frame(READY, &json!({"userId": user, "cursor": cursor}), None);
    if sink.send(WsMessage::Text(ready.into())).await.is_err() {
        disconnected(&state, user, conn_id);
        return;
    }
    let last_heard = Arc::new(AtomicI64::new(now_secs()));
    let (reply_tx, reply_rx) = mpsc::channel::<String>(REPLY_QUEUE);
    let closed = conn.closed.clone();
    // Counted until the writer ends: shutdown waits (bounded) for every
    // writer, so every client gets its close frame before the process exits.
    let writing = state.hub().writer_started();
    let writer = tokio::spawn({
        let loop_ = write_loop(
            state.downgrade(),
            user,
            conn,
            reply_rx,
            sink,
            last_heard.clone(),
        );
        async move {
            loop_.await;
            drop(writing);
        }
    });
    // Frames are started in order and answered in order (see `pipeline`);
    // the answers go to the writer.
    let (pipeline, answers) = Pipeline::spawn(move |tag: Reply, result| {
        let reply_tx = reply_tx.clone();
        async move {
            match tag.answer(result) {
                Some(text) => reply_tx.send(text).await.is_ok(),
                None => true,
            }
        }
    });

    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            _ = closed.cancelled() => break,
        };
        let Some(Ok(msg)) = next else { break };
        last_heard.store(now_secs(), Ordering::Relaxed);
        let pushed = match msg {
            WsMessage::Text(text) => {
                handle_frame(&state, &pipeline, user, conn_id, text.as_str()).await
            }
            WsMessage::Binary(_) => {
                let e = AppError::invalid("frame", "frames must be JSON text");
                let reply = Reply::Frame(frame(ERROR, &e.body(), None));
                pipeline.push_ready(reply, Ok(Value::Null)).await
            }
            WsMessage::Close(_) => break,
            WsMessage::Ping(_) | WsMessage::Pong(_) => true,
        };
        if !pushed {
            break;
        }
    }
    // Started sends still get their answers while the socket is open.
    drop(pipeline);
    disconnected(&state, user, conn_id);
    let _ = answers.await;
    let _ = writer.await;
}

/// How a frame is answered.
enum Reply {
    /// With the result: an `ack` frame when the client asked for one (`ack`
    /// number), an `error` frame on failure.
    Ack(Option<u64>),
    /// With this frame, whatever the result (a frame that could not be read).
    Frame(String),
}

impl Reply {
    fn answer(self, result: AppResult<Value>) -> Option<String> {
        match (self, result) {
            (Reply::Frame(text), _) => Some(text),
            (Reply::Ack(Some(n)), Ok(value)) => Some(frame(ACK, &value, Some(n))),
            (Reply::Ack(None), Ok(_)) => None,
            (Reply::Ack(ack), Err(e)) => {
                e.log();
                Some(frame(ERROR, &e.body(), ack))
            }
        }
    }
}

async fn write_loop(
    state: WeakState,
    user: UserId,
    mut conn: ConnRx,
    mut replies: mpsc::Receiver<String>,
    mut sink: futures_util::stream::SplitSink<WebSocket, WsMessage>,
    last_heard: Arc<AtomicI64>,
) {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let close_with = |code: u16, reason: &'static str| {
        WsMessage::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }))
    };
    loop {
        tokio::select! {
            biased;
            _ = conn.closed.cancelled() => {
                let (code, reason) = match state.upgrade() {
                    Some(s) if s.hub().is_shutting_down() => (1001, "server shutting down"),
                    _ => (1008, "connection closed by server"),
                };
                // Bounded: a client that stopped reading cannot hold it.
                let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close_with(code, reason))).await;
                break;
            }
            reply = replies.recv() => match reply {
                Some(text) => {
                    if sink.send(WsMessage::Text(text.into())).await.is_err() { break; }
                }
                None => break,
            },
            event = conn.rx.recv() => {
                let Some(event) = event else { break };
                // Write everything queued, then flush once.
                let mut batch = vec![event];
                while batch.len() < 64 {
                    match conn.rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                // A client that stops reading blocks this write: the hub's
                // close (queue full) or the write timeout ends it.
                let write = async {
                    for e in &batch {
                        sink.feed(WsMessage::Text(e.frame.clone())).await?;
                    }
                    sink.flush().await
                };
                let written = tokio::select! {
                    r = tokio::time::timeout(WRITE_TIMEOUT, write) => matches!(r, Ok(Ok(()))),
                    _ = conn.closed.cancelled() => false,
                };
                if !written { break; }
                if let Some(s) = state.upgrade() {
                    for e in &batch {
                        if let Some(d) = e.delivery {
                            if d.sender_id != user {
                                s.metrics().message_delivered();
                                s.deliveries().delivered(user, d.chat_id, d.message_id);
                            }
                        }
                    }
                }
            }
            _ = ping.tick() => {
                let silent = now_secs() - last_heard.load(Ordering::Relaxed);
                if silent >= IDLE_TIMEOUT.as_secs() as i64 {
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close_with(1001, "idle timeout"))).await;
                    break;
                }
                if sink.send(WsMessage::Ping(Default::default())).await.is_err() { break; }
            }
        }
    }
    conn.closed.cancel();
    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
}

fn now_secs() -> i64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs() as i64
}

/// Unregisters a connection from the hub; when it was the user's last, they
/// go offline after [`hub::PRESENCE_GRACE`] unless they connect again.
pub(crate) fn disconnected(state: &AppState, user: UserId, conn: hub::ConnId) {
    let Some(linger) = state.hub().disconnect(user, conn) else {
        return;
    };
    // Presence waits out the grace; pushes must not (see `Bus::local_sockets`).
    state.bus().local_sockets(user, false);
    let state = state.downgrade();
    tokio::spawn(async move {
        tokio::time::sleep(hub::PRESENCE_GRACE).await;
        let Some(state) = state.upgrade() else { return };
        if state.hub().is_shutting_down() {
            return;
        }
        if let Some(transition) = state.hub().linger_over(linger) {
            state.bus().local_presence(user, false);
            if let Some(t) = transition {
                spawn_presence(&state, t);
            }
        }
    });
}

/// Registers a connection in the hub, tells the other nodes when it is the
/// user's first here, and announces the user online if they were offline.
pub(crate) fn register(state: &AppState, user: UserId) -> hub::ConnRx {
    let first_here = !state.hub().is_local(user);
    let lingering = !first_here && !state.hub().has_socket(user);
    let (conn, transition) = state.hub().connect(user);
    if first_here {
        state.bus().local_presence(user, true);
    } else if lingering {
        state.bus().local_sockets(user, true);
    }
    if let Some(t) = transition {
        spawn_presence(state, t);
    }
    conn
}

/// Announces a presence transition to this node's sockets in the
/// background (see [`ops::users::announce_presence`]).
pub(crate) fn spawn_presence(state: &AppState, t: hub::Transition) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = ops::users::announce_presence(&state, t).await {
            e.log();
        }
    });
}

/// `{chatId}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChatRef {
    chat_id: ChatId,
}

/// `{chatId, isTyping}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Typing {
    chat_id: ChatId,
    is_typing: bool,
}

/// `message:send` data: the REST body plus `chatId`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WsSend {
    chat_id: ChatId,
    #[serde(flatten)]
    body: ops::messages::SendMessage,
}

/// `message:read` data.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WsRead {
    chat_id: ChatId,
    #[serde(flatten)]
    body: ops::receipts::MarkRead,
}

/// `message:played` data.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WsPlayed {
    chat_id: ChatId,
    #[serde(flatten)]
    body: ops::voice::MarkPlayed,
}

/// `message:react` data: `emoji: null` removes the reaction.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WsReact {
    chat_id: ChatId,
    message_id: crate::model::MessageId,
    #[serde(default)]
    emoji: Option<String>,
}

/// Starts one text frame in the pipeline; `false` when the connection's
/// answers can no longer be written.
async fn handle_frame(
    state: &AppState,
    pipeline: &Pipeline<Reply>,
    user: UserId,
    conn: u64,
    text: &str,
) -> bool {
    let parsed: Result<ClientFrame, _> = serde_json::from_str(text);
    let Ok(client) = parsed else {
        let reply = Reply::Frame(malformed_frame_error(text));
        return pipeline.push_ready(reply, Ok(Value::Null)).await;
    };
    let data = client.data.as_deref().map_or("{}", |d| d.get());
    let data = if data == "null" { "{}" } else { data };
    let started = pipeline::start(state, user, conn, &client.event, data);
    pipeline.push(Reply::Ack(client.ack), started).await
}

/// The `error` reply to a frame that is not `{event, data?, ack?}`: it names
/// what is wrong and carries the frame's `ack` whenever one can be read, so
/// a client waiting on that ack is answered.
fn malformed_frame_error(text: &str) -> String {
    let value: Option<Value> = serde_json::from_str(text).ok();
    let ack = value
        .as_ref()
        .and_then(|v| v.get("ack"))
        .filter(|a| a.is_number());
    let (field, message) = match &value {
        Some(Value::Object(o)) if !o.get("event").is_some_and(Value::is_string) => {
            ("event", "event must be a string")
        }
        Some(Value::Object(o)) if o.get("ack").is_some_and(|a| a.as_u64().is_none()) => {
            ("ack", "ack must be a non-negative integer")
        }
        Some(Value::Object(_)) => ("data", "data must be an object"),
        _ => (
            "frame",
            "a frame must be JSON: {\"event\", \"data\", \"ack\"?}",
        ),
    };
    let body = AppError::invalid(field, message).body();
    match ack {
        Some(ack) => json!({"event": ERROR, "data": body, "ack": ack}).to_string(),
        None => frame(ERROR, &body, None),
    }
}

/// Runs one client event; its result is the ack's data.
pub async fn dispatch(
    state: &AppState,
    user: UserId,
    conn: u64,
    event: &str,
    data: &str,
) -> AppResult<Value> {
    match event {
        CHAT_JOIN => {
            let ChatRef { chat_id } = parse_json(data.as_bytes())?;
            // The membership read and the join are made atomic with
            // removals by the hub's ticket: retry if one raced.
            for _ in 0..ops::typing::MEMBERSHIP_RETRIES {
                let ticket = state.hub().ticket();
                state
                    .db()
                    .membership(chat_id, user)
                    .await?
                    .ok_or_else(AppError::chat_not_found)?;
                if state.hub().join_checked(user, conn, chat_id, ticket) {
                    return Ok(json!({"chatId": chat_id}));
                }
            }
            Err(AppError::RateLimited {
                retry_after_secs: 1,
            })
        }
        CHAT_LEAVE => {
            let ChatRef { chat_id } = parse_json(data.as_bytes())?;
            state.hub().leave(user, conn, chat_id);
            Ok(json!({"chatId": chat_id}))
        }
        MESSAGE_SEND => {
            let WsSend { chat_id, body } = parse_json(data.as_bytes())?;
            let sent = ops::messages::send(state, user, chat_id, body).await?;
            Ok(serde_json::to_value(sent.message).unwrap_or(Value::Null))
        }
        TYPING_UPDATE | MESSAGE_TYPING => {
            let Typing { chat_id, is_typing } = parse_json(data.as_bytes())?;
            ops::typing::update(state, user, conn, chat_id, is_typing).await?;
            Ok(json!({"chatId": chat_id, "isTyping": is_typing}))
        }
        MESSAGE_READ => {
            let WsRead { chat_id, body } = parse_json(data.as_bytes())?;
            let unread = ops::receipts::mark_read(state, user, chat_id, body).await?;
            Ok(json!({"chatId": chat_id, "unreadCount": unread}))
        }
        MESSAGE_PLAYED => {
            let WsPlayed { chat_id, body } = parse_json(data.as_bytes())?;
            let played = ops::voice::mark_played(state, user, chat_id, body).await?;
            Ok(serde_json::to_value(played).unwrap_or(Value::Null))
        }
        MESSAGE_REACT => {
            let WsReact {
                chat_id,
                message_id,
                emoji,
            } = parse_json(data.as_bytes())?;
            let message =
                ops::reactions::react(state, user, chat_id, message_id, emoji.as_deref()).await?;
            Ok(serde_json::to_value(message).unwrap_or(Value::Null))
        }
        other => Err(AppError::invalid(
            "event",
            format!(
                "unknown event {:?}",
                other.chars().take(64).collect::<String>()
            ),
        )),
    }
}
