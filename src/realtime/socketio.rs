//! `/socket.io/`: the Socket.IO (protocol v5, Engine.IO v4) endpoint, so
//! clients written for the seed backend (`io(url, { auth: { token } })`)
//! connect unchanged. socketioxide speaks the protocol (WebSocket and HTTP
//! long-polling); this file only adapts it to the hub, the way `/ws` does.
//!
//! It is one more kind of connection of the same [`Hub`](super::hub::Hub),
//! not a second hub: events reach socket.io and `/ws` connections alike,
//! client events go through [`super::dispatch`] (the same `ops` as REST and `/ws`),
//! and presence, typing expiry and receipts need nothing of their own.
//!
//! Invariants:
//! - The connect middleware refuses (the client sees `connect_error`) a
//!   browser `Origin` that `/ws` would refuse on the session's first
//!   request, and a missing or bad token. In front of it, [`super::gate`]
//!   caps sessions that have not authenticated yet and checks the `Origin`
//!   of every later request of a session.
//! - Client events of one socket are started in arrival order and answered
//!   in that order through the same [`pipeline`] as `/ws` (sends pipelined,
//!   up to [`pipeline::MAX_IN_FLIGHT`] unanswered): socketioxide spawns a
//!   task per event, so [`Inbox`] queues them synchronously and one worker
//!   drains the queue.
//! - `ready` is the first event a socket gets; `message:new` counts as
//!   delivered to a recipient once it is queued on its socket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Query;
use serde::Deserialize;
use serde_json::{json, Value};
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, Event, Extension, SocketRef, TryData};
use socketioxide::handler::{ConnectHandler, FromMessageParts, MessageHandler};
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Socket;
use socketioxide::{ParserError, SendError, SocketError, SocketIo};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::auth;
use crate::error::AppError;
use crate::http::JSON_BODY_LIMIT;
use crate::model::UserId;
use crate::realtime::frames::{Published, ERROR, READY};
use crate::realtime::gate;
use crate::realtime::hub::{ConnId, ConnRx, QUEUE_LEN};
use crate::realtime::pipeline::{self, Pipeline};
use crate::realtime::{
    disconnected, origin_allowed, peer_of, WsQuery, IDLE_TIMEOUT, MAX_FRAME_BYTES, PING_EVERY,
    WRITE_TIMEOUT,
};
use crate::state::AppState;

/// Client events queued for one socket, behind the ones in flight in its
/// pipeline, before it counts as flooding (the `/ws` reader's
/// back-pressure, which socket.io's push model cannot give: socketioxide
/// hands over every event of a read at once).
const INBOX_LEN: usize = 256;
/// Pause before retrying an emit into a full engine.io buffer.
const FULL_RETRY: Duration = Duration::from_millis(10);

/// The tower layer serving `/socket.io/`; requests to other paths pass
/// through to the router.
pub fn layer(state: AppState) -> SocketIoLayer {
    let (layer, io) = SocketIo::builder()
        .ping_interval(PING_EVERY)
        // The hub already bounds what waits for a connection; this buffer
        // only has to absorb a burst the transport has not written yet.
        .max_buffer_size(QUEUE_LEN)
        .max_payload(JSON_BODY_LIMIT as u64)
        .ws_max_message_size(MAX_FRAME_BYTES)
        .ws_max_frame_size(MAX_FRAME_BYTES)
        // A session that has not connected to the namespace by then is
        // closed (and frees its pending slot, see `gate`).
        .connect_timeout(gate::CONNECT_TIMEOUT)
        .build_layer();
    let authorize_state = state.clone();
    let authorize = move |socket: SocketRef, TryData(auth): TryData<HandshakeAuth>| {
        authorize(authorize_state, socket, auth)
    };
    let connected =
        move |socket: SocketRef, io: SocketIo, Extension(pending): Extension<Pending>| {
            let span = tracing::info_span!("socketio", user.id = pending.user.0);
            run(state, io, socket, pending).instrument(span)
        };
    io.ns("/", connected.with(authorize));
    layer
}

/// The handshake's `auth` object.
#[derive(Default, Deserialize)]
struct HandshakeAuth {
    token: Option<String>,
}

/// What the connect middleware hands to the connect handler.
#[derive(Clone)]
struct Pending {
    user: UserId,
    /// Taken once by the connect handler (extensions must be `Clone`).
    inbox: Arc<Mutex<Option<mpsc::Receiver<Incoming>>>>,
}

/// One client event, as queued by [`Inbox`].
struct Incoming {
    event: Result<String, ParserError>,
    data: Result<Value, ParserError>,
    /// `Some` when the client passed a callback.
    ack: Option<AckSender>,
}

/// Runs before the socket joins the namespace: refusing here is what the
/// client sees as `connect_error` (with the error's message).
async fn authorize(
    state: AppState,
    socket: SocketRef,
    auth: Result<HandshakeAuth, ParserError>,
) -> Result<(), AppError> {
    let parts = socket.req_parts();
    if !origin_allowed(&state, &parts.headers, peer_of(&parts.extensions)) {
        return Err(AppError::Forbidden("origin not allowed".into()));
    }
    let from_auth = auth.ok().and_then(|a| a.token);
    let from_query = Query::<WsQuery>::try_from_uri(&parts.uri)
        .ok()
        .and_then(|q| q.0.token);
    let token = from_auth
        .into_iter()
        .chain(from_query)
        .map(|t| t.trim().trim_start_matches("Bearer ").trim().to_string())
        .find(|t| !t.is_empty());
    let token = token
        .as_deref()
        .or_else(|| auth::bearer(&parts.headers))
        .ok_or_else(|| AppError::Unauthorized("missing token".into()))?;
    let user = auth::authenticate(&state, token).await?;
    if let Some(gate::Pending(slot)) = parts.extensions.get::<gate::Pending>() {
        slot.authenticated();
    }
    // Registered before the client learns it is connected, so its first
    // events (often sent straight from the `connect` callback) are kept.
    let (tx, rx) = mpsc::channel(INBOX_LEN);
    socket.on_fallback(Inbox { tx });
    socket.extensions.insert(Pending {
        user,
        inbox: Arc::new(Mutex::new(Some(rx))),
    });
    Ok(())
}

/// The connect handler: one hub connection for the socket's lifetime.
async fn run(state: AppState, io: SocketIo, socket: SocketRef, pending: Pending) {
    let user = pending.user;
    let inbox = pending
        .inbox
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let Some(inbox) = inbox else { return };
    let conn = super::register(&state, user);
    // Whoever ends the connection (client, transport, hub) cancels this
    // token; the tasks below then stop and the hub entry is removed once.
    let closed = conn.closed.clone();
    let on_gone = closed.clone();
    socket.on_disconnect(move || async move { on_gone.cancel() });
    // A disconnect before the handler above existed called no handler.
    if !socket.connected() {
        closed.cancel();
    }
    match state.db().event_cursor().await {
        Ok(cursor) => {
            let ready = json!({"userId": user, "cursor": cursor});
            if socket.emit(READY, &ready).is_err() {
                closed.cancel();
            }
        }
        Err(e) => {
            e.log();
            closed.cancel();
        }
    }
    let worker = tokio::spawn(
        serve_inbox(
            state.clone(),
            socket.clone(),
            user,
            conn.id,
            inbox,
            closed.clone(),
        )
        .in_current_span(),
    );
    let conn_id = conn.id;
    forward(&state, &socket, user, conn).await;
    if socket.connected() {
        // The hub closed it (queue full, account disabled, shutdown).
        if state.hub().is_shutting_down() {
            // Close the transports without a namespace disconnect, so
            // clients reconnect once the server is back (like `/ws` 1001).
            tokio::spawn(async move {
                let _ = tokio::time::timeout(WRITE_TIMEOUT, io.close()).await;
            });
        } else {
            disconnect(socket);
        }
    }
    disconnected(&state, user, conn_id);
    let _ = worker.await;
}

/// Emits every event the hub publishes to this connection until it closes.
async fn forward(state: &AppState, socket: &SocketRef, user: UserId, mut conn: ConnRx) {
    loop {
        let event = tokio::select! {
            biased;
            _ = conn.closed.cancelled() => break,
            event = conn.rx.recv() => event,
        };
        let Some(event) = event else { break };
        if !emit(socket, &conn.closed, &event).await {
            break;
        }
        if let Some(d) = event.delivery {
            if d.sender_id != user {
                state.metrics().message_delivered();
                state.deliveries().delivered(user, d.chat_id, d.message_id);
            }
        }
    }
    conn.closed.cancel();
}

/// Queues one event on the socket. A full engine.io buffer (a client that
/// stops reading) is waited on for at most [`WRITE_TIMEOUT`], like a `/ws`
/// write. Returns whether the connection should go on.
async fn emit(socket: &SocketRef, closed: &CancellationToken, event: &Published) -> bool {
    let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
    loop {
        match socket.emit(event.event, &*event.data) {
            Ok(()) => return true,
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!("closing a socket.io connection that stopped reading");
                    return false;
                }
                tokio::select! {
                    _ = tokio::time::sleep(FULL_RETRY) => {}
                    _ = closed.cancelled() => return false,
                }
            }
            Err(SendError::Socket(SocketError::Closed)) => return false,
            Err(SendError::Serialize(e)) => {
                // Not the client's fault and not fatal: skip this event.
                tracing::error!(error = %e, event = event.event, "cannot encode event");
                return true;
            }
        }
    }
}

/// Disconnects the socket from the server side (the client sees
/// `io server disconnect`). The disconnect packet needs room in the
/// engine.io buffer: retry while it is full, until the heartbeat would have
/// ended the connection anyway.
fn disconnect(socket: SocketRef) {
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + IDLE_TIMEOUT;
        while socket.connected() && tokio::time::Instant::now() < deadline {
            match socket.clone().disconnect() {
                Err(SocketError::InternalChannelFull) => tokio::time::sleep(FULL_RETRY).await,
                _ => return,
            }
        }
    });
}

/// Runs the client's events through the [`pipeline`] in arrival order
/// (sends pipelined, answers in order) and answers each like `/ws` does.
async fn serve_inbox(
    state: AppState,
    socket: SocketRef,
    user: UserId,
    conn: ConnId,
    mut inbox: mpsc::Receiver<Incoming>,
    closed: CancellationToken,
) {
    let (pipeline, answers) = Pipeline::spawn({
        let socket = socket.clone();
        move |ack: Option<AckSender>, result| {
            reply(&socket, ack, result);
            std::future::ready(true)
        }
    });
    loop {
        let next = tokio::select! {
            biased;
            _ = closed.cancelled() => break,
            next = inbox.recv() => next,
        };
        let Some(Incoming { event, data, ack }) = next else {
            break;
        };
        let pushed = match event {
            Ok(event) => {
                // No argument (or `null`) is an empty object, as on `/ws`.
                let data = match data {
                    Ok(Value::Null) | Err(_) => "{}".to_string(),
                    Ok(value) => value.to_string(),
                };
                let started = pipeline::start(&state, user, conn, &event, &data);
                pipeline.push(ack, started).await
            }
            Err(_) => {
                let e = AppError::invalid("event", "the event name must be a string");
                pipeline.push_ready(ack, Err(e)).await
            }
        };
        if !pushed {
            break;
        }
    }
    drop(pipeline);
    let _ = answers.await;
}

/// Answers one client event: the callback gets the ack data, or
/// `{"error": {code, message}}`; without a callback a failure is an `error`
/// event, as on `/ws`.
fn reply(socket: &SocketRef, ack: Option<AckSender>, result: Result<Value, AppError>) {
    let sent = match (result, ack) {
        (Ok(value), Some(ack)) => ack.send(&value),
        (Ok(_), None) => Ok(()),
        (Err(e), Some(ack)) => {
            e.log();
            ack.send(&json!({"error": e.body()}))
        }
        (Err(e), None) => {
            e.log();
            socket.emit(ERROR, &e.body())
        }
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "cannot answer a socket.io event");
    }
}

/// The socket's message handler for every event name: decodes the event
/// and queues it for [`serve_inbox`]. It runs synchronously, in arrival
/// order, on socketioxide's receive path (unlike async handlers, which it
/// spawns as separate tasks).
struct Inbox {
    tx: mpsc::Sender<Incoming>,
}

impl MessageHandler<LocalAdapter, Inbox> for Inbox {
    fn call(&self, s: Arc<Socket>, mut v: socketioxide::handler::Value, ack_id: Option<i64>) {
        let event = Event::from_message_parts(&s, &mut v, &ack_id).map(|Event(e)| e);
        let Ok(TryData(data)) = TryData::<Value>::from_message_parts(&s, &mut v, &ack_id);
        let Ok(ack) = AckSender::from_message_parts(&s, &mut v, &ack_id);
        let ack = ack_id.is_some().then_some(ack);
        match self.tx.try_send(Incoming { event, data, ack }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(incoming)) => {
                let e = AppError::RateLimited {
                    retry_after_secs: 1,
                };
                reply(&SocketRef::from(s), incoming.ack, Err(e));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}
