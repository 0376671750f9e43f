// What the UI can do for issue 19: react to a message, search messages, open a conversation at
// a message (a window of history around it, paged both ways) and forward messages.
// Server answers go through the store like every other change (store.js applies them).

import * as api from './api.js';
import { loadLatest } from './actions.js';
import { uuid } from './util.js';
import { state, emit, box, insertMessages, applyEvent, reactionsWith, findMessage } from './store.js';

/** The quick bar's emoji, in WhatsApp's order. */
export const QUICK_EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🙏'];

/** The emoji `userId` reacted with on `m` (or null). */
export function reactionOf(m, userId = state.me?.id) {
  return (m?.reactions || []).find((r) => (r.userIds || []).includes(userId))?.emoji ?? null;
}

/**
 * Set my one reaction on `m` to `emoji` (null removes it). Shown at once; the server's answer
 * (the message with its reactions) replaces the guess, a failure puts the old list back.
 */
export async function react(m, emoji) {
  const before = findMessage(m.chatId, m.id)?.reactions ?? m.reactions ?? [];
  const me = state.me.id;
  applyEvent('message:reaction', { chatId: m.chatId, messageId: m.id, userId: me, emoji, reactions: reactionsWith(before, me, emoji) });
  const path = `/chat/${m.chatId}/messages/${m.id}/reaction`;
  try {
    const r = emoji ? await api.api('PUT', path, { emoji }) : await api.del(path);
    if (r && Array.isArray(r.reactions)) applyEvent('message:reaction', { chatId: m.chatId, messageId: m.id, userId: me, emoji, reactions: r.reactions });
  } catch (e) {
    applyEvent('message:reaction', { chatId: m.chatId, messageId: m.id, userId: me, emoji: null, reactions: before });
    throw e;
  }
}

// ---- search -------------------------------------------------------------------------------

/** One page of `GET /search`: {items: [{message, chatId, ranges, fileNameRanges}], hasMore}. */
export async function searchMessages(q, { chatId = null, before = null, limit = 30 } = {}) {
  const params = new URLSearchParams({ q, limit: String(limit) });
  if (chatId != null) params.set('chatId', String(chatId));
  if (before != null) params.set('before', String(before));
  const r = await api.get(`/search?${params}`);
  return { items: Array.isArray(r?.items) ? r.items : [], hasMore: !!r?.hasMore };
}

// ---- history around a message ------------------------------------------------------------

/**
 * Make `messageId` part of the chat's loaded history: nothing to do when it is loaded already,
 * otherwise the list is replaced by the page around it (`?around=`), which may not reach the
 * newest message (`hasNewer`). Resolves with whether the message is now in the list.
 */
export async function loadAround(chatId, messageId) {
  const b = box(chatId);
  if (b.loaded && b.byId.has(messageId)) return true;
  const epoch = ++b.epoch;
  b.loading = true;
  emit('messages', chatId);
  try {
    const r = await api.get(`/chat/${chatId}/messages?around=${encodeURIComponent(messageId)}&limit=50`);
    if (b.epoch !== epoch) return b.byId.has(messageId);
    const items = r.items || [];
    b.list = [];
    b.byId = new Map();
    insertMessages(b, items);
    b.hasMore = r.hasMoreBefore ?? !!r.hasMore;
    b.hasNewer = !!r.hasMoreAfter;
    b.loaded = true;
    b.error = null;
    return b.byId.has(messageId);
  } catch (e) {
    if (b.epoch === epoch && !b.loaded) b.error = e.message;
    throw e;
  } finally {
    if (b.epoch === epoch) b.loading = false;
    emit('messages', chatId);
  }
}

/** In a window opened at a message: the next page towards the newest (`?after=`). */
export async function loadNewer(chatId) {
  const b = box(chatId);
  if (!b.loaded || !b.hasNewer || b.loadingNewer || !b.list.length) return false;
  b.loadingNewer = true;
  const epoch = b.epoch;
  try {
    const r = await api.get(`/chat/${chatId}/messages?after=${b.list.at(-1).id}&limit=50`);
    if (b.epoch !== epoch) return false;
    insertMessages(b, r.items || []);
    b.hasNewer = !!r.hasMore && (r.items || []).length > 0;
    return true;
  } catch {
    return false;
  } finally {
    b.loadingNewer = false;
    emit('messages', chatId);
  }
}

/** Leave a window opened at a message: back to the newest page, as when the chat opens. */
export async function backToLatest(chatId) {
  const b = box(chatId);
  b.epoch++;
  b.list = [];
  b.byId = new Map();
  b.hasMore = true;
  b.hasNewer = false;
  b.loaded = false;
  b.loading = false;
  await loadLatest(chatId);
}

// ---- forward ------------------------------------------------------------------------------

/** At most this many chats in one forward (as in WhatsApp). */
export const FORWARD_MAX_CHATS = 10;

/**
 * Forward `messages` (in the order sent) to each of `chatIds`: one POST per message and chat,
 * each with its own clientId (a retry of the same send is not a second message).
 * Resolves with {sent, failed: [{chatId, error}]}.
 */
export async function forwardMessages(messages, chatIds) {
  const ordered = [...messages].sort((x, y) => x.id - y.id);
  let sent = 0;
  const failed = [];
  await Promise.all(chatIds.map(async (chatId) => {
    for (const m of ordered) {
      const clientId = uuid();
      let r = null;
      for (let attempt = 0; attempt < 2 && !r; attempt++) {
        try {
          r = await api.post(`/chat/${chatId}/messages`, { forwardedFromId: m.id, clientId });
        } catch (e) {
          // A network blip: once more with the same clientId; anything else is an answer.
          if (e.status !== 0 || attempt === 1) { failed.push({ chatId, messageId: m.id, error: e }); break; }
        }
      }
      if (r?.id != null) { sent++; applyEvent('message:new', r); }
    }
  }));
  return { sent, failed };
}
