// Message rows: grouping into runs, date separators, the unread divider, and the bubble DOM.

import { h } from './dom.js';
import { icon, tick } from './icons.js';
import { previewOf, statusOf, noteText, userAvatar } from './common.js';
import { colorIndex, dayKey, fmtDayLabel, fmtSize, fmtTime, linkify, parseTime } from '../util.js';
import { state, userOf, findMessage, isAdmin } from '../store.js';
import { voiceNode, linkPreviewNode, fmtDuration } from './voice.js';
import { reactionChips } from './reactions.js';

const RUN_GAP_MS = 5 * 60 * 1000;

export function keyOf(m) {
  return m.clientId && m.senderId === state.me.id ? `c:${m.clientId}` : `m:${m.id}`;
}

/** Build the row list for a chat: separators, the unread divider and message rows. */
export function buildRows(chat, real, pending, unreadAnchorId, unreadCount) {
  const all = [...real, ...pending.map((p) => ({ ...p, _pending: p }))];
  const rows = [];
  let prev = null;
  let prevDay = '';
  all.forEach((m, i) => {
    const day = dayKey(m.createdAt);
    let sepBefore = false;
    if (day !== prevDay) {
      rows.push({ type: 'day', key: `d:${day}`, label: fmtDayLabel(parseTime(m.createdAt) || new Date()) });
      prevDay = day;
      sepBefore = true;
    }
    if (unreadAnchorId != null && m.id === unreadAnchorId) {
      rows.push({ type: 'unread', key: 'unread', n: unreadCount });
      sepBefore = true;
    }
    if (m.messageType === 'SYSTEM') {
      // A group note: a centred line of its own that also ends the run of bubbles before it.
      rows.push({ type: 'note', key: keyOf(m), m, label: noteText(m) });
      prev = null;
      return;
    }
    const note = (x) => x?.messageType === 'SYSTEM';
    const joined = (a, b) => a && b && !note(a) && !note(b) && a.senderId === b.senderId && !a.isDeleted === !b.isDeleted
      && Math.abs((Date.parse(b.createdAt) || 0) - (Date.parse(a.createdAt) || 0)) < RUN_GAP_MS && dayKey(a.createdAt) === dayKey(b.createdAt);
    const first = sepBefore || !joined(prev, m);
    const next = all[i + 1];
    const nextSep = next && (dayKey(next.createdAt) !== day || (unreadAnchorId != null && next.id === unreadAnchorId));
    const last = !next || nextSep || !joined(m, next);
    rows.push({ type: 'msg', key: keyOf(m), m, first, last, showName: chat.isGroup && first && m.senderId !== state.me.id });
    prev = m;
  });
  return rows;
}

export function rowSig(r) {
  if (r.type === 'note') return `note:${r.m.id}:${r.label}`;
  if (r.type !== 'msg') return `${r.type}:${r.label || r.n}`;
  const m = r.m;
  const q = m.replyToId != null ? findMessage(m.chatId, m.replyToId) : null;
  const p = m._pending;
  return JSON.stringify([m.id, m.content, m.isEdited, m.isDeleted, statusOf(m), m.fileUrl, m.thumbnailUrl, m.width, m.height,
    r.first, r.last, r.showName, p && [p.state, p.error, p.localUrl], q && [q.id, q.content, q.isDeleted, q.messageType],
    isAdmin(state.chats.get(m.chatId)), userOf(m.senderId).name, userOf(m.senderId).avatarUrl, state.config?.deleteWindowSeconds,
    m.durationMs, m.playedBy, m.linkPreview, m.reactions, m.isForwarded]);
}

export function renderRow(r, ctx) {
  if (r.type === 'day') return h('div.day-sep', { role: 'separator', 'data-testid': 'day-separator' }, h('span', r.label));
  if (r.type === 'note') {
    return h('div.note-row', { role: 'note', 'data-testid': 'group-note', 'data-id': r.m.id, 'data-action': r.m.system?.action || '' },
      h('span.note', r.label));
  }
  if (r.type === 'unread') {
    return h('div.unread-sep', { role: 'separator', 'data-testid': 'unread-divider' },
      h('span', `${r.n} unread message${r.n === 1 ? '' : 's'}`));
  }
  return renderMessage(r, ctx);
}

function senderColor(id) {
  return `nc-${colorIndex(id)}`;
}

function metaNodes(m, mine, pending) {
  const nodes = [];
  if (m.isEdited && !m.isDeleted) nodes.push(h('span.edited', 'edited'));
  nodes.push(h('time', { datetime: m.createdAt }, fmtTime(m.createdAt)));
  if (mine && !m.isDeleted) {
    if (pending?.state === 'failed') nodes.push(h('span.fail-mark', { 'aria-label': 'Not sent' }, icon('error')));
    else if (pending) nodes.push(h('span.tick-wrap', { 'aria-label': 'Sending' }, tick('PENDING')));
    else {
      const st = statusOf(m);
      nodes.push(h('span.tick-wrap', { 'aria-label': st === 'READ' ? 'Read' : st === 'DELIVERED' ? 'Delivered' : 'Sent' }, tick(st)));
    }
  }
  return nodes;
}

function quoteStrip(m, ctx) {
  const q = findMessage(m.chatId, m.replyToId);
  const name = q ? (q.senderId === state.me.id ? 'You' : userOf(q.senderId).name) : 'Original message';
  const text = q ? previewOf(q).text : 'Tap to find the original message';
  return h(`button.quote.${q ? senderColor(q.senderId) : 'nc-0'}`, {
    type: 'button', 'aria-label': `Reply to ${name}: ${text}`, 'data-testid': 'reply-quote',
    onclick: (e) => { e.stopPropagation(); ctx.onQuote?.(m.replyToId); },
  }, h('span.quote-name', name), h('span.quote-text', text));
}

/** Display box for an image: its aspect ratio, at most 330 px wide and 360 px tall. */
export function imageBox(w, hgt) {
  if (!(w > 0 && hgt > 0)) return { width: 260, height: 200, known: false };
  let dw = Math.min(330, w);
  let dh = (dw * hgt) / w;
  if (dh > 360) { dh = 360; dw = (dh * w) / hgt; }
  if (dw < 120) { dw = 120; dh = Math.min(360, (dw * hgt) / w); }
  return { width: Math.round(dw), height: Math.round(dh), known: true };
}

function imageNode(m, pending, ctx) {
  const src = pending?.localUrl || m.thumbnailUrl || m.fileUrl;
  const box = imageBox(m.width, m.height);
  const img = h('img.thumb.loading', { alt: m.fileName ? `Photo ${m.fileName}` : 'Photo', decoding: 'async', 'data-testid': 'message-image' });
  img.addEventListener('load', () => { img.classList.remove('loading'); ctx.onMediaLoad?.(); });
  img.addEventListener('error', () => { img.classList.add('broken'); });
  if (src) img.src = src;
  const btn = h('button.img-box', {
    type: 'button', 'aria-label': 'Open photo',
    onclick: (e) => { e.stopPropagation(); if (!pending) ctx.onImage?.(m); },
  }, img);
  btn.style.width = `${box.width}px`;
  btn.style.aspectRatio = `${box.width} / ${box.height}`;
  if (!box.known) img.classList.add('cover');
  if (pending?.state === 'uploading') btn.append(progressOverlay(pending, ctx));
  return btn;
}

function progressOverlay(p, ctx) {
  const bar = h('span.progress-bar', { 'data-progress-for': p.clientId });
  bar.style.width = `${Math.round((p.progress || 0) * 100)}%`;
  return h('span.upload-overlay',
    h('span.progress', { role: 'progressbar', 'aria-label': 'Uploading' }, bar),
    h('span.upload-cancel', { role: 'button', tabindex: '0', 'aria-label': 'Cancel upload', onclick: (e) => { e.stopPropagation(); ctx.onCancel?.(p.clientId); } }, icon('close')));
}

function fileKind(name, mime) {
  const ext = (String(name || '').split('.').pop() || '').toLowerCase();
  if (ext === 'pdf' || /pdf/.test(mime || '')) return 'pdf';
  if (/^(docx?|odt|rtf|txt|md)$/.test(ext)) return 'doc';
  if (/^(xlsx?|ods|csv)$/.test(ext)) return 'sheet';
  if (/^(zip|gz|tgz|7z|rar|tar)$/.test(ext)) return 'zip';
  return 'other';
}

function fileNode(m, pending, ctx) {
  const kind = fileKind(m.fileName, m.fileMimeType);
  const ext = (String(m.fileName || '').split('.').pop() || '').toUpperCase().slice(0, 5);
  const meta = [fmtSize(m.fileSize), ext && ext !== String(m.fileName || '').toUpperCase() ? ext : null].filter(Boolean).join(' · ');
  const card = h('div.file-card', { 'data-testid': 'message-file' },
    h(`span.file-icon.fk-${kind}`, icon('file')),
    h('span.file-text', h('span.file-name', m.fileName || 'File'), h('span.file-meta', meta)));
  if (pending?.state === 'uploading') card.append(progressOverlay(pending, ctx));
  else if (m.fileUrl && !pending) {
    card.append(h('a.icon-btn.file-dl', { href: m.fileUrl, download: m.fileName || '', 'aria-label': `Download ${m.fileName || 'file'}`, title: 'Download', onclick: (e) => e.stopPropagation() }, icon('download')));
  }
  return card;
}

function renderMessage(r, ctx) {
  const { m } = r;
  const pending = m._pending || null;
  const mine = m.senderId === state.me.id;
  const status = pending ? (pending.state === 'failed' ? 'FAILED' : 'PENDING') : (mine ? statusOf(m) : '');
  const row = h(`div.msg-row.${mine ? 'out' : 'in'}${r.first ? '.first' : ''}${r.last ? '.last' : ''}`, {
    'data-testid': 'message', 'data-id': m.id ?? '', 'data-client-id': m.clientId || '', 'data-status': status,
    'data-deleted': m.isDeleted ? 'true' : null, 'data-sender': m.senderId,
  });
  const bubble = h(`div.bubble${r.first ? '.tail' : ''}`);
  // In groups, others' runs start with the sender's photo (or initials), as in WhatsApp.
  if (!mine && state.chats.get(m.chatId)?.isGroup) {
    row.classList.add('with-avatar');
    row.append(r.first ? h('span.msg-avatar', { 'data-testid': 'message-avatar' }, userAvatar(m.senderId, 'xs')) : h('span.msg-avatar'));
  }
  row.append(bubble);
  const type = m.isDeleted ? 'DELETED' : m.messageType;
  const media = type === 'IMAGE';
  if (media) bubble.classList.add('media');
  if (media && !m.content && !m.replyToId) bubble.classList.add('media-only');
  if (r.showName) bubble.append(h(`span.sender.${senderColor(m.senderId)}`, userOf(m.senderId).name));
  if (!pending && ctx.onMenu) {
    bubble.append(h('button.msg-menu-btn', {
      type: 'button', 'aria-label': 'Message options', 'aria-haspopup': 'menu', 'data-testid': 'message-menu',
      onclick: (e) => { e.stopPropagation(); ctx.onMenu(m, e.currentTarget); },
    }, icon('chevron')));
    if (ctx.onReact && !m.isDeleted) {
      bubble.append(h('button.msg-react-btn', {
        type: 'button', 'aria-label': 'React', title: 'React', 'aria-haspopup': 'true', 'data-testid': 'react-button',
        onclick: (e) => { e.stopPropagation(); ctx.onReact(m, e.currentTarget); },
      }, icon('smile')));
    }
    bubble.addEventListener('contextmenu', (e) => {
      if (e.target.closest('a')) return;
      e.preventDefault();
      ctx.onMenu(m, { x: e.clientX, y: e.clientY });
    });
  }
  if (m.isForwarded && !m.isDeleted) bubble.append(h('span.fwd-label', { 'data-testid': 'forwarded-label' }, icon('forward', 'fwd-icon'), 'Forwarded'));
  if (m.replyToId != null && !m.isDeleted) bubble.append(quoteStrip(m, ctx));
  const meta = h('span.meta', metaNodes(m, mine, pending));
  if (m.isDeleted) {
    bubble.classList.add('deleted');
    bubble.append(h('div.text.deleted-text', { 'data-testid': 'message-text' }, icon('error', 'del-icon'), 'This message was deleted', h('span.meta-spacer', { 'aria-hidden': 'true' })));
  } else if (type === 'IMAGE') {
    bubble.append(imageNode(m, pending, ctx));
    if (m.content) bubble.append(h('div.text.caption', { 'data-testid': 'message-text' }, linkify(m.content), h('span.meta-spacer', { 'aria-hidden': 'true' })));
    else meta.classList.add('on-media');
  } else if (type === 'FILE' && m.durationMs != null && !pending) {
    bubble.classList.add('voice-bubble');
    bubble.append(voiceNode(m));
    meta.classList.add('below');
  } else if (type === 'FILE' && m.durationMs != null) {
    bubble.append(h('div.voice-pending', { 'data-testid': 'voice-pending' }, icon('mic'), h('span', `Voice message · ${fmtDuration(m.durationMs)}`)));
    if (pending?.state === 'uploading') bubble.append(progressOverlay(pending, ctx));
    meta.classList.add('below');
  } else if (type === 'FILE') {
    bubble.append(fileNode(m, pending, ctx));
    if (m.content) bubble.append(h('div.text', { 'data-testid': 'message-text' }, linkify(m.content), h('span.meta-spacer', { 'aria-hidden': 'true' })));
    else meta.classList.add('below');
  } else {
    const card = m.linkPreview ? linkPreviewNode(m.linkPreview) : null;
    if (card) bubble.append(card);
    bubble.append(h('div.text', { 'data-testid': 'message-text', dir: 'auto' }, linkify(m.content), h('span.meta-spacer', { 'aria-hidden': 'true' })));
  }
  // The spacer is an invisible copy of the meta, so the last line of text leaves room for it.
  const spacer = bubble.querySelector('.meta-spacer');
  if (spacer) spacer.append(...metaNodes(m, mine, pending));
  bubble.append(meta);
  const chips = pending ? null : reactionChips(m);
  if (chips) { row.classList.add('has-reactions'); bubble.append(chips); }
  // Selecting messages to forward (the list's .selecting class shows the boxes).
  if (!pending && ctx.isSelected && !m.isDeleted) {
    const on = ctx.isSelected(m);
    row.prepend(h(`span.sel-box${on ? '.on' : ''}`, {
      role: 'checkbox', tabindex: '0', 'aria-checked': on ? 'true' : 'false', 'aria-label': `Select message: ${previewOf(m).text || 'message'}`, 'data-testid': 'select-message',
    }, icon('check')));
    if (on) row.classList.add('selected');
  }
  if (pending?.state === 'failed') {
    row.append(h('button.retry', { type: 'button', 'data-testid': 'retry', onclick: () => ctx.onRetry?.(pending.clientId) },
      icon('error'), h('span', pending.error && pending.error !== 'Not sent' ? `${pending.error} — tap to retry` : 'Not sent — tap to retry')));
  }
  return row;
}
