// natter's service worker: the app shell for offline starts, and Web Push.
//
// Fetches: the web app's own files (never the API, uploads or sockets) go
// to the network first and fall back to the last copy kept here, so an
// offline reload still shows the app (which then says "Connecting…") and an
// upgraded server's files are used as soon as they can be fetched.
// Push: one notification per chat (tag), "N new messages" when several
// arrived; a click focuses an open window on that chat or opens one.

const SHELL = 'natter-shell-v1';
const API = ['/admin', '/auth', '/chat', '/sync', '/uploads', '/ws', '/health', '/api', '/metrics', '/socket.io', '/push', '/config'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(['/', '/app.css', '/js/main.js'])).catch(() => {}));
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== SHELL) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  if (API.some((p) => url.pathname === p || url.pathname.startsWith(p + '/'))) return;
  event.respondWith((async () => {
    const cache = await caches.open(SHELL);
    try {
      const res = await fetch(req);
      if (res.ok) cache.put(req.mode === 'navigate' ? '/' : req, res.clone()).catch(() => {});
      return res;
    } catch (e) {
      const hit = await cache.match(req.mode === 'navigate' ? '/' : req);
      if (hit) return hit;
      throw e;
    }
  })());
});

self.addEventListener('push', (event) => {
  let p = {};
  try { p = event.data ? event.data.json() : {}; } catch (e) { p = {}; }
  const count = Number(p.count) || 1;
  const title = p.chatName || 'natter';
  let body = p.body || 'New message';
  if (count > 1) body = `${count} new messages`;
  else if (p.isGroup && p.senderName) body = `${p.senderName}: ${body}`;
  event.waitUntil(self.registration.showNotification(title, {
    body,
    tag: p.tag || (p.chatId != null ? `chat-${p.chatId}` : 'natter'),
    renotify: true,
    icon: '/icons/icon-192.png',
    badge: '/icons/icon-192.png',
    data: { chatId: p.chatId },
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const chatId = event.notification.data && event.notification.data.chatId;
  const target = chatId != null ? `/#/c/${chatId}` : '/';
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const w of windows) {
      if ('focus' in w) {
        await w.focus();
        if ('navigate' in w) await w.navigate(target).catch(() => {});
        return;
      }
    }
    await self.clients.openWindow(target);
  })());
});
