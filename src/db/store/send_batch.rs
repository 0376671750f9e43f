//! Sends combined into one writer op on PostgreSQL.
//!
//! On PostgreSQL a statement costs a round trip and ~30–45 µs of server CPU
//! whatever it does, so ~50 sends written one by one (2–3 round trips, ~6
//! statements each) are what bounds the writer. Plain sends (TEXT or LINK,
//! no reply, no file) queue here instead; the first of them submits one
//! writer op, which takes every send queued by the time it runs and writes
//! them with a statement per kind of write: one check of all of them (with
//! the chats' positions, in the same round trip), one insert of all
//! messages, events and chat activities (`unnest … WITH ORDINALITY`, ids in
//! queue order), then the read receipts the senders' writing causes, queued
//! with their status lookups. Everything else — and SQLite, where a
//! statement is an in-process call — keeps the one-op-per-send path.
//!
//! Semantics are the one-by-one path's, in queue order: a send that is not
//! a member's gets 404, a retried `clientId` (also twice in one batch) the
//! message stored first, and each send's ack the status its message had
//! right after it (not after later sends of the batch).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::messages::Stored;
use super::receipts::{status_events, Plan};
use crate::db::sql::{Conn, Row};
use crate::db::{messages as q, now_ms, receipts, Db};
use crate::error::{AppError, AppResult};
use crate::model::{ChatId, Message, MessageId, UserId};
use crate::realtime::frames::MESSAGE_NEW;

/// One queued send.
pub(crate) struct Queued {
    pub caller: UserId,
    pub chat: ChatId,
    pub message_type: &'static str,
    pub content: Option<String>,
    pub client_id: Option<String>,
}

type Reply = oneshot::Sender<AppResult<Stored>>;

/// The sends of one combined op.
type Batch = Arc<Mutex<Vec<(Queued, Reply)>>>;

/// The sends waiting for the next combined op.
#[derive(Default)]
pub(crate) struct SendQueue {
    /// The batch new plain sends join; its op is queued in the writer once
    /// the batch has its first send.
    current: Mutex<Batch>,
}

impl SendQueue {
    /// Later plain sends start a new batch: called before a send is
    /// written on its own, so that a connection's plain send queued after
    /// it cannot join an op queued before it (ids follow send order).
    pub(crate) fn seal(&self) {
        let mut current = self.current.lock().expect("send queue");
        if !current.lock().expect("send batch").is_empty() {
            *current = Batch::default();
        }
    }
}

impl Db {
    /// Queues a plain send for the combined op (PostgreSQL); resolves once
    /// queued, to the future of its result after the op committed. Sends
    /// queued one after another get ids in that order.
    pub(super) async fn submit_combined(
        &self,
        queue: &Arc<SendQueue>,
        send: Queued,
    ) -> AppResult<impl std::future::Future<Output = AppResult<Stored>> + Send + 'static> {
        // Room in the writer first: from here on nothing waits, so a
        // dropped caller cannot leave a batch without its op.
        let slot = self.writer.slot().await?;
        let (tx, rx) = oneshot::channel();
        let replies: Arc<Mutex<Vec<Reply>>> = Arc::default();
        let op = {
            let current = queue.current.lock().expect("send queue");
            let mut items = current.lock().expect("send batch");
            items.push((send, tx));
            // The batch's first send queues its op, under the queue's lock:
            // the writer gets ops in the order their first sends came.
            (items.len() == 1).then(|| {
                let op_batch = current.clone();
                let slot_replies = replies.clone();
                let done = slot.submit(move |c| {
                    let items = std::mem::take(&mut *op_batch.lock().expect("send batch"));
                    let (sends, txs): (Vec<_>, Vec<_>) = items.into_iter().unzip();
                    *slot_replies.lock().expect("replies") = txs;
                    write_all(c, &sends)
                });
                (done, current.clone())
            })
        };
        if let Some((done, batch)) = op {
            // Its own task: the answers must go out even if this request
            // is dropped.
            tokio::spawn(async move {
                let result = done.await;
                let mut txs = std::mem::take(&mut *replies.lock().expect("replies"));
                if result.is_err() && txs.is_empty() {
                    // The op never ran (no database connection): the sends
                    // are still queued, and later ones wait on them; answer
                    // them all, so the next send starts a new op.
                    let items = std::mem::take(&mut *batch.lock().expect("send batch"));
                    txs = items.into_iter().map(|(_, tx)| tx).collect();
                }
                match result {
                    Ok(results) => {
                        for (tx, r) in txs.into_iter().zip(results) {
                            let _ = tx.send(r);
                        }
                    }
                    Err(e) => {
                        let unavailable = matches!(e, AppError::Unavailable);
                        tracing::warn!(error = %e, sends = txs.len(), "a combined send failed");
                        for tx in txs {
                            let _ = tx.send(Err(if unavailable {
                                AppError::Unavailable
                            } else {
                                AppError::Internal(anyhow::anyhow!("combined send failed: {e}"))
                            }));
                        }
                    }
                }
            });
        }
        Ok(async move {
            rx.await
                .map_err(|_| AppError::Internal(anyhow::anyhow!("combined send dropped")))?
        })
    }
}

/// What the check found for one send.
struct Check {
    member: bool,
    existing: Option<MessageId>,
    unread: bool,
}

/// Writes `sends` (PostgreSQL); one result per send, in order.
fn write_all(c: &Conn, sends: &[Queued]) -> AppResult<Vec<AppResult<Stored>>> {
    let Conn::Pg(pg) = *c else {
        return Err(AppError::Internal(anyhow::anyhow!(
            "combined sends are for PostgreSQL"
        )));
    };
    let now = now_ms();
    let chats: Vec<i64> = sends.iter().map(|s| s.chat.0).collect();
    let users: Vec<i64> = sends.iter().map(|s| s.caller.0).collect();
    let cids: Vec<Option<&str>> = sends.iter().map(|s| s.client_id.as_deref()).collect();
    let mut distinct: Vec<i64> = chats.clone();
    distinct.sort_unstable();
    distinct.dedup();
    // 1. Every check, and every chat's positions: one round trip.
    let rows = pg.query_native(&[
        (
            "SELECT p.user_id IS NOT NULL,
               (SELECT id FROM messages WHERE chat_id = t.chat AND sender_id = t.usr
                  AND client_id = t.cid),
               EXISTS (SELECT 1 FROM messages m
                       WHERE m.chat_id = t.chat AND m.id > p.read_up_to AND m.sender_id != t.usr
                         AND m.is_deleted = 0 AND m.message_type != 'SYSTEM')
             FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[]) WITH ORDINALITY
                  AS t(chat, usr, cid, i)
             LEFT JOIN chat_participants p
               ON p.chat_id = t.chat AND p.user_id = t.usr AND p.left_at IS NULL
             ORDER BY t.i",
            &[&chats, &users, &cids],
        ),
        (
            "SELECT chat_id, user_id, delivered_up_to, read_up_to FROM chat_participants
             WHERE chat_id = ANY($1) AND left_at IS NULL",
            &[&distinct],
        ),
    ])?;
    let checks: Vec<Check> = rows[0]
        .iter()
        .map(|r| Check {
            member: r.get(0),
            existing: r.get::<_, Option<i64>>(1).map(MessageId),
            unread: r.get::<_, Option<bool>>(2).unwrap_or(false),
        })
        .collect();
    let mut positions: HashMap<ChatId, receipts::Positions> = HashMap::new();
    for r in &rows[1] {
        positions
            .entry(ChatId(r.get(0)))
            .or_default()
            .0
            .push(receipts::Position {
                user_id: UserId(r.get(1)),
                delivered: MessageId(r.get(2)),
                read: MessageId(r.get(3)),
            });
    }

    // Which sends insert: members, not a retry, not a repeat of an earlier
    // send of this batch (same chat, sender and clientId).
    let mut first_of: HashMap<(ChatId, UserId, &str), usize> = HashMap::new();
    let mut repeat_of: Vec<Option<usize>> = vec![None; sends.len()];
    let mut inserts: Vec<usize> = Vec::new();
    for (i, (s, check)) in sends.iter().zip(&checks).enumerate() {
        if !check.member || check.existing.is_some() {
            continue;
        }
        if let Some(cid) = s.client_id.as_deref() {
            if let Some(&j) = first_of.get(&(s.chat, s.caller, cid)) {
                repeat_of[i] = Some(j);
                continue;
            }
            first_of.insert((s.chat, s.caller, cid), i);
        }
        inserts.push(i);
    }

    // 2. Every message, its event and its chat's activity: one statement.
    let mut stored: HashMap<usize, Message> = HashMap::new();
    if !inserts.is_empty() {
        let i_chats: Vec<i64> = inserts.iter().map(|&i| chats[i]).collect();
        let i_users: Vec<i64> = inserts.iter().map(|&i| users[i]).collect();
        let i_types: Vec<&str> = inserts.iter().map(|&i| sends[i].message_type).collect();
        let i_contents: Vec<Option<&str>> = inserts
            .iter()
            .map(|&i| sends[i].content.as_deref())
            .collect();
        let i_cids: Vec<Option<&str>> = inserts.iter().map(|&i| cids[i]).collect();
        let sql = insert_sql();
        let rows = pg.query_native(&[(
            sql.as_str(),
            &[
                &i_chats,
                &i_users,
                &i_types,
                &i_contents,
                &i_cids,
                &now,
                &MESSAGE_NEW,
            ],
        )])?;
        if rows[0].len() != inserts.len() {
            return Err(AppError::Internal(anyhow::anyhow!(
                "combined send stored {} of {} messages",
                rows[0].len(),
                inserts.len()
            )));
        }
        for (&i, r) in inserts.iter().zip(&rows[0]) {
            stored.insert(i, q::from_row(&Row::Pg(r))?);
        }
    }

    // 3. In queue order: each sender has read what came before their send
    // (their receipts' writes are queued), and each ack gets the status its
    // message had right after it.
    let mut results: Vec<Option<AppResult<Stored>>> = (0..sends.len()).map(|_| None).collect();
    // The read receipts the sends cause, and whose they are.
    let (mut reads, mut read_by): (Vec<Plan>, Vec<usize>) = (Vec::new(), Vec::new());
    // Per chat: messages of this batch so far, (id, sender).
    let mut batch_msgs: HashMap<ChatId, Vec<(MessageId, UserId)>> = HashMap::new();
    // Senders whose read position this batch already moved, per chat.
    let mut advanced: HashSet<(ChatId, UserId)> = HashSet::new();
    for (i, s) in sends.iter().enumerate() {
        let check = &checks[i];
        if !check.member {
            results[i] = Some(Err(AppError::chat_not_found()));
            continue;
        }
        let Some(message) = stored.remove(&i) else {
            continue; // a retry: answered below, from what is stored
        };
        let chat_positions = positions.entry(s.chat).or_default();
        let read = chat_positions
            .0
            .iter()
            .find(|p| p.user_id == s.caller)
            .map_or(MessageId(0), |p| p.read);
        let earlier = batch_msgs.entry(s.chat).or_default();
        let unread = (check.unread && !advanced.contains(&(s.chat, s.caller)))
            || earlier
                .iter()
                .any(|&(id, sender)| sender != s.caller && id > read);
        earlier.push((message.id, s.caller));
        if unread {
            advanced.insert((s.chat, s.caller));
            let plan = Plan::make(
                c,
                s.chat,
                receipts::Kind::Read,
                &[(s.caller, message.id)],
                now,
                chat_positions.clone(),
            )?;
            *chat_positions = plan.after.clone();
            reads.push(plan);
            read_by.push(i);
        }
        let members = chat_positions.0.iter().map(|p| p.user_id).collect();
        results[i] = Some(Ok(Stored {
            message: q::with_status(message, chat_positions),
            members,
            created: true,
            receipts_changed: Vec::new(),
        }));
    }
    // The status lookups of every read receipt: one round trip (with the
    // receipts' queued writes ahead of it).
    for (i, events) in read_by.into_iter().zip(status_events(c, &reads)?) {
        if let Some(Ok(stored)) = results[i].as_mut() {
            stored.receipts_changed = events;
        }
    }
    // Retries and repeats: the message stored first, as it is now.
    for i in 0..sends.len() {
        if results[i].is_some() {
            continue;
        }
        let existing = match (checks[i].existing, repeat_of[i]) {
            (Some(id), _) => id,
            (None, Some(j)) => match &results[j] {
                Some(Ok(first)) => first.message.id,
                _ => {
                    return Err(AppError::Internal(anyhow::anyhow!(
                        "a repeat without its send"
                    )))
                }
            },
            (None, None) => return Err(AppError::Internal(anyhow::anyhow!("a send left out"))),
        };
        let none = receipts::Positions::default();
        let chat_positions = positions.get(&sends[i].chat).unwrap_or(&none);
        let message = q::load(c, existing, chat_positions)?
            .ok_or_else(|| anyhow::anyhow!("message vanished"))?;
        results[i] = Some(Ok(Stored {
            message,
            members: Vec::new(),
            created: false,
            receipts_changed: Vec::new(),
        }));
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every send answered"))
        .collect())
}

/// The insert of a batch: messages in queue order, their events in the
/// same order, each chat's activity at its newest; the stored rows back.
fn insert_sql() -> &'static String {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH t AS (
               SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[])
                 WITH ORDINALITY AS t(chat, usr, typ, content, cid, i)),
             m AS (
               INSERT INTO messages (chat_id, sender_id, message_type, content, client_id,
                 created_at, updated_at)
               SELECT chat, usr, typ, content, cid, $6, $6 FROM t ORDER BY i
               RETURNING *),
             e AS (
               INSERT INTO events (chat_id, kind, message_id, user_id, created_at)
               SELECT chat_id, $7, id, NULL, $6 FROM m ORDER BY id
               RETURNING id, message_id),
             c AS (
               UPDATE chats SET last_message_id = x.mid, last_activity = x.eid, updated_at = $6
               FROM (SELECT m.chat_id, max(m.id) AS mid, max(e.id) AS eid
                     FROM m JOIN e ON e.message_id = m.id GROUP BY m.chat_id) AS x
               WHERE chats.id = x.chat_id)
             SELECT {cols} FROM m LEFT JOIN uploads up ON up.id = m.upload_id ORDER BY m.id",
            cols = q::MESSAGE_COLUMNS
        )
    });
    &SQL
}
