//! The bus: what one node publishes reaches the sockets of every node.
//!
//! The hub ([`super::hub`]) is this node's connection registry; the bus
//! carries events between nodes. `--bus local` (the default) is no bus at
//! all: publishing is a call into the hub, as before, at no extra cost.
//! `--bus nats://host:4222` (crate `async-nats`) adds NATS core pub/sub:
//!
//! - **After the commit, once per socket.** Ops publish only after their
//!   write committed. The publishing node delivers to its own sockets
//!   directly (so a node cut off from NATS still serves its own users) and
//!   puts the event on NATS with its node id; every other node delivers it to
//!   its own sockets, and a node skips what it sent itself. NATS core gives
//!   each subscriber a message at most once, so every socket gets it exactly
//!   once while NATS is up. Nothing is persisted on NATS: the database is
//!   the record, and a client that missed events (its node lost NATS, or it
//!   reconnected elsewhere) catches up with `/sync`, as after any reconnect.
//! - **One subject, filtered by each node** (`natter.<cluster>.events`,
//!   see [`subject`]), chosen from a measurement (`examples/bus_subjects.rs`,
//!   3 receiving nodes, 600-byte events, this 2-core box): for a 1-on-1
//!   chat one subject moved 201,000 events/s against 67,000 with a subject
//!   per user; for a group of 999, 133,000 against 302. The other
//!   layouts were weighed for natter's size of deployment (2–10 nodes):
//!   a subject per user turns a message to a group of 1,000 into 1,000 NATS
//!   publishes and makes every connect and disconnect a subscription change;
//!   a subject per chat needs every node to follow the memberships of all
//!   its users' chats (joins, removals, new chats) and races with them. One
//!   subject costs one publish per event and, on each node, one hash lookup
//!   per recipient to find its local sockets, and with N nodes each event
//!   crosses the network N times — cheap next to the PostgreSQL commit that
//!   preceded it (BENCHMARKS.md, "Many nodes"). Past a few dozen nodes a
//!   per-user subject would win; the envelope already carries the
//!   recipients, so that change stays inside this file.
//! - **Presence** is cluster-wide: every node announces on the bus which
//!   users it holds sockets for (a delta on each change and, every
//!   [`HEARTBEAT`], the full list), and a user is online if any node holds
//!   one of their sockets ([`Hub::remote_presence`]). `user:online` is not
//!   put on the bus: every node derives the transitions from its own view
//!   and tells its own sockets. (When the origin announced for everyone, two
//!   nodes whose user's last sockets closed a millisecond apart each saw
//!   the other still holding one, and nobody said "offline".) A node that
//!   stops sending heartbeats (killed, cut off) is dropped after
//!   [`NODE_TTL`], and its users go offline the same way.
//! - Who holds an **open socket** right now (for Web Push, `crate::push`) is
//!   not presence: presence waits out a 2 s grace after a user's last socket
//!   closes, pushes must not. So a node also says at once when a user's last
//!   socket there closed or one opened again within the grace (`Sockets`),
//!   and each heartbeat lists its users within the grace (a lost delta is
//!   repaired on the next one).
//! - Typing (`publish_to_room`), room removals (`leave_all`) and presence
//!   set by hand cross nodes the same way. Closing a disabled user's sockets
//!   needs no bus: every node polls the shared database for revocations each
//!   second (`ops::users::start_revocation_watch`).
//! - Rate limits stay per node (documented in the README): a client spread
//!   over N nodes by the load balancer can send up to N times the per-node
//!   rate, which stays bounded and needs no shared counter on every send.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::model::{ChatId, MessageId, UserId};
use crate::realtime::frames::{self, Delivery, Published};
use crate::realtime::hub::{Hub, Transition};
use crate::state::{AppState, WeakState};

/// The subject every node of one cluster publishes to and reads is
/// `natter.<cluster id>.events`: the id is generated once and kept in the
/// database, so nodes on one database find each other with no setting, and
/// two clusters sharing a NATS server never see each other's events.
pub fn subject(cluster: &str) -> String {
    format!("natter.{cluster}.events")
}
/// How often a node sends the full list of users it holds sockets for.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A node not heard from this long is taken for dead: its users go
/// offline (the issue asks for at most 60 s).
pub const NODE_TTL: Duration = Duration::from_secs(20);
/// Envelopes waiting for NATS (while it is away) before new ones are
/// dropped.
pub const OUTBOX_LEN: usize = 65_536;
/// Longest wait for NATS when a node starts.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where events go besides this node's own sockets.
#[derive(Clone)]
pub enum Bus {
    /// One node: nothing leaves the process.
    Local,
    /// NATS core pub/sub.
    Nats(Arc<NatsBus>),
}

/// A connected NATS bus.
pub struct NatsBus {
    client: async_nats::Client,
    /// Envelopes in the order they were sent, to the one task that hands
    /// them to NATS (a task per publish could reorder a chat's events).
    outbox: tokio::sync::mpsc::Sender<Vec<u8>>,
    /// This process's id on the bus (random per start).
    node: u64,
    /// [`subject`] of this cluster.
    subject: String,
}

/// What travels between nodes.
#[derive(Serialize, Deserialize)]
struct Envelope {
    /// The sending node.
    node: u64,
    kind: Kind,
}

/// Externally tagged (`{"users": {...}}`): an internally tagged or
/// flattened enum is buffered first, and a `RawValue` cannot be read back
/// from that buffer.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Kind {
    /// An event for every socket of `users`.
    Users {
        users: Vec<UserId>,
        event: String,
        data: Box<RawValue>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery: Option<(ChatId, MessageId, UserId)>,
    },
    /// An event for the sockets in a chat's room, except `except`'s.
    Room {
        chat: ChatId,
        except: UserId,
        event: String,
        data: Box<RawValue>,
    },
    /// `user` left or was removed from `chat`: out of its room everywhere.
    LeaveAll { user: UserId, chat: ChatId },
    /// Presence set by hand (`POST /chat/status`).
    Manual { user: UserId, online: bool },
    /// Users the sending node holds sockets for: all of them (`full`, a
    /// heartbeat) or a change (`online` / `offline`).
    Presence {
        #[serde(default)]
        full: Option<Vec<UserId>>,
        #[serde(default)]
        online: Vec<UserId>,
        #[serde(default)]
        offline: Vec<UserId>,
        /// With `full`: those of them whose sockets all closed (within
        /// the presence grace). Older nodes leave it out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        closed: Option<Vec<UserId>>,
    },
    /// `user`'s last socket on the sending node closed (`open: false`; at
    /// once, while presence waits out its grace), or one opened again
    /// within the grace: other nodes know at once whether a push is due.
    Sockets { user: UserId, open: bool },
}

impl Bus {
    /// `--bus`: `local`, or a `nats://` URL (connects now: an unreachable
    /// NATS is an error at start, not a silent single-node server) for the
    /// cluster whose nodes share the database that holds `cluster`.
    pub async fn connect(url: &crate::config::BusUrl, cluster: &str) -> anyhow::Result<Bus> {
        let crate::config::BusUrl::Nats(url) = url else {
            return Ok(Bus::Local);
        };
        let client = async_nats::ConnectOptions::new()
            .name("natter")
            .connection_timeout(CONNECT_TIMEOUT)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("bus: connected to NATS"),
                    async_nats::Event::Disconnected => tracing::warn!(
                        "bus: lost NATS; serving this node's sockets only, reconnecting \
                         (clients of other nodes catch up with /sync)"
                    ),
                    other => tracing::warn!(event = %other, "bus: NATS"),
                }
            })
            .connect(url.as_str())
            .await
            .with_context(|| {
                format!(
                    "cannot connect to the bus at {}",
                    crate::config::redact_password(url)
                )
            })?;
        let (outbox, mut queued) = tokio::sync::mpsc::channel::<Vec<u8>>(OUTBOX_LEN);
        let publisher = client.clone();
        let subject_name = subject(cluster);
        let to = subject_name.clone();
        tokio::spawn(async move {
            while let Some(payload) = queued.recv().await {
                if let Err(e) = publisher.publish(to.clone(), payload.into()).await {
                    tracing::warn!(error = %e, "bus: an event did not reach NATS");
                }
            }
        });
        Ok(Bus::Nats(Arc::new(NatsBus {
            outbox,
            client,
            node: rand::random::<u64>() >> 1,
            subject: subject_name,
        })))
    }

    /// Sends `event` to every socket of `users`, on every node.
    pub fn publish(&self, hub: &Hub, event: &Arc<Published>, users: &[UserId]) {
        hub.publish(event, users);
        if let Bus::Nats(bus) = self {
            bus.send(Kind::Users {
                users: users.to_vec(),
                event: event.event.to_string(),
                data: event.data.clone(),
                delivery: event
                    .delivery
                    .map(|d| (d.chat_id, d.message_id, d.sender_id)),
            });
        }
    }

    /// Sends `event` to the sockets in `chat`'s room except `except`'s, on
    /// every node.
    pub fn publish_to_room(&self, hub: &Hub, event: &Arc<Published>, chat: ChatId, except: UserId) {
        hub.publish_to_room(event, chat, except);
        if let Bus::Nats(bus) = self {
            bus.send(Kind::Room {
                chat,
                except,
                event: event.event.to_string(),
                data: event.data.clone(),
            });
        }
    }

    /// Takes `user` out of `chat`'s room on every node.
    pub fn leave_all(&self, hub: &Hub, user: UserId, chat: ChatId) {
        hub.leave_all(user, chat);
        if let Bus::Nats(bus) = self {
            bus.send(Kind::LeaveAll { user, chat });
        }
    }

    /// Sets presence by hand on every node; the transition (to announce) as
    /// this node sees it.
    pub fn set_manual(&self, hub: &Hub, user: UserId, online: bool) -> Option<Transition> {
        let t = hub.set_manual(user, online);
        if let Bus::Nats(bus) = self {
            bus.send(Kind::Manual { user, online });
        }
        t
    }

    /// This node now holds sockets of `user` (`true`) or no longer does.
    pub fn local_presence(&self, user: UserId, here: bool) {
        if let Bus::Nats(bus) = self {
            let (online, offline) = if here {
                (vec![user], vec![])
            } else {
                (vec![], vec![user])
            };
            bus.send(Kind::Presence {
                full: None,
                online,
                offline,
                closed: None,
            });
        }
    }

    /// `user`'s last socket on this node closed (`false`), or one opened
    /// while they were within the presence grace (`true`).
    pub fn local_sockets(&self, user: UserId, open: bool) {
        if let Bus::Nats(bus) = self {
            bus.send(Kind::Sockets { user, open });
        }
    }

    /// Starts reading the bus and sending heartbeats (NATS only); both end
    /// with the app.
    pub async fn start(&self, state: WeakState) -> anyhow::Result<()> {
        let Bus::Nats(bus) = self else {
            return Ok(());
        };
        let mut sub = bus
            .client
            .subscribe(bus.subject.clone())
            .await
            .context("cannot subscribe to the bus")?;
        let me = bus.node;
        let reader = state.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Some(state) = reader.upgrade() else { break };
                match serde_json::from_slice::<Envelope>(&msg.payload) {
                    Ok(env) if env.node == me => {}
                    Ok(env) if tracing::enabled!(tracing::Level::TRACE) => {
                        tracing::trace!(from = env.node, "bus: received");
                        receive(&state, env)
                    }
                    Ok(env) => receive(&state, env),
                    Err(e) => tracing::warn!(error = %e, "bus: dropped a message it cannot read"),
                }
            }
        });
        let bus = bus.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tick.tick().await;
                let Some(state) = state.upgrade() else { break };
                bus.send(Kind::Presence {
                    full: Some(state.hub().local_users()),
                    online: vec![],
                    offline: vec![],
                    closed: Some(state.hub().lingering_users()),
                });
                for t in state.hub().expire_remote(NODE_TTL) {
                    crate::realtime::spawn_presence(&state, t);
                }
            }
        });
        Ok(())
    }
}

impl NatsBus {
    /// Queues one envelope for NATS without waiting, in order (kept while
    /// NATS reconnects, up to [`OUTBOX_LEN`]; a loss is logged, `/sync`
    /// covers it).
    fn send(&self, kind: Kind) {
        let payload = match serde_json::to_vec(&Envelope {
            node: self.node,
            kind,
        }) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "bus: cannot serialise an event");
                return;
            }
        };
        if self.outbox.try_send(payload).is_err() {
            // NATS has been away long enough to fill the outbox: the other
            // nodes' clients get this from /sync.
            tracing::warn!("bus: outbox full, an event was dropped");
        }
    }
}

/// Applies what another node sent.
fn receive(state: &AppState, env: Envelope) {
    let hub = state.hub();
    match env.kind {
        Kind::Users {
            users,
            event,
            data,
            delivery,
        } => {
            let Some(mut published) = rebuild(&event, data) else {
                return;
            };
            published.delivery = delivery.map(|(chat_id, message_id, sender_id)| Delivery {
                chat_id,
                message_id,
                sender_id,
            });
            hub.publish(&Arc::new(published), &users);
        }
        Kind::Room {
            chat,
            except,
            event,
            data,
        } => {
            if let Some(published) = rebuild(&event, data) {
                hub.publish_to_room(&Arc::new(published), chat, except);
            }
        }
        Kind::LeaveAll { user, chat } => hub.leave_all(user, chat),
        Kind::Manual { user, online } => {
            if let Some(t) = hub.set_manual(user, online) {
                crate::realtime::spawn_presence(state, t);
            }
        }
        Kind::Presence {
            full,
            online,
            offline,
            closed,
        } => {
            for t in hub.remote_presence(env.node, full, &online, &offline) {
                crate::realtime::spawn_presence(state, t);
            }
            if let Some(closed) = closed {
                hub.remote_closed(env.node, closed);
            }
        }
        Kind::Sockets { user, open } => hub.remote_sockets(env.node, user, open),
    }
}

/// The event again, under its `'static` name; `None` for a name this
/// version does not know (a newer node): dropped.
fn rebuild(event: &str, data: Box<RawValue>) -> Option<Published> {
    let Some(name) = frames::SERVER_EVENTS.iter().find(|e| **e == event) else {
        tracing::warn!(event, "bus: dropped an event this version does not know");
        return None;
    };
    Some(Published::from_raw(name, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_with_raw_json_survives_the_round_trip() {
        let env = Envelope {
            node: 7,
            kind: Kind::Users {
                users: vec![UserId(1), UserId(2)],
                event: "message:new".into(),
                data: RawValue::from_string(r#"{"id":5,"content":"hi"}"#.into()).unwrap(),
                delivery: Some((ChatId(3), MessageId(5), UserId(1))),
            },
        };
        let bytes = serde_json::to_vec(&env).unwrap();
        let back: Envelope = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back.node, 7);
        let Kind::Users {
            users,
            event,
            data,
            delivery,
        } = back.kind
        else {
            panic!("wrong kind");
        };
        assert_eq!(users, vec![UserId(1), UserId(2)]);
        assert_eq!(event, "message:new");
        assert_eq!(data.get(), r#"{"id":5,"content":"hi"}"#);
        assert_eq!(delivery.map(|d| d.1), Some(MessageId(5)));
        assert!(rebuild("no:such-event", data).is_none());
    }
}
