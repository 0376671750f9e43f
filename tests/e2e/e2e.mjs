// End-to-end test of the natter web app in a real browser (Debian's Chromium via playwright-core)
// against the real server binary. Every wait is bounded; the server is always killed; the exit
// code is non-zero on any failure. Usage: tests/e2e/run.sh (or NATTER_BIN=... node e2e.mjs).
//
// Optional: NATTER_ASSETS_DIR=assets serves the web app from disk (development);
// E2E_EXTRA_SHOTS=<dir> also saves dark-theme and 360 px screenshots there.

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.resolve(ROOT, process.env.NATTER_BIN || 'target/debug/natter');
const ASSETS = process.env.NATTER_ASSETS_DIR ? path.resolve(ROOT, process.env.NATTER_ASSETS_DIR) : null;
const SHOTS = path.join(ROOT, 'docs/screenshots');
const EXTRA = process.env.E2E_EXTRA_SHOTS ? path.resolve(process.env.E2E_EXTRA_SHOTS) : null;
const T = 15000; // default bound for one wait
const GLOBAL_TIMEOUT = 300000;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const ALICE = 'Alice Johnson';
const BOB = 'Bob Smith';
const CAROL = 'Carol Diaz';
const GROUP = 'Release crew';

let server = null;
let browser = null;
let dataDir = null;
const results = [];
const pageErrors = [];

function log(...a) { console.log(...a); }

async function cleanup() {
  try { await browser?.close(); } catch { /* already gone */ }
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => { const t = setTimeout(() => { try { server.kill('SIGKILL'); } catch { /* gone */ } r(); }, 3000); server.once('exit', () => { clearTimeout(t); r(); }); });
  }
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}

const watchdog = setTimeout(async () => {
  console.error(`e2e: gave up after ${GLOBAL_TIMEOUT / 1000} s`);
  await cleanup();
  console.log(`e2e: ${results.filter((r) => r.ok).length} passed, ${Math.max(1, results.filter((r) => !r.ok).length)} failed`);
  process.exit(1);
}, GLOBAL_TIMEOUT);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, async () => { await cleanup(); process.exit(1); });

// ---- server ---------------------------------------------------------------------------

function startServer() {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'natter-e2e-'));
  const args = ['serve', '--port', '0', '--data-dir', dataDir];
  if (ASSETS) args.push('--assets-dir', ASSETS);
  server = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG || 'info' } });
  const logFile = path.join(os.tmpdir(), `natter-e2e-server-${process.pid}.log`);
  const out = fs.createWriteStream(logFile);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not print its URL within 20 s (log: ${logFile})`)), 20000);
    let buf = '';
    const onData = (d) => {
      out.write(d);
      buf += d.toString().replace(/\x1b\[[0-9;]*m/g, '');
      const m = buf.match(/listening on (http:\/\/[^\s"',]+)/);
      if (m) { clearTimeout(timer); resolve({ url: m[1].replace(/\/$/, ''), logFile }); }
    };
    server.stdout.on('data', onData);
    server.stderr.on('data', onData);
    server.once('error', (e) => { clearTimeout(timer); reject(e); });
    server.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited early with code ${code} (log: ${logFile})`)); });
  });
}

// ---- a small PNG, made here ------------------------------------------------------------

const CRC = (() => { const t = new Uint32Array(256); for (let n = 0; n < 256; n++) { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; t[n] = c >>> 0; } return t; })();
function crc32(buf) { let c = 0xffffffff; for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; }
function chunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** A 640×400 sunset: sky gradient, a sun, two hills. */
function makePng(w = 640, h = 400) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const t = y / h;
      let r = 255 - 80 * t; let g = 150 - 90 * t; let b = 90 + 80 * t;
      const dx = x - w * 0.62; const dy = y - h * 0.55;
      if (dx * dx + dy * dy < (h * 0.16) ** 2) { r = 255; g = 220; b = 120; }
      const hill1 = h * 0.72 + Math.sin(x / 70) * 18;
      const hill2 = h * 0.82 + Math.cos(x / 45) * 12;
      if (y > hill1) { r = 60; g = 50; b = 90; }
      if (y > hill2) { r = 30; g = 28; b = 55; }
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = r; raw[o + 1] = g; raw[o + 2] = b;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// ---- helpers -------------------------------------------------------------------------------

async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    log(`  ✔ ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push({ name, ok: false });
    log(`  ✘ ${name}\n      ${String(e?.message || e).split('\n').slice(0, 6).join('\n      ')}`);
  }
}

async function until(fn, desc, timeout = T) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${desc}${last instanceof Error ? ` (${last.message})` : ''}`);
}

function watch(page, who) {
  page.on('pageerror', (e) => pageErrors.push(`${who}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    // Expected while the network is cut on purpose, or for a deliberately refused request.
    if (/ERR_INTERNET_DISCONNECTED|net::ERR_|Failed to load resource|WebSocket connection/.test(text)) return;
    pageErrors.push(`${who}: ${text}`);
  });
}

const msg = (page, text) => page.locator('[data-testid="message"]').filter({ hasText: text });
const row = (page, title) => page.locator(`[data-testid="chat-row"][data-title="${title}"]`);

async function register(page, base, name, email) {
  await page.goto(base + '/', { timeout: T });
  await page.getByTestId('auth-switch').click({ timeout: T });
  await page.getByTestId('auth-name').fill(name);
  await page.getByTestId('auth-email').fill(email);
  await page.getByTestId('auth-password').fill('correct horse battery');
  await page.getByTestId('auth-submit').click();
  await page.getByTestId('app').waitFor({ timeout: T });
  await page.locator('.skeleton-row').first().waitFor({ state: 'detached', timeout: T });
}

async function send(page, text) {
  const box = page.getByTestId('composer-input');
  await box.fill(text);
  await box.press('Enter');
  await msg(page, text).last().waitFor({ timeout: T });
}

async function status(page, text) {
  return msg(page, text).last().getAttribute('data-status', { timeout: T });
}

async function openChat(page, title) {
  await row(page, title).click({ timeout: T });
  await until(async () => (await page.getByTestId('conv-title').textContent()) === title, `conversation "${title}" to open`);
}

async function shot(page, file) {
  const vp = page.viewportSize();
  await page.mouse.move(vp.width - 2, vp.height / 2); // no hover highlight in the picture
  await page.waitForTimeout(350); // let transitions and image fades settle
  await page.screenshot({ path: path.join(SHOTS, file) });
}

// ---- the test --------------------------------------------------------------------------

async function main() {
  if (!fs.existsSync(BIN)) throw new Error(`server binary not found: ${BIN}`);
  fs.mkdirSync(SHOTS, { recursive: true });
  if (EXTRA) fs.mkdirSync(EXTRA, { recursive: true });
  const { url: base, logFile } = await startServer();
  log(`e2e: server at ${base} (log ${logFile})${ASSETS ? ` serving ${ASSETS}` : ''}`);

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    timeout: 30000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const ctxA = await browser.newContext({ viewport: DESKTOP, locale: 'en-GB', timezoneId: 'UTC', colorScheme: 'light' });
  const ctxB = await browser.newContext({ viewport: DESKTOP, locale: 'en-GB', timezoneId: 'UTC', colorScheme: 'light' });
  const ctxC = await browser.newContext({ viewport: PHONE, locale: 'en-GB', timezoneId: 'UTC', colorScheme: 'light', isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  for (const c of [ctxA, ctxB, ctxC]) c.setDefaultTimeout(T);
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  const c = await ctxC.newPage();
  watch(a, 'alice'); watch(b, 'bob'); watch(c, 'carol');

  const run = Date.now().toString(36);

  await check('two users register and exchange messages live in a 1-on-1 chat', async () => {
    await register(a, base, ALICE, `alice.${run}@example.com`);
    await register(b, base, BOB, `bob.${run}@example.com`);
    await a.getByTestId('chat-list-empty').waitFor();
    await a.getByTestId('new-chat-button').click();
    await a.getByTestId('user-search-input').fill('Bob');
    await a.locator(`[data-testid="user-result"][data-name="${BOB}"]`).click();
    await until(async () => (await a.getByTestId('conv-title').textContent()) === BOB, 'the new chat to open');
    await send(a, 'Hi Bob! Did you get a chance to look at the release notes?');
    // Bob's list shows the new chat live, with an unread badge.
    await row(b, ALICE).waitFor();
    await until(async () => (await row(b, ALICE).textContent()).includes('release notes'), 'the preview on Bob\'s chat row');
    await row(b, ALICE).getByTestId('unread-badge').waitFor();
    await until(async () => (await b.title()) === '(1) natter', 'Bob\'s tab title to show "(1) natter"', 5000);
  });

  await check('the sender\'s ticks turn read (blue) when the other opens the chat', async () => {
    const text = 'Hi Bob! Did you get a chance to look at the release notes?';
    await until(async () => (await status(a, text)) === 'DELIVERED', 'the message to be delivered (grey ✓✓)');
    await openChat(b, ALICE);
    await msg(b, text).waitFor();
    await until(async () => (await status(a, text)) === 'READ', 'the message to be read');
    const color = await msg(a, text).locator('.meta .tick-read').evaluate((el) => getComputedStyle(el).color);
    if (color !== 'rgb(83, 189, 235)') throw new Error(`read ticks are ${color}, expected #53bdeb`);
    if (await a.title() !== 'natter') throw new Error(`Alice's tab title is "${await a.title()}"`);
  });

  await check('"typing…" shows while the other types, then the reply arrives live', async () => {
    const box = b.getByTestId('composer-input');
    await box.click();
    await box.pressSequentially('Yes, they look good.', { delay: 40 });
    await until(async () => (await a.getByTestId('conv-subtitle').textContent()) === 'typing…', 'typing… in Alice\'s header', 8000);
    await box.press('Enter');
    await msg(a, 'Yes, they look good.').waitFor();
    // Reply to a message through the message menu.
    const target = msg(b, 'release notes');
    await target.hover();
    await target.getByTestId('message-menu').click();
    await b.getByTestId('menu-reply').click();
    await b.getByTestId('reply-strip').waitFor();
    await send(b, 'One question about the migration section: do we need a backup first?');
    await msg(a, 'migration section').getByTestId('reply-quote').waitFor();
    await until(async () => (await a.getByTestId('conv-subtitle').textContent()) !== 'typing…', 'typing… to clear', 8000);
    await send(a, 'Yes, always take one with natter backup before upgrading 👍');
    await msg(b, 'natter backup').waitFor();
  });

  await check('an uploaded image shows as a thumbnail on both sides', async () => {
    await a.getByTestId('attach-input').setInputFiles({ name: 'sunset.png', mimeType: 'image/png', buffer: makePng() });
    const loaded = (page) => until(async () => page.locator('[data-testid="message"]:not([data-id=""]) [data-testid="message-image"]').last()
      .evaluate((img) => img.complete && img.naturalWidth > 0), 'the image to load', 20000);
    await loaded(a);
    await loaded(b);
    const err = await a.getByTestId('composer-error').isVisible();
    if (err) throw new Error(`upload error: ${await a.getByTestId('composer-error').textContent()}`);
    await send(b, 'Beautiful! Where was that?');
  });

  await check('a third user added to a group sees its messages', async () => {
    await register(c, base, CAROL, `carol.${run}@example.com`);
    await a.getByTestId('new-group-button').click();
    await a.getByTestId('user-search-input').fill('Bob');
    await a.locator(`[data-testid="user-result"][data-name="${BOB}"]`).click();
    await a.getByTestId('group-next').click();
    await a.getByTestId('group-name-input').fill(GROUP);
    await a.getByTestId('group-create').click();
    await until(async () => (await a.getByTestId('conv-title').textContent()) === GROUP, 'the group to open');
    await send(a, 'Welcome to the release crew 🎉 Ship date is Friday.');
    await row(b, GROUP).waitFor();
    await openChat(b, GROUP);
    await send(b, 'Great, I will prepare the changelog.');
    await msg(a, 'prepare the changelog').waitFor();
    // Alice adds Carol from the group info panel.
    await a.getByTestId('info-button').click();
    await a.getByTestId('add-members-button').click();
    await a.getByTestId('user-search-input').fill('Carol');
    await a.locator(`[data-testid="user-result"][data-name="${CAROL}"]`).click();
    await a.getByTestId('add-members-confirm').click();
    await until(async () => (await a.getByTestId('member-row').count()) === 3, 'three members in the info panel');
    await row(c, GROUP).waitFor();
    await row(c, GROUP).click();
    await until(async () => (await c.getByTestId('conv-title').textContent()) === GROUP, 'the group to open for Carol');
    await send(a, 'Carol, meet the team: you will handle the release announcement.');
    await msg(c, 'release announcement').waitFor();
    await send(c, 'Hi all! Happy to help 😊');
    await msg(a, 'Happy to help').waitFor();
    await msg(b, 'Happy to help').waitFor();
    await a.getByTestId('member-row').first().waitFor();
    await shot(a, 'group-info.png');
    await a.getByTestId('info-close').click();
  });

  await check('a deleted message shows as deleted on both sides', async () => {
    await openChat(a, BOB);
    await openChat(b, ALICE);
    const text = 'Meeting moved to 3pm — sorry, wrong chat';
    await send(a, text);
    await msg(b, text).waitFor();
    const m = msg(a, text);
    await m.hover();
    await m.getByTestId('message-menu').click();
    await a.getByTestId('menu-delete').click();
    await a.getByTestId('confirm-ok').click();
    for (const page of [a, b]) {
      await until(async () => (await page.locator('[data-testid="message"][data-deleted="true"]').filter({ hasText: 'This message was deleted' }).count()) === 1, 'the tombstone');
      if (await msg(page, text).count()) throw new Error('the deleted text is still shown');
    }
  });

  await check('after the network is cut and restored, every message sent meanwhile shows exactly once', async () => {
    let syncs = 0;
    b.on('request', (r) => { if (new URL(r.url()).pathname === '/sync') syncs++; });
    await ctxB.setOffline(true);
    await until(async () => b.evaluate(() => !navigator.onLine), 'the browser to notice it is offline', 5000);
    const away = ['While you were offline: the build passed ✅', 'Second: the tag is v1.4.0', 'Third: release notes are published'];
    for (const t of away) await send(a, t);
    // Bob writes while offline: the message waits with a clock icon.
    const queued = 'Typed in a tunnel, sent when back online';
    await b.getByTestId('composer-input').fill(queued);
    await b.getByTestId('composer-input').press('Enter');
    await until(async () => (await status(b, queued)) === 'PENDING', 'the queued message to show a clock');
    await b.getByTestId('conn-banner').waitFor({ timeout: 5000 });
    await b.waitForTimeout(1500);
    await ctxB.setOffline(false);
    for (const t of away) await msg(b, t).waitFor({ timeout: 20000 });
    await until(async () => ['SENT', 'DELIVERED', 'READ'].includes(await status(b, queued)), 'the queued message to be sent', 20000);
    await msg(a, queued).waitFor();
    await b.waitForTimeout(1500);
    for (const t of away) {
      const n = await msg(b, t).count();
      if (n !== 1) throw new Error(`"${t}" shows ${n} times on Bob's side`);
    }
    if (!syncs) throw new Error('Bob\'s page never called /sync after reconnecting');
    if (await msg(a, queued).count() !== 1) throw new Error('the queued message shows more than once on Alice\'s side');
    if (await msg(b, queued).count() !== 1) throw new Error('the queued message shows more than once on Bob\'s side');
  });

  // ---- screenshots: dress Alice's list with a few more chats through the API ------------
  try {
    await dressUp(base, a, run);
    await dressGroup(base, a, b, c);
    await openChat(a, BOB);
    await a.waitForTimeout(300);
    await shot(a, 'conversation.png');
    await a.evaluate(() => { location.hash = '#/'; });
    await a.getByTestId('welcome').waitFor();
    await shot(a, 'chat-list.png');
    await shot(c, 'conversation-mobile.png');
    if (EXTRA) await extraShots(a, c);
  } catch (e) {
    log(`  ! screenshots: ${e.message}`);
    results.push({ name: 'screenshots', ok: false });
  }

  await check('no script errors or CSP violations in any page', async () => {
    if (pageErrors.length) throw new Error(pageErrors.slice(0, 8).join('\n'));
  });
}

/** Register a few more people through the API and start chats with Alice, for a lived-in list. */
async function dressUp(base, page, run) {
  const token = await page.evaluate(() => localStorage.getItem('natter.token'));
  const call = async (method, p, body, tok) => {
    const r = await fetch(base + p, { method, headers: { 'Content-Type': 'application/json', ...(tok ? { Authorization: `Bearer ${tok}` } : {}) }, body: body ? JSON.stringify(body) : undefined });
    if (!r.ok) throw new Error(`${method} ${p} → ${r.status} ${await r.text()}`);
    return r.json();
  };
  const me = await call('GET', '/auth/me', null, token);
  const people = [
    ['Dana Lee', ['Can you review my PR before lunch?', 'It is the one about the upload limits']],
    ['Evan Wright', ['Thanks, that fixed it!']],
    ['Farah Haddad', ['See you at the standup tomorrow 🙂']],
  ];
  for (const [name, lines] of people) {
    const u = await call('POST', '/auth/register', { name, email: `${name.split(' ')[0].toLowerCase()}.${run}@example.com`, password: 'correct horse battery' });
    const chat = await call('POST', '/chat', { participantIds: [me.id], isGroup: false }, u.token);
    for (const [i, content] of lines.entries()) {
      await call('POST', `/chat/${chat.id}/messages`, { messageType: 'TEXT', content, clientId: `dress-${run}-${name}-${i}` }, u.token);
    }
  }
  await until(async () => (await page.getByTestId('chat-row').count()) >= 5, 'the extra chats in Alice\'s list');
}

/** A photo with a caption from Bob and a quoted reply from Alice in the group, for Carol's phone. */
async function dressGroup(base, a, b, c) {
  const tokenOf = (page) => page.evaluate(() => localStorage.getItem('natter.token'));
  const [ta, tb] = [await tokenOf(a), await tokenOf(b)];
  const api = async (method, p, body, tok) => {
    const r = await fetch(base + p, { method, headers: { Authorization: `Bearer ${tok}`, ...(body instanceof FormData ? {} : { 'Content-Type': 'application/json' }) }, body: body instanceof FormData ? body : JSON.stringify(body) });
    if (!r.ok) throw new Error(`${method} ${p} → ${r.status} ${await r.text()}`);
    return r.json();
  };
  const chats = (await api('GET', '/chat?page=1&limit=50', undefined, ta)).items;
  const group = chats.find((x) => x.name === GROUP);
  const fd = new FormData();
  fd.append('file', new Blob([makePng(600, 400)], { type: 'image/png' }), 'rooftop.png');
  const up = await api('POST', '/chat/upload', fd, tb);
  await api('POST', `/chat/${group.id}/messages`, { messageType: 'IMAGE', content: 'View from the office roof 🌇', ...up }, tb);
  const history = (await api('GET', `/chat/${group.id}/messages?limit=50`, undefined, ta)).items;
  const carols = history.filter((m) => m.content?.includes('Happy to help')).at(-1);
  await api('POST', `/chat/${group.id}/messages`, { messageType: 'TEXT', content: 'Thanks Carol! The draft is due on Thursday.', replyToId: carols.id }, ta);
  await msg(c, 'due on Thursday').waitFor();
  await c.locator('[data-testid="message"]:not([data-id=""]) [data-testid="message-image"]').last()
    .evaluate((img) => img.complete || new Promise((r) => img.addEventListener('load', r, { once: true })));
}

async function extraShots(a, c) {
  await a.emulateMedia({ colorScheme: 'dark' });
  await openChat(a, BOB);
  await a.screenshot({ path: path.join(EXTRA, 'conversation-dark.png') });
  await a.evaluate(() => { location.hash = '#/'; });
  await a.screenshot({ path: path.join(EXTRA, 'chat-list-dark.png') });
  await a.emulateMedia({ colorScheme: 'light' });
  await c.setViewportSize({ width: 360, height: 740 });
  await c.waitForTimeout(300);
  await c.screenshot({ path: path.join(EXTRA, 'conversation-360.png') });
  await c.emulateMedia({ colorScheme: 'dark' });
  await c.screenshot({ path: path.join(EXTRA, 'conversation-360-dark.png') });
  await c.evaluate(() => { location.hash = '#/'; });
  await c.waitForTimeout(300);
  await c.screenshot({ path: path.join(EXTRA, 'chat-list-360-dark.png') });
  await c.emulateMedia({ colorScheme: 'light' });
}

let code = 1;
try {
  await main();
  code = results.every((r) => r.ok) ? 0 : 1;
} catch (e) {
  console.error(`e2e: ${e.stack || e.message}`);
  results.push({ name: 'setup', ok: false });
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
const passed = results.filter((r) => r.ok).length;
const failed = results.filter((r) => !r.ok).length;
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed || code ? 1 : 0);
