// The chat list under races: a chat that reaches the page by an event while a chat-list request
// is in flight stays in the list when that request's older answer arrives (a CI run once lost
// Bob's new chat this way: the answer, taken before the chat existed, dropped it).

import {
  T, log, results, startServer, launchBrowser, newContext, runSuite, check, until, watch, row, register, call,
} from './lib.mjs';

const ALICE = 'Alice Johnson';
const BOB = 'Bob Smith';

async function main() {
  const { url: base, logFile } = await startServer();
  log(`chatlist: server at ${base} (log ${logFile})`);
  const browser = await launchBrowser();
  const ctx = await newContext(browser);
  const a = await ctx.newPage();
  watch(a, 'alice');
  const run = Date.now().toString(36);
  const bob = await call(base, 'POST', '/auth/register', { name: BOB, email: `bob.${run}@example.com`, password: 'correct horse battery' });

  await check('a chat that arrives while the list reloads is kept when the older list answer comes', async () => {
    await register(a, base, ALICE, `alice.${run}@example.com`);
    const me = await a.evaluate(() => fetch('/auth/me', { headers: { Authorization: `Bearer ${localStorage.getItem('natter.token')}` } }).then((r) => r.json()));
    let held = 0;
    // Every later chat-list request: take the server's answer first (no chat yet), then Bob
    // starts a chat and writes, then the page gets that older answer.
    await a.route(/\/chat\?page=/, async (route) => {
      const answer = await route.fetch();
      const body = await answer.text();
      if (held++ === 0) {
        const chat = await call(base, 'POST', '/chat', { participantIds: [me.id], isGroup: false }, bob.token);
        await call(base, 'POST', `/chat/${chat.id}/messages`, { messageType: 'TEXT', content: 'Hi Alice, are you there?' }, bob.token);
        await row(a, BOB).waitFor({ timeout: T }); // the events reached the page
      }
      await route.fulfill({ response: answer, body });
    });
    // A reconnect reloads the chat list.
    await ctx.setOffline(true);
    await a.waitForTimeout(1500);
    await ctx.setOffline(false);
    await until(async () => held > 0, 'a chat-list reload after the reconnect', 20000);
    await a.waitForTimeout(1500); // the older answer has been applied
    if (!(await row(a, BOB).isVisible())) throw new Error("Bob's new chat vanished when the older list answer came");
    await a.unroute(/\/chat\?page=/);
  });

  if (!results.length) throw new Error('no checks ran');
}

await runSuite('chatlist', main);
