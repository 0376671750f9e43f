// Shared UI pieces: avatars, message previews, small buttons.

import { h } from './dom.js';
import { icon, tick } from './icons.js';
import { colorIndex, initials, firstName } from '../util.js';
import { state, userOf, otherUserId, chatTitle } from '../store.js';

const safeImg = (url) => typeof url === 'string' && (url.startsWith('/') || url.startsWith('data:image/') || url.startsWith('blob:'));

/** Avatar: image if it is same-origin, otherwise initials on a colour derived from the id. */
export function avatar({ id, name, url, size = 'md', online = false, group = false }) {
  const el = h(`span.avatar.av-${size}.av-c${colorIndex(id)}`, { 'aria-hidden': 'true' });
  if (safeImg(url)) {
    const img = h('img', { src: url, alt: '', loading: 'lazy', decoding: 'async' });
    img.addEventListener('error', () => { img.remove(); el.append(group ? icon('group') : initials(name)); });
    el.append(img);
  } else if (group && !name) {
    el.append(icon('group'));
  } else {
    el.append(initials(name));
  }
  if (online) el.append(h('span.online-dot', { title: 'online' }));
  return el;
}

export function userAvatar(userId, size = 'md', withPresence = false) {
  const u = userOf(userId);
  return avatar({ id: userId, name: u.name, url: u.avatarUrl, size, online: withPresence && u.online && userId !== state.me?.id });
}

export function chatAvatar(chat, size = 'md', withPresence = true) {
  if (chat.isGroup) return avatar({ id: chat.id + 7, name: chat.name, url: chat.groupAvatar, size, group: true });
  return userAvatar(otherUserId(chat), size, withPresence);
}

export function iconButton(name, label, onclick, extra = {}) {
  return h('button.icon-btn', { type: 'button', 'aria-label': label, title: label, onclick, ...extra }, icon(name));
}

/** One-line preview of a message: {icon?, text, italic?}. */
export function previewOf(m) {
  if (!m) return { text: '' };
  if (m.isDeleted) return { text: 'This message was deleted', italic: true };
  if (m.messageType === 'IMAGE') return { text: m.content ? `📷 ${firstLine(m.content)}` : '📷 Photo' };
  if (m.messageType === 'FILE') return { text: `📄 ${m.fileName || 'File'}` };
  return { text: firstLine(m.content) };
}

export function firstLine(s) {
  const line = String(s || '').split('\n').find((x) => x.trim()) || '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** The chat list's preview line content (ticks, "You: ", sender's first name in groups). */
export function chatPreviewNodes(chat, pending) {
  const m = pending || chat.lastMessage;
  if (!m) return [h('span.muted-preview', chat.isGroup ? 'Group created' : 'Tap to start chatting')];
  const nodes = [];
  const mine = m.senderId === state.me?.id;
  if (mine && !m.isDeleted) nodes.push(tick(pending ? 'PENDING' : statusOf(m)));
  const p = previewOf(m);
  let prefix = '';
  if (mine) prefix = 'You: ';
  else if (chat.isGroup) prefix = `${firstName(userOf(m.senderId).name)}: `;
  nodes.push(h(p.italic ? 'span.preview-text.italic' : 'span.preview-text', prefix + p.text));
  return nodes;
}

export function statusOf(m) {
  if (m.isRead) return 'READ';
  return m.status || 'SENT';
}

export function title(chat) {
  return chatTitle(chat);
}

export function spinner(label = 'Loading') {
  return h('span.spinner', { role: 'status', 'aria-label': label });
}
