// The open conversation: header with presence/typing, the message list (infinite scroll up,
// sticky bottom, unread divider) and the composer.

import { h, clear, reconcile, scheduler } from './dom.js';
import { icon } from './icons.js';
import { chatAvatar, iconButton, spinner } from './common.js';
import { buildRows, rowSig, renderRow, keyOf } from './bubbles.js';
import { composer } from './composer.js';
import { popupMenu, confirmDialog, choiceDialog, openViewer, toast } from './overlays.js';
import { fmtLastSeen, fmtFull, firstName } from '../util.js';
import { state, on, box, chatTitle, typingUsers, userOf, otherUserId, findMessage, isMuted } from '../store.js';
import { muteChoices, mutedText } from './mute.js';
import * as actions from '../actions.js';
import { openQuickBar, menuHeader, openReactors, refreshReactors } from './reactions.js';
import { selection } from './forward.js';
import { chatFind, markInElement } from './search.js';
import { loadAround, loadNewer, backToLatest } from '../find.js';

export function conversation({ onBack, onInfo, onMessageInfo }) {
  let chatId = null;
  let anchorId = null;
  let anchorCount = 0;
  let openUnread = 0;
  let anchorFound = 0;
  let initialScrolled = false;
  let forceBottom = false;

  const back = iconButton('back', 'Back to chats', () => onBack(), { class: 'back-btn' });
  const headAvatar = h('span.head-avatar');
  const headName = h('span.head-name', { 'data-testid': 'conv-title' });
  const headMuted = h('span.head-muted', { role: 'img', 'data-testid': 'conv-muted', hidden: true }, icon('bellOff'));
  const headSub = h('span.head-sub', { 'data-testid': 'conv-subtitle', 'aria-live': 'polite' });
  const who = h('button.head-who', { type: 'button', onclick: () => onInfo(), 'aria-label': 'Chat info' }, headAvatar, h('span.head-text', h('span.head-title', headName, headMuted), headSub));
  const infoBtn = iconButton('info', 'Chat info', () => onInfo(), { 'data-testid': 'info-button' });
  const menuBtn = iconButton('more', 'Chat menu', (e) => chatMenu(e.currentTarget), { 'data-testid': 'chat-menu', 'aria-haspopup': 'menu' });
  const findBtn = iconButton('search', 'Search in this chat', () => find.open(), { 'data-testid': 'chat-find-button' });
  const head = h('header.conv-head', back, who, findBtn, infoBtn, menuBtn);

  const list = h('div.msg-list');
  const topLoader = h('div.top-loader', { hidden: true }, spinner('Loading older messages'));
  const bottomLoader = h('div.top-loader', { hidden: true }, spinner('Loading newer messages'));
  const empty = h('div.conv-empty-note', { hidden: true });
  const center = h('div.center-state', { hidden: true });
  const scroller = h('div.messages', { role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': 'Messages', tabindex: '0', 'data-testid': 'message-list' },
    topLoader, center, empty, list, bottomLoader);
  const toBottom = h('button.to-bottom', { type: 'button', 'aria-label': 'Scroll to latest message', hidden: true, 'data-testid': 'to-bottom', onclick: () => toLatest(true) }, icon('down'));
  const comp = composer({ onSent: () => { forceBottom = true; openUnread = 0; anchorId = null; anchorFound = 0; if (box(chatId).hasNewer) toLatest(); else render(); } });
  // Selecting messages to forward: the bar takes the composer's place meanwhile.
  const sel = selection({ list, getChatId: () => chatId, onToggle: (on) => { comp.el.hidden = on; sel.bar.hidden = !on; } });
  const find = chatFind({ getChatId: () => chatId, jump: (id, ranges) => jumpTo(id, { ranges, quiet: true }) });
  const dropHint = h('div.drop-hint', { hidden: true }, 'Drop files to send');
  const el = h('section.conversation', { 'data-testid': 'conversation', 'aria-label': 'Conversation' },
    head, find.el, h('div.conv-body', scroller, toBottom, dropHint), comp.el, sel.bar);

  const ctx = {
    onImage: (m) => openViewer({ src: m.fileUrl, fileName: m.fileName, caption: m.senderId === state.me.id ? 'You' : userOf(m.senderId).name, subtitle: fmtFull(m.createdAt) }),
    onMenu: (m, anchor) => messageMenu(m, anchor),
    onQuote: (id) => jumpTo(id),
    onRetry: (cid) => actions.retry(cid),
    onCancel: (cid) => actions.discard(cid),
    onMediaLoad: () => { if (isAtBottom(200) && !box(chatId).hasNewer) scrollToBottom(); },
    onReact: (m, anchor) => openQuickBar(anchor, m),
    isSelected: (m) => sel.isSelected(m),
  };

  function isAtBottom(slack = 80) {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < slack;
  }
  /** To the newest message; from a window opened further up, the newest page first. */
  async function toLatest(smooth = false) {
    if (chatId != null && box(chatId).hasNewer) {
      const id = chatId;
      await backToLatest(id);
      if (id !== chatId) return;
      render();
      smooth = false;
    }
    scrollToBottom(smooth);
  }
  function scrollToBottom(smooth = false) {
    scroller.scrollTo({ top: scroller.scrollHeight, behavior: smooth ? 'smooth' : 'auto' });
    pinned = true;
  }

  function messageMenu(m, anchor) {
    const chat = state.chats.get(m.chatId);
    const mine = m.senderId === state.me.id;
    // A tombstone can only be removed from my view.
    if (m.isDeleted) {
      popupMenu(anchor, [{ label: 'Delete for me', icon: 'trash', danger: true, testid: 'menu-delete', onSelect: () => remove(m, chat) }], { align: mine ? 'right' : 'left' });
      return;
    }
    const reacted = (m.reactions || []).some((r) => r.count > 0);
    popupMenu(anchor, [
      { label: 'Reply', icon: 'reply', testid: 'menu-reply', onSelect: () => comp.setReply(m) },
      m.messageType !== 'SYSTEM' ? { label: 'Forward', icon: 'forward', testid: 'menu-forward', onSelect: () => sel.start(m) } : null,
      reacted ? { label: 'Reactions', icon: 'smile', testid: 'menu-reactions-list', onSelect: () => openReactors(rowOf(m.id)?.querySelector('.reactions') || anchor, m) } : null,
      m.content ? { label: 'Copy', icon: 'copy', testid: 'menu-copy', onSelect: () => copy(m.content) } : null,
      mine && m.messageType === 'TEXT' ? { label: 'Edit', icon: 'edit', testid: 'menu-edit', onSelect: () => comp.startEdit(m) } : null,
      mine ? { label: 'Message info', icon: 'info', testid: 'menu-info', onSelect: () => onMessageInfo(m) } : null,
      { label: 'Delete', icon: 'trash', danger: true, testid: 'menu-delete', onSelect: () => remove(m, chat) },
    ], { align: m.senderId === state.me.id ? 'right' : 'left', header: menuHeader(m, anchor) });
  }

  const rowOf = (id) => list.querySelector(`.msg-row[data-id="${CSS.escape(String(id))}"]`);

  function chatMenu(anchor) {
    if (chatId == null) return;
    const chat = state.chats.get(chatId);
    popupMenu(anchor, [
      { label: chat?.isGroup ? 'Group info' : 'Contact info', icon: 'info', onSelect: () => onInfo() },
      isMuted(chat)
        ? { label: 'Unmute notifications', icon: 'bell', testid: 'menu-unmute', onSelect: () => setMuted(chatId, null) }
        : { label: 'Mute notifications', icon: 'bellOff', testid: 'menu-mute', onSelect: () => mute(chatId) },
      { label: 'Clear chat', icon: 'trash', danger: true, testid: 'menu-clear-chat', onSelect: () => clearChat(chatId) },
    ]);
  }

  async function mute(id) {
    const until = await choiceDialog({
      title: 'Mute notifications for…',
      body: 'No notifications from this chat on any of your devices. The others in the chat are not told.',
      choices: muteChoices(),
    });
    if (until != null) setMuted(id, until);
  }

  async function setMuted(id, until) {
    try {
      await actions.setMuted(id, until);
      toast(until == null ? 'Notifications unmuted' : mutedText(until));
    } catch (e) { toast(e.message, 'error'); }
  }

  async function clearChat(id) {
    const ok = await confirmDialog({
      title: 'Clear this chat?',
      body: 'All messages in this chat disappear from your devices. The others in the chat still have them.',
      confirmLabel: 'Clear chat', danger: true,
    });
    if (!ok) return;
    try { await actions.clearChat(id); toast('Chat cleared'); } catch (e) { toast(e.message, 'error'); }
  }

  async function copy(text) {
    try { await navigator.clipboard.writeText(text); toast('Copied'); } catch { toast('Could not copy'); }
  }

  /** WhatsApp's choice: delete for me (any message) or for everyone (own, or admin, in time). */
  async function remove(m, chat) {
    const mine = m.senderId === state.me.id;
    const everyone = !m.isDeleted && actions.canDeleteForEveryone(m, chat);
    const choice = await choiceDialog({
      title: 'Delete message?',
      body: everyone
        ? (mine ? 'Delete it for everyone in this chat, or only from your devices?' : `Delete ${firstName(userOf(m.senderId).name)}’s message for everyone, or only from your devices?`)
        : 'It will disappear from your devices. The others in the chat still see it.',
      choices: [
        { label: 'Delete for me', value: 'me', danger: !everyone, testid: 'delete-for-me' },
        everyone ? { label: 'Delete for everyone', value: 'everyone', danger: true, testid: 'delete-for-everyone' } : null,
      ].filter(Boolean),
    });
    if (!choice) return;
    try {
      if (choice === 'everyone') await actions.deleteMessage(m);
      else await actions.deleteForMe(m);
    } catch (e) { toast(e.message, 'error'); }
  }

  /**
   * Show message `id` (a reply's original, a search hit): scrolled to the middle with a brief
   * highlight, and `ranges` marked in its text. Not loaded: the page around it (`?around=`).
   */
  async function jumpTo(id, { ranges = null, quiet = false } = {}) {
    const target = chatId;
    let row = rowOf(id);
    let smooth = !!row;
    if (!row) {
      let found = false;
      try { found = await loadAround(target, id); } catch (e) { if (!quiet) toast(e.message, 'error'); return; }
      if (target !== chatId) return;
      render();
      row = found ? rowOf(id) : null;
      smooth = false;
    }
    if (!row) { toast('The original message is no longer available'); return; }
    list.querySelectorAll('.msg-row.find-current').forEach((n) => n.classList.remove('find-current'));
    document.querySelectorAll('mark.find-mark').forEach((n) => n.replaceWith(...n.childNodes));
    if (ranges) {
      markInElement(row.querySelector('[data-testid="message-text"]'), ranges);
      row.classList.add('find-current');
    }
    pinned = false;
    row.scrollIntoView({ block: 'center', behavior: smooth ? 'smooth' : 'auto' });
    row.classList.remove('flash');
    void row.offsetWidth;
    row.classList.add('flash');
  }

  function renderHead() {
    const chat = state.chats.get(chatId);
    if (!chat) return;
    clear(headAvatar).append(chatAvatar(chat, 'md', false));
    headName.textContent = chatTitle(chat);
    const muted = isMuted(chat);
    headMuted.hidden = !muted;
    headMuted.title = muted ? mutedText(chat.mutedUntil) : '';
    headMuted.setAttribute('aria-label', headMuted.title || 'Not muted');
    const typing = typingUsers(chatId);
    headSub.classList.toggle('typing', typing.length > 0);
    if (typing.length) {
      if (!chat.isGroup) headSub.textContent = 'typing…';
      else {
        const names = typing.map((id) => firstName(userOf(id).name));
        headSub.textContent = names.length === 1 ? `${names[0]} is typing…` : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : `${names.length} people are typing…`;
      }
      return;
    }
    if (chat.isGroup) {
      const names = chat.participants.filter((p) => p.userId !== state.me.id).map((p) => userOf(p.userId).name);
      headSub.textContent = [...names.sort((a, b) => a.localeCompare(b)), 'You'].join(', ');
    } else {
      const u = userOf(otherUserId(chat));
      // Someone who was never online has no "last seen": WhatsApp then points to the contact info.
      const hint = matchMedia('(pointer: coarse)').matches ? 'tap here for contact info' : 'click here for contact info';
      headSub.textContent = u.id === state.me.id ? 'Message yourself' : u.online ? 'online' : (u.lastSeen ? fmtLastSeen(u.lastSeen) : hint);
    }
  }

  /** The first unread message: count the others' messages back from the newest. */
  function computeAnchor(b) {
    anchorCount = openUnread;
    let n = 0;
    for (let i = b.list.length - 1; i >= 0 && n < openUnread; i--) {
      const m = b.list[i];
      if (m.senderId === state.me.id || m.messageType === 'SYSTEM') continue;
      n++;
      anchorId = m.id;
    }
    anchorFound = n;
  }

  function render() {
    if (chatId == null) return;
    const chat = state.chats.get(chatId);
    if (!chat) return;
    renderHead();
    const b = box(chatId);
    const pending = state.outbox.filter((p) => p.chatId === chatId).sort((x, y) => x.seq - y.seq);
    topLoader.hidden = !b.loadingOlder;
    bottomLoader.hidden = !b.loadingNewer;
    if (!b.loaded) {
      center.hidden = false;
      clear(center).append(b.error
        ? h('div.load-error', h('p', b.error), h('button.btn.btn-primary', { type: 'button', onclick: () => actions.loadLatest(chatId) }, 'Try again'))
        : spinner('Loading messages'));
      clear(list);
      empty.hidden = true;
      return;
    }
    center.hidden = true;
    const prevAnchor = anchorId;
    if (openUnread && anchorFound < openUnread) computeAnchor(b);
    empty.hidden = !!(b.list.length || pending.length);
    if (!empty.hidden) {
      clear(empty).append(h('span.empty-pill', icon('lock', 'pill-icon'),
        chat.isGroup ? 'No messages yet. Say hello to the group 👋' : `No messages yet. Say hi to ${firstName(chatTitle(chat))} 👋`));
    }
    const rows = buildRows(chat, b.list, pending, anchorId, anchorCount);
    const wasBottom = isAtBottom();
    // Keep the first row where it is on screen when rows are added above it.
    const keep = list.querySelector('.msg-row');
    const keepOffset = keep ? keep.offsetTop - scroller.scrollTop : 0;
    const ownNew = pending.length && list.lastElementChild?._key !== keyOf(pending.at(-1)) && pending.at(-1).state !== 'failed';
    reconcile(list, rows, (r) => r.key, rowSig, (r) => renderRow(r, ctx));
    if (!initialScrolled) {
      initialScrolled = true;
      const divider = list.querySelector('.unread-sep');
      if (divider) scroller.scrollTop = Math.max(0, divider.offsetTop - 80);
      else scrollToBottom();
    } else if ((wasBottom && !b.hasNewer) || forceBottom || ownNew) {
      scrollToBottom();
    } else if (prevAnchor !== anchorId && list.querySelector('.unread-sep')) {
      // Older unread messages arrived: the divider moved up; keep showing it.
      scroller.scrollTop = Math.max(0, list.querySelector('.unread-sep').offsetTop - 80);
    } else if (keep) {
      // By key: the row may have been re-created (its grouping can change when rows arrive above).
      const again = keep.isConnected ? keep : [...list.children].find((n) => n._key === keep._key);
      if (again) scroller.scrollTop = again.offsetTop - keepOffset;
    }
    forceBottom = false;
    updateToBottom();
    sel.sync();
    refreshReactors();
    if (b.loaded) actions.markRead(chatId);
    setTimeout(maybeLoadOlder, 0);
    setTimeout(maybeLoadNewer, 0);
  }

  /** In a window opened at a message: the next page down when the bottom comes near. */
  function maybeLoadNewer() {
    if (chatId == null) return;
    const b = box(chatId);
    if (!b.loaded || !b.hasNewer || b.loadingNewer) return;
    if (scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 400) {
      bottomLoader.hidden = false;
      loadNewer(chatId);
    }
  }

  function maybeLoadOlder() {
    if (chatId == null) return;
    const b = box(chatId);
    if (b.loaded && b.hasMore && !b.loadingOlder && scroller.scrollTop < 400) actions.loadOlder(chatId);
  }

  function updateToBottom() {
    toBottom.hidden = isAtBottom(400) && !(chatId != null && box(chatId).hasNewer);
  }

  // Stay pinned to the newest message when the viewport changes (e.g. a phone keyboard opens).
  let pinned = true;
  new ResizeObserver(() => { if (pinned && chatId != null) scrollToBottom(); }).observe(scroller);

  scroller.addEventListener('scroll', () => {
    pinned = isAtBottom() && !(chatId != null && box(chatId).hasNewer);
    updateToBottom();
    maybeLoadOlder();
    maybeLoadNewer();
    if (isAtBottom() && chatId != null) actions.markRead(chatId);
  }, { passive: true });
  scroller.addEventListener('wheel', (e) => { if (e.deltaY < 0) maybeLoadOlder(); }, { passive: true });

  // Drag and drop files onto the conversation.
  let dragDepth = 0;
  el.addEventListener('dragenter', (e) => { if (e.dataTransfer?.types?.includes('Files')) { dragDepth++; dropHint.hidden = false; } });
  el.addEventListener('dragleave', () => { dragDepth = Math.max(0, dragDepth - 1); if (!dragDepth) dropHint.hidden = true; });
  el.addEventListener('dragover', (e) => { if (e.dataTransfer?.types?.includes('Files')) e.preventDefault(); });
  el.addEventListener('drop', (e) => {
    dragDepth = 0;
    dropHint.hidden = true;
    const files = [...(e.dataTransfer?.files || [])];
    if (files.length) { e.preventDefault(); comp.sendFiles(files); }
  });

  const schedule = scheduler(render);
  on('messages', (id) => { if (id === chatId) schedule(); });
  on('older', (id) => { if (id === chatId) topLoader.hidden = !box(id).loadingOlder; });
  on('typing', (id) => { if (id === chatId) renderHead(); });
  on('presence', () => { if (chatId != null) renderHead(); });
  // A mute runs out on its own.
  setInterval(() => { if (chatId != null) renderHead(); }, 60000);
  on('chat', (id) => { if (id === chatId) schedule(); });
  on('progress', (cid) => {
    const p = state.outbox.find((x) => x.clientId === cid);
    const bar = list.querySelector(`[data-progress-for="${CSS.escape(cid)}"]`);
    if (p && bar) bar.style.width = `${Math.round((p.progress || 0) * 100)}%`;
  });

  let pendingJump = null;
  return {
    el,
    open(id) {
      sel.stop();
      find.close();
      chatId = id;
      initialScrolled = false;
      anchorId = null;
      anchorFound = 0;
      openUnread = state.chats.get(id)?.unreadCount || 0;
      clear(list);
      comp.setChat(id);
      const jump = pendingJump?.chatId === id ? pendingJump : null;
      pendingJump = null;
      if (jump) openUnread = 0;
      render();
      if (jump) jumpTo(jump.messageId, { ranges: jump.ranges });
      else actions.loadLatest(id);
    },
    /** The next open(chatId) shows that message (a search hit) instead of the newest. */
    openAt(id, messageId, ranges = null) {
      if (chatId === id) { jumpTo(messageId, { ranges }); return false; }
      pendingJump = { chatId: id, messageId, ranges };
      return true;
    },
    close() { sel.stop(); find.close(); chatId = null; comp.setChat(null); },
    focusComposer: () => comp.focus(),
    render: schedule,
    findMessage: (id) => findMessage(chatId, id),
  };
}
