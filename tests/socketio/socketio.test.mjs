// The real npm socket.io-client against natter's /socket.io/ endpoint, beside native /ws
// clients, on the real server binary ($NATTER_BIN) with a temporary data dir.
//
// The whole suite runs three times: with the client's default transports (long-polling, then
// an upgrade to WebSocket), with `transports: ['polling']` only and with
// `transports: ['websocket']` only. Every wait is bounded; the
// server is killed at the end even on failure; the exit code is non-zero on any failure; the
// last line is `socketio: N passed, M failed`.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { io } from 'socket.io-client';
import WebSocket from 'ws';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const BIN = process.env.NATTER_BIN || join(root, 'target', 'debug', 'natter');
const FRONTEND = 'http://frontend.test:3000';
const WAIT_MS = 5000;
// How long to keep listening for a duplicate after the first copy arrived.
const SETTLE_MS = 400;

let server;
let dataDir;
let base;
let passed = 0;
let failed = 0;
let unique = 0;
const open = new Set();

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// Deep equality, whatever the key order.
function assertEqual(actual, expected, what) {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

async function check(name, fn) {
  try {
    await withTimeout(fn(), 30000, name);
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

/** Records every event a connection receives, and waits for them with a bound. */
class Inbox {
  constructor() {
    this.events = [];
    this.waiters = [];
  }
  push(event, data) {
    this.events.push({ event, data });
    for (const w of [...this.waiters]) {
      if (w.event === event && w.pred(data)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(data);
      }
    }
  }
  /** The first event (already seen or still to come) named `event` matching `pred`. */
  waitFor(event, pred = () => true, ms = WAIT_MS) {
    const seen = this.events.find((e) => e.event === event && pred(e.data));
    if (seen) return Promise.resolve(seen.data);
    return withTimeout(
      new Promise((resolve) => this.waiters.push({ event, pred, resolve })),
      ms,
      `event ${event}`,
    );
  }
  count(event, pred = () => true) {
    return this.events.filter((e) => e.event === event && pred(e.data)).length;
  }
}

async function rest(method, path, token, body) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await withTimeout(
    fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }),
    WAIT_MS,
    `${method} ${path}`,
  );
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function register(name) {
  unique++;
  const email = `${name.toLowerCase()}${unique}-${process.pid}@example.com`;
  const body = await rest('POST', '/auth/register', null, { email, password: 'correct horse', name });
  return { id: body.user.id, token: body.token, name };
}

async function directChat(a, b) {
  const chat = await rest('POST', '/chat', a.token, { participantIds: [b.id], isGroup: false });
  return chat.id;
}

/** A native /ws client. */
async function wsClient(user) {
  const inbox = new Inbox();
  const ws = new WebSocket(`${base.replace('http', 'ws')}/ws?token=${user.token}`);
  open.add(ws);
  let nextAck = 1;
  const pending = new Map();
  ws.on('message', (raw) => {
    const frame = JSON.parse(raw.toString());
    if (frame.ack !== undefined && pending.has(frame.ack)) {
      pending.get(frame.ack)(frame);
      pending.delete(frame.ack);
      return;
    }
    inbox.push(frame.event, frame.data);
  });
  await withTimeout(
    new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    }),
    WAIT_MS,
    '/ws open',
  );
  await inbox.waitFor('ready');
  return {
    inbox,
    /** Sends a frame and waits for its ack (or error) frame. */
    request(event, data) {
      const ack = nextAck++;
      const reply = new Promise((resolve) => pending.set(ack, resolve));
      ws.send(JSON.stringify({ event, data, ack }));
      return withTimeout(reply, WAIT_MS, `/ws ack of ${event}`);
    },
    close() {
      ws.close();
      open.delete(ws);
    },
  };
}

/** A socket.io client as the seed's frontends create it; resolves once connected. */
async function sioClient(user, transports, opts = {}) {
  const inbox = new Inbox();
  const socket = io(base, {
    auth: { token: user.token },
    transports,
    autoConnect: false,
    reconnection: false,
    ...opts,
  });
  open.add(socket);
  socket.onAny((event, data) => inbox.push(event, data));
  const connected = new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  socket.connect();
  await withTimeout(connected, WAIT_MS, 'socket.io connect');
  return { socket, inbox };
}

/** Connects expecting a refusal; resolves with the connect_error. */
async function sioRefused(options) {
  const socket = io(base, { autoConnect: false, reconnection: false, ...options });
  open.add(socket);
  const outcome = new Promise((resolve, reject) => {
    socket.once('connect', () => reject(new Error('connected although it should be refused')));
    socket.once('connect_error', resolve);
  });
  socket.connect();
  try {
    return await withTimeout(outcome, WAIT_MS, 'connect_error');
  } finally {
    socket.close();
    open.delete(socket);
  }
}

function closeSio(client) {
  client.socket.close();
  open.delete(client.socket);
}

// ---------------------------------------------------------------- server

async function startServer() {
  dataDir = mkdtempSync(join(tmpdir(), 'natter-socketio-'));
  const env = { ...process.env, NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG || 'info' };
  delete env.FRONTEND_URL;
  delete env.PORT;
  server = spawn(
    BIN,
    ['serve', '--port', '0', '--bind', '127.0.0.1', '--data-dir', dataDir, '--frontend-url', FRONTEND],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  const port = await withTimeout(
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${log}`)));
      server.stderr.on('data', (chunk) => {
        log += chunk.toString();
        const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
        if (m) resolve(Number(m[1]));
        if (process.env.TEST_LOG) process.stderr.write(chunk);
      });
    }),
    15000,
    'server start',
  );
  base = `http://127.0.0.1:${port}`;
}

function stopServer() {
  for (const c of open) {
    try {
      c.close();
    } catch {}
  }
  open.clear();
  if (server && server.exitCode === null) server.kill('SIGKILL');
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- the suite

async function suite(mode, transports) {
  const t = (name) => `[${mode}] ${name}`;
  const alice = await register('Alice'); // the socket.io side
  const bob = await register('Bob'); // the native /ws side
  const carol = await register('Carol'); // in no chat with Alice
  const chatId = await directChat(alice, bob);
  const otherChat = await directChat(bob, carol);
  const bobWs = await wsClient(bob);
  let alic;

  await check(t('connect with auth: { token }; first event is ready {userId, cursor}'), async () => {
    alic = await sioClient(alice, transports);
    const ready = await alic.inbox.waitFor('ready');
    assertEqual(alic.inbox.events[0].event, 'ready', 'first event');
    assertEqual(ready.userId, alice.id, 'ready.userId');
    assert(Number.isInteger(ready.cursor) && ready.cursor >= 0, `cursor ${ready.cursor}`);
    // Presence is the hub's: Bob (on /ws) sees Alice come online.
    await bobWs.inbox.waitFor('user:online', (d) => d.userId === alice.id && d.online === true);
    // The transport under test: the default upgrades from polling to WebSocket.
    const want = transports ? transports[0] : 'websocket';
    const engine = alic.socket.io.engine;
    if (engine.transport.name !== want) {
      await withTimeout(new Promise((r) => engine.once('upgrade', r)), WAIT_MS, `upgrade to ${want}`);
    }
    assertEqual(engine.transport.name, want, 'transport');
  });
  if (!alic) return; // nothing else can run without a connection

  await check(t('chat:join acks {chatId}; a foreign chat acks {error: {code, message}}'), async () => {
    const ok = await alic.socket.timeout(WAIT_MS).emitWithAck('chat:join', { chatId });
    assertEqual(ok, { chatId }, 'ack of chat:join');
    const denied = await alic.socket.timeout(WAIT_MS).emitWithAck('chat:join', { chatId: otherChat });
    assertEqual(denied.error && denied.error.code, 'not_found', 'error code');
    assert(typeof denied.error.message === 'string', 'error message');
  });

  await check(t('without a callback, a failure is an error event {code, message}'), async () => {
    alic.socket.emit('message:send', { chatId, messageType: 'TEXT' });
    alic.socket.emit('no:such-event', {});
    const e1 = await alic.inbox.waitFor('error', (d) => d.code === 'invalid_input' && d.field !== 'event');
    const e2 = await alic.inbox.waitFor('error', (d) => d.field === 'event');
    assert(e1.message && e2.message, 'messages');
  });

  await check(t('message:new sent by a native /ws client arrives once, same payload'), async () => {
    const content = `from ws ${mode}`;
    const reply = await bobWs.request('message:send', { chatId, messageType: 'TEXT', content });
    assertEqual(reply.event, 'ack', '/ws reply');
    const got = await alic.inbox.waitFor('message:new', (m) => m.content === content);
    assertEqual(got, reply.data, 'message:new over socket.io vs the /ws ack');
    await sleep(SETTLE_MS);
    assertEqual(alic.inbox.count('message:new', (m) => m.id === got.id), 1, 'copies received');
  });

  await check(t('message:new sent over REST arrives, and counts as delivered'), async () => {
    const content = `from rest ${mode}`;
    const sent = await rest('POST', `/chat/${chatId}/messages`, bob.token, { messageType: 'TEXT', content });
    const got = await alic.inbox.waitFor('message:new', (m) => m.id === sent.id);
    assertEqual(got.content, content, 'content');
    // Reaching Alice's socket.io connection is a delivery receipt for Bob.
    const status = await bobWs.inbox.waitFor(
      'message:status',
      (s) => s.messageId === sent.id && s.userId === alice.id,
    );
    assertEqual(status.status, 'DELIVERED', 'receipt');
  });

  await check(t('message:send with an ack callback returns the stored message'), async () => {
    const content = `from socket.io ${mode}`;
    const clientId = `sio-${mode}-1`;
    const msg = await alic.socket
      .timeout(WAIT_MS)
      .emitWithAck('message:send', { chatId, messageType: 'TEXT', content, clientId });
    assert(!msg.error, `ack is an error: ${JSON.stringify(msg)}`);
    assert(Number.isInteger(msg.id), `id ${msg.id}`);
    assertEqual([msg.chatId, msg.senderId, msg.content], [chatId, alice.id, content], 'stored message');
    // The same clientId again is the same message, not a second one.
    const again = await alic.socket
      .timeout(WAIT_MS)
      .emitWithAck('message:send', { chatId, messageType: 'TEXT', content, clientId });
    assertEqual(again.id, msg.id, 'id of a retried send');
    const history = await rest('GET', `/chat/${chatId}/messages?after=${msg.id - 1}`, bob.token);
    assertEqual(history.items.filter((m) => m.content === content).length, 1, 'copies stored');
  });

  await check(t('a message sent over socket.io reaches the native /ws client exactly once'), async () => {
    const content = `to ws ${mode}`;
    const msg = await alic.socket.timeout(WAIT_MS).emitWithAck('message:send', { chatId, messageType: 'TEXT', content });
    const got = await bobWs.inbox.waitFor('message:new', (m) => m.id === msg.id);
    assertEqual(got, msg, 'message:new over /ws vs the socket.io ack');
    await sleep(SETTLE_MS);
    assertEqual(bobWs.inbox.count('message:new', (m) => m.id === msg.id), 1, 'copies received');
  });

  await check(t('events of one socket are handled in the order sent'), async () => {
    const contents = Array.from({ length: 12 }, (_, i) => `burst ${mode} ${i}`);
    const acks = contents.map((content) =>
      alic.socket.timeout(WAIT_MS).emitWithAck('message:send', { chatId, messageType: 'TEXT', content }),
    );
    const stored = await Promise.all(acks);
    const ids = stored.map((m) => m.id);
    assertEqual(stored.map((m) => m.content), contents, 'acked contents');
    assert(ids.every((id, i) => i === 0 || id > ids[i - 1]), `ids not ascending: ${ids}`);
    await bobWs.inbox.waitFor('message:new', (m) => m.id === ids[ids.length - 1]);
    const seen = bobWs.inbox.events
      .filter((e) => e.event === 'message:new' && ids.includes(e.data.id))
      .map((e) => e.data.id);
    assertEqual(seen, ids, 'order seen over /ws');
  });

  await check(t('message:read marks read; the /ws sender gets message:status READ'), async () => {
    const sent = await rest('POST', `/chat/${chatId}/messages`, bob.token, { messageType: 'TEXT', content: 'read me' });
    await alic.inbox.waitFor('message:new', (m) => m.id === sent.id);
    const ack = await alic.socket.timeout(WAIT_MS).emitWithAck('message:read', { chatId, upToMessageId: sent.id });
    assertEqual(ack, { chatId, unreadCount: 0 }, 'ack of message:read');
    await bobWs.inbox.waitFor('message:status', (s) => s.messageId === sent.id && s.status === 'READ');
  });

  await check(t('typing:update from the /ws side is seen over socket.io'), async () => {
    const joined = await bobWs.request('chat:join', { chatId });
    assertEqual(joined.event, 'ack', 'join');
    await bobWs.request('typing:update', { chatId, isTyping: true });
    const typing = await alic.inbox.waitFor('typing:update', (d) => d.userId === bob.id && d.isTyping);
    assertEqual(typing, { chatId, userId: bob.id, isTyping: true }, 'typing:update');
    await bobWs.request('typing:update', { chatId, isTyping: false });
    await alic.inbox.waitFor('typing:update', (d) => d.userId === bob.id && !d.isTyping);
  });

  await check(t("the seed's message:typing reaches /ws and expires after ~5 s"), async () => {
    // As in the seed: the client puts a userId in, the server uses the authenticated one.
    alic.socket.emit('message:typing', { chatId, userId: 999999, isTyping: true });
    const on = await bobWs.inbox.waitFor('typing:update', (d) => d.userId === alice.id && d.isTyping);
    assertEqual(on, { chatId, userId: alice.id, isTyping: true }, 'typing:update');
    const started = Date.now();
    await bobWs.inbox.waitFor('typing:update', (d) => d.userId === alice.id && !d.isTyping, 9000);
    const after = Date.now() - started;
    assert(after >= 3500, `expired after ${after} ms`);
  });

  await check(t('token from ?token= or Authorization: Bearer is accepted too'), async () => {
    const viaQuery = await sioClient(alice, transports, { auth: {}, query: { token: alice.token } });
    await viaQuery.inbox.waitFor('ready');
    closeSio(viaQuery);
    const viaHeader = await sioClient(alice, transports, {
      auth: {},
      extraHeaders: { authorization: `Bearer ${alice.token}` },
    });
    await viaHeader.inbox.waitFor('ready');
    closeSio(viaHeader);
  });

  await check(t('connect_error with a bad or missing token'), async () => {
    const bad = await sioRefused({ auth: { token: 'not-a-jwt' }, transports });
    assert(/token/i.test(bad.message), `message: ${bad.message}`);
    const tampered = await sioRefused({ auth: { token: alice.token.slice(0, -2) + 'xx' }, transports });
    assert(tampered.message, 'message');
    const missing = await sioRefused({ transports });
    assert(/missing token/i.test(missing.message), `message: ${missing.message}`);
  });

  await check(t('Origin: FRONTEND_URL is let in, a foreign origin is refused'), async () => {
    const ok = await sioClient(alice, transports, { extraHeaders: { origin: FRONTEND } });
    await ok.inbox.waitFor('ready');
    closeSio(ok);
    const refused = await sioRefused({
      auth: { token: alice.token },
      transports,
      extraHeaders: { origin: 'http://evil.test' },
    });
    assert(/origin/i.test(refused.message), `message: ${refused.message}`);
  });

  await check(t('disconnecting goes offline for the /ws peer, like a /ws close'), async () => {
    closeSio(alic);
    const off = await bobWs.inbox.waitFor('user:online', (d) => d.userId === alice.id && d.online === false);
    assert(off.lastSeen, 'lastSeen');
  });

  bobWs.close();
}

async function main() {
  try {
    await startServer();
    await suite('default', undefined);
    await suite('polling', ['polling']);
    // React Native and many web setups skip polling altogether.
    await suite('websocket', ['websocket']);
  } catch (e) {
    failed++;
    console.log(`FAIL setup: ${e && e.stack ? e.stack : e}`);
  } finally {
    stopServer();
  }
  console.log(`socketio: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

process.on('SIGINT', () => {
  stopServer();
  process.exit(130);
});
process.on('exit', () => {
  if (server && server.exitCode === null) server.kill('SIGKILL');
});

await main();
