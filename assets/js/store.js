// Client state and the one place where server events are applied. Events from the WebSocket
// and from /sync go through applyEvent(), so catch-up is exactly live delivery replayed.
// Messages are de-duplicated by id everywhere; own pending sends by clientId.

import { maxStatus, STATUS_RANK } from './util.js';

export const state = {
  me: null,
  users: new Map(), // id -> user
  chats: new Map(), // id -> chat (participants: [{userId, isAdmin, joinedAt}])
  chatsLoaded: false,
  msgs: new Map(), // chatId -> box
  typing: new Map(), // chatId -> Map(userId -> timer)
  outbox: [], // own messages not yet acknowledged (see outbox.js)
  openChatId: null,
  conn: 'connecting',
  config: null, // GET /config: {uploadMaxSize, messageMaxLength, deleteWindowSeconds, registration}
};

// ---- change notifications -------------------------------------------------------------

const listeners = new Map();
export function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(fn);
  return () => listeners.get(topic).delete(fn);
}
export function emit(topic, arg) {
  for (const fn of listeners.get(topic) || []) {
    try { fn(arg); } catch (e) { console.error(e); }
  }
}

// ---- users --------------------------------------------------------------------------

export function mergeUser(u) {
  if (!u || u.id == null) return null;
  const old = state.users.get(u.id);
  const next = old ? { ...old, ...u } : { ...u };
  state.users.set(u.id, next);
  if (state.me && state.me.id === u.id) state.me = { ...state.me, ...u };
  return next;
}

export function userOf(id) {
  return state.users.get(id) || { id, name: 'Unknown user', email: '' };
}

export function knownUser(id) {
  return state.users.has(id);
}

export function displayName(id) {
  if (state.me && id === state.me.id) return 'You';
  return userOf(id).name || 'Unknown user';
}

// ---- chats --------------------------------------------------------------------------

export function upsertChat(c) {
  if (!c || c.id == null) return null;
  const old = state.chats.get(c.id);
  const next = { ...(old || {}), ...c };
  if (Array.isArray(c.participants)) {
    next.participants = c.participants.map((p) => {
      const u = mergeUser(p.user);
      return { userId: u ? u.id : p.userId, isAdmin: !!p.isAdmin, joinedAt: p.joinedAt };
    });
  } else if (old) next.participants = old.participants;
  if (!next.participants) next.participants = [];
  // People who left or were removed: their names and avatars stay resolvable in old messages.
  if (Array.isArray(c.formerParticipants)) {
    next.formerParticipants = c.formerParticipants.map((f) => {
      const u = mergeUser(f.user);
      return { userId: u ? u.id : f.userId, leftAt: f.leftAt };
    });
  } else next.formerParticipants = old?.formerParticipants || [];
  // Keep whichever last message is newest; the same id from the server wins (edits, deletes).
  // After a delete for me or a clear, the server's (older or null) last message is the truth.
  if (c._replaceLast) {
    delete next._replaceLast;
    next.lastMessage = c.lastMessage ?? null;
  } else if (old?.lastMessage && (!c.lastMessage || old.lastMessage.id > c.lastMessage.id)) next.lastMessage = old.lastMessage;
  else if (old?.lastMessage && c.lastMessage && old.lastMessage.id === c.lastMessage.id) {
    next.lastMessage = mergeMessage(old.lastMessage, c.lastMessage);
  }
  if (c.unreadCount == null) next.unreadCount = old?.unreadCount || 0;
  if (isChatVisible(c.id)) next.unreadCount = 0;
  state.chats.set(c.id, next);
  emit('chats');
  emit('chat', c.id);
  return next;
}

export function removeChat(chatId) {
  if (!state.chats.has(chatId)) return;
  state.chats.delete(chatId);
  state.msgs.delete(chatId);
  state.typing.delete(chatId);
  emit('chats');
  emit('chat-removed', chatId);
}

export function otherUserId(chat) {
  if (!chat || chat.isGroup) return null;
  const p = chat.participants.find((x) => x.userId !== state.me?.id);
  return p ? p.userId : state.me?.id;
}

export function chatTitle(chat) {
  if (!chat) return '';
  if (chat.isGroup) return chat.name || 'Group';
  const id = otherUserId(chat);
  return id === state.me?.id ? `${state.me.name} (You)` : userOf(id).name;
}

export function isAdmin(chat, userId = state.me?.id) {
  return !!chat?.participants.find((p) => p.userId === userId && p.isAdmin);
}

export function activityTime(chat) {
  const pending = state.outbox.filter((p) => p.chatId === chat.id);
  const times = [chat.lastMessage?.createdAt, chat.updatedAt, chat.createdAt, pending.at(-1)?.createdAt]
    .filter(Boolean).map((t) => Date.parse(t) || 0);
  return Math.max(0, ...times);
}

export function sortedChats() {
  return [...state.chats.values()].sort((a, b) => activityTime(b) - activityTime(a) || b.id - a.id);
}

/** Whether I muted this chat (its mute has not run out). */
export function isMuted(chat, now = Date.now()) {
  return chat?.mutedUntil != null && Number(chat.mutedUntil) > now;
}

export function unreadTotal() {
  let n = 0;
  for (const c of state.chats.values()) n += c.unreadCount || 0;
  return n;
}

// ---- messages -----------------------------------------------------------------------

export function box(chatId, create = true) {
  let b = state.msgs.get(chatId);
  if (!b && create) {
    // hasNewer: the list is a window opened at a message (a search hit, a reply) that does not
    // reach the newest message; epoch: bumped when the list is replaced, so a page asked for
    // before that is dropped.
    b = { list: [], byId: new Map(), hasMore: true, hasNewer: false, epoch: 0, loaded: false, loading: false, loadingOlder: false, loadingNewer: false, readUpTo: 0 };
    state.msgs.set(chatId, b);
  }
  return b;
}

export function mergeMessage(old, m) {
  if (!old) return m;
  const next = { ...old, ...m };
  next.status = maxStatus(old.status, m.status);
  return next;
}

/** Insert or replace messages (by id) in a chat's loaded list, keeping it sorted by id. */
export function insertMessages(b, msgs) {
  let needSort = false;
  for (const m of msgs) {
    if (!m || m.id == null) continue;
    const old = b.byId.get(m.id);
    if (old) {
      const merged = mergeMessage(old, m);
      const i = b.list.indexOf(old);
      if (i >= 0) b.list[i] = merged;
      b.byId.set(m.id, merged);
    } else {
      const last = b.list[b.list.length - 1];
      if (last && last.id > m.id) needSort = true;
      b.list.push(m);
      b.byId.set(m.id, m);
    }
  }
  if (needSort) b.list.sort((x, y) => x.id - y.id);
}

export function findMessage(chatId, id) {
  const b = state.msgs.get(chatId);
  return b?.byId.get(id) || (state.chats.get(chatId)?.lastMessage?.id === id ? state.chats.get(chatId).lastMessage : null);
}

export function isChatVisible(chatId) {
  return state.openChatId === chatId && document.visibilityState === 'visible';
}

// ---- applying server events -----------------------------------------------------------

/** Hooks the app installs: fetch an unknown chat, mark read, notify, drop an outbox entry. */
export const hooks = {
  fetchChat: (_id) => {},
  markRead: (_chatId) => {},
  notify: (_chat, _m) => {},
  ackOutbox: (_chatId, _clientId) => {},
  joinChat: (_chatId) => {},
  refetchLast: (_chatId) => {},
};

function applyMessage(m, isNewEvent) {
  if (!m || m.chatId == null || m.id == null) return;
  const mine = m.senderId === state.me?.id;
  if (mine && m.clientId) hooks.ackOutbox(m.chatId, m.clientId);
  const b = state.msgs.get(m.chatId);
  const known = !!b?.byId.has(m.id);
  // A window opened further up the history gets no new messages (they belong after the gap);
  // it reaches them by scrolling down or "scroll to latest".
  if (b && (known || !b.hasNewer)) insertMessages(b, [m]);
  const chat = state.chats.get(m.chatId);
  if (!chat) {
    if (isNewEvent) hooks.fetchChat(m.chatId);
  } else {
    const prev = chat.lastMessage;
    if (!prev || m.id > prev.id) chat.lastMessage = m;
    else if (prev.id === m.id) chat.lastMessage = mergeMessage(prev, m);
    const note = m.messageType === 'SYSTEM';
    if (isNewEvent && !mine && !known && (!prev || m.id > prev.id)) {
      // Group notes are never unread and never notify.
      if (isChatVisible(m.chatId)) hooks.markRead(m.chatId);
      else if (!note) chat.unreadCount = (chat.unreadCount || 0) + 1;
      if (!note) hooks.notify(chat, m);
      // A message ends that sender's typing indicator.
      clearTyping(m.chatId, m.senderId);
    }
    // Writing in a chat (from any of my devices) reads it: the server moved my
    // read position to this message.
    if (isNewEvent && mine && !note && !known && (!prev || m.id > prev.id)) chat.unreadCount = 0;
    // A group note means the group changed (name, photo, members): refresh it even if no
    // chat:updated arrives.
    if (isNewEvent && note && !known) hooks.fetchChat(m.chatId);
    if (isNewEvent && m.createdAt && (!chat.updatedAt || m.createdAt > chat.updatedAt)) chat.updatedAt = m.createdAt;
  }
  emit('messages', m.chatId);
  emit('chats');
}

function applyStatus(d) {
  const chatId = d.chatId;
  if (d.status === 'PLAYED' && Array.isArray(d.playedBy)) {
    const b = state.msgs.get(chatId);
    const m = b?.byId.get(d.messageId);
    if (m) {
      const playedBy = [...new Set([...(m.playedBy || []), ...d.playedBy])];
      const n = { ...m, playedBy };
      const i = b.list.indexOf(m);
      if (i >= 0) b.list[i] = n;
      b.byId.set(n.id, n);
      emit('messages', chatId);
    }
  }
  const st = d.messageStatus || d.status;
  if (!STATUS_RANK[st] || d.messageId == null) return;
  const me = state.me?.id;
  const bump = (m) => (m && m.senderId === me && m.id <= d.messageId && (STATUS_RANK[st] > (STATUS_RANK[m.status] || 0)))
    ? { ...m, status: st } : null;
  const b = state.msgs.get(chatId);
  if (b) {
    for (let i = 0; i < b.list.length; i++) {
      const n = bump(b.list[i]);
      if (n) { b.list[i] = n; b.byId.set(n.id, n); }
    }
  }
  const chat = state.chats.get(chatId);
  if (chat?.lastMessage) {
    const n = bump(chat.lastMessage);
    if (n) chat.lastMessage = n;
  }
  emit('messages', chatId);
  emit('chats');
}

function clearTyping(chatId, userId) {
  const t = state.typing.get(chatId);
  if (!t || !t.has(userId)) return;
  clearTimeout(t.get(userId));
  t.delete(userId);
  emit('typing', chatId);
}

function applyTyping(d) {
  if (d.userId === state.me?.id || d.chatId == null) return;
  if (!d.isTyping) { clearTyping(d.chatId, d.userId); return; }
  let t = state.typing.get(d.chatId);
  if (!t) { t = new Map(); state.typing.set(d.chatId, t); }
  clearTimeout(t.get(d.userId));
  t.set(d.userId, setTimeout(() => clearTyping(d.chatId, d.userId), 6500));
  emit('typing', d.chatId);
}

export function typingUsers(chatId) {
  return [...(state.typing.get(chatId)?.keys() || [])];
}

/** Delete for me (this or another of my devices): the message is gone from my view. */
function applyHidden(d) {
  const chatId = d.chatId;
  const b = state.msgs.get(chatId);
  if (b?.byId.has(d.messageId)) {
    const old = b.byId.get(d.messageId);
    b.byId.delete(d.messageId);
    b.list.splice(b.list.indexOf(old), 1);
  }
  const chat = state.chats.get(chatId);
  if (chat?.lastMessage?.id === d.messageId) {
    // Fall back to the newest message still visible; the server's chat object has it.
    chat.lastMessage = b?.list.at(-1) || null;
    hooks.refetchLast(chatId);
  }
  emit('messages', chatId);
  emit('chats');
}

/** Clear chat (from any of my devices): everything up to upToMessageId is gone for me. */
function applyCleared(d) {
  const chatId = d.chatId;
  const upTo = d.upToMessageId ?? Infinity;
  const b = state.msgs.get(chatId);
  if (b) {
    b.list = b.list.filter((m) => m.id > upTo);
    b.byId = new Map(b.list.map((m) => [m.id, m]));
    b.hasMore = false;
  }
  const chat = state.chats.get(chatId);
  if (chat) {
    if (chat.lastMessage && chat.lastMessage.id <= upTo) chat.lastMessage = b?.list.at(-1) || null;
    chat.unreadCount = 0;
  }
  emit('messages', chatId);
  emit('chats');
}

/** Someone's reaction changed: the event carries the message's list after it. */
function applyReaction(d) {
  const { chatId, messageId } = d;
  const change = (m) => {
    if (!m) return m;
    let reactions = d.reactions;
    if (!Array.isArray(reactions)) reactions = reactionsWith(m.reactions, d.userId, d.emoji);
    return { ...m, reactions };
  };
  const b = state.msgs.get(chatId);
  const m = b?.byId.get(messageId);
  if (m) {
    const n = change(m);
    const i = b.list.indexOf(m);
    if (i >= 0) b.list[i] = n;
    b.byId.set(n.id, n);
  }
  const chat = state.chats.get(chatId);
  if (chat?.lastMessage?.id === messageId) chat.lastMessage = change(chat.lastMessage);
  emit('messages', chatId);
}

/** `reactions` after `userId` set `emoji` (null: removed theirs); order of first use kept. */
export function reactionsWith(reactions, userId, emoji) {
  const out = [];
  for (const r of reactions || []) {
    const userIds = (r.userIds || []).filter((id) => id !== userId);
    if (r.emoji === emoji) userIds.push(userId);
    if (userIds.length) out.push({ emoji: r.emoji, count: userIds.length, userIds });
  }
  if (emoji && !out.some((r) => r.emoji === emoji)) out.push({ emoji, count: 1, userIds: [userId] });
  return out;
}

/** Apply one server event (from the socket or from /sync). */
export function applyEvent(event, data, { live = true } = {}) {
  switch (event) {
    case 'message:new':
      applyMessage(data, true);
      break;
    case 'message:updated':
    case 'message:deleted':
      applyMessage(data, false);
      break;
    case 'message:status':
      applyStatus(data);
      break;
    case 'message:reaction':
      applyReaction(data);
      break;
    case 'message:hidden':
      applyHidden(data);
      break;
    case 'chat:cleared':
      applyCleared(data);
      break;
    case 'typing:update':
    case 'message:typing':
      if (live) applyTyping(data);
      break;
    case 'user:online': {
      const u = mergeUser({ id: data.userId, online: !!data.online, lastSeen: data.lastSeen ?? state.users.get(data.userId)?.lastSeen });
      if (u && !data.online) for (const chatId of state.typing.keys()) clearTyping(chatId, data.userId);
      emit('presence', data.userId);
      emit('chats');
      break;
    }
    case 'chat:new':
    case 'chat:updated': {
      const isNew = !state.chats.has(data.id);
      const c = upsertChat(data);
      if (c && !c.participants.some((p) => p.userId === state.me?.id) && c.participants.length) removeChat(c.id);
      else if (isNew && c) hooks.joinChat(c.id);
      break;
    }
    case 'chat:removed':
      removeChat(data.chatId ?? data.id);
      break;
    default:
      break;
  }
}
