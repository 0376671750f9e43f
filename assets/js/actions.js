// What the UI can do: load chats and history, send (through the outbox), edit, delete,
// mark read, group admin, and the real-time connection with catch-up from the cursor.

import * as api from './api.js';
import { Realtime } from './ws.js';
import { uuid } from './util.js';
import {
  state, emit, hooks, applyEvent, upsertChat, removeChat, box, insertMessages, isChatVisible,
  mergeUser, chatTitle,
} from './store.js';

let rt = null;
let cursor = null;
let hadReady = false;
const chatFetches = new Map();

// ---- connection ---------------------------------------------------------------------

export function startRealtime() {
  rt = new Realtime({
    token: () => api.session.token,
    onEvent: (event, data) => {
      if (!state.chatsLoaded) { earlyEvents.push([event, data]); return; }
      applyEvent(event, data);
    },
    onReady: (data) => { onReady(data).catch((e) => console.warn('ready handling failed', e)); },
    onState: (s) => { state.conn = s; emit('conn', s); },
    // A 401 here sends the app back to the login screen (api.session.onUnauthorized).
    onRefused: () => { if (navigator.onLine !== false) api.get('/auth/me').catch(() => {}); },
  });
  rt.start();
}

export function stopRealtime() {
  rt?.stop();
  rt = null;
}

const earlyEvents = [];

const CURSOR_KEY = () => `natter.cursor.${state.me?.id}`;
function saveCursor(c) {
  cursor = c;
  try { if (c != null) localStorage.setItem(CURSOR_KEY(), JSON.stringify(c)); } catch { /* quota */ }
}
function storedCursor() {
  try { return JSON.parse(localStorage.getItem(CURSOR_KEY()) || 'null'); } catch { return null; }
}

async function onReady(data) {
  const first = !hadReady;
  hadReady = true;
  for (const id of state.chats.keys()) rt.send('chat:join', { chatId: id });
  // Catch up on every connection, the first one too (from where this browser last was, or from
  // this connection's cursor): whatever /sync returns has reached this device, so the senders'
  // ticks turn into double grey ones.
  const from = cursor ?? storedCursor() ?? data.cursor;
  if (from != null) {
    try {
      await catchUp(from);
      saveCursor(data.cursor ?? cursor);
      if (!first) emit('reconnected');
    } catch (e) {
      // Keep the old cursor: the next connection replays from there (duplicates are harmless).
      console.warn('catch-up failed', e);
    }
  } else {
    saveCursor(data.cursor ?? null);
  }
  if (first && state.chatsLoaded) await refreshAfterGap();
  else if (!first) {
    await loadChats().catch(() => {});
    await refreshTicks();
  }
  if (state.openChatId != null) markRead(state.openChatId);
  // A history that failed to load while the server was away (an offline start) loads now.
  for (const [chatId, b] of [...state.msgs]) {
    if (b.loaded || !b.error) continue;
    if (chatId === state.openChatId) loadLatest(chatId); else state.msgs.delete(chatId);
  }
  // The first connection of a page says so too: a "Connecting…" shown meanwhile (a slow
  // start, or one from the kept chat list) turns into "Reconnected".
  if (first) emit('reconnected');
  flush();
}

/** Replay everything since `from`, exactly as if it had arrived on the socket. */
async function catchUp(from) {
  let after = from;
  for (let guard = 0; guard < 1000; guard++) {
    const r = await api.get(`/sync?after=${encodeURIComponent(after)}&limit=100`);
    for (const it of r.items || []) {
      if (state.chatsLoaded) applyEvent(it.event, it.data, { live: false });
      else if (!/typing/.test(it.event)) earlyEvents.push([it.event, it.data]);
    }
    if (r.cursor != null) after = r.cursor;
    if (!r.hasMore || !(r.items || []).length) break;
  }
  return after;
}

/** The first socket came up after the chat list was fetched: close the gap. */
async function refreshAfterGap() {
  await loadChats().catch(() => {});
  for (const [chatId, b] of state.msgs) {
    const last = b.list.at(-1)?.id;
    const chat = state.chats.get(chatId);
    if (last != null && !b.hasNewer && chat?.lastMessage && chat.lastMessage.id > last) {
      const r = await api.get(`/chat/${chatId}/messages?after=${last}&limit=200`).catch(() => null);
      if (r) { insertMessages(b, r.items || []); emit('messages', chatId); }
    }
  }
}

/**
 * /sync does not replay receipts: refetch the open chat's newest page (statuses only move up,
 * so merging is safe) and forget other loaded histories; they reload when opened.
 */
async function refreshTicks() {
  for (const chatId of [...state.msgs.keys()]) {
    if (chatId !== state.openChatId) state.msgs.delete(chatId);
  }
  const b = state.openChatId != null && state.msgs.get(state.openChatId);
  if (!b?.loaded || b.hasNewer) return;
  const r = await api.get(`/chat/${state.openChatId}/messages?limit=50`).catch(() => null);
  if (r) { insertMessages(b, r.items || []); emit('messages', state.openChatId); }
}

export const connected = () => !!rt?.isOpen;

// ---- chats --------------------------------------------------------------------------

export async function loadChats() {
  // Chats known before the request: the answer is a snapshot from about then, so only these may
  // be dropped for missing from it; one learned from an event meanwhile (chat:new, a first
  // message) stays.
  const before = new Set(state.chats.keys());
  const all = [];
  for (let page = 1; page < 100; page++) {
    const r = await api.get(`/chat?page=${page}&limit=100`);
    const items = r.items || [];
    all.push(...items);
    if (items.length < 100 || (r.total != null && all.length >= r.total)) break;
  }
  const seen = new Set();
  const known = new Set(state.chats.keys());
  for (const c of all) {
    seen.add(c.id);
    upsertChat(c);
  }
  for (const id of [...state.chats.keys()]) if (before.has(id) && !seen.has(id)) removeChat(id);
  const wasLoaded = state.chatsLoaded;
  state.chatsLoaded = true;
  if (!wasLoaded) {
    for (const [e, d] of earlyEvents.splice(0)) applyEvent(e, d);
    if (rt?.isOpen) for (const id of state.chats.keys()) rt.send('chat:join', { chatId: id });
  } else if (rt?.isOpen) {
    // Chats new to this page (one started from the kept list learns them here): join their
    // rooms, for typing. The socket's `ready` joins whatever is known by then.
    for (const id of seen) if (!known.has(id)) rt.send('chat:join', { chatId: id });
  }
  emit('chats');
  return all;
}

/** The public server settings (upload limit, delete window); null until known. */
export async function loadConfig() {
  for (let i = 0; i < 3 && !state.config; i++) {
    try {
      state.config = await api.get('/config');
    } catch {
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  return state.config;
}

export function fetchChat(chatId) {
  if (chatFetches.has(chatId)) return chatFetches.get(chatId);
  const p = api.get(`/chat/${chatId}`)
    .then((c) => { const isNew = !state.chats.has(c.id); upsertChat(c); if (isNew) rt?.send('chat:join', { chatId: c.id }); return c; })
    .catch(() => null)
    .finally(() => chatFetches.delete(chatId));
  chatFetches.set(chatId, p);
  return p;
}

export async function createChat(participantIds, isGroup, name) {
  const body = { participantIds, isGroup };
  if (isGroup) body.name = name;
  const c = await api.post('/chat', body);
  const isNew = !state.chats.has(c.id);
  upsertChat(c);
  if (isNew) rt?.send('chat:join', { chatId: c.id });
  return state.chats.get(c.id);
}

export const searchUsers = async (q) => {
  const r = await api.get(`/chat/users/search?q=${encodeURIComponent(q)}`);
  return (r.items || []).map((u) => mergeUser(u));
};

/** Upload a cropped square image (a Blob) and return its fileUrl. */
export async function uploadImage(blob, name = 'avatar.jpg') {
  const file = new File([blob], name, { type: blob.type || 'image/jpeg' });
  const r = await api.upload(file).promise;
  return r.fileUrl;
}

export async function setMyAvatar(blob) {
  const avatarUrl = blob ? await uploadImage(blob) : null;
  const u = await api.patch('/auth/me', { avatarUrl });
  state.me = { ...state.me, ...u };
  mergeUser(u);
  emit('me');
  emit('chats');
  emit('presence', u.id);
  return u;
}

export async function setGroupAvatar(chatId, blob) {
  const groupAvatar = blob ? await uploadImage(blob, 'group.jpg') : null;
  const c = await api.patch(`/chat/${chatId}`, { groupAvatar });
  if (c?.id != null) upsertChat(c); else await fetchChat(chatId);
}

export async function renameGroup(chatId, name) {
  const c = await api.patch(`/chat/${chatId}`, { name });
  if (c?.id != null) upsertChat(c);
}
export async function addMembers(chatId, userIds) {
  const c = await api.post(`/chat/${chatId}/participants`, { userIds });
  if (c?.id != null) upsertChat(c); else await fetchChat(chatId);
}
export async function removeMember(chatId, userId) {
  const c = await api.del(`/chat/${chatId}/participants/${userId}`);
  if (userId === state.me.id) { state.leftByMe = chatId; removeChat(chatId); return; }
  if (c?.id != null) upsertChat(c); else await fetchChat(chatId);
}
export async function setAdmin(chatId, userId, isAdmin) {
  const c = await api.patch(`/chat/${chatId}/participants/${userId}`, { isAdmin });
  if (c?.id != null) upsertChat(c); else await fetchChat(chatId);
}

/** Mute this chat's notifications until `until` (ms; a far date for always), or unmute (null). */
export async function setMuted(chatId, until) {
  const c = await api.patch(`/chat/${chatId}/settings`, { mutedUntil: until });
  if (c?.id != null) upsertChat(c); else await fetchChat(chatId);
}

// ---- history ------------------------------------------------------------------------

export async function loadLatest(chatId) {
  const b = box(chatId);
  if (b.loaded || b.loading) return;
  b.loading = true;
  const epoch = b.epoch;
  emit('messages', chatId);
  try {
    const r = await api.get(`/chat/${chatId}/messages?limit=50`);
    if (b.epoch !== epoch) return; // opened at a message meanwhile (find.js)
    insertMessages(b, r.items || []);
    b.hasMore = !!r.hasMore;
    b.loaded = true;
    b.error = null;
  } catch (e) {
    b.error = e.message;
  } finally {
    b.loading = false;
    emit('messages', chatId);
  }
}

export async function loadOlder(chatId) {
  const b = box(chatId);
  if (!b.loaded || !b.hasMore || b.loadingOlder || !b.list.length) return false;
  b.loadingOlder = true;
  const epoch = b.epoch;
  emit('older', chatId);
  try {
    const r = await api.get(`/chat/${chatId}/messages?before=${b.list[0].id}&limit=50`);
    if (b.epoch !== epoch) return false;
    insertMessages(b, r.items || []);
    b.hasMore = !!r.hasMore && (r.items || []).length > 0;
    return true;
  } catch {
    return false;
  } finally {
    b.loadingOlder = false;
    emit('messages', chatId);
    emit('older', chatId);
  }
}

export function markRead(chatId) {
  const b = state.msgs.get(chatId);
  const chat = state.chats.get(chatId);
  // A window opened further up (find.js) has not shown the newest messages yet.
  if (!b?.loaded || b.hasNewer || !chat || !isChatVisible(chatId)) return;
  const last = b.list.at(-1)?.id;
  if (last == null) return;
  const others = b.list.some((m) => m.id > b.readUpTo && m.senderId !== state.me.id);
  if (!others && !chat.unreadCount) return;
  b.readUpTo = last;
  chat.unreadCount = 0;
  emit('chats');
  if (!(rt && rt.send('message:read', { chatId, upToMessageId: last }))) {
    api.post(`/chat/${chatId}/read`, { upToMessageId: last }).catch(() => { b.readUpTo = 0; });
  }
}

export function sendTyping(chatId, isTyping) {
  rt?.send('typing:update', { chatId, isTyping });
}

export async function editMessage(m, content) {
  const r = await api.patch(`/chat/${m.chatId}/messages/${m.id}`, { content });
  applyEvent('message:updated', r?.id != null ? r : { ...m, content, isEdited: true });
}

/** Delete for me: gone from my view on all my devices; others still see it. */
export async function deleteForMe(m) {
  await api.del(`/chat/${m.chatId}/messages/${m.id}?for=me`);
  applyEvent('message:hidden', { chatId: m.chatId, messageId: m.id });
}

/** Clear chat: every message so far disappears for me (on all my devices), the chat stays. */
export async function clearChat(chatId) {
  await api.post(`/chat/${chatId}/clear`);
  const b = state.msgs.get(chatId);
  const chat = state.chats.get(chatId);
  const upTo = Math.max(b?.list.at(-1)?.id ?? 0, chat?.lastMessage?.id ?? 0);
  applyEvent('chat:cleared', { chatId, upToMessageId: upTo });
}

/** May I still delete this message for everyone (own, or group admin; within the window)? */
export function canDeleteForEveryone(m, chat) {
  if (!m || m.isDeleted || m.messageType === 'SYSTEM' || m.id == null) return false;
  const mine = m.senderId === state.me?.id;
  const admin = !!chat?.isGroup && !!chat.participants.find((p) => p.userId === state.me?.id && p.isAdmin);
  if (!mine && !admin) return false;
  const win = state.config?.deleteWindowSeconds;
  if (win > 0) {
    const age = Date.now() - (Date.parse(m.createdAt) || 0);
    if (age > win * 1000) return false;
  }
  return true;
}

export async function deleteMessage(m) {
  const r = await api.del(`/chat/${m.chatId}/messages/${m.id}`);
  const tomb = r?.id != null ? r : { ...m, isDeleted: true, content: null, fileUrl: null, fileName: null, thumbnailUrl: null };
  applyEvent('message:deleted', tomb);
}

export const receipts = (m) => api.get(`/chat/${m.chatId}/messages/${m.id}/receipts`);

// ---- outbox: queued sends with a clientId, resent on reconnect -----------------------

const OUTBOX_KEY = () => `natter.outbox.${state.me?.id}`;
let flushing = false;
let seq = 0;

function saveOutbox() {
  const keep = state.outbox.filter((p) => p.state !== 'uploading' && !p.file)
    .map(({ localUrl, file, abort, progress, ...rest }) => rest);
  try { localStorage.setItem(OUTBOX_KEY(), JSON.stringify(keep)); } catch { /* quota */ }
}

export function restoreOutbox() {
  let saved = [];
  try { saved = JSON.parse(localStorage.getItem(OUTBOX_KEY()) || '[]'); } catch { saved = []; }
  for (const p of saved) {
    if (!state.chats.has(p.chatId) || state.outbox.some((x) => x.clientId === p.clientId)) continue;
    state.outbox.push({ ...p, state: p.state === 'failed' ? 'failed' : 'queued', seq: ++seq });
    emit('messages', p.chatId);
  }
  flush();
}

function outboxChanged(chatId) {
  saveOutbox();
  emit('messages', chatId);
  emit('chats');
}

hooks.ackOutbox = (chatId, clientId) => {
  const i = state.outbox.findIndex((p) => p.chatId === chatId && p.clientId === clientId);
  if (i < 0) return;
  const [p] = state.outbox.splice(i, 1);
  if (p.localUrl) setTimeout(() => URL.revokeObjectURL(p.localUrl), 30000);
  outboxChanged(chatId);
};

function enqueue(chatId, fields) {
  const p = {
    clientId: uuid(), chatId, senderId: state.me.id, createdAt: new Date().toISOString(),
    state: 'queued', seq: ++seq, ...fields,
  };
  state.outbox.push(p);
  outboxChanged(chatId);
  flush();
  return p;
}

export function sendText(chatId, content, replyToId) {
  return enqueue(chatId, { messageType: 'TEXT', content, replyToId: replyToId ?? null });
}

/** Upload then send; progress and errors live on the outbox entry. Throws 413-style errors. */
export async function sendFile(chatId, file, replyToId, caption = null, batch = null, voice = null) {
  const isImage = !voice && /^image\//.test(file.type);
  const p = {
    clientId: uuid(), chatId, senderId: state.me.id, createdAt: new Date().toISOString(),
    state: 'uploading', seq: ++seq, progress: 0, file, batch,
    messageType: isImage ? 'IMAGE' : 'FILE', content: caption || null, replyToId: replyToId ?? null,
    fileName: file.name, fileSize: file.size, fileMimeType: file.type || 'application/octet-stream',
    durationMs: voice?.durationMs ?? null, waveform: voice?.waveform ?? null,
  };
  if (isImage) p.localUrl = URL.createObjectURL(file);
  // Into the outbox at once, so files picked together keep their order (see flush()).
  state.outbox.push(p);
  outboxChanged(chatId);
  if (isImage) {
    try {
      const bmp = await createImageBitmap(file);
      p.width = bmp.width; p.height = bmp.height;
      bmp.close?.();
      emit('messages', chatId);
    } catch { /* not decodable: no size */ }
  }
  if (!state.outbox.includes(p)) return undefined; // cancelled meanwhile
  return startUpload(p);
}

async function startUpload(p) {
  p.state = 'uploading';
  p.progress = 0;
  p.error = null;
  const up = api.upload(p.file, (f) => { p.progress = f; emit('progress', p.clientId); });
  p.abort = up.abort;
  emit('messages', p.chatId);
  try {
    const r = await up.promise;
    Object.assign(p, { fileUrl: r.fileUrl, fileName: r.fileName ?? p.fileName, fileSize: r.fileSize ?? p.fileSize, fileMimeType: r.fileMimeType ?? p.fileMimeType });
    p.file = null;
    p.state = 'queued';
    p.abort = null;
    outboxChanged(p.chatId);
    flush();
  } catch (e) {
    p.abort = null;
    if (e.code === 'aborted' || e.status === 413 || e.status === 400) {
      discard(p.clientId);
      if (e.code !== 'aborted') throw e;
      return;
    }
    p.state = 'failed';
    p.error = e.message;
    outboxChanged(p.chatId);
  }
}

export function retry(clientId) {
  const p = state.outbox.find((x) => x.clientId === clientId);
  if (!p || p.state !== 'failed') return;
  if (p.file && !p.fileUrl) { startUpload(p).catch(() => {}); return; }
  p.state = 'queued';
  p.error = null;
  outboxChanged(p.chatId);
  flush();
}

export function discard(clientId) {
  const i = state.outbox.findIndex((x) => x.clientId === clientId);
  if (i < 0) return;
  const [p] = state.outbox.splice(i, 1);
  p.abort?.();
  if (p.localUrl) URL.revokeObjectURL(p.localUrl);
  outboxChanged(p.chatId);
}

function sendBody(p) {
  const body = { chatId: p.chatId, messageType: p.messageType, clientId: p.clientId };
  if (p.content != null) body.content = p.content;
  if (p.replyToId != null) body.replyToId = p.replyToId;
  if (p.fileUrl) Object.assign(body, { fileUrl: p.fileUrl, fileName: p.fileName, fileSize: p.fileSize, fileMimeType: p.fileMimeType });
  if (p.durationMs != null) Object.assign(body, { durationMs: p.durationMs, waveform: p.waveform });
  return body;
}

/** Send queued entries one at a time, in order, while the socket is up. */
export async function flush() {
  if (flushing) return;
  flushing = true;
  try {
    while (rt?.isOpen) {
      // Files picked together are sent in the order picked, whichever finished uploading first.
      const waits = (x) => x.batch != null && state.outbox.some((y) => y.batch === x.batch && y.seq < x.seq && y.state === 'uploading');
      const p = state.outbox.find((x) => x.state === 'queued' && !waits(x));
      if (!p) break;
      p.state = 'sending';
      try {
        const m = await rt.request('message:send', sendBody(p), 20000);
        if (state.outbox.includes(p)) hooks.ackOutbox(p.chatId, p.clientId);
        if (m?.id != null) applyEvent('message:new', m);
        emit('sent', p.chatId);
      } catch (e) {
        if (!state.outbox.includes(p)) continue;
        if (e.code === 'disconnected' || e.code === 'timeout' || e.code === 'rate_limited') {
          p.state = 'queued';
          if (e.code === 'timeout') { rt.drop('closed'); rt.scheduleReconnect(); }
          if (e.code === 'rate_limited') setTimeout(flush, 3000);
          break;
        }
        p.state = 'failed';
        p.error = e.message || 'Not sent';
        outboxChanged(p.chatId);
      }
    }
  } finally {
    flushing = false;
  }
}

// ---- wiring the store's hooks ----------------------------------------------------------

hooks.fetchChat = fetchChat;
hooks.markRead = (chatId) => setTimeout(() => markRead(chatId), 0);
hooks.joinChat = (chatId) => rt?.send('chat:join', { chatId });
hooks.refetchLast = (chatId) => {
  api.get(`/chat/${chatId}`).then((c) => upsertChat({ ...c, _replaceLast: true })).catch(() => {});
};

export function chatLabel(chatId) {
  return chatTitle(state.chats.get(chatId));
}

/** The played receipt of a voice message (blue mic for its sender); shown played here at once. */
export async function markPlayed(chatId, messageId) {
  applyEvent('message:status', { chatId, messageId, userId: state.me.id, status: 'PLAYED', playedBy: [state.me.id] });
  try {
    const r = rt?.isOpen
      ? await rt.request('message:played', { chatId, messageId }, 10000)
      : await api.post(`/chat/${chatId}/played`, { messageId });
    if (Array.isArray(r?.playedBy)) applyEvent('message:status', { chatId, messageId, userId: state.me.id, status: 'PLAYED', playedBy: r.playedBy });
  } catch { /* shown played; the server will learn on the next play */ }
}
