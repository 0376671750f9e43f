// Notifications on this device: the user's choice, the browser's permission, this browser's
// Web Push subscription, the one-time prompt, and the in-tab notification for a message that
// arrives while the tab is hidden.
//
// States (notifyState): 'insecure' (plain HTTP: browsers allow neither notifications nor push),
// 'unsupported', 'blocked' (the user said no to the browser; only they can undo it, in the
// site settings), 'on' (permission granted and not turned off here), 'off'.
// When on, the browser is subscribed for pushes (GET /push/key, pushManager.subscribe,
// POST /push/subscriptions), so messages arrive with no tab open; turning off and signing out
// unsubscribe and DELETE /push/subscriptions. The server pushes only to people with no open
// socket, and a tab only notifies while hidden, so one message never notifies twice; both use
// the tag `chat-<id>`, so they replace each other rather than pile up.

import * as api from './api.js';
import { emit, on, isMuted } from './store.js';
import { pwa, workersAllowed } from './pwa.js';

const PREF = 'natter.notifications'; // 'off' once turned off here; 'on' once turned on
const DISMISSED = 'natter.notifyPrompt.dismissedAt';
/** After "Not now", the prompt stays away this long. */
export const PROMPT_QUIET_MS = 30 * 24 * 3600 * 1000;
/** pushManager.subscribe talks to the browser vendor's push service; it may never answer. */
const SUBSCRIBE_TIMEOUT_MS = 20000;

export const push = {
  subscribed: false, // this browser's subscription is known to the server
  error: null, // why the last subscribe failed (shown in the menu)
  prompt: false, // the prompt is showing
};

export function notifyState() {
  if (!window.isSecureContext) return 'insecure';
  if (!('Notification' in window)) return 'unsupported';
  if (Notification.permission === 'denied') return 'blocked';
  if (Notification.permission === 'granted' && localStorage.getItem(PREF) !== 'off') return 'on';
  return 'off';
}

const pushAvailable = () => workersAllowed() && 'PushManager' in window;

function withTimeout(promise, ms, message) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); })])
    .finally(() => clearTimeout(timer));
}

function keyBytes(b64url) {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (b64url.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function sameKey(buffer, bytes) {
  if (!buffer) return true; // browsers that do not say: keep the subscription
  const a = new Uint8Array(buffer);
  return a.length === bytes.length && a.every((x, i) => x === bytes[i]);
}

// Subscribing and unsubscribing run one at a time, in order (a quiet re-subscribe at start
// must not land after "Turn off"); after signing out, nothing subscribes again.
let queue = Promise.resolve();
let signedOut = false;
function serial(fn) {
  const run = queue.then(fn, fn);
  queue = run.catch(() => {});
  return run;
}

async function registration() {
  if (!pushAvailable()) return null;
  return withTimeout(navigator.serviceWorker.ready, 10000, 'The service worker did not start.');
}

/**
 * Subscribe this browser (or confirm its subscription) and tell the server. A subscription
 * made for another server key (the server's key was replaced) is dropped and made again.
 */
function subscribe() {
  return serial(subscribeNow);
}

async function subscribeNow() {
  if (signedOut || notifyState() !== 'on') return false;
  const reg = await registration();
  if (!reg) return false;
  const { publicKey } = await api.get('/push/key');
  const key = keyBytes(publicKey);
  let sub = await reg.pushManager.getSubscription();
  if (sub && !sameKey(sub.options?.applicationServerKey, key)) {
    await sub.unsubscribe().catch(() => {});
    sub = null;
  }
  if (!sub) {
    sub = await withTimeout(reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }),
      SUBSCRIBE_TIMEOUT_MS, 'The browser’s push service did not answer.');
  }
  const j = sub.toJSON();
  await api.post('/push/subscriptions', { endpoint: j.endpoint, keys: { p256dh: j.keys?.p256dh, auth: j.keys?.auth } });
  push.subscribed = true;
  push.error = null;
  emit('notify');
  return true;
}

/**
 * Drop this browser's subscription (and, when signed in, the server's copy). The browser's
 * first: even if the server is not told (offline, or signing out took too long), the push
 * service then answers the server's next push with 404/410 and the server forgets it.
 */
function unsubscribe(tellServer) {
  return serial(() => unsubscribeNow(tellServer));
}

async function unsubscribeNow(tellServer) {
  push.subscribed = false;
  if (!pushAvailable()) return;
  const reg = await navigator.serviceWorker.getRegistration().catch(() => null);
  const sub = await reg?.pushManager?.getSubscription().catch(() => null);
  if (!sub) return;
  const { endpoint } = sub;
  await sub.unsubscribe().catch(() => {});
  if (tellServer) await api.api('DELETE', '/push/subscriptions', { endpoint }).catch(() => {});
}

/**
 * Turn notifications on (asks the browser's permission when it was never given). Resolves with
 * the new state and, when push could not be set up, the reason (in-tab notifications still work).
 */
export async function enable() {
  hidePrompt();
  let p = Notification.permission;
  if (p === 'default') p = await Notification.requestPermission().catch(() => 'default');
  if (p !== 'granted') { emit('notify'); return { state: notifyState() }; }
  localStorage.setItem(PREF, 'on');
  emit('notify');
  try {
    if (await subscribe()) return { state: 'on' };
    push.error = 'This browser does not receive pushes.';
    emit('notify');
    return { state: 'on', error: push.error };
  } catch (e) {
    push.error = e.message || 'Push could not be set up.';
    emit('notify');
    return { state: 'on', error: push.error };
  }
}

/** Turn notifications off on this device. */
export async function disable() {
  localStorage.setItem(PREF, 'off');
  hidePrompt();
  emit('notify');
  await unsubscribe(true);
  emit('notify');
}

/** Before signing out: this browser stops receiving this person's pushes (bounded in time). */
export async function signOut() {
  signedOut = true;
  await withTimeout(unsubscribe(true), 5000, 'timeout').catch(() => {});
}

/** The session ended without a sign-out (token expired): drop the subscription locally. */
export function forget() {
  signedOut = true;
  unsubscribe(false).catch(() => {});
}

/** At start: when on, make sure the server has this browser's subscription (quietly). */
export function reconcile() {
  if (notifyState() !== 'on') return;
  setTimeout(() => subscribe().catch((e) => { push.error = e.message; emit('notify'); }), 1500);
}

// ---- the prompt: after a sent message, until turned on or dismissed -------------------

function promptAllowed() {
  if (notifyState() !== 'off' || Notification.permission !== 'default') return false;
  const at = Number(localStorage.getItem(DISMISSED) || 0);
  return !(at && Date.now() - at < PROMPT_QUIET_MS);
}

export function dismissPrompt() {
  localStorage.setItem(DISMISSED, String(Date.now()));
  hidePrompt();
}

function hidePrompt() {
  if (!push.prompt) return;
  push.prompt = false;
  emit('notify');
}

on('sent', () => {
  if (push.prompt || !promptAllowed()) return;
  push.prompt = true;
  emit('notify');
});

// ---- the in-tab notification ------------------------------------------------------------

/**
 * A message arrived while this tab is hidden: notify, like a push would (same tag, same text,
 * through the worker when there is one so a click takes the same path).
 */
export function notifyInTab(chat, { title, senderName, text }) {
  if (document.visibilityState !== 'hidden' || notifyState() !== 'on' || isMuted(chat)) return;
  const payload = {
    chatId: chat.id, chatName: title, senderName, body: text, count: chat.unreadCount || 1,
    isGroup: !!chat.isGroup, tag: `chat-${chat.id}`,
  };
  const worker = workersAllowed() && navigator.serviceWorker.controller;
  if (worker) { worker.postMessage({ type: 'notify', payload }); return; }
  try {
    const body = payload.count > 1 ? `${payload.count} new messages` : (chat.isGroup ? `${senderName}: ${text}` : text);
    const n = new Notification(title, { body, tag: payload.tag, icon: '/icons/icon-192.png' });
    n.onclick = () => { window.focus(); n.close(); location.hash = `#/c/${chat.id}`; };
  } catch { /* some browsers only allow notifications from a service worker */ }
}

/** The menu's line for the current state: [label, detail]. */
export function menuText() {
  switch (notifyState()) {
    case 'insecure': return ['Notifications unavailable', 'They need HTTPS; this page is plain HTTP'];
    case 'unsupported': return ['Notifications unavailable', 'This browser cannot show them'];
    case 'blocked': return ['Notifications blocked', 'Allow them in the browser’s site settings'];
    case 'on': {
      if (push.subscribed || !pushAvailable()) return ['Turn off notifications', 'On'];
      return ['Turn off notifications', push.error ? 'On while natter is open' : 'On'];
    }
    default: return ['Turn on notifications', 'Off'];
  }
}
