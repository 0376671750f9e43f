// Reactions, message search, jump-to-message and forwarding in the browser (issue 19): Alice
// reacts from the quick bar and Bob sees the chip live and who reacted, then replaces and
// removes his own; Ctrl+K finds a message far up an older page of a group (seeded through the
// API, so it is not loaded) and opens the conversation there, highlighted, paging down again;
// the in-chat find bar steps through matches; FTS syntax in a query is only text; a reply's
// quote jumps to an original that is not loaded; a photo and a text are forwarded to two chats
// and Bob sees them "Forwarded", the photo loading. Screenshots of each.

import {
  EXTRA, log, results, startServer, launchBrowser, newContext, runSuite, makePng, check, until, watch,
  msg, row, register, openChat, call, tokenOf, sendImage, shot,
} from './lib.mjs';

const ALICE = 'Alice Johnson';
const BOB = 'Bob Smith';
const DESIGN = 'Design review';
const LAUNCH = 'Launch crew';
const TARGET = 'The release date is March 14th, put it in the plan 🚀';

const chip = (page, t, emoji) => msg(page, t).locator(`[data-testid="reaction-chip"][data-emoji="${emoji}"]`);
const chips = (page, t) => msg(page, t).locator('[data-testid="reaction-chip"]');
async function chipsOf(page, t) {
  return chips(page, t).evaluateAll((els) => els.map((e) => `${e.dataset.emoji}${e.dataset.count}${e.classList.contains('mine') ? '*' : ''}`).join(' '));
}
const rowById = (page, id) => page.locator(`[data-testid="message"][data-id="${id}"]`);
/** Whether the row is inside the message list's visible part. */
const inView = (page, id) => rowById(page, id).evaluate((el) => {
  const s = el.closest('[data-testid="message-list"]').getBoundingClientRect();
  const r = el.getBoundingClientRect();
  return r.bottom > s.top + 10 && r.top < s.bottom - 10;
});

async function main() {
  const { url: base, logFile } = await startServer();
  log(`find: server at ${base} (log ${logFile})`);
  const browser = await launchBrowser();
  const ctxA = await newContext(browser);
  const ctxB = await newContext(browser);
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  watch(a, 'alice'); watch(b, 'bob');
  const run = Date.now().toString(36);
  let ta; let tb; let bobId; let direct; let design; let launch; let target; let reply;
  const dashboards = []; // ids of the "dashboard" messages in Design review, oldest first
  let last; // the newest message of Design review before the reply

  await check('two people, a 1:1 chat and two groups, one with 70 older messages', async () => {
    await register(a, base, ALICE, `alice.${run}@example.com`);
    await register(b, base, BOB, `bob.${run}@example.com`);
    ta = await tokenOf(a);
    tb = await tokenOf(b);
    bobId = (await call(base, 'GET', '/auth/me', null, tb)).id;
    direct = await call(base, 'POST', '/chat', { participantIds: [bobId], isGroup: false }, ta);
    launch = await call(base, 'POST', '/chat', { participantIds: [bobId], isGroup: true, name: LAUNCH }, ta);
    design = await call(base, 'POST', '/chat', { participantIds: [bobId], isGroup: true, name: DESIGN }, ta);
    const say = (chat, tok, content, extra = {}) => call(base, 'POST', `/chat/${chat.id}/messages`, { messageType: 'TEXT', content, ...extra }, tok);
    await say(launch, tb, 'Release checklist is in the wiki');
    target = await say(design, tb, TARGET);
    for (let i = 1; i <= 70; i++) {
      const dash = i % 10 === 5;
      const m = await say(design, i % 2 ? ta : tb, dash ? `Update ${i}: the dashboard build is ready for review` : `Update ${i}: still working on the backlog`);
      if (dash) dashboards.push(m.id);
      last = m;
    }
    await say(direct, tb, 'Lunch at noon?');
    await say(direct, tb, 'I booked the usual place');
    await row(a, BOB).waitFor();
    await row(b, ALICE).waitFor();
    await openChat(a, BOB);
    await openChat(b, ALICE);
    await msg(a, 'Lunch at noon?').waitFor();
    await msg(b, 'Lunch at noon?').waitFor();
  });

  // ---- reactions ------------------------------------------------------------------------

  await check('Alice reacts 👍 from the quick bar; her chip is highlighted', async () => {
    const m = msg(a, 'Lunch at noon?');
    await m.hover();
    await m.getByTestId('react-button').click();
    const bar = a.getByTestId('reaction-bar');
    await bar.waitFor();
    const emoji = await bar.getByTestId('quick-reaction').evaluateAll((els) => els.map((e) => e.dataset.emoji).join(''));
    if (emoji !== '👍❤️😂😮😢🙏') throw new Error(`quick bar has ${emoji}`);
    if (!(await bar.getByTestId('reaction-more').count())) throw new Error('no "+" for the full picker');
    if (await bar.getAttribute('role') !== 'toolbar') throw new Error('the quick bar is not a labelled toolbar');
    await bar.locator('[data-emoji="👍"]').click();
    await bar.waitFor({ state: 'detached' });
    await until(async () => (await chipsOf(a, 'Lunch at noon?')) === '👍1*', 'Alice\'s own chip');
    const label = await chip(a, 'Lunch at noon?', '👍').getAttribute('aria-label');
    if (!/thumbs up 1: You/.test(label)) throw new Error(`chip label "${label}"`);
  });

  await check('Bob sees the chip live and who reacted (right-click on the chip)', async () => {
    await until(async () => (await chipsOf(b, 'Lunch at noon?')) === '👍1', 'the chip on Bob\'s side');
    await chip(b, 'Lunch at noon?', '👍').click({ button: 'right' });
    const list = b.getByTestId('reactors');
    await list.waitFor();
    const names = await list.getByTestId('reactor').allTextContents();
    if (names.length !== 1 || !names[0].includes(ALICE) || !names[0].includes('👍')) throw new Error(`who reacted: ${JSON.stringify(names)}`);
    await b.keyboard.press('Escape');
    await list.waitFor({ state: 'detached' });
  });

  await check('Bob adds 👍 by clicking Alice\'s chip, replaces it with ❤️, then removes it', async () => {
    await chip(b, 'Lunch at noon?', '👍').click();
    await until(async () => (await chipsOf(b, 'Lunch at noon?')) === '👍2*', 'Bob\'s 👍 added');
    await until(async () => (await chipsOf(a, 'Lunch at noon?')) === '👍2*', 'Alice to see 2');
    const m = msg(b, 'Lunch at noon?');
    await m.hover();
    await m.getByTestId('react-button').click();
    await b.getByTestId('reaction-bar').locator('[data-emoji="❤️"]').click();
    await until(async () => (await chipsOf(b, 'Lunch at noon?')) === '👍1 ❤️1*', 'Bob\'s 👍 replaced by ❤️');
    await until(async () => (await chipsOf(a, 'Lunch at noon?')) === '👍1* ❤️1', 'Alice to see the replacement');
    await chip(b, 'Lunch at noon?', '❤️').click();
    await until(async () => (await chipsOf(b, 'Lunch at noon?')) === '👍1', 'Bob\'s reaction removed');
    await until(async () => (await chipsOf(a, 'Lunch at noon?')) === '👍1*', 'Alice to see the removal');
  });

  await check('the full picker: search "party", pick 🥳; the menu\'s reaction row; keyboard', async () => {
    const m = msg(b, 'I booked the usual place');
    await m.hover();
    await m.getByTestId('react-button').click();
    await b.getByTestId('reaction-bar').getByTestId('reaction-more').click();
    const picker = b.getByTestId('emoji-picker');
    await picker.waitFor();
    await picker.getByTestId('emoji-search').fill('party');
    await picker.locator('[data-emoji="🥳"]').click();
    await until(async () => (await chipsOf(b, 'I booked the usual place')) === '🥳1*', 'the 🥳 chip');
    await until(async () => (await chipsOf(a, 'I booked the usual place')) === '🥳1', 'Alice to see 🥳');
    // Alice, by keyboard: the message menu opens with the reaction row on top.
    const mine = msg(a, 'I booked the usual place');
    await mine.hover();
    await mine.getByTestId('message-menu').click();
    const rowR = a.getByTestId('menu-reactions');
    await rowR.waitFor();
    if (!(await rowR.locator('[data-emoji="😂"]').evaluate((el) => el === document.activeElement || el.parentElement.contains(document.activeElement)))) throw new Error('focus is not in the reaction row');
    // Arrow keys walk the menu, its reaction row first: 👍 → ❤️ → 😂, Enter picks.
    await a.keyboard.press('ArrowDown');
    await a.keyboard.press('ArrowDown');
    if (!(await rowR.locator('[data-emoji="😂"]').evaluate((el) => el === document.activeElement))) throw new Error('ArrowDown did not reach 😂');
    await a.keyboard.press('Enter');
    await until(async () => (await chipsOf(a, 'I booked the usual place')) === '🥳1 😂1*', 'Alice\'s 😂');
  });

  await check('screenshot: reactions (quick bar open, chips, light and dark)', async () => {
    await until(async () => (await chipsOf(b, 'I booked the usual place')) === '🥳1* 😂1', 'Bob to see 😂');
    const m = msg(b, 'I booked the usual place');
    await b.mouse.move(5, 5);
    const box = await m.locator('.bubble').boundingBox();
    await b.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await m.getByTestId('react-button').click();
    await b.getByTestId('reaction-bar').waitFor();
    await shot(b, 'reactions.png');
    await b.keyboard.press('Escape');
    await b.emulateMedia({ colorScheme: 'dark' });
    await b.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await m.getByTestId('react-button').click();
    await b.getByTestId('reaction-bar').waitFor();
    await shot(b, 'reactions-dark.png');
    await b.keyboard.press('Escape');
    await b.emulateMedia({ colorScheme: 'light' });
  });

  // ---- search and jump ------------------------------------------------------------------

  await check('Ctrl+K finds a message in an older page of a group, grouped by chat, highlighted', async () => {
    await openChat(a, DESIGN);
    await msg(a, 'Update 70:').waitFor();
    if (await rowById(a, target.id).count()) throw new Error('the target is loaded already; the test would prove nothing');
    await a.keyboard.press('Control+k');
    const panel = a.getByTestId('search-panel');
    await panel.waitFor();
    if (!(await a.getByTestId('message-search-input').evaluate((el) => el === document.activeElement))) throw new Error('Ctrl+K did not focus the message search');
    await a.getByTestId('message-search-input').fill('release');
    const hit = panel.locator(`[data-testid="search-result"][data-message-id="${target.id}"]`);
    await hit.waitFor();
    const groups = await panel.getByTestId('search-group').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
    if (!groups.includes(DESIGN) || !groups.includes(LAUNCH)) throw new Error(`groups ${JSON.stringify(groups)}`);
    const marks = await hit.locator('mark').allTextContents();
    if (!marks.length || !marks.every((t) => /^release$/i.test(t))) throw new Error(`highlighted ${JSON.stringify(marks)}`);
    await shot(a, 'search.png');
    // Two words, the last one a prefix ("dat" → "date").
    await a.getByTestId('message-search-input').fill('release dat');
    await until(async () => {
      const t = await hit.locator('mark').allTextContents().catch(() => []);
      return /^release,date?$/.test(t.map((x) => x.toLowerCase()).join(','));
    }, 'both words highlighted');
  });

  await check('opening the hit jumps there (around=), highlighted; scrolling down pages to the newest', async () => {
    const aroundAsked = a.waitForRequest((r) => r.url().includes(`around=${target.id}`));
    await a.getByTestId('search-panel').locator(`[data-testid="search-result"][data-message-id="${target.id}"]`).click();
    await aroundAsked;
    await a.getByTestId('search-panel').waitFor({ state: 'detached' });
    await rowById(a, target.id).waitFor();
    await until(() => inView(a, target.id), 'the target in view');
    if (!(await rowById(a, target.id).evaluate((el) => el.classList.contains('flash')))) throw new Error('no highlight on the target');
    await a.getByTestId('to-bottom').click();
    await rowById(a, last.id).waitFor();
    await until(() => inView(a, last.id), 'the newest message in view');
  });

  await check('in-chat search: "3 of 7", Enter older, Shift+Enter newer, ↑/↓ buttons', async () => {
    await a.getByTestId('chat-find-button').click();
    const input = a.getByTestId('chat-find-input');
    await input.fill('dashboard');
    const count = a.getByTestId('chat-find-count');
    await until(async () => (await count.textContent()) === '1 of 7', '"1 of 7"');
    const current = () => a.locator('[data-testid="message"].find-current').getAttribute('data-id').then(Number);
    await until(async () => (await current()) === dashboards[6], 'the newest match highlighted');
    await input.press('Enter');
    await input.press('Enter');
    await until(async () => (await count.textContent()) === '3 of 7', '"3 of 7"');
    await until(async () => (await current()) === dashboards[4], 'the third match');
    await input.press('Shift+Enter');
    await until(async () => (await count.textContent()) === '2 of 7', '"2 of 7"');
    for (let i = 0; i < 5; i++) await a.getByTestId('chat-find-older').click();
    await until(async () => (await count.textContent()) === '7 of 7', '"7 of 7"');
    await until(async () => (await current()) === dashboards[0], 'the oldest match (an older page)');
    await until(() => inView(a, dashboards[0]), 'the oldest match in view');
    const mark = await rowById(a, dashboards[0]).locator('mark').allTextContents();
    if (mark.join() !== 'dashboard') throw new Error(`marked ${JSON.stringify(mark)}`);
    if (!(await a.getByTestId('chat-find-older').isDisabled())) throw new Error('"older" still enabled at the last match');
    await a.getByTestId('chat-find-newer').click();
    await until(async () => (await count.textContent()) === '6 of 7', '"6 of 7"');
    await input.press('Escape');
    await a.getByTestId('chat-find').waitFor({ state: 'hidden' });
  });

  await check('FTS syntax in a query is searched as text: results or "no results", never an error', async () => {
    await a.keyboard.press('Control+k');
    const input = a.getByTestId('message-search-input');
    const stat = a.getByTestId('search-status');
    for (const q of ['"release', 'release*', '-release', 'NEAR(release date)', 'release OR date', '^release', '"', '*', 'AND', 'a:b', "it's"]) {
      await input.fill(q);
      await until(async () => (await stat.getAttribute('data-query')) === q.trim(), `an answer for ${q}`);
      const t = await stat.textContent();
      if (/didn’t work|failed/i.test(t)) throw new Error(`${q}: ${t}`);
    }
    await a.keyboard.press('Escape');
    await a.getByTestId('search-panel').waitFor({ state: 'detached' });
  });

  await check('a reply\'s quote jumps to an original that is not loaded', async () => {
    reply = await call(base, 'POST', `/chat/${design.id}/messages`, { messageType: 'TEXT', content: 'Noted, March 14th it is', replyToId: target.id }, tb);
    // The find bar left a window further up: the newest page again, with the reply.
    if (await a.getByTestId('to-bottom').isVisible()) await a.getByTestId('to-bottom').click();
    await msg(a, 'Noted, March 14th it is').waitFor();
    const loaded = await rowById(a, target.id).count();
    const asked = loaded ? null : a.waitForRequest((r) => r.url().includes(`around=${target.id}`));
    await msg(a, 'Noted, March 14th it is').getByTestId('reply-quote').click();
    await asked;
    await rowById(a, target.id).waitFor();
    await until(() => inView(a, target.id), 'the original in view');
    if (!(await rowById(a, target.id).evaluate((el) => el.classList.contains('flash')))) throw new Error('no highlight');
  });

  // ---- forward --------------------------------------------------------------------------

  await check('forward a photo and a text to two chats: selection mode, up to 10 chats', async () => {
    await sendImage(base, tb, direct.id, makePng(640, 400, 2), 'site-photo.png', null);
    await openChat(a, BOB);
    const photo = a.locator('[data-testid="message"]').filter({ has: a.getByTestId('message-image') }).last();
    await photo.waitFor();
    await until(() => photo.getByTestId('message-image').evaluate((img) => img.complete && img.naturalWidth > 0), 'the photo to load');
    await photo.hover();
    await photo.getByTestId('message-menu').click();
    await a.getByTestId('menu-forward').click();
    await a.getByTestId('select-bar').waitFor();
    await until(async () => (await a.getByTestId('selected-count').textContent()) === '1 selected', '"1 selected"');
    if (await a.getByTestId('composer-input').isVisible()) throw new Error('the composer shows while selecting');
    await msg(a, 'I booked the usual place').click();
    await until(async () => (await a.getByTestId('selected-count').textContent()) === '2 selected', '"2 selected"');
    const box = msg(a, 'I booked the usual place').getByTestId('select-message');
    if (await box.getAttribute('aria-checked') !== 'true') throw new Error('the box is not checked');
    await a.getByTestId('forward-selected').click();
    const dlg = a.getByTestId('forward-dialog');
    await dlg.waitFor();
    await a.getByTestId('forward-search').fill('crew');
    await dlg.locator(`[data-testid="forward-chat"][data-title="${LAUNCH}"]`).click();
    await a.getByTestId('forward-search').fill('');
    await dlg.locator(`[data-testid="forward-chat"][data-title="${DESIGN}"]`).click();
    const picked = await dlg.locator('[data-testid="forward-chat"][aria-selected="true"]').count();
    if (picked !== 2) throw new Error(`${picked} chats picked`);
    await shot(a, 'forward.png');
    await a.getByTestId('forward-send').click();
    await dlg.waitFor({ state: 'detached' });
    await until(async () => /Forwarded to 2 chats/.test(await a.locator('.toast.show').textContent().catch(() => '')), 'the toast');
    await a.getByTestId('select-bar').waitFor({ state: 'hidden' });
    await a.getByTestId('composer-input').waitFor();
  });

  await check('Bob sees both "Forwarded" in each chat, in order, and the photo loads', async () => {
    for (const name of [LAUNCH, DESIGN]) {
      await openChat(b, name);
      const fwd = b.locator('[data-testid="message"]').filter({ has: b.getByTestId('forwarded-label') });
      await until(async () => (await fwd.count()) === 2, `two forwarded messages in ${name}`);
      // In the order they were first sent: the text, then the photo.
      const first = await fwd.nth(0).getByTestId('message-text').textContent();
      if (!first.startsWith('I booked the usual place')) throw new Error(`first forwarded: ${first}`);
      const img = fwd.nth(1).getByTestId('message-image');
      await img.waitFor();
      await until(() => img.evaluate((el) => el.complete && el.naturalWidth > 0), 'the forwarded photo to load');
      const label = await fwd.nth(1).getByTestId('forwarded-label').textContent();
      if (label.trim() !== 'Forwarded') throw new Error(`label "${label}"`);
    }
    if (EXTRA) await b.screenshot({ path: `${EXTRA}/forwarded.png` });
  });

  await check('the chat picker stops at 10 chats', async () => {
    // Eleven more groups for Alice.
    for (let i = 1; i <= 10; i++) await call(base, 'POST', '/chat', { participantIds: [bobId], isGroup: true, name: `Team ${i}` }, ta);
    await until(async () => (await a.locator('[data-testid="chat-row"]').count()) >= 13, 'the new groups in the list');
    const m = msg(a, 'Lunch at noon?');
    await m.hover();
    await m.getByTestId('message-menu').click();
    await a.getByTestId('menu-forward').click();
    await a.getByTestId('forward-selected').click();
    const dlg = a.getByTestId('forward-dialog');
    await dlg.waitFor();
    const rows = dlg.getByTestId('forward-chat');
    for (let i = 0; i < 10; i++) await rows.nth(i).click();
    // The eleventh by keyboard (the dialog's list scrolls; Enter presses the focused row).
    await rows.nth(10).focus();
    await a.keyboard.press('Enter');
    const picked = await dlg.locator('[data-testid="forward-chat"][aria-selected="true"]').count();
    if (picked !== 10) throw new Error(`${picked} chats picked`);
    if (!/up to 10/.test(await a.getByTestId('forward-note').textContent())) throw new Error('no word about the limit');
    await a.getByTestId('forward-cancel').click();
    await dlg.waitFor({ state: 'detached' });
    await a.getByTestId('cancel-selection').click();
    await a.getByTestId('select-bar').waitFor({ state: 'hidden' });
  });

  await check('on a 360 px phone the find bar, the search and the quick bar fit without scrolling sideways', async () => {
    await b.setViewportSize({ width: 360, height: 740 });
    await b.waitForTimeout(600); // the layout's pane transition
    const fits = () => b.evaluate(() => document.scrollingElement.scrollWidth <= innerWidth
      && [...document.querySelectorAll('.chat-find, .search-panel, .react-bar')].every((el) => el.getBoundingClientRect().right <= innerWidth + 0.5));
    await b.getByTestId('chat-find-button').click();
    await b.getByTestId('chat-find-input').fill('forward');
    if (!(await fits())) throw new Error('the find bar makes the page scroll sideways');
    await b.getByTestId('chat-find-close').click();
    const m = b.locator('[data-testid="message"]').last();
    await m.click({ button: 'right' });
    await b.getByTestId('menu-reactions').waitFor();
    if (!(await fits())) throw new Error('the menu\'s reaction row does not fit');
    await b.keyboard.press('Escape');
    await b.keyboard.press('Control+k');
    await b.getByTestId('search-panel').waitFor();
    await b.getByTestId('message-search-input').fill('release');
    await b.getByTestId('search-result').first().waitFor();
    if (!(await fits())) throw new Error('the search panel does not fit');
    if (EXTRA) await b.screenshot({ path: `${EXTRA}/search-360.png` });
    await b.keyboard.press('Escape');
    await b.setViewportSize({ width: 1280, height: 800 });
  });

  void reply;
  if (!results.length) throw new Error('no checks ran');
}

await runSuite('find', main);
