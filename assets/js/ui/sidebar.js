// Left pane: the user's header with actions, the search box and the live chat list.

import { h, clear, reconcile, scheduler } from './dom.js';
import { icon, tick } from './icons.js';
import { avatar, chatAvatar, chatPreviewNodes, iconButton, previewOf, statusOf } from './common.js';
import { fmtListTime, firstName } from '../util.js';
import { state, on, sortedChats, chatTitle, typingUsers, userOf, otherUserId, isMuted } from '../store.js';

export function sidebar({ onOpen, onNewChat, onNewGroup, onMenu, onProfile, onSearchMessages }) {
  const meAvatar = h('button.me-btn', { type: 'button', 'aria-label': 'Profile', title: 'Profile', onclick: onProfile });
  const search = h('input.search-input', {
    type: 'search', placeholder: 'Search or start a new chat', 'aria-label': 'Search chats', 'data-testid': 'chat-search',
    autocomplete: 'off', spellcheck: 'false',
  });
  const list = h('div.chat-list', { role: 'list', 'aria-label': 'Chats', 'data-testid': 'chat-list' });
  const menuBtn = iconButton('more', 'Menu', (e) => onMenu(e.currentTarget), { 'data-testid': 'menu-button', 'aria-haspopup': 'menu' });
  const head = h('header.side-head',
    meAvatar,
    h('div.side-title', 'Chats'),
    onSearchMessages ? iconButton('search', 'Search messages (Ctrl+K)', () => onSearchMessages(), { 'data-testid': 'message-search-button' }) : null,
    iconButton('group', 'New group', onNewGroup, { 'data-testid': 'new-group-button' }),
    iconButton('newChat', 'New chat', onNewChat, { 'data-testid': 'new-chat-button' }),
    menuBtn);
  const searchBox = h('div.search-box', icon('search', 'search-icon'), search);
  const drawerHost = h('div.drawer-host');
  // Offers above the list (the notifications prompt); the app fills it.
  const notices = h('div.side-notices');
  const el = h('aside.sidebar', { 'aria-label': 'Chats' }, head, searchBox, notices, list, drawerHost);

  let filter = '';
  search.addEventListener('input', () => { filter = search.value.trim().toLowerCase(); render(); });
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && search.value) { e.stopPropagation(); search.value = ''; filter = ''; render(); }
    if (e.key === 'ArrowDown') { e.preventDefault(); list.querySelector('.chat-row')?.focus(); }
    if (e.key === 'Enter') { const first = list.querySelector('.chat-row'); if (first) first.click(); }
  });
  list.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const rows = [...list.querySelectorAll('.chat-row')];
    const i = rows.indexOf(document.activeElement);
    if (i < 0) return;
    e.preventDefault();
    const next = rows[i + (e.key === 'ArrowDown' ? 1 : -1)];
    if (next) next.focus(); else if (e.key === 'ArrowUp') search.focus();
  });

  function renderMe() {
    const me = state.me;
    clear(meAvatar).append(avatar({ id: me.id, name: me.name, url: me.avatarUrl, size: 'sm' }));
  }

  function rowSig(c) {
    const pending = state.outbox.filter((p) => p.chatId === c.id).at(-1);
    const typing = typingUsers(c.id);
    const other = c.isGroup ? null : userOf(otherUserId(c));
    return JSON.stringify([chatTitle(c), c.groupAvatar, other?.online, other?.avatarUrl, c.unreadCount,
      c.lastMessage && [c.lastMessage.id, previewOf(c.lastMessage).text, c.lastMessage.isDeleted, statusOf(c.lastMessage), userOf(c.lastMessage.senderId).name],
      pending && [pending.clientId, pending.state], typing, state.openChatId === c.id,
      typing.length ? '' : fmtListTime(pending?.createdAt || c.lastMessage?.createdAt || c.createdAt), isMuted(c)]);
  }

  function row(c) {
    const pending = state.outbox.filter((p) => p.chatId === c.id).at(-1);
    const last = pending || c.lastMessage;
    const typing = typingUsers(c.id);
    const unread = c.unreadCount || 0;
    const name = chatTitle(c);
    let preview;
    if (typing.length) {
      const who = c.isGroup ? `${firstName(userOf(typing[0]).name)} is typing…` : 'typing…';
      preview = [h('span.typing-text', who)];
    } else preview = chatPreviewNodes(c, pending);
    const time = fmtListTime(last?.createdAt || c.createdAt);
    const muted = isMuted(c);
    const label = `${name}${muted ? ', muted' : ''}${unread ? `, ${unread} unread message${unread > 1 ? 's' : ''}` : ''}`;
    let mutedIcon = null;
    if (muted) {
      mutedIcon = icon('bellOff', 'row-muted');
      mutedIcon.setAttribute('data-testid', 'muted-icon');
    }
    return h(`button.chat-row${state.openChatId === c.id ? '.active' : ''}${unread ? '.unread' : ''}${muted ? '.muted' : ''}`, {
      type: 'button', role: 'listitem', 'data-testid': 'chat-row', 'data-chat-id': c.id, 'data-title': name,
      'aria-label': label, 'aria-current': state.openChatId === c.id ? 'true' : null,
      onclick: () => onOpen(c.id),
    },
    chatAvatar(c, 'md', true),
    h('span.row-body',
      h('span.row-top', h('span.row-name', name), h('span.row-time', time)),
      h('span.row-bottom', h('span.row-preview', preview), mutedIcon,
        unread ? h('span.badge', { 'data-testid': 'unread-badge', 'aria-hidden': 'true' }, unread > 999 ? '999+' : String(unread)) : null)));
  }

  function render() {
    if (!state.me) return;
    renderMe();
    if (!state.chatsLoaded) {
      if (!list.querySelector('.skeleton-row')) {
        clear(list);
        for (let i = 0; i < 7; i++) {
          list.append(h('div.skeleton-row', { 'aria-hidden': 'true' }, h('span.sk-avatar'), h('span.sk-lines', h('span.sk-line.w60'), h('span.sk-line.w85'))));
        }
        list.setAttribute('aria-busy', 'true');
      }
      return;
    }
    list.removeAttribute('aria-busy');
    let chats = sortedChats();
    if (filter) {
      chats = chats.filter((c) => {
        const names = [chatTitle(c), ...c.participants.map((p) => userOf(p.userId).name || '')];
        return names.some((n) => n.toLowerCase().includes(filter));
      });
    }
    if (!chats.length) {
      list.querySelectorAll('.chat-row, .skeleton-row').forEach((n) => n.remove());
      if (!list.querySelector('.list-empty') || list._emptyFor !== filter) {
        list._emptyFor = filter;
        clear(list).append(filter
          ? h('div.list-empty', h('p', 'No chats match “', search.value.trim(), '”.'),
            h('button.btn.btn-primary', { type: 'button', onclick: () => onNewChat(search.value.trim()) }, 'Find people'))
          : h('div.list-empty', { 'data-testid': 'chat-list-empty' }, h('div.empty-illustration', icon('newChat')), h('p.empty-title', 'No chats yet'),
            h('p', 'Start a conversation with someone on this server.'),
            h('button.btn.btn-primary', { type: 'button', onclick: () => onNewChat() }, 'Start a chat')));
      }
      return;
    }
    list.querySelectorAll('.list-empty, .skeleton-row').forEach((n) => n.remove());
    reconcile(list, chats, (c) => c.id, rowSig, row);
  }

  const schedule = scheduler(render);
  on('chats', schedule);
  on('typing', schedule);
  on('presence', schedule);
  on('messages', schedule);
  on('open', schedule);
  on('me', schedule);
  // Relative times ("Yesterday") change at midnight.
  setInterval(schedule, 60000);

  return { el, drawerHost, notices, render: schedule, focusSearch: () => { search.focus(); search.select(); } };
}

export { tick };
