// The chat list kept for an offline start: who I am, my chats (with their last message, unread
// count and mute) and the people in them, as of the last change, in localStorage. When natter
// is opened and the server cannot be reached (or does not answer /auth/me in time), the app
// starts from this copy and says "Connecting…"; the real list replaces it once the server
// answers (actions.loadChats reconciles: new chats appear, gone ones go). Deleted on sign-out
// and when the session is refused, so the next person at this browser never sees it.

import { state, on, sortedChats, mergeUser, upsertChat } from './store.js';

const KEY = 'natter.offline';
/** Chats kept, newest first; fewer when the copy would pass MAX_BYTES. */
const MAX_CHATS = 200;
const MAX_BYTES = 1_500_000;

/** The kept copy, or null. */
export function load() {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) || 'null');
    if (v && v.me && v.me.id != null && Array.isArray(v.chats)) return v;
  } catch { /* damaged: start without it */ }
  return null;
}

let stopped = false;
let timer = null;

export function clear() {
  try { localStorage.removeItem(KEY); } catch { /* nothing kept */ }
}

/** Signing out: forget the copy and keep no new one from this page (it is about to reload). */
export function forget() {
  stopped = true;
  clearTimeout(timer);
  clear();
}

/** Put the kept chats and people into the store (before the server has answered). */
export function apply(copy) {
  for (const u of copy.users || []) mergeUser(u);
  for (const c of copy.chats) upsertChat(c);
  state.chatsLoaded = true;
}

function snapshot(n) {
  const chats = sortedChats().slice(0, n).map((c) => {
    const out = {};
    for (const [k, v] of Object.entries(c)) if (!k.startsWith('_')) out[k] = v;
    return out;
  });
  const ids = new Set();
  for (const c of chats) {
    for (const p of c.participants || []) ids.add(p.userId);
    for (const f of c.formerParticipants || []) ids.add(f.userId);
    if (c.lastMessage?.senderId != null) ids.add(c.lastMessage.senderId);
  }
  const users = [...ids].map((id) => state.users.get(id)).filter(Boolean);
  return JSON.stringify({ me: state.me, chats, users, savedAt: Date.now() });
}

function save() {
  if (stopped || !state.me || !state.chatsLoaded) return;
  for (let n = MAX_CHATS; n >= 1; n = Math.floor(n / 2)) {
    const text = snapshot(n);
    if (text.length > MAX_BYTES && n > 1) continue;
    try { localStorage.setItem(KEY, text); } catch { /* quota: keep the older copy */ }
    return;
  }
}

/** Keep the copy current: written a moment after the list or my profile changes. */
export function keepSaving() {
  const soon = () => { clearTimeout(timer); timer = setTimeout(save, 800); };
  on('chats', soon);
  on('me', soon);
  addEventListener('pagehide', () => { clearTimeout(timer); save(); });
}
