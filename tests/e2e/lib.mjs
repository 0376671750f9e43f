// The shared harness of natter's browser tests (Debian's Chromium via playwright-core, the
// real server binary). Each suite (e2e.mjs, and one file per feature beside it) is its own
// process with its own server and browser: `runSuite(name, main)` bounds it in time, counts
// checks, always kills what it started and sets the exit code. Every wait is bounded.
//
// Optional: NATTER_ASSETS_DIR=assets serves the web app from disk (development);
// E2E_EXTRA_SHOTS=<dir> also saves extra screenshots there.

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.resolve(ROOT, process.env.NATTER_BIN || 'target/debug/natter');
export const ASSETS = process.env.NATTER_ASSETS_DIR ? path.resolve(ROOT, process.env.NATTER_ASSETS_DIR) : null;
export const SHOTS = path.join(ROOT, 'docs/screenshots');
export const EXTRA = process.env.E2E_EXTRA_SHOTS ? path.resolve(process.env.E2E_EXTRA_SHOTS) : null;
export const T = 15000; // default bound for one wait
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };
export const PNG = 'image/png';
/** The flags every test browser starts with (no network beyond 127.0.0.1 is reachable here). */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const servers = [];
const browsers = [];
const dataDirs = [];
export const results = [];
export const pageErrors = [];
const pages = new Set(); // every page, so a failed check can close what it left open

export function log(...a) { console.log(...a); }

async function cleanup() {
  for (const b of browsers) { try { await b.close(); } catch { /* already gone */ } }
  for (const server of servers) {
    if (server.exitCode !== null) continue;
    server.kill('SIGTERM');
    await new Promise((r) => { const t = setTimeout(() => { try { server.kill('SIGKILL'); } catch { /* gone */ } r(); }, 3000); server.once('exit', () => { clearTimeout(t); r(); }); });
  }
  for (const d of dataDirs) fs.rmSync(d, { recursive: true, force: true });
}

/**
 * Start `natter serve --port 0` on a fresh data dir with `args` added (and --assets-dir when
 * NATTER_ASSETS_DIR is set and `args` has none); resolves with its URL once it printed its
 * listening line. DATABASE_URL from the environment (scripts/with-test-db.sh) picks PostgreSQL.
 * A restart passes the previous server's `dataDir` and `port` (same origin, same data).
 */
export function startServer(args = [], { name = 'server', dataDir = null, port = 0 } = {}) {
  if (!fs.existsSync(BIN)) throw new Error(`server binary not found: ${BIN}`);
  if (!dataDir) {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'natter-e2e-'));
    dataDirs.push(dataDir);
  }
  const all = ['serve', '--port', String(port), '--data-dir', dataDir, ...args];
  if (ASSETS && !args.includes('--assets-dir')) all.push('--assets-dir', ASSETS);
  const server = spawn(BIN, all, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG || 'info' } });
  servers.push(server);
  // Logs stay inside the checkout (target/ is ignored by git), not in /tmp.
  fs.mkdirSync(path.join(ROOT, 'target'), { recursive: true });
  const logFile = path.join(ROOT, 'target', `natter-e2e-${name}-${process.pid}.log`);
  const out = fs.createWriteStream(logFile, { flags: 'a' });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not print its URL within 60 s (log: ${logFile})`)), 60000);
    let buf = '';
    const onData = (d) => {
      out.write(d);
      buf += d.toString().replace(/\x1b\[[0-9;]*m/g, '');
      const m = buf.match(/listening on (https?:\/\/[^\s"',]+)/);
      if (m) { clearTimeout(timer); resolve({ url: m[1].replace(/\/$/, ''), logFile, dataDir, process: server }); }
    };
    server.stdout.on('data', onData);
    server.stderr.on('data', onData);
    server.once('error', (e) => { clearTimeout(timer); reject(e); });
    server.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited early with code ${code} (log: ${logFile})`)); });
  });
}

/** Stop a server from startServer (SIGTERM, SIGKILL after 5 s); resolves once it exited. */
export function stopServer(started) {
  const server = started.process;
  if (server.exitCode !== null || server.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => { try { server.kill('SIGKILL'); } catch { /* gone */ } }, 5000);
    server.once('exit', () => { clearTimeout(t); resolve(); });
    server.kill('SIGTERM');
  });
}

/** Close `closable` (a browser or a persistent context a suite launched itself) at the end. */
export function closeAtEnd(closable) {
  browsers.push(closable);
  return closable;
}

/** Debian's Chromium with the standard flags plus `args`. */
export async function launchBrowser(args = []) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    timeout: 90000,
    args: [...CHROMIUM_ARGS, ...args],
  });
  browsers.push(browser);
  return browser;
}

/** A browser context with the suites' usual locale, time zone and a bounded default wait. */
export async function newContext(browser, opts = {}) {
  const ctx = await browser.newContext({ viewport: DESKTOP, locale: 'en-GB', timezoneId: 'UTC', colorScheme: 'light', ...opts });
  ctx.setDefaultTimeout(T);
  return ctx;
}

/**
 * Run one suite: `main()` performs `check`s; at the end every page must have been free of
 * script errors and CSP violations. Exits the process with 0 only if every check passed.
 */
export async function runSuite(name, main, { timeout = 480000 } = {}) {
  const watchdog = setTimeout(async () => {
    console.error(`${name}: gave up after ${timeout / 1000} s`);
    await cleanup();
    console.log(`${name}: ${results.filter((r) => r.ok).length} passed, ${Math.max(1, results.filter((r) => !r.ok).length)} failed`);
    process.exit(1);
  }, timeout);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, async () => { await cleanup(); process.exit(1); });
  let code = 1;
  try {
    fs.mkdirSync(SHOTS, { recursive: true });
    if (EXTRA) fs.mkdirSync(EXTRA, { recursive: true });
    await main();
    await check('no script errors or CSP violations in any page', async () => {
      if (pageErrors.length) throw new Error(pageErrors.slice(0, 8).join('\n'));
    });
    code = results.every((r) => r.ok) ? 0 : 1;
  } catch (e) {
    console.error(`${name}: ${e.stack || e.message}`);
    results.push({ name: 'setup', ok: false });
  } finally {
    await cleanup();
    clearTimeout(watchdog);
  }
  const passed = results.filter((r) => r.ok).length;
  const failed = results.filter((r) => !r.ok).length;
  console.log(`${name}: ${passed} passed, ${failed} failed`);
  process.exit(failed || code ? 1 : 0);
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
/** A 640×400 sunset: sky gradient, a sun, two hills; `variant` 1 and 2 rotate the colours. */
export function makePng(w = 640, h = 400, variant = 0) {
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
      [raw[o + variant % 3], raw[o + (variant + 1) % 3], raw[o + (variant + 2) % 3]] = [r, g, b];
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// ---- helpers -------------------------------------------------------------------------------

export async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    log(`  ✔ ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push({ name, ok: false });
    log(`  ✘ ${name}\n      ${String(e?.message || e).split('\n').slice(0, 6).join('\n      ')}`);
    // Close a dialog, menu or viewer the failed check left open, so the next checks can run.
    for (const p of pages) {
      if (p.isClosed()) continue;
      for (let i = 0; i < 3; i++) await p.keyboard.press('Escape').catch(() => {});
    }
  }
}

export async function until(fn, desc, timeout = T) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${desc}${last instanceof Error ? ` (${last.message})` : ''}`);
}

export function watch(page, who) {
  pages.add(page);
  page.on('pageerror', (e) => pageErrors.push(`${who}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    // Expected while the network is cut on purpose, or for a deliberately refused request; and
    // Chromium's note that a test context (incognito) refuses push subscriptions.
    if (/ERR_INTERNET_DISCONNECTED|net::ERR_|Failed to load resource|WebSocket connection/.test(text)) return;
    if (/does not support the Push API in incognito mode/.test(text)) return;
    pageErrors.push(`${who}: ${text}`);
  });
}

export const msg = (page, text) => page.locator('[data-testid="message"]').filter({ hasText: text });
export const row = (page, title) => page.locator(`[data-testid="chat-row"][data-title="${title}"]`);

export async function register(page, base, name, email) {
  await page.goto(base + '/', { timeout: T });
  await page.getByTestId('auth-switch').click({ timeout: T });
  await page.getByTestId('auth-name').fill(name);
  await page.getByTestId('auth-email').fill(email);
  await page.getByTestId('auth-password').fill('correct horse battery');
  await page.getByTestId('auth-submit').click();
  await page.getByTestId('app').waitFor({ timeout: T });
  await page.locator('.skeleton-row').first().waitFor({ state: 'detached', timeout: T });
}

export async function send(page, text) {
  const box = page.getByTestId('composer-input');
  await box.fill(text);
  await box.press('Enter');
  await msg(page, text).last().waitFor({ timeout: T });
}

export async function status(page, text) {
  return msg(page, text).last().getAttribute('data-status', { timeout: T });
}

export async function openChat(page, title) {
  await row(page, title).click({ timeout: T });
  await until(async () => (await page.getByTestId('conv-title').textContent()) === title, `conversation "${title}" to open`);
}

/** One REST call with a token (JSON, or FormData for uploads); throws on a non-2xx answer. */
export async function call(base, method, p, body, tok) {
  const form = body instanceof FormData;
  const r = await fetch(base + p, {
    method,
    headers: { ...(tok ? { Authorization: `Bearer ${tok}` } : {}), ...(body && !form ? { 'Content-Type': 'application/json' } : {}) },
    body: body == null ? undefined : form ? body : JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${method} ${p} → ${r.status} ${await r.text()}`);
  return r.status === 204 ? null : r.json();
}

export const tokenOf = (page) => page.evaluate(() => localStorage.getItem('natter.token'));

/** Upload a PNG as someone and send it to a chat (optionally with a caption); returns the message. */
export async function sendImage(base, tok, chatId, png, name, content) {
  const fd = new FormData();
  fd.append('file', new Blob([png], { type: PNG }), name);
  const up = await call(base, 'POST', '/chat/upload', fd, tok);
  return call(base, 'POST', `/chat/${chatId}/messages`, { messageType: 'IMAGE', ...(content ? { content } : {}), ...up }, tok);
}

export async function chatByName(base, tok, name) {
  const chats = (await call(base, 'GET', '/chat?page=1&limit=100', null, tok)).items;
  return chats.find((x) => x.name === name || x.participants?.some((p) => p.user?.name === name && !x.isGroup));
}

/**
 * In the page: WCAG contrast of an element's text colour against what is really behind it
 * (ancestors' backgrounds, alpha-blended down to an opaque one).
 */
export function contrastOf(el) {
  const parse = (c) => { const m = c.match(/[\d.]+/g)?.map(Number) || [0, 0, 0, 0]; return { r: m[0], g: m[1], b: m[2], a: m[3] ?? 1 }; };
  const over = (top, under) => ({ r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a), b: top.b * top.a + under.b * (1 - top.a), a: 1 });
  const layers = [];
  for (let n = el; n; n = n.parentElement) {
    const bg = parse(getComputedStyle(n).backgroundColor);
    if (bg.a > 0) { layers.push(bg); if (bg.a >= 1) break; }
  }
  let bg = { r: 255, g: 255, b: 255, a: 1 };
  for (const l of layers.reverse()) bg = over(l, bg);
  const fg = over(parse(getComputedStyle(el).color), bg);
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const [x, y] = [lum(fg), lum(bg)].sort((p, q) => p - q);
  return { ratio: (y + 0.05) / (x + 0.05), bgLum: lum(bg), fg: getComputedStyle(el).color };
}

export const overlaps = (p, q) => p && q && p.x < q.x + q.width && q.x < p.x + p.width && p.y < q.y + q.height && q.y < p.y + p.height;

export async function shot(page, file) {
  const vp = page.viewportSize();
  await page.mouse.move(vp.width - 2, vp.height / 2); // no hover highlight in the picture
  await page.waitForTimeout(350); // let transitions and image fades settle
  await page.screenshot({ path: path.join(SHOTS, file) });
}

