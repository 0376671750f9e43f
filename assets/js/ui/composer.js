// The composer: auto-growing text area, Enter to send, Shift+Enter for a new line, reply and
// edit strips, attachments (button, paste, drop) with upload errors shown right here.

import { h, clear } from './dom.js';
import { icon } from './icons.js';
import { iconButton, previewOf } from './common.js';
import { pushClose, trapFocus } from './overlays.js';
import { fmtSize } from '../util.js';
import { state, userOf, box } from '../store.js';
import * as actions from '../actions.js';
import { recorder } from './voice.js';

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
  const composerRow = h('div.composer-row', attach, file, h('div.composer-field', ta), send);
  // Voice messages: the mic takes the send button's place while the composer is empty.
  const rec = recorder({ row: composerRow, getChat: () => chatId, onError: (m) => showError(m), onSent: () => onSent?.() });
  composerRow.append(rec.mic);
  const el = h('footer.composer', strip, error, composerRow, rec.bar);
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
    const empty = !ta.value.trim() && !editing;
    send.hidden = empty;
    rec.mic.hidden = !empty;
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

  /** The server's upload limit (GET /config); files over it never start uploading. */
  function tooBig(f) {
    const max = state.config?.uploadMaxSize;
    return max > 0 && f.size > max;
  }
  function limitText() {
    const mb = state.config.uploadMaxSize / 1048576;
    return mb >= 1 ? `${mb >= 10 ? Math.round(mb) : Number(mb.toFixed(1))} MB` : fmtSize(state.config.uploadMaxSize);
  }

  /**
   * Attaching (button, paste, drop) opens a preview with a caption field: Esc or Cancel sends
   * nothing; Send sends one message per file, the caption going with the first one.
   */
  function sendFiles(files) {
    if (chatId == null || !files.length) return;
    const big = files.filter(tooBig);
    const ok = files.filter((f) => !tooBig(f));
    if (big.length) {
      showError(big.length === 1 && files.length === 1
        ? `File is larger than ${limitText()}`
        : `${big.map((f) => f.name).join(', ')}: larger than ${limitText()}, not attached`);
    }
    if (ok.length) openPreview(ok);
  }

  function openPreview(files) {
    const target = chatId;
    const replyTo = reply;
    const urls = [];
    const items = files.map((f) => {
      if (/^image\//.test(f.type)) {
        const url = URL.createObjectURL(f);
        urls.push(url);
        return h('figure.attach-item.image', { 'data-testid': 'attach-item' }, h('img.attach-thumb', { src: url, alt: f.name }), h('figcaption', f.name));
      }
      return h('figure.attach-item.file', { 'data-testid': 'attach-item' }, h('span.file-icon.fk-other', icon('file')),
        h('span.file-text', h('span.file-name', f.name), h('span.file-meta', fmtSize(f.size))));
    });
    const caption = h('textarea.attach-caption', {
      rows: 1, placeholder: 'Add a caption', 'aria-label': 'Caption', 'data-testid': 'attach-caption', maxlength: MAX_LEN,
    });
    const send = h('button.send-btn.ready', { type: 'button', 'aria-label': files.length > 1 ? `Send ${files.length} files` : 'Send', 'data-testid': 'attach-send' }, icon('send'));
    const cancel = h('button.icon-btn', { type: 'button', 'aria-label': 'Cancel', title: 'Cancel (Esc)', 'data-testid': 'attach-cancel' }, icon('close'));
    const prevFocus = document.activeElement;
    const dialog = h('div.attach-preview', { role: 'dialog', 'aria-modal': 'true', 'aria-label': 'Send files', 'data-testid': 'attach-preview' },
      h('header.attach-head', cancel, h('span.attach-title', files.length > 1 ? `${files.length} files` : files[0].name)),
      h(`div.attach-items${files.length > 1 ? '.many' : ''}`, items),
      h('div.attach-foot', h('div.composer-field', caption), send));
    const overlay = h('div.modal-backdrop.attach-backdrop', dialog);
    let unregister = null;
    const close = () => {
      unregister?.();
      overlay.remove();
      for (const u of urls) URL.revokeObjectURL(u);
      if (prevFocus && document.contains(prevFocus)) prevFocus.focus({ preventScroll: true });
    };
    const go = () => {
      const text = caption.value.trim();
      close();
      if (replyTo === reply) { reply = null; renderStrip(); }
      const batch = Date.now() + Math.random();
      files.forEach((f, i) => {
        actions.sendFile(target, f, replyTo?.id, i === 0 ? text || null : null, batch)
          .catch((e) => showError(e.status === 413 ? e.message : `${f.name}: ${e.message}`));
      });
      onSent?.();
    };
    cancel.onclick = close;
    send.onclick = go;
    caption.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); go(); }
    });
    overlay.addEventListener('click', (e) => { if (e.target === overlay) close(); });
    document.body.append(overlay);
    unregister = pushClose(close);
    trapFocus(dialog);
    caption.focus();
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
      rec.cancel();
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
