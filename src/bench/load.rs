//! The two halves of a simulated client: a sender that writes `message:send`
//! frames (closed loop with a window of unacknowledged sends, or at a fixed
//! rate) and a reader that records acks and `message:new` deliveries with
//! their latency. The send time travels in the message content (microseconds
//! since the run's base instant), so latency is measured at the recipient
//! without shared maps. Every loop ends on a cancellation token.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use super::server::{classify, Frame, Ws};
use super::sio::{self, Transport};
use super::{micros_since, Progress};

/// Frames the reader asks the sender to write (Socket.IO pongs).
pub type Pongs = tokio::sync::mpsc::UnboundedSender<()>;

/// What one connection saw.
#[derive(Default)]
pub struct Inbox {
    /// Ids of this connection's own sends, as acknowledged.
    pub acks: Vec<i64>,
    /// `(message id, sender id, latency µs)` of messages from others.
    pub news: Vec<(i64, i64, u64)>,
    /// Error frames and socket failures (first few).
    pub errors: Vec<String>,
}

/// Reads frames until `finish` is cancelled or the socket ends.
pub async fn read_loop(
    mut stream: SplitStream<Ws>,
    me: i64,
    base: Instant,
    window: Option<Arc<Semaphore>>,
    progress: Arc<Progress>,
    finish: CancellationToken,
    transport: (Transport, Option<Pongs>),
) -> Inbox {
    let (transport, pongs) = transport;
    let mut inbox = Inbox::default();
    let note = |inbox: &mut Inbox, e: String| {
        if inbox.errors.len() < 5 {
            inbox.errors.push(e);
        }
    };
    loop {
        let msg = tokio::select! {
            biased;
            m = stream.next() => m,
            _ = finish.cancelled() => break,
        };
        match msg {
            Some(Ok(WsMessage::Text(t))) => match frame_of(transport, t.as_str(), pongs.as_ref()) {
                Frame::New {
                    id,
                    sender,
                    content,
                } if sender != me => {
                    let lat = micros_since(base).saturating_sub(content.max(0) as u64);
                    inbox.news.push((id, sender, lat));
                    progress.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Frame::Ack { id, .. } => {
                    inbox.acks.push(id);
                    progress.acked.fetch_add(1, Ordering::Relaxed);
                    if let Some(w) = &window {
                        w.add_permits(1);
                    }
                }
                Frame::Error(e) => note(&mut inbox, e),
                _ => {}
            },
            Some(Ok(WsMessage::Close(c))) => {
                note(&mut inbox, format!("server closed the socket: {c:?}"));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                note(&mut inbox, format!("socket error: {e}"));
                break;
            }
            None => {
                if !finish.is_cancelled() {
                    note(&mut inbox, "socket ended".into());
                }
                break;
            }
        }
    }
    inbox
}

/// Classifies a frame of `transport`; a Socket.IO ping is answered
/// through `pongs`.
fn frame_of(transport: Transport, text: &str, pongs: Option<&Pongs>) -> Frame {
    match transport {
        Transport::Ws => classify(text),
        Transport::Socketio => sio::classify(text).unwrap_or_else(|| {
            if let Some(p) = pongs {
                let _ = p.send(());
            }
            Frame::Other
        }),
    }
}

/// How a sender paces itself.
#[derive(Clone)]
pub enum Pace {
    /// At most this many unacknowledged sends (permits return on ack).
    Window(Arc<Semaphore>),
    /// One send per interval, starting after the offset.
    Every(Duration, Duration),
}

/// Sends to `chat` until `stop` or the shared `budget` runs out; returns the
/// sink (kept open until the readers finish) and the number sent.
#[allow(clippy::too_many_arguments)] // the run's shared pieces, as at every call site
pub async fn send_loop(
    mut sink: SplitSink<Ws, WsMessage>,
    chat: i64,
    base: Instant,
    pace: Pace,
    budget: Arc<AtomicI64>,
    progress: Arc<Progress>,
    stop: CancellationToken,
    transport: (Transport, Option<tokio::sync::mpsc::UnboundedReceiver<()>>),
) -> (SplitSink<Ws, WsMessage>, u64, Option<String>) {
    let (transport, mut pongs) = transport;
    let mut ack = 0u64;
    let mut tick = match &pace {
        Pace::Every(every, offset) => {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + *offset, *every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            Some(t)
        }
        Pace::Window(_) => None,
    };
    loop {
        let pong = async {
            match pongs.as_mut() {
                Some(p) => p.recv().await,
                None => std::future::pending().await,
            }
        };
        let ponged = match (&pace, tick.as_mut()) {
            (Pace::Window(w), _) => {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    Some(()) = pong => true,
                    p = w.acquire() => match p {
                        Ok(p) => { p.forget(); false },
                        Err(_) => break,
                    },
                }
            }
            (_, Some(t)) => {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    Some(()) = pong => true,
                    _ = t.tick() => false,
                }
            }
            _ => break,
        };
        if ponged {
            if let Err(e) = sink.send(WsMessage::Text(sio::PONG.into())).await {
                return (sink, ack, Some(format!("pong failed: {e}")));
            }
            continue;
        }
        if budget.fetch_sub(1, Ordering::Relaxed) <= 0 {
            break;
        }
        ack += 1;
        let text = match transport {
            Transport::Ws => format!(
                r#"{{"event":"message:send","data":{{"chatId":{chat},"messageType":"TEXT","content":"{}","clientId":"b{ack}"}},"ack":{ack}}}"#,
                micros_since(base)
            ),
            Transport::Socketio => sio::send_frame(chat, micros_since(base), ack),
        };
        if let Err(e) = sink.send(WsMessage::Text(text.into())).await {
            return (sink, ack - 1, Some(format!("send failed: {e}")));
        }
        progress.sent.fetch_add(1, Ordering::Relaxed);
    }
    (sink, ack, None)
}

/// Waits until every send is acknowledged and `expected()` deliveries
/// arrived, at most `limit`.
pub async fn drain(progress: &Progress, expected: impl Fn(u64) -> u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let sent = progress.sent.load(Ordering::Relaxed);
        let acked = progress.acked.load(Ordering::Relaxed);
        let delivered = progress.delivered.load(Ordering::Relaxed);
        if acked >= sent && delivered >= expected(acked) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Outcome of [`roundtrip`].
pub struct Roundtrip {
    /// `message:new` frames the recipient got for the message.
    pub delivered: u64,
    /// Milliseconds from the REST send to the recipient's frame.
    pub latency_ms: f64,
}

/// One live message between two fresh users: REST send, WebSocket delivery
/// (exactly once within a grace period) and present in history.
pub async fn roundtrip(api: &super::server::Api) -> anyhow::Result<Roundtrip> {
    use anyhow::{ensure, Context};
    let a = api.register("rt").await?;
    let b = api.register("rt").await?;
    let chat = api.create_chat(&a, &[b.id], false).await?;
    let (ws, _) = super::server::connect(&api.base, &b.token).await?;
    let (_sink, mut rx) = ws.split();
    let t0 = Instant::now();
    let msg = api
        .post(
            &format!("/chat/{chat}/messages"),
            Some(&a.token),
            serde_json::json!({"messageType": "TEXT", "content": "0", "clientId": "rt-1"}),
        )
        .await?;
    let id = msg["id"].as_i64().context("send: no id")?;
    let mut delivered = 0u64;
    let mut latency_ms = 0.0;
    let grace = Instant::now() + Duration::from_secs(10);
    while Instant::now() < grace {
        let wait = if delivered > 0 {
            Duration::from_millis(300)
        } else {
            grace.saturating_duration_since(Instant::now())
        };
        match tokio::time::timeout(wait, rx.next()).await {
            Ok(Some(Ok(WsMessage::Text(t)))) => {
                if let Frame::New { id: got, .. } = classify(t.as_str()) {
                    ensure!(got == id, "unexpected message {got}");
                    if delivered == 0 {
                        latency_ms = t0.elapsed().as_secs_f64() * 1000.0;
                    }
                    delivered += 1;
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(_) => break,
            Err(_) => break,
        }
    }
    let stored = api.all_message_ids(&b, chat, 2).await?;
    ensure!(
        stored == vec![id],
        "history holds {stored:?}, expected [{id}]"
    );
    Ok(Roundtrip {
        delivered,
        latency_ms,
    })
}

/// What a sender task returns: its sink, how many messages it sent, its error.
pub type SenderResult =
    Result<(SplitSink<Ws, WsMessage>, u64, Option<String>), tokio::task::JoinError>;

/// Joins a run's readers and senders: the inboxes and the number of messages
/// sent; senders' errors go to `errors`. The sinks are dropped (closed) here.
pub async fn collect(
    readers: Vec<tokio::task::JoinHandle<Inbox>>,
    senders: Vec<SenderResult>,
    errors: &mut Vec<String>,
) -> anyhow::Result<(Vec<Inbox>, u64)> {
    use anyhow::Context;
    let mut inboxes = Vec::with_capacity(readers.len());
    for r in readers {
        inboxes.push(r.await.context("reader panicked")?);
    }
    let mut sent = 0u64;
    for r in senders {
        let (_sink, count, err) = r.context("sender panicked")?;
        sent += count;
        errors.extend(err);
    }
    Ok((inboxes, sent))
}

/// Opens one WebSocket per user, `concurrency` handshakes at a time.
pub async fn connect_all(
    base: &str,
    users: &[super::server::User],
    concurrency: usize,
) -> anyhow::Result<Vec<(Ws, i64)>> {
    connect_all_with(Transport::Ws, base, users, concurrency).await
}

/// [`connect_all`] over `transport`.
pub async fn connect_all_with(
    transport: Transport,
    base: &str,
    users: &[super::server::User],
    concurrency: usize,
) -> anyhow::Result<Vec<(Ws, i64)>> {
    futures_util::stream::iter(users.iter())
        .map(|u| connect_with(transport, base, &u.token))
        .buffered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Opens one socket for `token` over `transport` and waits for `ready`.
pub async fn connect_with(
    transport: Transport,
    base: &str,
    token: &str,
) -> anyhow::Result<(Ws, i64)> {
    match transport {
        Transport::Ws => super::server::connect(base, token).await,
        Transport::Socketio => sio::connect(base, token).await,
    }
}
