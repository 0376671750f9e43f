// Forwarding: the conversation's selection mode (a box per message, the bar "N selected ·
// Forward" in place of the composer) and the dialog that picks up to ten chats and sends.

import { h, clear } from './dom.js';
import { icon } from './icons.js';
import { chatAvatar, iconButton, previewOf } from './common.js';
import { pushClose, trapFocus, toast } from './overlays.js';
import { state, sortedChats, chatTitle, userOf, findMessage } from '../store.js';
import { forwardMessages, FORWARD_MAX_CHATS } from '../find.js';

/**
 * Selection mode over a conversation's message list `list` (rows carry data-id). `getChatId()`
 * names the open chat; `onToggle(active)` lets the conversation swap the composer for `bar`.
 */
export function selection({ list, getChatId, onToggle }) {
  const ids = new Set();
  let active = false;
  let unregister = null;
  const count = h('span.sel-count', { 'aria-live': 'polite', 'data-testid': 'selected-count' });
  const fwd = h('button.btn.btn-primary.sel-forward', { type: 'button', 'data-testid': 'forward-selected', onclick: () => openDialog() },
    icon('forward'), h('span', 'Forward'));
  const bar = h('div.select-bar', { role: 'toolbar', 'aria-label': 'Selected messages', 'data-testid': 'select-bar', hidden: true },
    iconButton('close', 'Cancel selection', () => stop(), { 'data-testid': 'cancel-selection' }), count, fwd);

  function sync() {
    const n = ids.size;
    count.textContent = `${n} selected`;
    fwd.disabled = n === 0;
    for (const row of list.querySelectorAll('.msg-row[data-id]')) {
      const on = ids.has(Number(row.dataset.id));
      row.classList.toggle('selected', on);
      const box = row.querySelector('.sel-box');
      if (box) { box.classList.toggle('on', on); box.setAttribute('aria-checked', on ? 'true' : 'false'); }
    }
  }

  function start(m) {
    if (!active) {
      active = true;
      list.classList.add('selecting');
      unregister = pushClose(() => stop(true));
      onToggle(true);
    }
    if (m?.id != null) ids.add(m.id);
    sync();
    list.querySelector(`.msg-row[data-id="${CSS.escape(String(m?.id))}"] .sel-box`)?.focus({ preventScroll: true });
  }

  function stop(fromEsc = false) {
    if (!active) return;
    active = false;
    ids.clear();
    if (!fromEsc) unregister?.();
    unregister = null;
    list.classList.remove('selecting');
    sync();
    onToggle(false);
  }

  function toggle(id) {
    if (ids.has(id)) ids.delete(id); else ids.add(id);
    sync();
  }

  // While selecting, a click anywhere on a message (also its image or quote) toggles it.
  list.addEventListener('click', (e) => {
    if (!active) return;
    const row = e.target.closest('.msg-row[data-id]');
    if (!row || !row.dataset.id || row.dataset.deleted) return;
    e.preventDefault();
    e.stopPropagation();
    toggle(Number(row.dataset.id));
  }, true);
  list.addEventListener('keydown', (e) => {
    if (!active || !e.target.classList?.contains('sel-box')) return;
    if (e.key !== ' ' && e.key !== 'Enter') return;
    e.preventDefault();
    toggle(Number(e.target.closest('.msg-row').dataset.id));
  });

  function chosen() {
    const chatId = getChatId();
    return [...ids].map((id) => findMessage(chatId, id)).filter((m) => m && !m.isDeleted).sort((x, y) => x.id - y.id);
  }

  async function openDialog() {
    const messages = chosen();
    if (!messages.length) return;
    const done = await forwardDialog(messages);
    if (done) stop();
  }

  return {
    bar,
    start,
    stop: () => stop(),
    get active() { return active; },
    isSelected: (m) => active && ids.has(m.id),
    /** Rows were re-rendered: put the boxes' state back. */
    sync: () => { if (active) sync(); },
  };
}

/**
 * Pick up to ten chats (with a filter) and forward `messages` to each. Resolves true once sent
 * (even partly), false when cancelled.
 */
export function forwardDialog(messages) {
  return new Promise((resolve) => {
    const prevFocus = document.activeElement;
    const picked = new Set();
    let unregister = null;
    let sending = false;
    const finish = (v) => {
      unregister?.();
      overlay.remove();
      if (prevFocus && document.contains(prevFocus)) prevFocus.focus({ preventScroll: true });
      resolve(v);
    };
    const filter = h('input.search-input', { type: 'search', placeholder: 'Search chats', 'aria-label': 'Search chats', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'forward-search' });
    const note = h('p.fwd-note', { 'aria-live': 'polite', 'data-testid': 'forward-note' });
    const list = h('div.fwd-list', { role: 'listbox', 'aria-label': 'Chats', 'aria-multiselectable': 'true', 'data-testid': 'forward-chats' });
    const chips = h('div.fwd-picked', { 'aria-hidden': 'true' });
    const send = h('button.btn.btn-primary', { type: 'button', 'data-testid': 'forward-send', disabled: true, onclick: () => go() }, icon('send'), h('span', 'Send'));
    const what = messages.length === 1 ? previewOf(messages[0]).text : `${messages.length} messages`;
    const dialog = h('div.dialog.fwd-dialog', { role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'fwd-title', 'data-testid': 'forward-dialog' },
      h('div.fwd-head', iconButton('close', 'Cancel', () => finish(false), { 'data-testid': 'forward-cancel' }), h('h2.dialog-title', { id: 'fwd-title' }, 'Forward to…')),
      h('p.fwd-what', icon('forward', 'fwd-icon'), h('span', what)),
      h('div.search-box.in-drawer', icon('search', 'search-icon'), filter),
      list,
      h('div.fwd-foot', chips, note, send));
    const overlay = h('div.modal-backdrop', { onclick: (e) => { if (e.target === overlay && !sending) finish(false); } }, dialog);

    function render() {
      const q = filter.value.trim().toLowerCase();
      const chats = sortedChats().filter((c) => !q || chatTitle(c).toLowerCase().includes(q)
        || c.participants.some((p) => (userOf(p.userId).name || '').toLowerCase().includes(q)));
      const full = picked.size >= FORWARD_MAX_CHATS;
      clear(list);
      if (!chats.length) list.append(h('p.fwd-empty', 'No chats match “', filter.value.trim(), '”.'));
      for (const c of chats) {
        const on = picked.has(c.id);
        const off = full && !on;
        list.append(h(`button.fwd-row${on ? '.on' : ''}`, {
          type: 'button', role: 'option', 'aria-selected': on ? 'true' : 'false', 'aria-disabled': off ? 'true' : null,
          'data-testid': 'forward-chat', 'data-chat-id': c.id, 'data-title': chatTitle(c),
          onclick: () => {
            if (off) { note.textContent = `You can forward to up to ${FORWARD_MAX_CHATS} chats at once.`; return; }
            if (on) picked.delete(c.id); else picked.add(c.id);
            render();
            list.querySelector(`[data-chat-id="${c.id}"]`)?.focus();
          },
        }, h('span.fwd-check', icon('check')), chatAvatar(c, 'sm', false), h('span.fwd-name', chatTitle(c))));
      }
      clear(chips).append(...[...picked].map((id) => h('span.fwd-chip', chatTitle(state.chats.get(id)))));
      send.disabled = !picked.size || sending;
      if (!full || !note.textContent.startsWith('You can')) note.textContent = picked.size ? `${picked.size} of ${FORWARD_MAX_CHATS} chats` : '';
    }

    async function go() {
      if (!picked.size || sending) return;
      sending = true;
      send.classList.add('busy');
      send.disabled = true;
      const chatIds = [...picked];
      const { sent, failed } = await forwardMessages(messages, chatIds);
      sending = false;
      if (!sent && failed.length) {
        send.classList.remove('busy');
        send.disabled = false;
        const e = failed[0].error;
        note.textContent = e?.status === 409 ? 'That message was deleted, so it can’t be forwarded.' : `Not forwarded: ${e?.message || 'something went wrong'}`;
        return;
      }
      const where = chatIds.length === 1 ? chatTitle(state.chats.get(chatIds[0])) : `${chatIds.length} chats`;
      toast(failed.length ? `Forwarded to ${where}; ${failed.length} could not be sent` : `Forwarded to ${where}`, failed.length ? 'error' : '');
      finish(true);
    }

    filter.addEventListener('input', render);
    filter.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowDown') { e.preventDefault(); list.querySelector('button')?.focus(); }
    });
    list.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
      const rows = [...list.querySelectorAll('button')];
      const i = rows.indexOf(document.activeElement);
      if (i < 0) return;
      e.preventDefault();
      const next = rows[i + (e.key === 'ArrowDown' ? 1 : -1)];
      if (next) next.focus(); else if (e.key === 'ArrowUp') filter.focus();
    });
    render();
    document.body.append(overlay);
    unregister = pushClose(() => { if (!sending) finish(false); });
    trapFocus(dialog);
    filter.focus();
  });
}
