// Message search: the overlay across all chats (Ctrl/Cmd+K; matching chat names on top, then
// hits grouped by chat, "More results" pages on with `before`) and the find bar inside the open
// chat (magnifier in the header; Enter/↑ older match, Shift+Enter/↓ newer, "3 of 12").
// Matches are highlighted from the server's `ranges` (offsets in Unicode code points) with
// text nodes and <mark>; server text never goes through innerHTML.

import { h, clear } from './dom.js';
import { icon } from './icons.js';
import { chatAvatar, iconButton, spinner } from './common.js';
import { pushClose, trapFocus } from './overlays.js';
import { debounce, fmtListTime, fmtFull } from '../util.js';
import { state, sortedChats, chatTitle, userOf } from '../store.js';
import { searchMessages } from '../find.js';

/** Clamp and sort `[start, end)` pairs to `[0, n)`, dropping empty or malformed ones. */
function cleanRanges(ranges, n) {
  return (Array.isArray(ranges) ? ranges : [])
    .filter((r) => Array.isArray(r) && Number.isInteger(r[0]) && Number.isInteger(r[1]))
    .map(([s, e]) => [Math.max(0, s), Math.min(n, e)])
    .filter(([s, e]) => e > s)
    .sort((a, b) => a[0] - b[0]);
}

/**
 * `text` as nodes with the `ranges` in <mark>. `around` > 0: a one-line excerpt of about that
 * many characters starting a little before the first match, with "…" where it was cut.
 */
export function highlighted(text, ranges, { around = 0 } = {}) {
  let cps = Array.from(String(text ?? ''));
  const rs = cleanRanges(ranges, cps.length);
  let from = 0;
  let to = cps.length;
  if (around > 0) {
    cps = cps.map((c) => (c === '\n' || c === '\r' || c === '\t' ? ' ' : c));
    const first = rs[0]?.[0] ?? 0;
    if (first > 28) {
      from = first - 22;
      // Start at a word when one begins close by.
      for (let i = from; i < first && i < from + 10; i++) if (cps[i - 1] === ' ') { from = i; break; }
    }
    to = Math.min(cps.length, from + around);
  }
  const out = [];
  if (from > 0) out.push('…');
  let at = from;
  for (const [s0, e0] of rs) {
    const s = Math.max(s0, at);
    const e = Math.min(e0, to);
    if (e <= s) continue;
    if (s > at) out.push(cps.slice(at, s).join(''));
    out.push(h('mark', cps.slice(s, e).join('')));
    at = e;
  }
  if (to > at) out.push(cps.slice(at, to).join(''));
  if (to < cps.length) out.push('…');
  return out;
}

/**
 * Mark `ranges` (code points into the message text) inside a rendered bubble's text element,
 * splitting its text nodes (links stay links). Does nothing when the text does not add up.
 */
export function markInElement(el, ranges) {
  if (!el) return;
  for (const m of el.querySelectorAll('mark.find-mark')) m.replaceWith(...m.childNodes);
  el.normalize();
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => (n.parentElement.closest('.meta-spacer') ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  const nodes = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) nodes.push(n);
  let total = 0;
  const spans = nodes.map((n) => { const len = Array.from(n.data).length; const s = total; total += len; return [n, s, len]; });
  const rs = cleanRanges(ranges, total);
  for (const [node, start, len] of spans) {
    const mine = rs.filter(([s, e]) => s < start + len && e > start);
    if (!mine.length) continue;
    const cps = Array.from(node.data);
    const frag = [];
    let at = 0;
    for (const [s0, e0] of mine) {
      const s = Math.max(0, s0 - start);
      const e = Math.min(len, e0 - start);
      if (s > at) frag.push(document.createTextNode(cps.slice(at, s).join('')));
      frag.push(h('mark.find-mark', cps.slice(s, e).join('')));
      at = e;
    }
    if (at < len) frag.push(document.createTextNode(cps.slice(at).join('')));
    node.replaceWith(...frag);
  }
}

/** The text a hit shows: its caption/text, else its file name, else what kind it is. */
function hitBody(it) {
  const m = it.message || {};
  const inName = m.fileName && it.fileNameRanges?.length && !it.ranges?.length;
  if (m.content && !inName) return h('span.sr-text', highlighted(m.content, it.ranges, { around: 120 }));
  if (m.fileName) return h('span.sr-text', m.messageType === 'IMAGE' ? '📷 ' : '📄 ', highlighted(m.fileName, it.fileNameRanges, { around: 80 }));
  return h('span.sr-text', m.messageType === 'IMAGE' ? '📷 Photo' : '📄 File');
}

const senderName = (id) => (id === state.me?.id ? 'You' : userOf(id).name);

let lastQuery = '';

/**
 * The search overlay. `onOpenChat(chatId)` for a chat-name hit, `onOpenMessage(chatId, id)`
 * for a message. Returns close.
 */
export function openSearch({ onOpenChat, onOpenMessage }) {
  const existing = document.querySelector('.search-overlay');
  if (existing) { existing.querySelector('input')?.select(); existing.querySelector('input')?.focus(); return existing._close; }
  const prevFocus = document.activeElement;
  const input = h('input.search-input.sp-input', {
    type: 'search', placeholder: 'Search messages and chats', 'aria-label': 'Search messages and chats', autocomplete: 'off', spellcheck: 'false',
    'data-testid': 'message-search-input', 'aria-controls': 'sp-results', 'aria-describedby': 'sp-status',
  });
  const status = h('div.sp-status', { id: 'sp-status', role: 'status', 'aria-live': 'polite', 'data-testid': 'search-status' });
  const results = h('div.sp-results', { id: 'sp-results', 'data-testid': 'search-results' });
  const more = h('button.btn.btn-ghost.sp-more', { type: 'button', hidden: true, 'data-testid': 'search-more', onclick: () => loadMore() }, 'More results');
  const panel = h('div.search-panel', { role: 'dialog', 'aria-modal': 'true', 'aria-label': 'Search messages', 'data-testid': 'search-panel' },
    h('div.sp-head', icon('search', 'sp-icon'), input, iconButton('close', 'Close search', () => close(), { 'data-testid': 'search-close' })),
    h('div.sp-body', status, results, more));
  const overlay = h('div.search-overlay', { onclick: (e) => { if (e.target === overlay) close(); } }, panel);

  let items = [];
  let hasMore = false;
  let seq = 0;
  let query = '';
  let unregister = null;
  let closed = false;

  function close() {
    if (closed) return;
    closed = true;
    unregister?.();
    overlay.remove();
    if (prevFocus && document.contains(prevFocus)) prevFocus.focus({ preventScroll: true });
  }
  overlay._close = close;

  function chatHits(q) {
    const lower = q.toLowerCase();
    return sortedChats().filter((c) => chatTitle(c).toLowerCase().includes(lower)).slice(0, 5);
  }

  function render() {
    clear(results);
    const q = query;
    if (!q) return;
    const chats = chatHits(q);
    if (chats.length) {
      results.append(h('div.sr-section', 'Chats'));
      for (const c of chats) {
        const title = chatTitle(c);
        const at = title.toLowerCase().indexOf(q.toLowerCase());
        // indexOf counts UTF-16 units: turn it into code points for highlighted().
        const s = Array.from(title.slice(0, at)).length;
        const ranges = at >= 0 ? [[s, s + Array.from(q).length]] : [];
        results.append(h('button.sr-item.sr-chat', {
          type: 'button', 'data-testid': 'search-chat', 'data-chat-id': c.id,
          onclick: () => { close(); onOpenChat(c.id); },
        }, chatAvatar(c, 'sm', false), h('span.sr-chat-name', highlighted(title, ranges))));
      }
    }
    if (items.length) {
      results.append(h('div.sr-section', 'Messages'));
      const groups = new Map();
      for (const it of items) {
        const id = it.chatId ?? it.message?.chatId;
        if (!groups.has(id)) groups.set(id, []);
        groups.get(id).push(it);
      }
      for (const [chatId, hits] of groups) {
        const chat = state.chats.get(chatId);
        const group = h('div.sr-group', { role: 'group', 'aria-label': chat ? chatTitle(chat) : 'Chat', 'data-testid': 'search-group', 'data-chat-id': chatId },
          h('div.sr-group-head', chat ? chatAvatar(chat, 'xs', false) : null, h('span', chat ? chatTitle(chat) : 'Chat')));
        for (const it of hits) {
          const m = it.message;
          group.append(h('button.sr-item.sr-hit', {
            type: 'button', 'data-testid': 'search-result', 'data-chat-id': chatId, 'data-message-id': m.id,
            onclick: () => { close(); onOpenMessage(chatId, m.id, it.ranges); },
          },
          h('span.sr-top', h('span.sr-who', senderName(m.senderId)), h('time.sr-time', { datetime: m.createdAt, title: fmtFull(m.createdAt) }, fmtListTime(m.createdAt))),
          hitBody(it)));
        }
        results.append(group);
      }
    }
    more.hidden = !hasMore;
  }

  async function run() {
    const q = input.value.trim();
    query = q;
    lastQuery = input.value;
    const my = ++seq;
    items = [];
    hasMore = false;
    if (!q) { clear(status).append('Search messages in all your chats.'); render(); more.hidden = true; return; }
    render();
    clear(status).append(spinner('Searching'), h('span', 'Searching…'));
    try {
      const r = await searchMessages(q);
      if (my !== seq) return;
      items = r.items;
      hasMore = r.hasMore;
      clear(status).append(items.length ? `${items.length}${hasMore ? '+' : ''} message${items.length === 1 && !hasMore ? '' : 's'}` : `No messages found for “${q}”`);
    } catch (e) {
      if (my !== seq) return;
      clear(status).append(e.status === 0 ? e.message : `Search didn’t work: ${e.message}`);
    }
    status.dataset.query = q; // what the status is the answer to (tests wait for it)
    render();
  }

  async function loadMore() {
    if (!hasMore || !items.length) return;
    const my = seq;
    more.classList.add('busy');
    try {
      const r = await searchMessages(query, { before: items.at(-1).message.id });
      if (my !== seq) return;
      const focusIndex = items.length;
      items = items.concat(r.items);
      hasMore = r.hasMore;
      clear(status).append(`${items.length}${hasMore ? '+' : ''} messages`);
      render();
      // Keep the keyboard where the new results start.
      results.querySelector(`.sr-hit[data-message-id="${CSS.escape(String(items[focusIndex]?.message.id))}"]`)?.focus();
    } catch (e) {
      clear(status).append(`Search didn’t work: ${e.message}`);
    } finally {
      more.classList.remove('busy');
    }
  }

  const later = debounce(run, 250);
  input.addEventListener('input', later);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown') { e.preventDefault(); results.querySelector('.sr-item')?.focus(); }
    if (e.key === 'Enter') { e.preventDefault(); run().then(() => results.querySelector('.sr-item')?.focus()); }
  });
  panel.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const all = [...panel.querySelectorAll('.sr-item, .sp-more:not([hidden])')];
    const i = all.indexOf(document.activeElement);
    if (i < 0) return;
    e.preventDefault();
    const next = all[i + (e.key === 'ArrowDown' ? 1 : -1)];
    if (next) next.focus(); else if (e.key === 'ArrowUp') input.focus();
  });

  document.body.append(overlay);
  unregister = pushClose(close);
  trapFocus(panel);
  input.value = lastQuery;
  input.focus();
  input.select();
  run();
  return close;
}

/**
 * The find bar inside the open chat. `jump(messageId, ranges)` opens the conversation at a hit.
 * Hits are newest first: Enter / ↑ go to the next older one, Shift+Enter / ↓ to the newer.
 */
export function chatFind({ getChatId, jump }) {
  const input = h('input.search-input.cf-input', {
    type: 'search', placeholder: 'Search in this chat', 'aria-label': 'Search in this chat', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'chat-find-input',
  });
  const count = h('span.cf-count', { role: 'status', 'aria-live': 'polite', 'data-testid': 'chat-find-count' });
  const older = iconButton('up', 'Previous match (older)', () => step(1), { 'data-testid': 'chat-find-older', title: 'Older match (Enter)' });
  const newer = iconButton('down', 'Next match (newer)', () => step(-1), { 'data-testid': 'chat-find-newer', title: 'Newer match (Shift+Enter)' });
  const el = h('div.chat-find', { role: 'search', 'aria-label': 'Search in this chat', 'data-testid': 'chat-find', hidden: true },
    icon('search', 'cf-icon'), input, count, older, newer, iconButton('close', 'Close search', () => close(), { 'data-testid': 'chat-find-close' }));
  let items = [];
  let hasMore = false;
  let index = -1;
  let seq = 0;
  let query = '';
  let unregister = null;

  function show() {
    const n = items.length;
    older.disabled = !(index + 1 < n || hasMore);
    newer.disabled = !(index > 0);
    if (!query) { count.textContent = ''; return; }
    if (!n) { count.textContent = 'No results'; return; }
    count.textContent = `${index + 1} of ${n}${hasMore ? '+' : ''}`;
  }

  async function run() {
    const q = input.value.trim();
    query = q;
    const my = ++seq;
    items = [];
    hasMore = false;
    index = -1;
    if (!q) { show(); return; }
    count.textContent = 'Searching…';
    try {
      const r = await searchMessages(q, { chatId: getChatId(), limit: 50 });
      if (my !== seq) return;
      items = r.items;
      hasMore = r.hasMore;
      if (items.length) { index = 0; go(); }
    } catch (e) {
      if (my !== seq) return;
      count.textContent = e.status === 0 ? 'Offline' : 'Search failed';
      return;
    }
    show();
  }

  function go() {
    const it = items[index];
    if (it) jump(it.message.id, it.ranges);
  }

  async function step(dir) {
    if (!items.length) { if (input.value.trim() !== query) await run(); return; }
    let next = index + dir;
    if (next >= items.length && hasMore) {
      const my = seq;
      try {
        const r = await searchMessages(query, { chatId: getChatId(), before: items.at(-1).message.id, limit: 50 });
        if (my !== seq) return;
        items = items.concat(r.items);
        hasMore = r.hasMore;
      } catch { /* stays where it is */ }
    }
    next = Math.max(0, Math.min(items.length - 1, next));
    if (next !== index) { index = next; go(); }
    show();
  }

  const later = debounce(run, 300);
  input.addEventListener('input', later);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      if (input.value.trim() !== query) run(); else step(e.shiftKey ? -1 : 1);
    } else if (e.key === 'ArrowUp') { e.preventDefault(); step(1); }
    else if (e.key === 'ArrowDown') { e.preventDefault(); step(-1); }
  });

  function open() {
    el.hidden = false;
    if (!unregister) unregister = pushClose(() => close(true));
    input.focus();
    input.select();
    show();
  }
  function close(fromEsc = false) {
    if (el.hidden) return;
    el.hidden = true;
    if (!fromEsc) unregister?.();
    unregister = null;
    seq++;
    items = [];
    index = -1;
    query = '';
    input.value = '';
    count.textContent = '';
    document.querySelectorAll('mark.find-mark').forEach((m) => m.replaceWith(...m.childNodes));
  }
  return { el, open, close: () => close(), get isOpen() { return !el.hidden; }, current: () => items[index] || null };
}
