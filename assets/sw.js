// natter's service worker: the app shell for offline starts and upgrades, and Web Push.
//
// The server writes the web app's version and file list in place of the two marks below
// (src/http/assets.rs), so a server with a changed web app serves a worker whose bytes differ:
// the browser installs it next to the running one, where it waits (no skipWaiting on install)
// until the page's "New version — reload" posts SKIP_WAITING, or every tab of the old version
// is closed. Each version keeps its own cache; activating one deletes the others.
//
// Fetches: the web app's own files (never the API, uploads or sockets) go to the network first
// (revalidated with `cache: 'no-cache'`: the server answers 304 to an unchanged ETag) and fall
// back to this version's copy, so an offline reload still shows the app (which then shows the
// chat list it kept and "Connecting…"). A navigation that gets no answer within NAV_WAIT_MS
// is answered from the cache too (a network that hangs rather than fails).
//
// Push: one notification per chat (tag), "N new messages" when several arrived; none while a
// window of the app is focused and visible (that tab shows the message itself). A click, or
// the page's `notification-click` message naming a tag (the same handler; the e2e test's way
// in, since no browser can click a notification for a test), focuses a window of the app and
// asks it to open the chat, or opens a new one on `#/c/<id>`.

const VERSION = '__NATTER_VERSION__';
const FILES = ["__NATTER_FILES__"];
const SHELL = `natter-shell-${VERSION}`;
const API = ['/admin', '/auth', '/chat', '/sync', '/uploads', '/ws', '/health', '/api', '/metrics', '/socket.io', '/push', '/config'];
const NAV_WAIT_MS = 4000;

self.addEventListener('install', (event) => {
  // Straight from the server (`cache: 'reload'`): never a copy the HTTP cache kept from the
  // previous version. One file failing does not fail the install; the fetch handler fills gaps.
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL);
    await Promise.allSettled(FILES.filter((f) => f.startsWith('/')).map(async (f) => {
      const res = await fetch(new Request(f, { cache: 'reload' }));
      if (res.ok) await cache.put(f, res);
    }));
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key.startsWith('natter-shell-') && key !== SHELL) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  if (API.some((p) => url.pathname === p || url.pathname.startsWith(p + '/'))) return;
  const key = req.mode === 'navigate' ? '/' : url.pathname;
  event.respondWith((async () => {
    const cache = await caches.open(SHELL);
    const network = fetch(req, { cache: 'no-cache' }).then((res) => {
      if (res.ok && res.type === 'basic') cache.put(key, res.clone()).catch(() => {});
      return res;
    });
    if (req.mode === 'navigate') {
      const hit = await cache.match(key);
      if (hit) {
        const late = new Promise((resolve) => setTimeout(() => resolve(hit), NAV_WAIT_MS));
        return Promise.race([network.catch(() => hit), late]);
      }
    }
    try {
      return await network;
    } catch (e) {
      const hit = await cache.match(key);
      if (hit) return hit;
      throw e;
    }
  })());
});

/** Whether someone is looking at natter right now (a focused, visible window). */
async function appInView() {
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  return windows.some((w) => w.focused && w.visibilityState === 'visible');
}

/** Shows (or replaces) the chat's notification for a push payload or the page's in-tab one. */
function show(p) {
  const count = Number(p.count) || 1;
  const title = p.chatName || 'natter';
  let body = p.body || 'New message';
  if (count > 1) body = `${count} new messages`;
  else if (p.isGroup && p.senderName) body = `${p.senderName}: ${body}`;
  return self.registration.showNotification(title, {
    body,
    tag: p.tag || (p.chatId != null ? `chat-${p.chatId}` : 'natter'),
    renotify: true,
    icon: '/icons/icon-192.png',
    badge: '/icons/icon-192.png',
    data: { chatId: p.chatId ?? null },
  });
}

self.addEventListener('push', (event) => {
  let p = {};
  try { p = event.data ? event.data.json() : {}; } catch (e) { p = {}; }
  event.waitUntil((async () => {
    if (await appInView()) return;
    await show(p);
  })());
});

/** What a click on `n` does: close it, then bring the app to its chat. */
async function clicked(n) {
  n.close();
  const chatId = n.data && n.data.chatId;
  const target = chatId != null ? `/#/c/${chatId}` : '/';
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const w = windows.find((c) => c.focused) || windows.find((c) => c.visibilityState === 'visible') || windows[0];
  if (!w) {
    await self.clients.openWindow(target);
    return;
  }
  // focus() is allowed only while handling a real click.
  await w.focus().catch(() => {});
  // The app routes without a reload and answers; an older page that does not: navigate it.
  const answered = await new Promise((resolve) => {
    const ch = new MessageChannel();
    const timer = setTimeout(() => resolve(false), 1500);
    ch.port1.onmessage = () => { clearTimeout(timer); resolve(true); };
    w.postMessage({ type: 'open-chat', chatId }, [ch.port2]);
  });
  if (!answered && 'navigate' in w) await w.navigate(target).catch(() => {});
}

self.addEventListener('notificationclick', (event) => {
  event.waitUntil(clicked(event.notification));
});

self.addEventListener('message', (event) => {
  const d = event.data || {};
  const reply = event.ports && event.ports[0];
  if (d.type === 'SKIP_WAITING') {
    self.skipWaiting();
  } else if (d.type === 'version') {
    if (reply) reply.postMessage(VERSION);
  } else if (d.type === 'notify' && d.payload) {
    event.waitUntil(show(d.payload));
  } else if (d.type === 'notification-click' && typeof d.tag === 'string') {
    event.waitUntil((async () => {
      const [n] = await self.registration.getNotifications({ tag: d.tag });
      if (n) await clicked(n);
      if (reply) reply.postMessage(!!n);
    })());
  }
});
