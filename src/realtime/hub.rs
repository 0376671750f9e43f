//! The hub: who is connected, which rooms they joined, presence, typing, and
//! fan-out. This is the one publish/subscribe seam: ops call [`Hub::publish`]
//! with the recipients; a multi-node bus would sit behind the same call.
//!
//! Locking: one `std::sync::Mutex`, held only to copy out the senders of the
//! recipients (never across `.await` or a socket write). Each connection has a
//! bounded queue; `try_send` never waits, and a connection whose queue is full
//! is closed (it catches up via `/sync`), so one slow reader never slows
//! anyone else or grows memory without bound.
//!
//! Bounds and races: a user has at most `max_per_user` connections (a new
//! one closes their oldest); presence goes online with the first connection
//! and offline only [`PRESENCE_GRACE`] after the last one closed, if none
//! opened meanwhile; a room join or typing state rests on a membership read
//! and is taken only if no removal ([`Hub::leave_all`]) happened since that
//! read ([`Ticket`]), so a removed member never stays in a room.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::model::{ChatId, UserId};
use crate::realtime::frames::Published;

/// Frames queued for one connection before it counts as not reading.
pub const QUEUE_LEN: usize = 1024;
/// Typing expires without a refresh after this long.
pub const TYPING_TTL: Duration = Duration::from_secs(5);

/// A typing refresh is passed on again at most this often.
pub const TYPING_REANNOUNCE: Duration = Duration::from_secs(1);

/// A user whose last connection closed counts as online this much longer,
/// so a reload or a reconnect does not flap their presence.
pub const PRESENCE_GRACE: Duration = Duration::from_secs(2);

/// A connection id, unique in the process.
pub type ConnId = u64;

/// Handle a connection's writer task reads from.
pub struct ConnRx {
    pub id: ConnId,
    pub rx: mpsc::Receiver<Arc<Published>>,
    /// Cancelled when the hub drops the connection (queue full, removed,
    /// account disabled).
    pub closed: CancellationToken,
}

struct Link {
    id: ConnId,
    tx: mpsc::Sender<Arc<Published>>,
    closed: CancellationToken,
    rooms: HashSet<ChatId>,
}

#[derive(Default)]
struct Inner {
    users: HashMap<UserId, Vec<Link>>,
    rooms: HashMap<ChatId, HashSet<(UserId, ConnId)>>,
    /// Presence set by hand (`POST /chat/status`), until the next transition.
    manual: HashMap<UserId, bool>,
    /// (chat, user) → typing deadline and when it was last announced.
    typing: HashMap<(ChatId, UserId), (Instant, Instant)>,
    /// Bumped by every [`Hub::leave_all`] (someone left or was removed).
    removals: u64,
    /// Users whose last connection closed less than [`PRESENCE_GRACE`] ago
    /// (they still count as online), with the [`Linger`] that may end it.
    lingering: HashMap<UserId, u64>,
    next_linger: u64,
    /// Other nodes (bus): when each was last heard from and the users it
    /// holds sockets for.
    remote: HashMap<u64, Remote>,
}

/// What another node said about itself.
struct Remote {
    seen: Instant,
    users: HashSet<UserId>,
    /// Of `users`, those whose sockets there all closed (within the grace:
    /// online, but a push would reach them, see [`Hub::remote_sockets`]).
    closed: HashSet<UserId>,
}

/// A user's last connection closed: call [`Hub::linger_over`] after
/// [`PRESENCE_GRACE`] to learn whether they went offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linger {
    pub user: UserId,
    id: u64,
}

/// The hub's removal count when a membership check started: a join or
/// typing state based on that check is taken only if no removal happened
/// since (see [`Hub::join_checked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// A presence change to announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub user: UserId,
    pub online: bool,
}

/// Connections and fan-out.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
    /// Connections per user; a new one beyond it closes the oldest (0 = no
    /// limit).
    max_per_user: usize,
    /// `/ws` writer tasks still running (see [`Hub::writer_started`]).
    writers: Arc<AtomicU64>,
}

/// Held by a running `/ws` writer task; dropping it counts the task out.
pub struct Writing(Arc<AtomicU64>);

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hub {
    /// An empty hub allowing `max_per_user` connections per user (0 = no
    /// limit).
    pub fn new(max_per_user: usize) -> Self {
        Hub {
            max_per_user,
            ..Hub::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain maps behind: keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection. Returns its receiving end and, when the user
    /// was offline (not connected, nor within the grace after their last
    /// connection), the transition to online. A user at the per-user cap
    /// has their oldest connection closed to make room.
    pub fn connect(&self, user: UserId) -> (ConnRx, Option<Transition>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(QUEUE_LEN);
        let closed = CancellationToken::new();
        let mut inner = self.lock();
        let was_online = is_online(&inner, user);
        inner.manual.remove(&user);
        inner.lingering.remove(&user);
        let conns = inner.users.entry(user).or_default();
        if self.max_per_user > 0 {
            loop {
                let open = conns.iter().filter(|c| !c.closed.is_cancelled());
                if open.clone().count() < self.max_per_user {
                    break;
                }
                if let Some(oldest) = open.min_by_key(|c| c.id) {
                    oldest.closed.cancel();
                }
            }
        }
        conns.push(Link {
            id,
            tx,
            closed: closed.clone(),
            rooms: HashSet::new(),
        });
        let transition = (!was_online).then_some(Transition { user, online: true });
        (ConnRx { id, rx, closed }, transition)
    }

    /// Unregisters a connection. When it was the user's last one, returns
    /// the [`Linger`] to end after [`PRESENCE_GRACE`] (the user stays
    /// online until then).
    pub fn disconnect(&self, user: UserId, conn: ConnId) -> Option<Linger> {
        let mut inner = self.lock();
        let conns = inner.users.get_mut(&user)?;
        let pos = conns.iter().position(|c| c.id == conn)?;
        let removed = conns.swap_remove(pos);
        removed.closed.cancel();
        let last = conns.is_empty();
        if last {
            inner.users.remove(&user);
        }
        for chat in removed.rooms {
            if let Some(room) = inner.rooms.get_mut(&chat) {
                room.remove(&(user, conn));
                if room.is_empty() {
                    inner.rooms.remove(&chat);
                }
            }
        }
        if !last {
            return None;
        }
        inner.next_linger += 1;
        let id = inner.next_linger;
        inner.lingering.insert(user, id);
        Some(Linger { user, id })
    }

    /// Ends a grace period. `None` if the user connected again meanwhile;
    /// otherwise they hold no socket on this node any more, with the
    /// transition to offline if no other node holds one either (and they
    /// were not already shown offline).
    pub fn linger_over(&self, linger: Linger) -> Option<Option<Transition>> {
        let mut inner = self.lock();
        let user = linger.user;
        if inner.lingering.get(&user) != Some(&linger.id) {
            return None;
        }
        let was_online = is_online(&inner, user);
        inner.lingering.remove(&user);
        inner.manual.remove(&user);
        Some(
            (was_online && !is_online(&inner, user)).then_some(Transition {
                user,
                online: false,
            }),
        )
    }

    /// Whether `user` has a socket (or one within the grace) on this node.
    pub fn is_local(&self, user: UserId) -> bool {
        let inner = self.lock();
        inner.users.contains_key(&user) || inner.lingering.contains_key(&user)
    }

    /// Those of `users` with no open socket on this node nor (as far as the
    /// bus told) on another one, except `except`: who may get a push. One
    /// lock for the whole list.
    pub fn without_socket(&self, users: &[UserId], except: UserId) -> Vec<UserId> {
        let inner = self.lock();
        users
            .iter()
            .copied()
            .filter(|&u| {
                u != except
                    && !inner.users.contains_key(&u)
                    && !inner
                        .remote
                        .values()
                        .any(|r| r.users.contains(&u) && !r.closed.contains(&u))
            })
            .collect()
    }

    /// Users with a socket (or one within the grace) on this node.
    pub fn local_users(&self) -> Vec<UserId> {
        let inner = self.lock();
        let mut users: Vec<UserId> = inner.users.keys().copied().collect();
        users.extend(inner.lingering.keys().copied());
        users
    }

    /// What node `node` said: the full list of users it holds sockets for
    /// (a heartbeat) and/or users that came or went. Returns the presence
    /// transitions this makes, as this node sees the cluster (each node
    /// tells its own sockets).
    pub fn remote_presence(
        &self,
        node: u64,
        full: Option<Vec<UserId>>,
        online: &[UserId],
        offline: &[UserId],
    ) -> Vec<Transition> {
        let mut inner = self.lock();
        let mut touched: Vec<UserId> = online.iter().chain(offline).copied().collect();
        if let Some(all) = &full {
            touched.extend(all.iter().copied());
            if let Some(r) = inner.remote.get(&node) {
                touched.extend(r.users.iter().copied());
            }
        }
        touched.sort_unstable();
        touched.dedup();
        let before: Vec<bool> = touched.iter().map(|&u| is_online(&inner, u)).collect();
        let remote = remote_entry(&mut inner, node);
        if let Some(all) = full {
            remote.users = all.into_iter().collect();
            let users = &remote.users;
            remote.closed.retain(|u| users.contains(u));
        }
        remote.users.extend(online.iter().copied());
        for u in online.iter().chain(offline) {
            remote.closed.remove(u);
        }
        for u in offline {
            remote.users.remove(u);
        }
        // A socket opened or gone for good ends presence set by hand, on
        // every node as on the one that saw it (`connect`, `linger_over`).
        for u in online.iter().chain(offline) {
            inner.manual.remove(u);
        }
        touched
            .into_iter()
            .zip(before)
            .filter_map(|(user, was)| {
                let now = is_online(&inner, user);
                (now != was).then_some(Transition { user, online: now })
            })
            .collect()
    }

    /// What node `node` said about `user`'s sockets there: the last closed
    /// (`open: false`, said at once, before the presence grace ends) or
    /// one opened again within it. Presence is unchanged; only who may get
    /// a push ([`Hub::without_socket`]).
    pub fn remote_sockets(&self, node: u64, user: UserId, open: bool) {
        let mut inner = self.lock();
        let remote = remote_entry(&mut inner, node);
        if open {
            remote.closed.remove(&user);
        } else if remote.users.contains(&user) {
            remote.closed.insert(user);
        }
    }

    /// A heartbeat's whole list of `node`'s users whose sockets all closed
    /// (it repairs a lost [`Hub::remote_sockets`]).
    pub fn remote_closed(&self, node: u64, closed: Vec<UserId>) {
        let mut inner = self.lock();
        let remote = remote_entry(&mut inner, node);
        remote.closed = closed
            .into_iter()
            .filter(|u| remote.users.contains(u))
            .collect();
    }

    /// Users whose sockets on this node all closed less than
    /// [`PRESENCE_GRACE`] ago.
    pub fn lingering_users(&self) -> Vec<UserId> {
        self.lock().lingering.keys().copied().collect()
    }

    /// Whether `user` has an open socket on this node (not merely one
    /// within the grace).
    pub fn has_socket(&self, user: UserId) -> bool {
        self.lock().users.contains_key(&user)
    }

    /// Forgets nodes not heard from within `ttl`; the transitions to offline
    /// of their users who hold no socket anywhere else.
    pub fn expire_remote(&self, ttl: Duration) -> Vec<Transition> {
        let mut inner = self.lock();
        let now = Instant::now();
        let dead: Vec<u64> = inner
            .remote
            .iter()
            .filter(|(_, r)| now.duration_since(r.seen) > ttl)
            .map(|(&n, _)| n)
            .collect();
        let mut gone = Vec::new();
        for node in dead {
            if let Some(r) = inner.remote.remove(&node) {
                tracing::warn!(
                    node,
                    users = r.users.len(),
                    "bus: a node went silent; its users go offline"
                );
                gone.extend(r.users);
            }
        }
        gone.sort_unstable();
        gone.dedup();
        gone.into_iter()
            .filter(|&u| !inner.manual.contains_key(&u) && !is_online(&inner, u))
            .map(|user| Transition {
                user,
                online: false,
            })
            .collect()
    }

    /// Whether the user counts as online.
    pub fn is_online(&self, user: UserId) -> bool {
        is_online(&self.lock(), user)
    }

    /// Sets presence by hand; returns the transition if it changed.
    pub fn set_manual(&self, user: UserId, online: bool) -> Option<Transition> {
        let mut inner = self.lock();
        let before = is_online(&inner, user);
        inner.manual.insert(user, online);
        (before != online).then_some(Transition { user, online })
    }

    /// Counts a `/ws` writer task in until the returned guard drops.
    pub fn writer_started(&self) -> Writing {
        self.writers.fetch_add(1, Ordering::AcqRel);
        Writing(self.writers.clone())
    }

    /// `/ws` writer tasks still running.
    pub fn writers_running(&self) -> u64 {
        self.writers.load(Ordering::Acquire)
    }

    /// Number of live connections.
    pub fn connection_count(&self) -> usize {
        self.lock().users.values().map(Vec::len).sum()
    }

    /// Number of users online.
    pub fn online_count(&self) -> usize {
        let inner = self.lock();
        let connected = |u: &UserId| inner.users.contains_key(u) || inner.lingering.contains_key(u);
        let mut n = inner.users.len() + inner.lingering.len();
        for (user, &online) in &inner.manual {
            match (connected(user), online) {
                (true, false) => n -= 1,
                (false, true) => n += 1,
                _ => {}
            }
        }
        n
    }

    /// Take this before reading membership for [`Hub::join_checked`] or
    /// [`Hub::set_typing`].
    pub fn ticket(&self) -> Ticket {
        Ticket(self.lock().removals)
    }

    /// Adds a connection to a chat's room (for typing), unless someone was
    /// taken out of a room since `ticket` (the membership read before it may
    /// be stale: the caller reads again and retries). A removal commits
    /// before its [`Hub::leave_all`], so a join either lands before the
    /// sweep (and is swept) or sees the bumped count: a removed member never
    /// stays in the room.
    pub fn join_checked(&self, user: UserId, conn: ConnId, chat: ChatId, ticket: Ticket) -> bool {
        let mut inner = self.lock();
        if inner.removals != ticket.0 {
            return false;
        }
        if let Some(c) = inner
            .users
            .get_mut(&user)
            .and_then(|cs| cs.iter_mut().find(|c| c.id == conn))
        {
            c.rooms.insert(chat);
            inner.rooms.entry(chat).or_default().insert((user, conn));
        }
        true
    }

    /// Removes a connection from a chat's room.
    pub fn leave(&self, user: UserId, conn: ConnId, chat: ChatId) {
        let mut inner = self.lock();
        if let Some(c) = inner
            .users
            .get_mut(&user)
            .and_then(|cs| cs.iter_mut().find(|c| c.id == conn))
        {
            c.rooms.remove(&chat);
        }
        if let Some(room) = inner.rooms.get_mut(&chat) {
            room.remove(&(user, conn));
        }
    }

    /// Takes every connection of `user` out of `chat`'s room (the user left
    /// or was removed) and forgets their typing there.
    pub fn leave_all(&self, user: UserId, chat: ChatId) {
        let mut inner = self.lock();
        if let Some(conns) = inner.users.get_mut(&user) {
            for c in conns.iter_mut() {
                c.rooms.remove(&chat);
            }
        }
        if let Some(room) = inner.rooms.get_mut(&chat) {
            room.retain(|(u, _)| *u != user);
        }
        inner.typing.remove(&(chat, user));
        inner.removals += 1;
    }

    /// Whether this connection joined the chat.
    pub fn has_joined(&self, user: UserId, conn: ConnId, chat: ChatId) -> bool {
        self.lock()
            .rooms
            .get(&chat)
            .is_some_and(|r| r.contains(&(user, conn)))
    }

    /// Records a typing state of `user` on connection `conn`; returns
    /// whether it should be announced: a change, or a refresh of an ongoing
    /// "typing" at most once per [`TYPING_REANNOUNCE`] (so a connection that
    /// joined meanwhile sees it). `None` when the connection has not joined
    /// the chat and a removal happened since `ticket` (the membership check
    /// may be stale: check again).
    pub fn set_typing(
        &self,
        chat: ChatId,
        user: UserId,
        conn: ConnId,
        typing: bool,
        ticket: Ticket,
    ) -> Option<bool> {
        let mut inner = self.lock();
        let joined = inner
            .rooms
            .get(&chat)
            .is_some_and(|r| r.contains(&(user, conn)));
        if !joined && inner.removals != ticket.0 {
            return None;
        }
        let now = Instant::now();
        if !typing {
            return Some(inner.typing.remove(&(chat, user)).is_some());
        }
        Some(match inner.typing.get_mut(&(chat, user)) {
            Some((deadline, announced)) => {
                *deadline = now + TYPING_TTL;
                if now.duration_since(*announced) >= TYPING_REANNOUNCE {
                    *announced = now;
                    true
                } else {
                    false
                }
            }
            None => {
                inner.typing.insert((chat, user), (now + TYPING_TTL, now));
                true
            }
        })
    }

    /// Typing states past their deadline, removed.
    pub fn expire_typing(&self, now: Instant) -> Vec<(ChatId, UserId)> {
        let mut inner = self.lock();
        let expired: Vec<_> = inner
            .typing
            .iter()
            .filter(|(_, &(deadline, _))| deadline <= now)
            .map(|(&key, _)| key)
            .collect();
        for key in &expired {
            inner.typing.remove(key);
        }
        expired
    }

    /// Sends an event to every connection of `users`.
    pub fn publish(&self, event: &Arc<Published>, users: &[UserId]) {
        let targets: Vec<_> = {
            let inner = self.lock();
            users
                .iter()
                .filter_map(|u| inner.users.get(u))
                .flatten()
                .map(|c| (c.tx.clone(), c.closed.clone()))
                .collect()
        };
        deliver(event, targets);
    }

    /// Sends an event to the connections that joined `chat`, except `user`'s.
    pub fn publish_to_room(&self, event: &Arc<Published>, chat: ChatId, except: UserId) {
        let targets: Vec<_> = {
            let inner = self.lock();
            let Some(room) = inner.rooms.get(&chat) else {
                return;
            };
            room.iter()
                .filter(|(u, _)| *u != except)
                .filter_map(|(u, id)| {
                    inner
                        .users
                        .get(u)
                        .and_then(|cs| cs.iter().find(|c| c.id == *id))
                })
                .map(|c| (c.tx.clone(), c.closed.clone()))
                .collect()
        };
        deliver(event, targets);
    }

    /// Closes every connection of a user (account disabled).
    pub fn close_user(&self, user: UserId) {
        let inner = self.lock();
        for c in inner.users.get(&user).into_iter().flatten() {
            c.closed.cancel();
        }
    }

    /// Whether [`Hub::close_all`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Closes every connection (shutdown: close code 1001).
    pub fn close_all(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        let inner = self.lock();
        for c in inner.users.values().flatten() {
            c.closed.cancel();
        }
    }
}

/// `node`'s entry, made on first word from it; heard from now.
fn remote_entry(inner: &mut Inner, node: u64) -> &mut Remote {
    let remote = inner.remote.entry(node).or_insert_with(|| Remote {
        seen: Instant::now(),
        users: HashSet::new(),
        closed: HashSet::new(),
    });
    remote.seen = Instant::now();
    remote
}

fn is_online(inner: &Inner, user: UserId) -> bool {
    inner.manual.get(&user).copied().unwrap_or_else(|| {
        inner.users.contains_key(&user)
            || inner.lingering.contains_key(&user)
            || inner.remote.values().any(|r| r.users.contains(&user))
    })
}

fn deliver(
    event: &Arc<Published>,
    targets: Vec<(mpsc::Sender<Arc<Published>>, CancellationToken)>,
) {
    for (tx, closed) in targets {
        match tx.try_send(Arc::clone(event)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("closing a connection that stopped reading (queue full)");
                closed.cancel();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(user: i64, online: bool) -> Transition {
        Transition {
            user: UserId(user),
            online,
        }
    }

    #[test]
    fn other_nodes_sockets_make_a_user_online_until_they_go_or_the_node_falls_silent() {
        let hub = Hub::new(0);
        // Node 7 opened Ann's socket: online here too, once.
        assert_eq!(
            hub.remote_presence(7, None, &[UserId(1)], &[]),
            vec![t(1, true)]
        );
        assert!(hub.is_online(UserId(1)));
        assert_eq!(
            hub.remote_presence(7, Some(vec![UserId(1)]), &[], &[]),
            vec![]
        );
        // A socket here too: no new transition; its end leaves her online.
        let (conn, transition) = hub.connect(UserId(1));
        assert_eq!(transition, None);
        let linger = hub
            .disconnect(UserId(1), conn.id)
            .expect("last socket here");
        assert_eq!(hub.linger_over(linger), Some(None));
        // Node 7's heartbeat no longer lists her: offline.
        assert_eq!(
            hub.remote_presence(7, Some(vec![]), &[], &[]),
            vec![t(1, false)]
        );
        assert!(!hub.is_online(UserId(1)));

        // Presence set by hand ends when a socket opens anywhere.
        assert_eq!(hub.set_manual(UserId(2), true), Some(t(2, true)));
        assert_eq!(hub.set_manual(UserId(2), false), Some(t(2, false)));
        assert_eq!(
            hub.remote_presence(8, None, &[UserId(2)], &[]),
            vec![t(2, true)]
        );

        // Node 8 falls silent: its users go offline here.
        assert_eq!(hub.expire_remote(Duration::from_secs(60)), vec![]);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            hub.expire_remote(Duration::from_millis(1)),
            vec![t(2, false)]
        );
        assert!(!hub.is_online(UserId(2)));
    }
}
