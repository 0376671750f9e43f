// Voice messages and link previews in the browser: Alice records with Chromium's fake
// microphone (click to start/stop, hold to record, Esc to cancel), previews and sends; Bob plays
// it (play/pause, seek, 1×/1.5×/2×) and Alice's mic turns blue; a link gets its preview card with
// a thumbnail served by natter. Screenshots of the recorder, the player and the card.

import http from 'node:http';
import {
  T, EXTRA, log, results, startServer, launchBrowser, newContext, runSuite, makePng, check, until, watch,
  msg, row, register, send, openChat, shot,
} from './lib.mjs';

const ALICE = 'Alice Johnson';
const BOB = 'Bob Smith';

/** A page with Open Graph tags and an image, on 127.0.0.1 (the server runs with the test flag). */
function pageServer() {
  const png = makePng(1200, 630, 1);
  const server = http.createServer((req, res) => {
    if (req.url === '/release-notes') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><html><head><title>fallback</title>
        <meta property="og:title" content="natter 1.4: voice messages">
        <meta property="og:description" content="Hold the mic to talk, and links now show what they point to.">
        <meta property="og:site_name" content="natter blog">
        <meta property="og:image" content="/card.png"></head><body>notes</body></html>`);
    } else if (req.url === '/card.png') {
      res.writeHead(200, { 'Content-Type': 'image/png' });
      res.end(png);
    } else { res.writeHead(404); res.end(); }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${server.address().port}` })));
}

async function main() {
  const pages = await pageServer();
  const { url: base, logFile } = await startServer(['--link-preview-allow-private']);
  log(`voice: server at ${base} (log ${logFile}), pages at ${pages.url}`);
  const browser = await launchBrowser(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required']);
  const ctxA = await newContext(browser);
  const ctxB = await newContext(browser);
  for (const c of [ctxA, ctxB]) await c.grantPermissions(['microphone']);
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  watch(a, 'alice'); watch(b, 'bob');
  const run = Date.now().toString(36);

  await check('a chat to talk in', async () => {
    await register(a, base, ALICE, `alice.${run}@example.com`);
    await register(b, base, BOB, `bob.${run}@example.com`);
    await a.getByTestId('new-chat-button').click();
    await a.getByTestId('user-search-input').fill('Bob');
    await a.locator(`[data-testid="user-result"][data-name="${BOB}"]`).click();
    await until(async () => (await a.getByTestId('conv-title').textContent()) === BOB, 'the chat to open');
    await send(a, 'Can you hear me? Sending a voice note.');
    await row(b, ALICE).waitFor();
    await openChat(b, ALICE);
  });

  await check('the mic is where the send button is while the composer is empty', async () => {
    if (!(await a.getByTestId('mic-button').isVisible())) throw new Error('no mic with an empty composer');
    if (await a.getByTestId('send-button').isVisible()) throw new Error('send shows with an empty composer');
    await a.getByTestId('composer-input').fill('typing');
    if (await a.getByTestId('mic-button').isVisible()) throw new Error('mic shows while typing');
    await a.getByTestId('composer-input').fill('');
    await a.getByTestId('mic-button').waitFor();
  });

  await check('Esc cancels a recording and sends nothing', async () => {
    const before = await a.locator('[data-testid="message"]').count();
    await a.getByTestId('mic-button').click();
    await a.getByTestId('recorder').waitFor();
    await until(async () => (await a.getByTestId('rec-time').textContent()) !== '0:00', 'the timer to run');
    await a.keyboard.press('Escape');
    await a.getByTestId('recorder').waitFor({ state: 'hidden' });
    await a.getByTestId('mic-button').waitFor();
    await a.waitForTimeout(500);
    if (await a.locator('[data-testid="message"]').count() !== before) throw new Error('a cancelled recording was sent');
  });

  await check('hold to record: releasing shows the preview, which can be deleted', async () => {
    const box = await a.getByTestId('mic-button').boundingBox();
    await a.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await a.mouse.down();
    await a.getByTestId('recorder').waitFor();
    await until(async () => /slide to cancel/i.test(await a.getByTestId('rec-hint').textContent()), 'the slide hint');
    await a.waitForTimeout(1200);
    await a.mouse.up();
    await a.getByTestId('rec-preview').waitFor();
    await a.getByTestId('rec-discard').click();
    await a.getByTestId('recorder').waitFor({ state: 'hidden' });
  });

  await check('sliding left while holding cancels the recording', async () => {
    const before = await a.locator('[data-testid="message"]').count();
    const box = await a.getByTestId('mic-button').boundingBox();
    const [x, y] = [box.x + box.width / 2, box.y + box.height / 2];
    await a.mouse.move(x, y);
    await a.mouse.down();
    await a.getByTestId('recorder').waitFor();
    await a.waitForTimeout(700);
    await a.mouse.move(x - 60, y, { steps: 3 });
    await a.mouse.move(x - 140, y, { steps: 3 });
    await a.getByTestId('recorder').waitFor({ state: 'hidden' });
    await a.mouse.up();
    await a.waitForTimeout(400);
    if (await a.getByTestId('rec-preview').count()) throw new Error('a preview after sliding away');
    if (await a.locator('[data-testid="message"]').count() !== before) throw new Error('a cancelled recording was sent');
  });

  await check('click to record, a timer runs, stop gives a preview that plays, send', async () => {
    await a.getByTestId('mic-button').click();
    await a.getByTestId('recorder').waitFor();
    await until(async () => (await a.getByTestId('rec-time').textContent()) === '0:03', 'the timer to reach 0:03', 8000);
    await shot(a, 'voice-recorder.png');
    await a.getByTestId('rec-stop').click();
    await a.getByTestId('rec-preview').waitFor();
    const preview = a.getByTestId('rec-preview');
    const length = await preview.getByTestId('voice-time').textContent();
    if (!/^0:0[3-4]$/.test(length)) throw new Error(`preview shows ${length}`);
    await preview.getByTestId('voice-play').click();
    await until(() => preview.getByTestId('voice-player').evaluate((el) => el.classList.contains('playing')), 'the preview to play');
    await preview.getByTestId('voice-play').click();
    await a.getByTestId('rec-send').click();
    await a.getByTestId('recorder').waitFor({ state: 'hidden' });
    const mine = a.locator('[data-testid="message"].out [data-testid="voice-player"]');
    await mine.waitFor();
    await until(async () => (await a.locator('[data-testid="message"].out').last().getAttribute('data-status')) !== 'PENDING', 'the voice message to be stored');
    if (await mine.getAttribute('data-played') !== 'false') throw new Error('played before anyone listened');
  });

  await check('the server stored a FILE that is audio, with duration and waveform', async () => {
    const tok = await a.evaluate(() => localStorage.getItem('natter.token'));
    const chats = await (await fetch(`${base}/chat`, { headers: { Authorization: `Bearer ${tok}` } })).json();
    const m = chats.items[0].lastMessage;
    if (m.messageType !== 'FILE' || !/^audio\//.test(m.fileMimeType)) throw new Error(`${m.messageType} ${m.fileMimeType}`);
    if (!(m.durationMs >= 2500 && m.durationMs < 8000)) throw new Error(`durationMs ${m.durationMs}`);
    if (atob(m.waveform).length !== 64) throw new Error(`waveform of ${atob(m.waveform).length} bars`);
  });

  await check('Bob plays it: play/pause, speed, seek; his and Alice\'s mic turn blue', async () => {
    const player = b.locator('[data-testid="message"].in [data-testid="voice-player"]').last();
    await player.waitFor();
    if (await player.getAttribute('data-played') !== 'false') throw new Error('Bob\'s note shows played before he played it');
    const speed = player.getByTestId('voice-speed');
    if (await speed.textContent() !== '1×') throw new Error(`speed ${await speed.textContent()}`);
    await player.getByTestId('voice-play').click();
    await until(() => player.evaluate((el) => el.classList.contains('playing')), 'Bob\'s player to play');
    await until(async () => (await player.getByTestId('voice-time').textContent()) !== '0:00', 'the time to move');
    await speed.click();
    if (await speed.textContent() !== '1.5×') throw new Error(`speed ${await speed.textContent()}`);
    await speed.click();
    if (await speed.textContent() !== '2×') throw new Error(`speed ${await speed.textContent()}`);
    await player.getByTestId('voice-play').click();
    await until(() => player.evaluate((el) => !el.classList.contains('playing')), 'pause');
    await speed.click();
    if (await speed.textContent() !== '1×') throw new Error('speed does not cycle back to 1×');
    const wave = player.getByTestId('voice-wave');
    const wb = await wave.boundingBox();
    await b.mouse.click(wb.x + wb.width * 0.75, wb.y + wb.height / 2);
    await until(() => player.evaluate((el) => el.querySelectorAll('.wave-bar.done').length > 32), 'the seek to move the progress past half');
    await until(async () => (await player.getAttribute('data-played')) === 'true', 'Bob\'s mic to turn blue');
    const mine = a.locator('[data-testid="message"].out [data-testid="voice-player"]').last();
    await until(async () => (await mine.getAttribute('data-played')) === 'true', 'Alice\'s mic to turn blue');
    const color = await mine.getByTestId('voice-mic').evaluate((el) => getComputedStyle(el).color);
    if (color !== 'rgb(83, 189, 235)') throw new Error(`played mic is ${color}, expected #53bdeb`);
  });

  await check('a link gets a preview card with a thumbnail from natter', async () => {
    const text = `Release notes: ${pages.url}/release-notes`;
    await send(a, text);
    for (const p of [a, b]) {
      const card = msg(p, 'Release notes:').getByTestId('link-preview');
      await card.waitFor();
      await until(async () => (await card.getByTestId('link-preview-title').textContent()) === 'natter 1.4: voice messages', 'the card title');
      const src = await card.getByTestId('link-preview-image').getAttribute('src');
      if (!src.startsWith('/uploads/chat/')) throw new Error(`card image from ${src}`);
      await until(() => card.getByTestId('link-preview-image').evaluate((img) => img.complete && img.naturalWidth > 0), 'the thumbnail to load');
      if (await card.getAttribute('rel') !== 'noopener noreferrer') throw new Error('card link without rel');
    }
  });

  await check('on a 360 px phone the player and the card fit without scrolling sideways', async () => {
    await b.setViewportSize({ width: 360, height: 740 });
    await b.locator('[data-testid="message"].in [data-testid="voice-player"]').last().waitFor();
    await b.waitForTimeout(600); // the layout's pane transition
    const { sw, w, player } = await b.evaluate(() => ({
      sw: document.scrollingElement.scrollWidth, w: innerWidth,
      player: document.querySelector('[data-testid="message"].in [data-testid="voice-player"]').getBoundingClientRect().right,
    }));
    if (sw > w || player > w) throw new Error(`page ${sw} px / player to ${player} px in a ${w} px window`);
    if (EXTRA) await b.screenshot({ path: `${EXTRA}/voice-player-360.png` });
    await b.setViewportSize({ width: 1280, height: 800 });
  });

  await check('screenshots of the player and the card, light and dark', async () => {
    await shot(a, 'voice-player.png');
    await a.emulateMedia({ colorScheme: 'dark' });
    await shot(a, 'voice-player-dark.png');
    await a.emulateMedia({ colorScheme: 'light' });
  });

  pages.server.close();
  if (!results.length) throw new Error('no checks ran');
  void T;
}

await runSuite('voice', main);
