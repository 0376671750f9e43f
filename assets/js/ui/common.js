// Shared UI pieces: avatars, message previews, small buttons.

import { h } from './dom.js';
import { icon, tick } from './icons.js';
import { colorIndex, initials, firstName } from '../util.js';
import { state, userOf, otherUserId, chatTitle, knownUser } from '../store.js';

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

/**
 * The text of a group note (a SYSTEM message) with today's names: "Ana added Cara", "You left".
 * Names come from members and former members; when someone is unknown, the server's sentence.
 */
export function noteText(m) {
  const s = m.system;
  if (!s || !s.action) return m.content || '';
  const ids = [s.actorId, ...(s.userIds || [])].filter((id) => id != null);
  if (ids.some((id) => id !== state.me?.id && !knownUser(id))) return m.content || '';
  const who = (id, subject) => (id === state.me?.id ? (subject ? 'You' : 'you') : userOf(id).name);
  const list = (arr) => {
    const names = (arr || []).map((id) => who(id, false));
    if (names.length <= 1) return names.join('');
    return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
  };
  const actor = who(s.actorId, true);
  switch (s.action) {
    case 'created': return `${actor} created the group${s.name ? ` “${s.name}”` : ''}`;
    case 'added': return `${actor} added ${list(s.userIds)}`;
    case 'removed': return `${actor} removed ${list(s.userIds)}`;
    case 'left': return `${actor} left`;
    case 'renamed': return `${actor} changed the group name to “${s.name ?? ''}”`;
    case 'avatar': return `${actor} changed the group photo`;
    case 'promoted': return `${actor} made ${list(s.userIds)} ${s.userIds?.length > 1 ? 'admins' : 'an admin'}`;
    case 'demoted': return `${actor} removed ${list(s.userIds)} as admin`;
    default: return m.content || '';
  }
}

/** One-line preview of a message: {icon?, text, italic?}. */
export function previewOf(m) {
  if (!m) return { text: '' };
  if (m.messageType === 'SYSTEM') return { text: noteText(m), note: true };
  if (m.isDeleted) return { text: 'This message was deleted', italic: true };
  if (m.messageType === 'IMAGE') return { text: m.content ? `📷 ${firstLine(m.content)}` : '📷 Photo' };
  if (m.messageType === 'FILE' && m.durationMs != null) {
    const s = Math.round(m.durationMs / 1000);
    return { text: `🎤 Voice message (${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')})` };
  }
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
  // A group always has its "created" note, so no last message means the chat was cleared.
  if (!m) return [h('span.muted-preview', chat.isGroup ? '' : 'Send a message to start chatting')];
  const nodes = [];
  if (m.messageType === 'SYSTEM') return [h('span.preview-text', previewOf(m).text)];
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
