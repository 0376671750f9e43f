// Browser test of issue 17's web app side: notifications (the prompt, turning them on and off,
// the menu's states, signing out), Web Push end to end, mute, the offline start from the kept
// chat list, "New version — reload" after an upgrade, the install offer, and screenshots of
// the prompt and of the app in its own window. Its own server (with --push-allow-private, so a
// push service stub on 127.0.0.1 is a valid endpoint) and browsers. Run:
// E2E_SUITES=push bash tests/e2e/run.sh
//
// What headless Chromium cannot do, and what stands in for it:
// - pushManager.subscribe: in a normal test context (incognito) Chromium refuses at once
//   ("Registration failed - permission denied"); in a persistent profile it waits forever for
//   Google's push service, which is unreachable here. So Carol's page meets the real refusal
//   (the app reports it), while Alice's page gets a stand-in for the browser's push client
//   (STAND_IN below): subscribe() records its options and hands back a subscription whose
//   endpoint is this test's push service stub and whose keys the test made, as a browser
//   would. Everything after it is real: the app posts it, the server encrypts and sends pushes
//   to the stub, the test decrypts them (RFC 8291) and delivers the plaintext to Alice's real
//   service worker with CDP ServiceWorker.deliverPushMessage.
// - A click on a notification: CDP cannot click one. The worker's click handler also runs for
//   a `notification-click` message naming a tag (assets/sw.js): it takes the real notification
//   from registration.getNotifications and runs the same code. That proves the notification
//   carries the right chat and that the handler closes it and brings the app to that chat; not
//   that the browser calls the handler on a click (the browser's part).
// - The browser's permission dialog: "Allow" is ctx.grantPermissions; without it headless
//   Chromium answers "denied", which is how Carol's notifications end up blocked.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  ROOT, EXTRA, SHOTS, DESKTOP, CHROMIUM_ARGS, log, startServer, stopServer, launchBrowser, newContext, runSuite,
  closeAtEnd, check, until, watch, row, register, send, openChat, call, tokenOf, contrastOf, shot,
} from './lib.mjs';

const ALICE = 'Alice Johnson';
const BOB = 'Bob Smith';
const CAROL = 'Carol Diaz';
const GROUP = 'Weekend plans';
const INSECURE_HOST = 'natter.test'; // mapped to 127.0.0.1: plain HTTP that is not localhost
const APP_WINDOW = { width: 420, height: 820 }; // the README's "own window" picture: phone-like

// ---- the push service stub and the test's own push keys ---------------------------------

function pushService() {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(201).end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, got, port: server.address().port })));
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function pushKeys() {
  const ecdh = crypto.createECDH('prime256v1');
  ecdh.generateKeys();
  return { ecdh, p256dh: ecdh.getPublicKey(), auth: crypto.randomBytes(16) };
}

/** RFC 8291 (aes128gcm, one record) with the browser-side keys: the push's JSON payload. */
function decrypt(body, keys) {
  const salt = body.subarray(0, 16);
  const idlen = body[20];
  const serverKey = body.subarray(21, 21 + idlen);
  const data = body.subarray(21 + idlen);
  const secret = keys.ecdh.computeSecret(serverKey);
  const info = Buffer.concat([Buffer.from('WebPush: info\0'), keys.p256dh, serverKey]);
  const ikm = Buffer.from(crypto.hkdfSync('sha256', secret, keys.auth, info, 32));
  const cek = Buffer.from(crypto.hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(crypto.hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const d = crypto.createDecipheriv('aes-128-gcm', cek, nonce);
  d.setAuthTag(data.subarray(data.length - 16));
  const plain = Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]);
  let end = plain.length - 1;
  while (end >= 0 && plain[end] === 0) end--;
  if (plain[end] !== 2) throw new Error('no last-record delimiter in the push');
  return JSON.parse(plain.subarray(0, end).toString('utf8'));
}

/** Pushes the stub got at `endpointPath`, after the first `from`. */
const pushesTo = (svc, endpointPath, from = 0) => svc.got.slice(from).filter((p) => p.path === endpointPath);

/**
 * The stand-in for the browser's push client (see the top of this file), installed in Alice's
 * pages before the app runs. The subscription lives in localStorage, like a browser keeps it.
 */
function STAND_IN(sub) {
  const KEY = 'e2e.pushSubscription';
  const bytes = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  const b64 = (u8) => btoa(String.fromCharCode(...u8)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const make = (saved) => ({
    endpoint: sub.endpoint,
    expirationTime: null,
    options: { userVisibleOnly: true, applicationServerKey: bytes(saved.applicationServerKey).buffer },
    getKey: (name) => bytes(name === 'p256dh' ? sub.p256dh : sub.auth).buffer,
    toJSON: () => ({ endpoint: sub.endpoint, expirationTime: null, keys: { p256dh: sub.p256dh, auth: sub.auth } }),
    unsubscribe: async () => { localStorage.removeItem(KEY); return true; },
  });
  PushManager.prototype.subscribe = async function subscribe(options) {
    const key = options.applicationServerKey;
    const u8 = typeof key === 'string' ? bytes(key) : new Uint8Array(key.buffer ? key.buffer.slice(key.byteOffset, key.byteOffset + key.byteLength) : key);
    const saved = { applicationServerKey: b64(u8), userVisibleOnly: options.userVisibleOnly === true };
    localStorage.setItem(KEY, JSON.stringify(saved));
    return make(saved);
  };
  PushManager.prototype.getSubscription = async function getSubscription() {
    const saved = localStorage.getItem(KEY);
    return saved ? make(JSON.parse(saved)) : null;
  };
}

// ---- the service worker, from the test's side ----------------------------------------------

/** A message to the active worker; resolves with its answer (or null after 5 s). */
function toWorker(page, message) {
  return page.evaluate((m) => navigator.serviceWorker.ready.then((reg) => new Promise((resolve) => {
    const ch = new MessageChannel();
    const t = setTimeout(() => resolve(null), 5000);
    ch.port1.onmessage = (e) => { clearTimeout(t); resolve(e.data); };
    reg.active.postMessage(m, [ch.port2]);
  })), message);
}

const notifications = (page, tag) => page.evaluate((t) => navigator.serviceWorker.ready
  .then((reg) => reg.getNotifications(t ? { tag: t } : undefined))
  .then((list) => list.map((n) => ({ title: n.title, body: n.body, tag: n.tag, chatId: n.data?.chatId }))), tag);

/**
 * Deliver a push (its plaintext) to the worker of `base` in `ctx`, as the push service would:
 * over CDP from `via` (a page of the app), or from a blank page when no app page is open.
 */
async function deliver(ctx, base, payload, via = null) {
  const page = via || await ctx.newPage();
  try {
    const cdp = await ctx.newCDPSession(page);
    const regs = new Map();
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => { for (const r of e.registrations) regs.set(r.scopeURL, r); });
    await cdp.send('ServiceWorker.enable');
    const reg = await until(() => regs.get(`${base}/`), 'the service worker registration over CDP', 5000);
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: base, registrationId: reg.registrationId, data: JSON.stringify(payload) });
    await cdp.detach();
  } finally {
    if (!via) await page.close();
  }
}

/**
 * `send()` (a message to someone whose tabs were just closed), again every 3 s until the push
 * service stub got a push at `endpointPath` (the server may still see the closing socket);
 * resolves with the decrypted pushes that arrived meanwhile.
 */
async function pushedAfter(svc, endpointPath, keys, sendIt, want = (list) => list.length > 0) {
  const from = svc.got.length;
  for (let i = 0; i < 4; i++) {
    await sendIt(i);
    const end = Date.now() + 3000;
    while (Date.now() < end) {
      const list = pushesTo(svc, endpointPath, from).map((x) => decrypt(x.body, keys));
      if (want(list)) return list;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('no push reached the push service stub');
}

async function menuItem(page, testid) {
  await page.getByTestId('menu-button').click();
  const item = page.getByTestId(testid);
  await item.waitFor();
  return item;
}

async function closeMenu(page) {
  await page.keyboard.press('Escape');
  await page.locator('.popup-menu').waitFor({ state: 'detached' });
}

/** The app page ready: signed in, list loaded, the worker in control. */
async function openApp(ctx, base, hash = '#/', who = 'alice') {
  const page = await ctx.newPage();
  watch(page, who);
  await page.goto(`${base}/${hash}`);
  await page.getByTestId('chat-list').waitFor();
  await until(() => page.evaluate(() => !!navigator.serviceWorker.controller), 'the service worker controlling the page');
  return page;
}

async function main() {
  const svc = await pushService();
  const flags = ['--push-allow-private'];
  let srv = await startServer(flags, { name: 'push' });
  const base = srv.url;
  const port = Number(new URL(base).port);
  log(`push: server at ${base} (log ${srv.logFile}), push service stub on ${svc.port}`);
  const restart = async (extra = []) => {
    await stopServer(srv);
    srv = await startServer([...flags, ...extra], { name: 'push', dataDir: srv.dataDir, port });
  };
  const browser = await launchBrowser([`--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`]);
  const run = Date.now().toString(36);
  const keys = pushKeys();
  const endpointPath = `/push/alice-${run}`;
  const sub = { endpoint: `http://127.0.0.1:${svc.port}${endpointPath}`, p256dh: b64url(keys.p256dh), auth: b64url(keys.auth) };
  const serverKey = (await call(base, 'GET', '/push/key')).publicKey;

  const ctxA = await newContext(browser);
  await ctxA.addInitScript(STAND_IN, sub);
  let a = await ctxA.newPage();
  watch(a, 'alice');
  const ctxC = await newContext(browser);
  const c = await ctxC.newPage();
  watch(c, 'carol');

  const bob = await call(base, 'POST', '/auth/register', { name: BOB, email: `bob.${run}@example.com`, password: 'correct horse battery' });
  const bobSays = (chatId, content) => call(base, 'POST', `/chat/${chatId}/messages`, { messageType: 'TEXT', content, clientId: crypto.randomUUID() }, bob.token);
  let direct; let group; let aliceId;

  await check('no prompt before the first sent message; after it, the notifications prompt shows', async () => {
    await register(a, base, ALICE, `alice.${run}@example.com`);
    aliceId = (await call(base, 'GET', '/auth/me', null, await tokenOf(a))).id;
    direct = await call(base, 'POST', '/chat', { participantIds: [aliceId], isGroup: false }, bob.token);
    group = await call(base, 'POST', '/chat', { participantIds: [aliceId], isGroup: true, name: GROUP }, bob.token);
    await bobSays(direct.id, 'Hi Alice, welcome to natter!');
    await row(a, BOB).waitFor();
    await a.waitForTimeout(500);
    if (await a.getByTestId('notify-prompt').isVisible()) throw new Error('the prompt shows before anything was sent');
    await openChat(a, BOB);
    await send(a, 'Hi Bob, thanks!');
    await a.getByTestId('notify-prompt').waitFor({ timeout: 5000 });
    const text = await a.getByTestId('notify-prompt').textContent();
    if (!/Get notified of new messages/.test(text) || !/Turn on/.test(text) || !/Not now/.test(text)) throw new Error(`prompt reads "${text}"`);
    await a.evaluate(() => { location.hash = '#/'; });
    await a.getByTestId('welcome').waitFor();
    await shot(a, 'notifications-prompt.png');
    if (EXTRA) {
      await a.emulateMedia({ colorScheme: 'dark' });
      await a.screenshot({ path: path.join(EXTRA, 'notifications-prompt-dark.png') });
      await a.emulateMedia({ colorScheme: 'light' });
      await a.setViewportSize({ width: 360, height: 740 });
      await a.waitForTimeout(300);
      await a.screenshot({ path: path.join(EXTRA, 'notifications-prompt-360.png') });
      await a.setViewportSize(DESKTOP);
    }
  });

  await check('"Turn on" subscribes: the server\'s key, userVisibleOnly, POST /push/subscriptions; the menu says On', async () => {
    await ctxA.grantPermissions(['notifications'], { origin: base }); // the user's "Allow"
    const posted = a.waitForResponse((r) => r.url() === `${base}/push/subscriptions` && r.request().method() === 'POST');
    await a.getByTestId('notify-enable').click();
    const res = await posted;
    if (res.status() !== 201) throw new Error(`POST /push/subscriptions → ${res.status()}`);
    const body = JSON.parse(res.request().postData());
    if (body.endpoint !== sub.endpoint || body.keys.p256dh !== sub.p256dh || body.keys.auth !== sub.auth) throw new Error(`posted ${JSON.stringify(body)}`);
    const saved = await a.evaluate(() => JSON.parse(localStorage.getItem('e2e.pushSubscription')));
    if (saved.applicationServerKey !== serverKey) throw new Error(`subscribed with key ${saved.applicationServerKey}, the server's is ${serverKey}`);
    if (!saved.userVisibleOnly) throw new Error('subscribed without userVisibleOnly');
    await a.getByTestId('notify-prompt').waitFor({ state: 'hidden' });
    const item = await menuItem(a, 'menu-notifications');
    const t = await item.textContent();
    if (!/Turn off notifications/.test(t) || !/On/.test(t)) throw new Error(`menu reads "${t}"`);
    await closeMenu(a);
  });

  await check('"Not now" hides the prompt and it stays away after more sends and a reload', async () => {
    await register(c, base, CAROL, `carol.${run}@example.com`);
    const me = await call(base, 'GET', '/auth/me', null, await tokenOf(c));
    await call(base, 'POST', '/chat', { participantIds: [me.id], isGroup: false }, bob.token);
    await row(c, BOB).waitFor();
    await openChat(c, BOB);
    await send(c, 'Hi Bob! Do you have the slides for Thursday?');
    await c.getByTestId('notify-prompt').waitFor({ timeout: 5000 });
    await c.getByTestId('notify-dismiss').click();
    await c.getByTestId('notify-prompt').waitFor({ state: 'hidden' });
    await send(c, 'I can bring the projector.');
    await c.reload();
    await openChat(c, BOB);
    await send(c, 'See you at 3 then 👍');
    await c.waitForTimeout(700);
    if (await c.getByTestId('notify-prompt').isVisible()) throw new Error('the prompt came back');
  });

  await check('the browser\'s "no" shows as blocked; its real subscribe refusal is reported, nothing is posted', async () => {
    // Without a grant, headless Chromium answers the permission request with "denied".
    const item = await menuItem(c, 'menu-notifications');
    if (!/Turn on notifications/.test(await item.textContent())) throw new Error(`menu reads "${await item.textContent()}"`);
    await item.click();
    await until(async () => /blocked/i.test(await c.locator('.toast.show').textContent().catch(() => '')), 'the "blocked" toast', 5000);
    const blocked = await menuItem(c, 'menu-notifications');
    const t = await blocked.textContent();
    if (!/Notifications blocked/.test(t) || !/site settings/.test(t)) throw new Error(`menu reads "${t}"`);
    await closeMenu(c);
    // Allowed now (in the site settings, say): on by itself; the real pushManager.subscribe
    // answers (a test context is incognito, where Chromium refuses push), so it is on only
    // while natter is open, and nothing is posted. Off and on again: the refusal is told.
    const posts = [];
    c.on('request', (r) => { if (r.url().endsWith('/push/subscriptions')) posts.push(r.method()); });
    await ctxC.clearPermissions();
    await ctxC.grantPermissions(['notifications'], { origin: base });
    await c.reload();
    await c.getByTestId('chat-list').waitFor();
    await until(async () => {
      const t = await (await menuItem(c, 'menu-notifications')).textContent();
      await closeMenu(c);
      return /On while natter is open/.test(t);
    }, 'the menu to say "On while natter is open"', 10000);
    await (await menuItem(c, 'menu-notifications')).click();
    await until(async () => /off on this device/i.test(await c.locator('.toast.show').textContent().catch(() => '')), 'the "off" toast', 5000);
    await (await menuItem(c, 'menu-notifications')).click();
    await until(async () => /on while natter is open/i.test(await c.locator('.toast.show').textContent().catch(() => '')), 'the toast with the browser\'s refusal', 10000);
    const toast = await c.locator('.toast.show').textContent();
    if (!/Registration failed|push/i.test(toast)) throw new Error(`the toast does not say why: "${toast}"`);
    const on = await (await menuItem(c, 'menu-notifications')).textContent();
    if (!/On while natter is open/.test(on)) throw new Error(`menu reads "${on}"`);
    await closeMenu(c);
    if (posts.length) throw new Error(`the page sent ${posts.join(', ')} /push/subscriptions without a subscription`);
  });

  await check('on plain HTTP (not localhost) the menu says notifications need HTTPS; no worker, no prompt', async () => {
    const ctxI = await newContext(browser);
    const p = await ctxI.newPage();
    watch(p, 'insecure');
    const insecure = `http://${INSECURE_HOST}:${port}`;
    await ctxI.addInitScript((tok) => localStorage.setItem('natter.token', tok), await tokenOf(c));
    await p.goto(`${insecure}/`);
    await p.getByTestId('chat-list').waitFor();
    if (await p.evaluate(() => window.isSecureContext)) throw new Error(`${insecure} counts as a secure context`);
    const t = await (await menuItem(p, 'menu-notifications')).textContent();
    if (!/Notifications unavailable/.test(t) || !/HTTPS/.test(t)) throw new Error(`menu reads "${t}"`);
    await closeMenu(p);
    await p.evaluate(() => localStorage.removeItem('natter.notifyPrompt.dismissedAt'));
    await openChat(p, BOB);
    await send(p, 'Sent from the office Wi-Fi');
    await p.waitForTimeout(700);
    if (await p.getByTestId('notify-prompt').isVisible()) throw new Error('the prompt offers what plain HTTP cannot do');
    if (await p.evaluate(() => 'serviceWorker' in navigator && navigator.serviceWorker.controller)) throw new Error('a service worker on plain HTTP');
    await ctxI.close();
  });

  let pushed = [];
  await check('with the tab closed, a message is pushed to the subscription the app posted (decrypted here)', async () => {
    await a.close();
    const [p] = await pushedAfter(svc, endpointPath, keys, (i) => bobSays(direct.id, `Are you there?${' ?'.repeat(i)}`));
    if (p.chatId !== direct.id || p.chatName !== BOB || p.senderName !== BOB || !/^Are you there\?/.test(p.body)) throw new Error(`payload ${JSON.stringify(p)}`);
    const [g1] = await pushedAfter(svc, endpointPath, keys, () => bobSays(group.id, 'Who is in for Saturday?'));
    const [g2] = await pushedAfter(svc, endpointPath, keys, () => bobSays(group.id, 'Bring snacks'));
    if (g1.chatName !== GROUP || g1.body !== 'Who is in for Saturday?' || !g1.isGroup || g1.count !== 1) throw new Error(`payload ${JSON.stringify(g1)}`);
    if (g2.chatId !== group.id || g2.count !== 2) throw new Error(`the second group push ${JSON.stringify(g2)}`);
    pushed = [p, g1, g2];
  });

  await check('a push reaching the worker (CDP) shows one notification per chat, "N new messages" when several', async () => {
    const [dp, g1, g2] = pushed;
    for (const p of [dp, g1, g2]) await deliver(ctxA, base, p);
    a = await openApp(ctxA, base);
    const all = await until(async () => { const l = await notifications(a); return l.length >= 2 && l; }, 'the notifications');
    const d = all.find((n) => n.tag === `chat-${direct.id}`);
    const g = all.filter((n) => n.tag === `chat-${group.id}`);
    if (all.length !== 2 || !d || g.length !== 1) throw new Error(`notifications: ${JSON.stringify(all)}`);
    // (A retry in pushedAfter makes the 1:1 push say "2 new messages".)
    const body = dp.count > 1 ? `${dp.count} new messages` : dp.body;
    if (d.title !== BOB || d.body !== body || d.chatId !== direct.id) throw new Error(`1:1 notification ${JSON.stringify(d)}, push ${JSON.stringify(dp)}`);
    if (g[0].title !== GROUP || g[0].body !== '2 new messages') throw new Error(`group notification ${JSON.stringify(g[0])}`);
  });

  await check('no notification for a push while the app is focused and visible', async () => {
    if (!(await a.evaluate(() => document.visibilityState === 'visible' && document.hasFocus()))) throw new Error('the page is not focused and visible');
    await deliver(ctxA, base, { chatId: 999999, chatName: 'Not shown', body: 'nobody should see this', count: 1, tag: 'chat-999999' }, a);
    await a.waitForTimeout(1500);
    if ((await notifications(a, 'chat-999999')).length) throw new Error('a notification was shown over the open app');
  });

  await check('a click on a notification (the worker\'s handler) opens its chat and closes it; opening a chat closes its own', async () => {
    const answer = await toWorker(a, { type: 'notification-click', tag: `chat-${direct.id}` });
    if (answer !== true) throw new Error(`the worker found no notification to click (${answer})`);
    await until(async () => (await a.getByTestId('conv-title').textContent()) === BOB, 'the 1:1 chat to open');
    if ((await notifications(a, `chat-${direct.id}`)).length) throw new Error('the clicked notification is still there');
    if ((await notifications(a, `chat-${group.id}`)).length !== 1) throw new Error('the group\'s notification went too');
    await openChat(a, GROUP);
    await until(async () => (await notifications(a, `chat-${group.id}`)).length === 0, 'the group\'s notification to close');
  });

  await check('mute for 8 hours: bell-off in the list and the header, mutedUntil on the server, no push; unmute', async () => {
    await a.getByTestId('chat-menu').click();
    await a.getByTestId('menu-mute').click();
    await a.getByTestId('mute-8h').click();
    await row(a, GROUP).getByTestId('muted-icon').waitFor();
    await a.getByTestId('conv-muted').waitFor();
    const title = await a.getByTestId('conv-muted').getAttribute('title');
    if (!/^Muted until/.test(title)) throw new Error(`header mute says "${title}"`);
    const chat = await call(base, 'GET', `/chat/${group.id}`, null, await tokenOf(a));
    const hours = (chat.mutedUntil - Date.now()) / 3600000;
    if (!(hours > 7.9 && hours <= 8)) throw new Error(`mutedUntil is ${hours.toFixed(2)} h ahead`);
    if (await row(a, BOB).getByTestId('muted-icon').count()) throw new Error('the other chat shows muted too');
    if (EXTRA) await a.screenshot({ path: path.join(EXTRA, 'muted-chat.png') });
    // Tab closed: the muted group pushes nothing; the 1:1 still does (sent after it).
    await a.close();
    const got = await pushedAfter(svc, endpointPath, keys, async (i) => {
      await bobSays(group.id, `Is this muted?${' ?'.repeat(i)}`);
      await bobSays(direct.id, `Still there?${' ?'.repeat(i)}`);
    }, (list) => list.some((p) => p.chatId === direct.id));
    if (got.some((p) => p.chatId === group.id)) throw new Error('a muted chat was pushed');
    a = await openApp(ctxA, base, `#/c/${group.id}`);
    await a.getByTestId('conv-muted').waitFor();
    await a.getByTestId('chat-menu').click();
    await a.getByTestId('menu-unmute').click();
    await until(async () => !(await a.getByTestId('conv-muted').isVisible()), 'the header mark to go');
    await until(async () => (await row(a, GROUP).getByTestId('muted-icon').count()) === 0, 'the list mark to go');
  });

  await check('offline: a reload with the server gone shows the kept chat list and "Connecting…"; it reconciles after', async () => {
    await a.evaluate(() => { location.hash = '#/'; });
    await a.waitForTimeout(1200); // the kept copy is written a moment after changes
    await a.close();
    const later = await call(base, 'POST', '/chat', { participantIds: [aliceId], isGroup: true, name: 'Made while away' }, bob.token);
    await stopServer(srv);
    a = await ctxA.newPage();
    watch(a, 'alice');
    await a.goto(`${base}/`);
    await row(a, BOB).waitFor({ timeout: 8000 });
    await row(a, GROUP).waitFor();
    await a.getByTestId('conn-banner').filter({ hasText: 'Connecting…' }).waitFor({ timeout: 8000 });
    if (await a.locator('.boot-error').count()) throw new Error('the retry screen showed');
    if (await row(a, 'Made while away').count()) throw new Error('a chat the page never saw is listed');
    if (EXTRA) await a.screenshot({ path: path.join(EXTRA, 'offline-start.png') });
    await restart();
    await row(a, 'Made while away').waitFor({ timeout: 20000 });
    await until(async () => !(await a.getByTestId('conn-banner').isVisible()), 'the banner to go', 10000);
    await bobSays(later.id, 'Back online?');
    await until(async () => (await row(a, 'Made while away').textContent()).includes('Back online?'), 'live messages again');
    // The chat the page learned after its start is joined too: Bob's typing shows.
    const ctxB = await newContext(browser);
    await ctxB.addInitScript((tok) => localStorage.setItem('natter.token', tok), bob.token);
    const b = await ctxB.newPage();
    watch(b, 'bob');
    await b.goto(`${base}/#/c/${later.id}`);
    await b.getByTestId('composer-input').pressSequentially('On my way', { delay: 60 });
    await until(async () => /typing/.test(await row(a, 'Made while away').textContent()), 'Bob typing in the new chat', 8000);
    await ctxB.close();
  });

  await check('"New version — reload" after an upgrade of the web app; one reload brings it in', async () => {
    const before = await toWorker(a, { type: 'version' });
    const pageBefore = await a.evaluate(() => document.querySelector('meta[name="natter-version"]').content);
    if (!before || before !== pageBefore || before.startsWith('__')) throw new Error(`worker ${before}, page ${pageBefore}`);
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'natter-assets-'));
    try {
      fs.cpSync(path.join(ROOT, 'assets'), copy, { recursive: true });
      fs.appendFileSync(path.join(copy, 'app.css'), `\n/* e2e upgrade ${run} */\n`);
      await restart(['--assets-dir', copy]);
      await a.getByTestId('update-prompt').waitFor({ timeout: 20000 });
      const text = await a.getByTestId('update-prompt').textContent();
      if (!/new version/i.test(text) || !/Reload/.test(text)) throw new Error(`the bar reads "${text}"`);
      for (const scheme of ['light', 'dark']) {
        await a.emulateMedia({ colorScheme: scheme });
        const { ratio } = await a.locator('.update-text').evaluate(contrastOf);
        if (ratio < 4.5) throw new Error(`the bar's text has contrast ${ratio.toFixed(2)} in ${scheme}`);
        if (EXTRA) await a.screenshot({ path: path.join(EXTRA, `update-prompt-${scheme}.png`) });
      }
      await a.emulateMedia({ colorScheme: 'light' });
      let loads = 0;
      a.on('load', () => { loads++; });
      await a.getByTestId('update-reload').click();
      await until(() => loads >= 1, 'the reload', 10000);
      await a.getByTestId('chat-list').waitFor();
      await a.waitForTimeout(2500);
      if (loads !== 1) throw new Error(`${loads} reloads`);
      const after = await toWorker(a, { type: 'version' });
      const pageAfter = await a.evaluate(() => document.querySelector('meta[name="natter-version"]').content);
      if (after === before || after !== pageAfter) throw new Error(`after the reload: worker ${after}, page ${pageAfter}, before ${before}`);
      if (await a.getByTestId('update-prompt').isVisible()) throw new Error('the bar is still offered');
      const caches = await a.evaluate(() => caches.keys());
      if (caches.length !== 1 || !caches[0].endsWith(after)) throw new Error(`caches ${caches.join(', ')}`);
    } finally {
      await restart();
      fs.rmSync(copy, { recursive: true, force: true });
    }
  });

  await check('turning notifications off unsubscribes (DELETE); on again subscribes again', async () => {
    await a.reload();
    await a.getByTestId('chat-list').waitFor();
    const deleted = a.waitForResponse((r) => r.url() === `${base}/push/subscriptions` && r.request().method() === 'DELETE');
    await (await menuItem(a, 'menu-notifications')).click();
    const res = await deleted;
    if (res.status() !== 204 || JSON.parse(res.request().postData()).endpoint !== sub.endpoint) throw new Error(`DELETE → ${res.status()}`);
    if (await a.evaluate(() => localStorage.getItem('e2e.pushSubscription'))) throw new Error('the browser is still subscribed');
    const t = await (await menuItem(a, 'menu-notifications')).textContent();
    if (!/Turn on notifications/.test(t) || !/Off/.test(t)) throw new Error(`menu reads "${t}"`);
    const posted = a.waitForResponse((r) => r.url() === `${base}/push/subscriptions` && r.request().method() === 'POST');
    await a.getByTestId('menu-notifications').click();
    if ((await posted).status() !== 201) throw new Error('not subscribed again');
  });

  await check('signing out removes the subscription (DELETE) and the kept chat list; no more pushes', async () => {
    const deleted = a.waitForResponse((r) => r.url() === `${base}/push/subscriptions` && r.request().method() === 'DELETE');
    await (await menuItem(a, 'logout')).click();
    if ((await deleted).status() !== 204) throw new Error('no DELETE on sign-out');
    await a.getByTestId('auth-submit').waitFor();
    const left = await a.evaluate(() => [localStorage.getItem('e2e.pushSubscription'), localStorage.getItem('natter.offline')]);
    if (left.some(Boolean)) throw new Error(`left behind: ${JSON.stringify(left)}`);
    const from = svc.got.length;
    await bobSays(direct.id, 'Anyone?');
    await new Promise((r) => setTimeout(r, 2500));
    if (pushesTo(svc, endpointPath, from).length) throw new Error('a push after signing out');
  });

  const carolsChat = (await call(base, 'GET', '/chat?page=1&limit=100', null, await tokenOf(c))).items.find((x) => !x.isGroup);
  await bobSays(carolsChat.id, 'Yes, they are in the shared folder. I will print a few copies too.');
  await installAndWindow(base, await tokenOf(c), carolsChat.id);
  svc.server.close();
}

/**
 * A persistent profile (not incognito: Chromium offers installing only there): the browser's
 * own install offer turns into "Install app"; then the app in its own window (`--app=`, where
 * CSS display-mode is standalone) for the README.
 */
async function installAndWindow(base, token, chatId) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'natter-e2e-profile-'));
  const launch = (args, viewport) => chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', headless: true, timeout: 90000,
    args: [...CHROMIUM_ARGS, ...args], viewport, locale: 'en-GB', timezoneId: 'UTC', colorScheme: 'light',
  });
  try {
    let ctx = closeAtEnd(await launch([], DESKTOP));
    await check('the browser\'s install offer shows as "Install app" in the menu; using it spends the offer', async () => {
      await ctx.addInitScript((tok) => { if (!localStorage.getItem('natter.token')) localStorage.setItem('natter.token', tok); }, token);
      const p = ctx.pages()[0] || await ctx.newPage();
      watch(p, 'install');
      await p.goto(`${base}/`);
      await p.getByTestId('chat-list').waitFor();
      await until(() => p.evaluate(() => navigator.serviceWorker.ready.then((r) => !!r.active)), 'the worker');
      await p.reload();
      await p.getByTestId('chat-list').waitFor();
      const item = await until(async () => {
        await p.getByTestId('menu-button').click();
        const found = await p.getByTestId('menu-install').count();
        if (!found) await closeMenu(p);
        return found;
      }, 'the install offer (beforeinstallprompt)', 20000);
      if (!item) throw new Error('no "Install app"');
      // The browser's install dialog opens (headless cannot answer it, and it takes the
      // input); the offer is used up. The menu is opened from script to look.
      await p.getByTestId('menu-install').click();
      await p.locator('.popup-menu').waitFor({ state: 'detached' });
      const still = await p.evaluate(() => {
        document.querySelector('[data-testid="menu-button"]').click();
        return !!document.querySelector('[data-testid="menu-install"]');
      });
      if (still) throw new Error('"Install app" is still offered');
    });
    await ctx.close();
    ctx = closeAtEnd(await launch([`--app=${base}/#/c/${chatId}`, `--window-size=${APP_WINDOW.width},${APP_WINDOW.height}`], null));
    await check('the app in its own window (display-mode: standalone) offers no "Install app"', async () => {
      const p = await until(() => ctx.pages().find((x) => x.url().startsWith(base)), 'the app window');
      watch(p, 'app-window');
      await p.getByTestId('conv-title').filter({ hasText: BOB }).waitFor();
      if (!(await p.evaluate(() => matchMedia('(display-mode: standalone)').matches))) throw new Error('not standalone');
      await p.evaluate(() => document.activeElement?.blur());
      await p.waitForTimeout(400);
      await p.screenshot({ path: path.join(SHOTS, 'app-window.png') });
      await p.evaluate(() => { location.hash = '#/'; });
      await p.getByTestId('menu-button').click();
      await p.locator('.popup-menu').waitFor();
      if (await p.getByTestId('menu-install').count()) throw new Error('"Install app" inside the installed app');
      await closeMenu(p);
    });
    await ctx.close();
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

await runSuite('push', main);
