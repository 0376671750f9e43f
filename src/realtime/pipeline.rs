//! Pipelined client events, shared by `/ws` and `/socket.io/`.
//!
//! A connection's reader hands each event to [`start`] in the order the
//! frames came: a `message:send` is validated and queued in the writer
//! (in that order, so message ids follow the connection's send order) and
//! the reader goes on to the next frame without waiting for the COMMIT, so
//! one connection's consecutive sends share group commits. Every other
//! event runs to completion in [`start`]. The [`Pipeline`] keeps the
//! started events in a FIFO; one answer task awaits each in turn and
//! answers it (ack or error, with the client's `ack`), so answers go out in
//! the order the frames came, and a send is acknowledged only once it is
//! committed.
//!
//! At most [`MAX_IN_FLIGHT`] events of a connection wait for their answer;
//! the reader then waits for room ([`Pipeline::push`]), i.e. stops reading
//! the socket (back-pressure), rather than failing the frame.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::error::{AppError, AppResult};
use crate::http::extract::parse_json;
use crate::model::UserId;
use crate::ops;
use crate::realtime::frames::MESSAGE_SEND;
use crate::realtime::{dispatch, WsSend};
use crate::state::AppState;

/// Events of one connection started but not answered yet, at most.
pub const MAX_IN_FLIGHT: usize = 64;

/// A started event: resolves to its ack data.
pub type Started = Pin<Box<dyn Future<Output = AppResult<Value>> + Send + 'static>>;

/// Starts one client event; resolves once it may be followed by the
/// connection's next event (a send: queued in the writer; anything else:
/// done). The returned future is its answer.
pub async fn start(state: &AppState, user: UserId, conn: u64, event: &str, data: &str) -> Started {
    if event != MESSAGE_SEND {
        let result = dispatch(state, user, conn, event, data).await;
        return Box::pin(std::future::ready(result));
    }
    let submitted = match parse_json::<WsSend>(data.as_bytes()) {
        Ok(WsSend { chat_id, body }) => ops::messages::submit(state, user, chat_id, body).await,
        Err(e) => Err(e),
    };
    match submitted {
        Ok(done) => Box::pin(async move {
            let sent = done.await?;
            Ok(serde_json::to_value(sent.message).unwrap_or(Value::Null))
        }),
        Err(e) => Box::pin(std::future::ready(Err(e))),
    }
}

/// What the answer task gets for one event: the connection's own tag
/// (the `/ws` ack number, the socket.io callback) and the started event.
type Entry<T> = (T, Started, OwnedSemaphorePermit);

/// One connection's FIFO of started events and its answer task.
pub struct Pipeline<T> {
    room: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Entry<T>>,
}

impl<T: Send + 'static> Pipeline<T> {
    /// Spawns the answer task: `answer(tag, result)` is called for every
    /// event in the order pushed, once its result is known; it returns
    /// `false` when the connection is gone (the task then stops).
    pub fn spawn<F, Fut>(mut answer: F) -> (Pipeline<T>, tokio::task::JoinHandle<()>)
    where
        F: FnMut(T, AppResult<Value>) -> Fut + Send + 'static,
        Fut: Future<Output = bool> + Send,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Entry<T>>();
        let task = tokio::spawn(async move {
            while let Some((tag, started, permit)) = rx.recv().await {
                let result = started.await;
                drop(permit);
                if !answer(tag, result).await {
                    break;
                }
            }
        });
        let room = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        (Pipeline { room, tx }, task)
    }

    /// Waits for room (at most [`MAX_IN_FLIGHT`] unanswered), then starts
    /// the event with `start` and queues it for its answer. Returns
    /// `false` when the answer task has stopped.
    pub async fn push<S>(&self, tag: T, start: S) -> bool
    where
        S: Future<Output = Started>,
    {
        let Ok(permit) = self.room.clone().acquire_owned().await else {
            return false;
        };
        let started = start.await;
        self.tx.send((tag, started, permit)).is_ok()
    }

    /// Queues an answer known already (a frame that could not be read).
    pub async fn push_ready(&self, tag: T, result: Result<Value, AppError>) -> bool {
        let started: Started = Box::pin(std::future::ready(result));
        self.push(tag, std::future::ready(started)).await
    }
}
