// The composer: auto-growing text area, Enter to send, Shift+Enter for a new line, reply and
// edit strips, attachments (button, paste, drop) with upload errors shown right here.

import { h, clear } from './dom.js';
import { icon } from './icons.js';
import { iconButton, previewOf } from './common.js';
import { state, userOf, box } from '../store.js';
import * as actions from '../actions.js';

const MAX_LEN = 10000;

export function composer({ onSent }) {
  let chatId = null;
  let reply = null;
  let editing = null;
  const drafts = new Map();
  let typingSent = 0;
  let typingIdle = null;

  const ta = h('textarea.composer-input', {
    rows: 1, placeholder: 'Type a message', 'aria-label': 'Message', 'data-testid': 'composer-input', maxlength: MAX_LEN,
    enterkeyhint: 'send', spellcheck: 'true',
  });
  const file = h('input', { type: 'file', multiple: true, hidden: true, 'data-testid': 'attach-input', tabindex: '-1' });
  const attach = iconButton('attach', 'Attach a file', () => file.click(), { 'data-testid': 'attach-button' });
  const send = h('button.send-btn', { type: 'button', 'aria-label': 'Send', title: 'Send (Enter)', 'data-testid': 'send-button' }, icon('send'));
  const strip = h('div.composer-strip', { hidden: true });
  const error = h('div.composer-error', { role: 'alert', 'data-testid': 'composer-error', hidden: true });
  const el = h('footer.composer', strip, error, h('div.composer-row', attach, file, h('div.composer-field', ta), send));
  let errTimer = null;

  function showError(msg) {
    clearTimeout(errTimer);
    clear(error).append(icon('error'), h('span', msg),
      h('button.icon-btn.small', { type: 'button', 'aria-label': 'Dismiss', onclick: () => { error.hidden = true; } }, icon('close')));
    error.hidden = false;
    errTimer = setTimeout(() => { error.hidden = true; }, 8000);
  }

  function grow() {
    ta.style.height = 'auto';
    const max = 6 * 20 + 18;
    ta.style.height = `${Math.min(ta.scrollHeight, max)}px`;
    ta.style.overflowY = ta.scrollHeight > max ? 'auto' : 'hidden';
    send.classList.toggle('ready', !!ta.value.trim());
  }

  function stopTyping() {
    clearTimeout(typingIdle);
    if (typingSent && chatId != null) actions.sendTyping(chatId, false);
    typingSent = 0;
  }

  function onInput() {
    grow();
    if (chatId == null || editing) return;
    if (!ta.value.trim()) { stopTyping(); return; }
    const now = Date.now();
    if (now - typingSent > 3000) { actions.sendTyping(chatId, true); typingSent = now; }
    clearTimeout(typingIdle);
    typingIdle = setTimeout(stopTyping, 4000);
  }

  function renderStrip() {
    clear(strip);
    const m = editing || reply;
    strip.hidden = !m;
    if (!m) return;
    const who = editing ? 'Edit message' : (m.senderId === state.me.id ? 'You' : userOf(m.senderId).name);
    strip.append(h(`div.strip-body${editing ? '.editing' : ''}`, { 'data-testid': editing ? 'edit-strip' : 'reply-strip' },
      editing ? icon('edit', 'strip-icon') : icon('reply', 'strip-icon'),
      h('span.strip-text', h('span.strip-name', who), h('span.strip-preview', previewOf(m).text))),
    iconButton('close', editing ? 'Cancel edit' : 'Cancel reply', cancelStrip));
  }

  function cancelStrip() {
    if (editing) { ta.value = drafts.get(chatId) || ''; editing = null; grow(); }
    reply = null;
    renderStrip();
    ta.focus();
  }

  async function submit() {
    if (chatId == null) return;
    const text = ta.value.replace(/^\s*\n|\s+$/g, '');
    if (!text.trim()) return;
    if ([...text].length > MAX_LEN) { showError(`Messages can be at most ${MAX_LEN.toLocaleString()} characters`); return; }
    if (editing) {
      const m = editing;
      if (text === m.content) { cancelStrip(); return; }
      try {
        await actions.editMessage(m, text);
        editing = null;
        ta.value = drafts.get(chatId) || '';
        renderStrip();
        grow();
      } catch (e) { showError(e.message); }
      return;
    }
    actions.sendText(chatId, text, reply?.id);
    stopTyping();
    ta.value = '';
    drafts.delete(chatId);
    reply = null;
    renderStrip();
    grow();
    error.hidden = true;
    onSent?.();
  }

  function sendFiles(files) {
    if (chatId == null) return;
    const replyId = reply?.id;
    reply = null;
    renderStrip();
    for (const f of files) {
      actions.sendFile(chatId, f, replyId).catch((e) => showError(e.status === 413 ? e.message : `${f.name}: ${e.message}`));
    }
    onSent?.();
  }

  ta.addEventListener('input', onInput);
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey) { e.preventDefault(); submit(); return; }
    if (e.key === 'Escape' && (reply || editing)) { e.preventDefault(); e.stopPropagation(); cancelStrip(); return; }
    if (e.key === 'ArrowUp' && !ta.value && !editing) {
      const b = box(chatId, false);
      const mine = b?.list.filter((m) => m.senderId === state.me.id && !m.isDeleted && m.messageType === 'TEXT').at(-1);
      if (mine) { e.preventDefault(); startEdit(mine); }
    }
  });
  ta.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (files.length) { e.preventDefault(); sendFiles(files); }
  });
  ta.addEventListener('blur', () => { if (chatId != null && !editing) drafts.set(chatId, ta.value); });
  send.addEventListener('click', () => { submit(); ta.focus(); });
  file.addEventListener('change', () => { const fs = [...file.files]; file.value = ''; sendFiles(fs); });

  function startEdit(m) {
    if (!editing) drafts.set(chatId, ta.value);
    editing = m;
    reply = null;
    ta.value = m.content || '';
    renderStrip();
    grow();
    ta.focus();
    ta.setSelectionRange(ta.value.length, ta.value.length);
  }

  return {
    el,
    sendFiles,
    showError,
    focus: () => ta.focus({ preventScroll: true }),
    setChat(id) {
      if (chatId != null && !editing) drafts.set(chatId, ta.value);
      stopTyping();
      chatId = id;
      reply = null;
      editing = null;
      ta.value = drafts.get(id) || '';
      error.hidden = true;
      renderStrip();
      grow();
    },
    setReply(m) { if (editing) cancelStrip(); reply = m; renderStrip(); ta.focus(); },
    startEdit,
    get busy() { return !!(reply || editing); },
  };
}
