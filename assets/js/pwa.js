// The service worker seen from the page (assets/sw.js): registering it, noticing a new version
// ("New version — reload"), the browser's install offer, and the worker's requests to open a
// chat (a notification click).
//
// Versions: the server writes the web app's version into index.html (<meta name=
// "natter-version">) and into the worker. A new worker that waits is offered as an update only
// when its version differs from the page's own: after an upgrade, a page that was itself
// loaded from the upgraded server already runs that version, so its worker is switched over
// quietly instead of asking for a reload that would change nothing.

import { emit } from './store.js';

/** Shared state: the waiting worker (an update is ready) and the deferred install offer. */
export const pwa = {
  registration: null,
  waiting: null,
  installOffer: null,
};

/** The version of the web app this page runs (null when not served by natter). */
export const PAGE_VERSION = (() => {
  const v = document.querySelector('meta[name="natter-version"]')?.getAttribute('content');
  return v && !v.startsWith('__') ? v : null;
})();

/** Browsers allow service workers (and so push, install, offline starts) on https:// and localhost. */
export const workersAllowed = () => 'serviceWorker' in navigator && window.isSecureContext;

export const isStandalone = () => matchMedia('(display-mode: standalone)').matches || navigator.standalone === true;

let reloading = false;
let lastCheck = 0;
let openChat = () => {};

/**
 * Register the worker and listen to it. `onOpenChat(chatId)` is called when a notification
 * was clicked (the worker focused this window and asks it to show that chat).
 */
export function startWorker({ onOpenChat } = {}) {
  if (onOpenChat) openChat = onOpenChat;
  if (!workersAllowed()) return;
  navigator.serviceWorker.addEventListener('message', (e) => {
    const d = e.data || {};
    if (d.type !== 'open-chat') return;
    e.ports?.[0]?.postMessage('ok');
    openChat(d.chatId);
  });
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    // Only after the user asked for the new version: reload once into it.
    if (!reloading) return;
    reloading = false;
    location.reload();
  });
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).then((reg) => {
    pwa.registration = reg;
    if (reg.waiting && navigator.serviceWorker.controller) consider(reg.waiting);
    reg.addEventListener('updatefound', () => {
      const w = reg.installing;
      w?.addEventListener('statechange', () => {
        if (w.state === 'installed' && navigator.serviceWorker.controller) consider(w);
      });
    });
  }).catch(() => {});
  // A long-lived tab has no navigations that would make the browser look for a new worker.
  setInterval(() => checkForUpdate(), 3600 * 1000);
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') checkForUpdate(60000); });
}

/**
 * Ask the browser to fetch sw.js again (after a reconnect the server may have been upgraded);
 * not when the last look was less than `minGapMs` ago.
 */
export function checkForUpdate(minGapMs = 0) {
  const reg = pwa.registration;
  if (!reg || Date.now() - lastCheck < minGapMs) return;
  lastCheck = Date.now();
  reg.update().catch(() => {});
}

function versionOf(worker) {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    const timer = setTimeout(() => resolve(null), 3000);
    ch.port1.onmessage = (e) => { clearTimeout(timer); resolve(e.data); };
    worker.postMessage({ type: 'version' }, [ch.port2]);
  });
}

async function consider(worker) {
  const version = await versionOf(worker);
  if (worker.state === 'redundant') return;
  if (version && PAGE_VERSION && version === PAGE_VERSION) {
    worker.postMessage({ type: 'SKIP_WAITING' });
    return;
  }
  pwa.waiting = worker;
  emit('update-ready');
}

/** "Reload": let the waiting worker take over, then reload once into the new version. */
export function applyUpdate() {
  const w = pwa.waiting || pwa.registration?.waiting;
  if (!w) { location.reload(); return; }
  reloading = true;
  w.postMessage({ type: 'SKIP_WAITING' });
  // If the switch does not come (the worker went away meanwhile), reload anyway.
  setTimeout(() => { if (reloading) { reloading = false; location.reload(); } }, 4000);
}

// The browser's install offer comes once per page load; keep it for the menu's "Install app".
addEventListener('beforeinstallprompt', (e) => {
  e.preventDefault();
  pwa.installOffer = e;
  emit('installable');
});
addEventListener('appinstalled', () => {
  pwa.installOffer = null;
  emit('installable');
});

/** Show the browser's install dialog; resolves with 'accepted', 'dismissed' or null. */
export async function install() {
  const offer = pwa.installOffer;
  if (!offer) return null;
  pwa.installOffer = null; // an offer can be shown only once
  emit('installable');
  try {
    await offer.prompt();
    const choice = await offer.userChoice;
    return choice?.outcome || null;
  } catch {
    return null;
  }
}

/** Close this device's notifications of a chat (it is on screen now). */
export async function closeNotifications(chatId) {
  const reg = pwa.registration;
  if (!reg?.getNotifications || chatId == null) return;
  try {
    for (const n of await reg.getNotifications({ tag: `chat-${chatId}` })) n.close();
  } catch { /* not allowed here */ }
}
