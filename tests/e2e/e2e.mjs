// End-to-end test of the natter web app in a real browser (Debian's Chromium via playwright-core)
// against the real server binary: the main flow of two, then three people chatting. The harness
// (server, browser, bounded waits, helpers) is tests/e2e/lib.mjs; features have suites of their
// own beside this file (tests/e2e/*.e2e.mjs). Usage: tests/e2e/run.sh.

import path from 'node:path';
import {
  ASSETS, EXTRA, T, DESKTOP, PHONE, PNG, log, results, startServer, launchBrowser, runSuite,
  makePng, check, until, watch, msg, row, register, send, status, openChat, call, tokenOf,
  sendImage, chatByName, contrastOf, overlaps, shot,
} from './lib.mjs';

const ALICE = 'Alice Johnson';
const BOB = 'Bob Smith';
const CAROL = 'Carol Diaz';
const GROUP = 'Release crew';
const GINA = 'Gina Novak';
const UPLOAD_MAX = 2 * 1048576; // the server runs with a small upload limit, shown as "2 MB"
const DELETE_WINDOW = 3600; // --delete-window: "Delete for everyone" only within an hour

async function main() {
  const { url: base, logFile } = await startServer(['--upload-max-size', String(UPLOAD_MAX), '--delete-window', String(DELETE_WINDOW)]);
  log(`e2e: server at ${base} (log ${logFile})${ASSETS ? ` serving ${ASSETS}` : ''}`);

  const browser = await launchBrowser();
  const ctxA = await browser.newContext({ viewport: DESKTOP, locale: 'en-GB', timezoneId: 'UTC', colorScheme: 'light' });
  const ctxB = await browser.newContext({ viewport: DESKTOP, locale: 'en-GB', timezoneId: 'UTC', colorScheme: 'light' });
  const ctxC = await browser.newContext({ viewport: PHONE, locale: 'en-GB', timezoneId: 'UTC', colorScheme: 'light', isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  for (const c of [ctxA, ctxB, ctxC]) c.setDefaultTimeout(T);
  // The notifications prompt (after a first sent message) has its own suite, push.e2e.mjs;
  // here it is "dismissed" so the README's screenshots show the app itself.
  for (const c of [ctxA, ctxB, ctxC]) await c.addInitScript(() => localStorage.setItem('natter.notifyPrompt.dismissedAt', String(Date.now())));
  const a = await ctxA.newPage();
  let b = await ctxB.newPage();
  let c = await ctxC.newPage();
  watch(a, 'alice'); watch(b, 'bob'); watch(c, 'carol');

  const run = Date.now().toString(36);
  const ctx = {};

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

  await check('a fresh load on a wide screen shows the list and "Select a chat", no conversation pane', async () => {
    await a.goto(base + '/');
    await row(a, BOB).waitFor();
    await a.getByTestId('welcome').waitFor();
    for (const id of ['conversation', 'composer-input', 'info-button']) {
      if (await a.getByTestId(id).isVisible()) throw new Error(`"${id}" is visible with no chat open`);
    }
    await openChat(a, BOB);
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

  await check('attaching opens a preview with a caption; Esc cancels; two files send as two messages', async () => {
    let uploads = 0;
    a.on('request', (r) => { if (new URL(r.url()).pathname === '/chat/upload') uploads++; });
    const files = [{ name: 'sunset.png', mimeType: PNG, buffer: makePng() }, { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('release notes draft\n') }];
    await a.getByTestId('attach-input').setInputFiles(files);
    await a.getByTestId('attach-preview').waitFor();
    if (await a.getByTestId('attach-item').count() !== 2) throw new Error('the preview does not show both files');
    await a.getByTestId('attach-caption').fill('Not this one');
    await a.keyboard.press('Escape');
    await a.getByTestId('attach-preview').waitFor({ state: 'detached' });
    await a.waitForTimeout(500);
    if (uploads) throw new Error('Esc still uploaded the files');
    if (await msg(a, 'Not this one').count()) throw new Error('Esc still sent the caption');
    await a.getByTestId('attach-input').setInputFiles(files);
    await a.getByTestId('attach-caption').fill('Sunset from the balcony 🌅');
    if (EXTRA) await a.screenshot({ path: path.join(EXTRA, 'attach-preview.png') });
    await a.getByTestId('attach-send').click();
    const loaded = (page) => until(async () => msg(page, 'Sunset from the balcony').locator('[data-testid="message-image"]')
      .evaluate((img) => img.complete && img.naturalWidth > 0), 'the captioned image to load', 20000);
    await loaded(a);
    await loaded(b);
    await b.locator('[data-testid="message-file"]').filter({ hasText: 'notes.txt' }).waitFor();
    const order = await b.getByTestId('message').evaluateAll((els) => els.map((e) => (e.textContent.includes('Sunset from the balcony') ? 'photo' : e.textContent.includes('notes.txt') ? 'file' : '')).filter(Boolean));
    if (order.join() !== 'photo,file') throw new Error(`the files arrived as ${order.join(', ')}, not in the order picked`);
    const err = await a.getByTestId('composer-error').isVisible();
    if (err) throw new Error(`upload error: ${await a.getByTestId('composer-error').textContent()}`);
    await send(b, 'Beautiful! Where was that?');
  });

  // The README's conversation screenshot: this chat is still tidy here (later checks add test
  // messages to it), with a few more people in Alice's list.
  try {
    await dressUp(base, a, run);
    await openChat(a, BOB);
    await msg(a, 'Where was that?').waitFor();
    await shot(a, 'conversation.png');
  } catch (e) {
    log(`  ! screenshots: ${e.message}`);
    results.push({ name: 'conversation screenshot', ok: false });
  }

  await check('a file over the server\'s upload limit is refused in the browser, before uploading', async () => {
    let uploads = 0;
    a.on('request', (r) => { if (new URL(r.url()).pathname === '/chat/upload') uploads++; });
    const box = a.getByTestId('composer-input');
    await box.fill('a draft that must survive');
    await a.getByTestId('attach-input').setInputFiles({ name: 'video.mp4', mimeType: 'video/mp4', buffer: Buffer.alloc(UPLOAD_MAX + 1000, 7) });
    await until(async () => (await a.getByTestId('composer-error').textContent()).includes('File is larger than 2 MB'), 'the size error');
    await a.waitForTimeout(300);
    if (uploads) throw new Error('the browser uploaded the file anyway');
    if (await box.inputValue() !== 'a draft that must survive') throw new Error('the draft was lost');
    if (await a.getByTestId('attach-preview').count()) throw new Error('the preview opened for a file that cannot be sent');
    await box.fill('');
  });

  await check('the image viewer fits pictures to the window, zooms on click, keeps download and Esc', async () => {
    const chat = await chatByName(base, await tokenOf(b), ALICE);
    const tb = await tokenOf(b);
    for (const [w, hgt] of [[1200, 800], [400, 900]]) {
      const name = `wide-${w}x${hgt}.png`;
      const m = await sendImage(base, tb, chat.id, makePng(w, hgt), name, `picture ${w}x${hgt}`);
      const bubble = msg(a, `picture ${w}x${hgt}`);
      await until(async () => bubble.locator('[data-testid="message-image"]').evaluate((img) => img.complete && img.naturalWidth > 0), 'the thumbnail');
      await bubble.locator('.img-box').click();
      const img = a.getByTestId('viewer-image');
      await until(async () => img.evaluate((el) => el.complete && el.naturalWidth > 0), 'the full picture');
      const vp = a.viewportSize();
      const r = await img.boundingBox();
      if (r.x < 0 || r.y < 0 || r.x + r.width > vp.width + 0.5 || r.y + r.height > vp.height + 0.5) throw new Error(`${w}×${hgt} is drawn at ${JSON.stringify(r)}, outside the ${vp.width}×${vp.height} window`);
      if (Math.abs(r.width / r.height - w / hgt) > 0.02) throw new Error(`${w}×${hgt} lost its aspect ratio: ${r.width}×${r.height}`);
      if (r.height < vp.height * 0.6 && r.width < vp.width * 0.6) throw new Error(`${w}×${hgt} is not fitted, only ${r.width}×${r.height}`);
      const href = await a.getByTestId('viewer-download').getAttribute('href');
      if (href !== m.fileUrl) throw new Error(`download link is ${href}, expected ${m.fileUrl}`);
      await img.click();
      await until(async () => Math.round((await img.boundingBox()).height) === hgt, 'the picture at full size after a click');
      const scrollable = await a.getByTestId('viewer-stage').evaluate((el) => el.scrollHeight > el.clientHeight || el.scrollWidth > el.clientWidth);
      if (!scrollable) throw new Error('the zoomed picture cannot be scrolled');
      await a.keyboard.press('Escape');
      await a.getByTestId('image-viewer').waitFor({ state: 'detached' });
    }
  });

  await check('the hover button never covers the time of a one-line bubble', async () => {
    const text = 'Ok 👍';
    await send(b, text);
    const m = msg(a, text).last();
    await m.waitFor();
    await m.locator('.bubble').hover();
    const btn = m.getByTestId('message-menu');
    await until(async () => (await btn.evaluate((el) => getComputedStyle(el).opacity)) === '1', 'the hover button to show');
    const time = await m.locator('.meta time').boundingBox();
    if (overlaps(await btn.boundingBox(), time)) throw new Error('the hover button covers the time');
    await a.mouse.move(2, 2);
  });

  await check('short bubbles keep their width and inline time when the info panel narrows the pane', async () => {
    const texts = ['Ok 👍', 'Sounds good, see you there', 'Yes, they look good.'];
    // Measured in one evaluate, so that a row re-rendered by a live update between finding it and
    // measuring it cannot read as 0 px (a detached node); retried until every bubble is laid out.
    const measure = async () => {
      let sizes = [];
      await until(async () => {
        sizes = await a.evaluate((ts) => ts.map((t) => {
          const rows = [...document.querySelectorAll('[data-testid="message"]')].filter((el) => el.textContent.includes(t));
          const bubble = rows.length ? rows[rows.length - 1].querySelector('.bubble') : null;
          const r = bubble ? bubble.getBoundingClientRect() : { width: 0, height: 0 };
          return { width: Math.round(r.width), height: Math.round(r.height) };
        }), texts);
        return sizes.every((s) => s.width > 0 && s.height > 0);
      }, 'the three bubbles laid out');
      return sizes;
    };
    await send(b, texts[1]);
    await msg(a, texts[1]).last().waitFor({ timeout: T });
    const wide = await measure();
    await a.getByTestId('info-button').click();
    await a.getByTestId('info-panel').waitFor();
    await a.waitForTimeout(500); // the panel slides in
    const narrow = await measure();
    await a.getByTestId('info-close').click();
    texts.forEach((t, i) => {
      if (narrow[i].width > wide[i].width + 1) throw new Error(`"${t}" grew from ${wide[i].width} to ${narrow[i].width} px wide when the pane narrowed`);
      if (narrow[i].height > wide[i].height + 1) throw new Error(`"${t}": the time dropped to its own line (${wide[i].height} → ${narrow[i].height} px high)`);
    });
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
    await a.getByTestId('info-close').click();
  });

  await check('group notes show as centred lines with current names, and in the chat list', async () => {
    const notes = (page) => page.locator('[data-testid="group-note"]');
    await until(async () => (await notes(a).allTextContents()).join('|').includes('You added Carol Diaz'), 'Alice\'s "You added Carol Diaz"');
    const mine = await notes(a).allTextContents();
    if (!mine.some((t) => t.includes('You created the group “Release crew”'))) throw new Error(`Alice's notes: ${mine.join(' | ')}`);
    await until(async () => (await notes(b).allTextContents()).some((t) => t.includes('Alice Johnson added Carol Diaz')), 'Bob\'s "Alice Johnson added Carol Diaz"');
    await until(async () => (await notes(c).allTextContents()).some((t) => t.includes('Alice Johnson added you')), 'Carol\'s "Alice Johnson added you"');
    if (await msg(b, 'added Carol').count()) throw new Error('a note is drawn as a message bubble');
    // The newest note is the chat list preview.
    const tb = await tokenOf(b);
    const group = await chatByName(base, tb, GROUP);
    await call(base, 'PATCH', `/chat/${group.id}/participants/${(await call(base, 'GET', '/auth/me', null, await tokenOf(c))).id}`, { isAdmin: true }, await tokenOf(a));
    await until(async () => (await row(b, GROUP).textContent()).includes('Alice Johnson made Carol Diaz an admin'), 'the note as Bob\'s chat list preview');
    if (await row(b, GROUP).getByTestId('unread-badge').count()) throw new Error('a note counts as unread');
    // The remove dialog says what really happens.
    await a.getByTestId('info-button').click();
    await a.locator('[data-testid="member-row"]').filter({ hasText: BOB }).click();
    await a.getByTestId('remove-member').click();
    const body = await a.locator('.dialog-body').textContent();
    await a.getByTestId('dialog-cancel').click();
    if (!/history/.test(body) || /no longer see new messages/.test(body)) throw new Error(`the remove dialog says: ${body}`);
    await a.getByTestId('info-close').click();
  });

  await check('light theme: readable subtitle and selected preview, aligned "Add members", sensible times and empty states', async () => {
    const sub = await a.getByTestId('conv-subtitle').evaluate(contrastOf);
    if (sub.ratio < 4.5) throw new Error(`header subtitle contrast ${sub.ratio.toFixed(2)}:1`);
    const prev = await a.locator('[data-testid="chat-row"].active .preview-text').evaluate(contrastOf);
    if (prev.ratio < 4.5) throw new Error(`selected row preview contrast ${prev.ratio.toFixed(2)}:1`);
    await a.getByTestId('info-button').click();
    await a.getByTestId('add-members-button').waitFor();
    await a.waitForTimeout(500); // the panel slides in
    const icon = await a.getByTestId('add-members-button').locator('.action-icon').boundingBox();
    const av = await a.getByTestId('member-row').first().locator('.avatar').boundingBox();
    await a.getByTestId('info-close').click();
    if (Math.abs(icon.x - av.x) > 1 || Math.abs(icon.width - av.width) > 1) throw new Error(`"Add members" icon at x=${icon.x} (${icon.width} px), member avatars at x=${av.x} (${av.width} px)`);
    // 12-hour clocks without a leading zero, 24-hour ones with it.
    const us = await browser.newContext({ viewport: DESKTOP, locale: 'en-US', timezoneId: 'UTC' });
    const p = await us.newPage();
    await p.goto(base + '/');
    const fmt = (page) => page.evaluate(() => import('/js/util.js').then((u) => u.fmtTime('2026-03-04T09:54:00Z') + '|' + u.fmtTime('2026-03-04T21:54:00Z')));
    const [usTimes, gbTimes] = [await fmt(p), await fmt(a)];
    await us.close();
    if (usTimes !== '9:54 AM|9:54 PM') throw new Error(`en-US times: ${usTimes}`);
    if (gbTimes !== '09:54|21:54') throw new Error(`en-GB times: ${gbTimes}`);
    // A new, empty chat with someone who has never been online.
    const gina = await call(base, 'POST', '/auth/register', { name: GINA, email: `gina.${run}@example.com`, password: 'correct horse battery' });
    const me = await call(base, 'GET', '/auth/me', null, await tokenOf(a));
    await call(base, 'POST', '/chat', { participantIds: [me.id], isGroup: false }, gina.token);
    await until(async () => (await row(a, GINA).textContent().catch(() => '')).includes('Send a message to start chatting'), 'the empty chat\'s preview');
    await openChat(a, GINA);
    const ginaSub = await a.getByTestId('conv-subtitle').textContent();
    if (!ginaSub.trim()) throw new Error('the subtitle of someone never online is blank');
    ctx.gina = gina;
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
    await a.getByTestId('delete-for-everyone').click();
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

  await check('delete for me and clear chat: gone on all my devices, kept for the others', async () => {
    const gina = ctx.gina;
    const chat = await chatByName(base, gina.token, ALICE);
    const say = (content) => call(base, 'POST', `/chat/${chat.id}/messages`, { messageType: 'TEXT', content, clientId: `g-${run}-${content}` }, gina.token);
    await say('Hi Alice, Gina here from accounting');
    await say('Oops, wrong person, please ignore');
    // Alice's second device: its own browser window, signed in with her token.
    const ctxA2 = await browser.newContext({ viewport: DESKTOP, locale: 'en-GB', timezoneId: 'UTC' });
    ctxA2.setDefaultTimeout(T);
    await ctxA2.addInitScript((tok) => localStorage.setItem('natter.token', tok), await tokenOf(a));
    const a2 = await ctxA2.newPage();
    watch(a2, 'alice-2');
    await a2.goto(`${base}/#/c/${chat.id}`);
    await openChat(a, GINA);
    for (const page of [a, a2]) await msg(page, 'wrong person').waitFor();
    await send(a, 'No problem!');
    // Someone else's message: only "Delete for me".
    const theirs = msg(a, 'wrong person');
    await theirs.hover();
    await theirs.getByTestId('message-menu').click();
    await a.getByTestId('menu-delete').click();
    if (await a.getByTestId('delete-for-everyone').count()) throw new Error('"Delete for everyone" offered for someone else\'s message in a 1-on-1 chat');
    await a.getByTestId('delete-for-me').click();
    for (const page of [a, a2]) await until(async () => (await msg(page, 'wrong person').count()) === 0, 'the message to disappear on both of Alice\'s tabs');
    const seen = (await call(base, 'GET', `/chat/${chat.id}/messages?limit=50`, null, gina.token)).items.map((m) => m.content);
    if (!seen.includes('Oops, wrong person, please ignore')) throw new Error('Gina lost her message');
    // My own message offers both.
    const own = msg(a, 'No problem!');
    await own.hover();
    await own.getByTestId('message-menu').click();
    await a.getByTestId('menu-delete').click();
    await a.getByTestId('delete-for-everyone').waitFor();
    await a.getByTestId('dialog-cancel').click();
    // Clear chat from the chat menu, with a confirmation.
    await a.getByTestId('chat-menu').click();
    await a.getByTestId('menu-clear-chat').click();
    await a.getByTestId('confirm-ok').click();
    for (const page of [a, a2]) {
      await until(async () => (await page.getByTestId('message').count()) === 0, 'the cleared chat to be empty');
      await until(async () => !(await row(page, GINA).textContent()).includes('No problem'), 'the cleared chat\'s preview');
      await row(page, GINA).waitFor();
    }
    if ((await call(base, 'GET', `/chat/${chat.id}/messages?limit=50`, null, gina.token)).items.length < 3) throw new Error('clearing removed Gina\'s copy');
    await say('Still there?');
    for (const page of [a, a2]) await msg(page, 'Still there?').waitFor();
    await ctxA2.close();
  });

  await check('"Delete for everyone" is offered only within the server\'s delete window', async () => {
    // No message here is an hour old, so the rule is asked of the app's own module, with the
    // window the page read from the real server's /config.
    const [win, old, fresh] = await a.evaluate(async () => {
      const [act, { state }] = await Promise.all([import('/js/actions.js'), import('/js/store.js')]);
      const m = { id: 1, chatId: 1, senderId: state.me.id, messageType: 'TEXT', createdAt: new Date(Date.now() - 2 * 3600e3).toISOString() };
      return [state.config?.deleteWindowSeconds, act.canDeleteForEveryone(m, null), act.canDeleteForEveryone({ ...m, createdAt: new Date().toISOString() }, null)];
    });
    if (win !== DELETE_WINDOW) throw new Error(`the page read deleteWindowSeconds ${win}`);
    if (old) throw new Error('"Delete for everyone" is offered for a message older than the window');
    if (!fresh) throw new Error('"Delete for everyone" is not offered for a fresh message');
  });

  await check('dark theme: the unread divider is a dark band, not a light stripe', async () => {
    await b.emulateMedia({ colorScheme: 'dark' });
    await openChat(b, GROUP);
    await openChat(a, BOB);
    await send(a, 'Unread one for Bob');
    await send(a, 'Unread two for Bob');
    await until(async () => (await row(b, ALICE).textContent()).includes('Unread two'), 'Bob\'s preview');
    await openChat(b, ALICE);
    const band = await b.getByTestId('unread-divider').evaluate(contrastOf);
    await b.emulateMedia({ colorScheme: 'light' });
    if (band.bgLum > 0.1) throw new Error(`the divider band is light (luminance ${band.bgLum.toFixed(2)})`);
  });

  await check('a message that reached the recipient\'s device turns double grey without opening the chat', async () => {
    await openChat(a, BOB);
    await b.close();
    b = await ctxB.newPage();
    watch(b, 'bob');
    let syncs = 0;
    b.on('request', (r) => { if (new URL(r.url()).pathname === '/sync') syncs++; });
    // Wait until the server has noticed Bob's tab is gone.
    await until(async () => (await a.getByTestId('conv-subtitle').textContent()) !== 'online', 'Bob to be offline for Alice');
    const texts = ['Sent while your tab was closed', 'And one more'];
    try {
      for (const t of texts) await send(a, t);
      for (const t of texts) await until(async () => (await status(a, t)) !== 'PENDING', `"${t}" to be sent`);
      await a.waitForTimeout(1000);
      for (const t of texts) if (await status(a, t) !== 'SENT') throw new Error(`"${t}" is ${await status(a, t)} before Bob is back`);
    } finally {
      await b.goto(base + '/');
    }
    await row(b, ALICE).getByTestId('unread-badge').waitFor();
    for (const t of texts) await until(async () => (await status(a, t)) === 'DELIVERED', `"${t}" to turn DELIVERED`, 10000);
    // The web app catches up with /sync on its first connection too, not only on reconnects.
    await until(async () => syncs > 0, 'Bob\'s page to call /sync after connecting', 10000);
    await openChat(b, ALICE);
  });

  await check('people who left a group keep their names in old messages and previews', async () => {
    const [ta, tb] = [await tokenOf(a), await tokenOf(b)];
    const group = await chatByName(base, ta, GROUP);
    const bob = await call(base, 'GET', '/auth/me', null, tb);
    await call(base, 'DELETE', `/chat/${group.id}/participants/${bob.id}`, null, tb);
    try {
      await c.goto(base + '/');
      await row(c, GROUP).click();
      await msg(c, 'prepare the changelog').waitFor();
      const name = await msg(c, 'prepare the changelog').locator('.sender').textContent().catch(() => '');
      const all = await c.locator('.msg-list').textContent();
      if (/Unknown/.test(all) || name !== BOB) throw new Error(`Bob's old message shows "${name}"`);
      await c.goto(base + '/');
      await until(async () => (await row(c, GROUP).textContent()).includes('Bob Smith left'), 'the "left" note as Carol\'s preview');
    } finally {
      // Bob comes back for the rest of the run.
      await call(base, 'POST', `/chat/${group.id}/participants`, { userIds: [bob.id] }, ta);
      await row(b, GROUP).waitFor();
    }
  });

  await check('profile photo and group photo: picked, cropped square, shown to others', async () => {
    await a.getByRole('button', { name: 'Profile' }).first().click();
    await a.getByTestId('avatar-input').setInputFiles({ name: 'me.png', mimeType: PNG, buffer: makePng(640, 400, 1) });
    await a.getByTestId('crop-dialog').waitFor();
    if (EXTRA) await a.screenshot({ path: path.join(EXTRA, 'crop.png') });
    await a.getByTestId('crop-save').click();
    await a.getByTestId('crop-dialog').waitFor({ state: 'detached' });
    const img = a.locator('.me-btn .avatar img');
    await until(async () => img.evaluate((el) => el.complete && el.naturalWidth > 0), 'Alice\'s own avatar');
    const [w, hgt] = await img.evaluate((el) => [el.naturalWidth, el.naturalHeight]);
    if (w !== hgt) throw new Error(`the avatar is ${w}×${hgt}, not square`);
    await a.keyboard.press('Escape');
    // Bob sees it after his next chat fetch (a reload here).
    await b.reload();
    const bobSees = row(b, ALICE).locator('.avatar img');
    await until(async () => bobSees.evaluate((el) => el.complete && el.naturalWidth > 0), 'Alice\'s photo in Bob\'s chat list');
    // Group photo from the group info panel; Carol sees it live and Alice's photo by her messages.
    await openChat(a, GROUP);
    await a.getByTestId('info-button').click();
    await a.getByTestId('group-avatar-input').setInputFiles({ name: 'group.png', mimeType: PNG, buffer: makePng(500, 700, 2) });
    await a.getByTestId('crop-save').click();
    await until(async () => row(c, GROUP).locator('.avatar img').evaluate((el) => el.complete && el.naturalWidth > 0), 'the group photo in Carol\'s list', 20000);
    await a.getByTestId('info-close').click();
    await c.goto(base + '/');
    await row(c, GROUP).click();
    await until(async () => (await c.locator('[data-testid="message-avatar"] img').count()) > 0, 'a photo beside Alice\'s messages for Carol');
    if (!(await c.locator('[data-testid="group-note"]').allTextContents()).some((t) => t.includes('changed the group photo'))) throw new Error('no note for the new group photo');
  });

  await check('the app is installable: manifest parsed, icons, a service worker in control', async () => {
    await a.goto(base + '/');
    await a.getByTestId('composer-input').or(a.getByTestId('welcome')).first().waitFor({ timeout: T });
    await until(async () => a.evaluate(() => navigator.serviceWorker.ready.then((r) => !!r.active)), 'the service worker active');
    await a.reload();
    await until(async () => a.evaluate(() => !!navigator.serviceWorker.controller), 'the service worker controlling the page');
    const cdp = await a.context().newCDPSession(a);
    const manifest = await cdp.send('Page.getAppManifest');
    if (!manifest.url.endsWith('/manifest.webmanifest') || (manifest.errors || []).length) {
      throw new Error(`manifest ${manifest.url}: ${JSON.stringify(manifest.errors)}`);
    }
    const parsed = JSON.parse(manifest.data);
    if (parsed.display !== 'standalone' || !parsed.icons.some((i) => i.purpose === 'maskable')) throw new Error('manifest lacks standalone display or a maskable icon');
    // A test browser context counts as incognito, which no app can change.
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    const errors = installabilityErrors.filter((e) => e.errorId !== 'in-incognito');
    if (errors.length) throw new Error(`not installable: ${JSON.stringify(errors)}`);
    await cdp.detach();
  });

  // ---- screenshots: dress Alice's list with a few more chats through the API ------------
  try {
    await dressGroup(base, a, b, c);
    await openChat(a, GROUP);
    await a.getByTestId('info-button').click();
    await a.getByTestId('member-row').first().waitFor();
    await shot(a, 'group-info.png');
    await a.getByTestId('info-close').click();
    await a.evaluate(() => { location.hash = '#/'; });
    await a.getByTestId('welcome').waitFor();
    await shot(a, 'chat-list.png');
    await shot(c, 'conversation-mobile.png');
    if (EXTRA) await extraShots(a, c);
  } catch (e) {
    log(`  ! screenshots: ${e.message}`);
    results.push({ name: 'screenshots', ok: false });
  }
}

/** Register a few more people through the API and start chats with Alice, for a lived-in list. */
async function dressUp(base, page, run) {
  const me = await call(base, 'GET', '/auth/me', null, await tokenOf(page));
  const people = [
    ['Dana Lee', ['Can you review my PR before lunch?', 'It is the one about the upload limits'], true],
    ['Evan Wright', ['Thanks, that fixed it!'], false],
    ['Farah Haddad', ['See you at the standup tomorrow 🙂'], false],
  ];
  for (const [k, [name, lines, photo]] of people.entries()) {
    const u = await call(base, 'POST', '/auth/register', { name, email: `${name.split(' ')[0].toLowerCase()}.${run}@example.com`, password: 'correct horse battery' });
    if (photo) {
      const fd = new FormData();
      fd.append('file', new Blob([makePng(160, 160, k)], { type: PNG }), 'me.png');
      const up = await call(base, 'POST', '/chat/upload', fd, u.token);
      await call(base, 'PATCH', '/auth/me', { avatarUrl: up.fileUrl }, u.token);
    }
    const chat = await call(base, 'POST', '/chat', { participantIds: [me.id], isGroup: false }, u.token);
    for (const [i, content] of lines.entries()) {
      await call(base, 'POST', `/chat/${chat.id}/messages`, { messageType: 'TEXT', content, clientId: `dress-${run}-${name}-${i}` }, u.token);
    }
  }
  await until(async () => (await page.getByTestId('chat-row').count()) >= 4, 'the extra chats in Alice\'s list');
}

/** A photo with a caption from Bob and a quoted reply from Alice in the group, for Carol's phone. */
async function dressGroup(base, a, b, c) {
  const [ta, tb] = [await tokenOf(a), await tokenOf(b)];
  const group = await chatByName(base, ta, GROUP);
  await sendImage(base, tb, group.id, makePng(600, 400), 'rooftop.png', 'View from the office roof 🌇');
  const history = (await call(base, 'GET', `/chat/${group.id}/messages?limit=50`, null, ta)).items;
  const carols = history.filter((m) => m.content?.includes('Happy to help')).at(-1);
  await call(base, 'POST', `/chat/${group.id}/messages`, { messageType: 'TEXT', content: 'Thanks Carol! The draft is due on Thursday.', replyToId: carols.id }, ta);
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

await runSuite('e2e', main);
