// The right-hand panel: contact info, group info (members, admin actions, rename, leave)
// and message info (who received and read a message, when).

import { h, clear, append, scheduler } from './dom.js';
import { icon } from './icons.js';
import { avatar, chatAvatar, iconButton, previewOf, spinner, userAvatar } from './common.js';
import { popupMenu, confirmDialog, toast } from './overlays.js';
import { userPicker } from './drawers.js';
import { fmtFull, fmtLastSeen } from '../util.js';
import { state, on, chatTitle, userOf, otherUserId, isAdmin } from '../store.js';
import * as actions from '../actions.js';
import { photoButton } from './crop.js';

export function infoPanel({ onClose, onLeft }) {
  const title = h('h2.panel-title');
  const body = h('div.panel-body');
  const el = h('aside.info-panel', { 'aria-label': 'Details', 'data-testid': 'info-panel' },
    h('header.panel-head', iconButton('close', 'Close', () => onClose(), { 'data-testid': 'info-close' }), title), body);
  let view = null; // {kind: 'chat', chatId} | {kind: 'message', m} | {kind: 'add', chatId}

  function show(v) { view = v; render(); }

  function render() {
    if (!view) return;
    if (view.kind === 'message') return renderMessageInfo(view.m);
    const chat = state.chats.get(view.chatId);
    if (!chat) { onClose(); return; }
    if (view.kind === 'add') return renderAdd(chat);
    if (chat.isGroup) renderGroup(chat); else renderContact(chat);
  }

  function renderContact(chat) {
    title.textContent = 'Contact info';
    const u = userOf(otherUserId(chat));
    clear(body).append(h('section.panel-hero',
      avatar({ id: u.id, name: u.name, url: u.avatarUrl, size: 'xxl' }),
      h('h3.hero-name', u.name),
      h('p.hero-sub', u.email),
      h('p.hero-presence', u.online ? 'online' : (u.lastSeen ? fmtLastSeen(u.lastSeen) : 'offline'))));
  }

  function renderGroup(chat) {
    title.textContent = 'Group info';
    const admin = isAdmin(chat);
    const nameEl = h('h3.hero-name', { 'data-testid': 'group-name' }, chatTitle(chat));
    const groupPhoto = admin
      ? photoButton({
        avatarEl: chatAvatar(chat, 'xxl', false),
        label: chat.groupAvatar ? 'Change group photo' : 'Add group photo',
        testid: 'group-avatar-input',
        onCropped: (blob) => actions.setGroupAvatar(chat.id, blob),
        onError: (m) => toast(m, 'error'),
      })
      : chatAvatar(chat, 'xxl', false);
    const hero = h('section.panel-hero', groupPhoto,
      h('div.hero-name-row', nameEl, admin ? iconButton('edit', 'Rename group', () => startRename(chat, hero, nameEl), { 'data-testid': 'rename-group' }) : null),
      h('p.hero-sub', `Group · ${chat.participants.length} member${chat.participants.length === 1 ? '' : 's'}`));
    const members = [...chat.participants].sort((a, b) => {
      if (a.userId === state.me.id) return -1;
      if (b.userId === state.me.id) return 1;
      return (b.isAdmin - a.isAdmin) || userOf(a.userId).name.localeCompare(userOf(b.userId).name);
    });
    const list = h('div.member-list', { role: 'list' });
    if (admin) {
      list.append(h('button.action-row', { type: 'button', 'data-testid': 'add-members-button', onclick: () => show({ kind: 'add', chatId: chat.id }) },
        h('span.action-icon', icon('personAdd')), h('span', 'Add members')));
    }
    for (const p of members) {
      const u = userOf(p.userId);
      const me = p.userId === state.me.id;
      const rowEl = h(`div.member-row${admin && !me ? '.clickable' : ''}`, { role: 'listitem', 'data-testid': 'member-row', 'data-user-id': p.userId, tabindex: admin && !me ? '0' : null },
        userAvatar(p.userId, 'md', true),
        h('span.member-text', h('span.member-name', me ? 'You' : u.name), h('span.member-sub', u.online && !me ? 'online' : (u.email || ''))),
        p.isAdmin ? h('span.admin-tag', 'Group admin') : null);
      if (admin && !me) {
        const open = (anchor) => popupMenu(anchor, [
          p.isAdmin
            ? { label: 'Dismiss as admin', icon: 'shield', testid: 'dismiss-admin', onSelect: () => run(() => actions.setAdmin(chat.id, p.userId, false)) }
            : { label: 'Make group admin', icon: 'shield', testid: 'make-admin', onSelect: () => run(() => actions.setAdmin(chat.id, p.userId, true)) },
          { label: `Remove ${u.name}`, icon: 'trash', danger: true, testid: 'remove-member', onSelect: () => confirmRemove(chat, u) },
        ]);
        rowEl.addEventListener('click', () => open(rowEl.querySelector('.member-name')));
        rowEl.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(rowEl.querySelector('.member-name')); } });
      }
      list.append(rowEl);
    }
    const leave = h('button.action-row.danger', { type: 'button', 'data-testid': 'leave-group', onclick: () => confirmLeave(chat) },
      h('span.action-icon', icon('logout')), h('span', 'Exit group'));
    clear(body).append(hero, h('section.panel-section', h('p.section-label', `${chat.participants.length} member${chat.participants.length === 1 ? '' : 's'}`), list),
      h('section.panel-section', leave));
  }

  async function run(fn) {
    try { await fn(); } catch (e) { toast(e.message, 'error'); }
  }

  function startRename(chat, hero, nameEl) {
    const input = h('input.input', { type: 'text', maxlength: 100, value: chat.name || '', 'aria-label': 'Group name', 'data-testid': 'rename-input' });
    const err = h('div.field-error', { role: 'alert' });
    const save = async () => {
      const n = input.value.trim();
      if (!n) { err.textContent = 'The group needs a name'; return; }
      try { await actions.renameGroup(chat.id, n); render(); } catch (e) { err.textContent = e.message; }
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') save();
      if (e.key === 'Escape') { e.stopPropagation(); render(); }
    });
    const row = nameEl.parentElement;
    row.replaceWith(h('div.inline-edit', input, iconButton('check', 'Save name', save)), err);
    input.focus();
    input.select();
  }

  async function confirmRemove(chat, u) {
    const ok = await confirmDialog({ title: `Remove ${u.name}?`, body: `${u.name} will lose “${chatTitle(chat)}”: the chat and its whole history disappear from their devices, and they can no longer send or receive messages here.`, confirmLabel: 'Remove', danger: true });
    if (ok) run(() => actions.removeMember(chat.id, u.id));
  }

  async function confirmLeave(chat) {
    const ok = await confirmDialog({ title: `Exit “${chatTitle(chat)}”?`, body: 'You will stop receiving messages from this group.', confirmLabel: 'Exit group', danger: true });
    if (!ok) return;
    try { await actions.removeMember(chat.id, state.me.id); onLeft(chat.id); } catch (e) { toast(e.message, 'error'); }
  }

  function renderAdd(chat) {
    title.textContent = 'Add members';
    const existing = new Set(chat.participants.map((p) => p.userId));
    const addBtn = h('button.btn.btn-primary.btn-block', { type: 'button', disabled: true, 'data-testid': 'add-members-confirm' }, 'Add');
    const err = h('div.field-error', { role: 'alert' });
    const picker = userPicker({ multi: true, exclude: existing, onChange: (sel) => { addBtn.disabled = !sel.size; addBtn.textContent = sel.size ? `Add ${sel.size}` : 'Add'; } });
    addBtn.onclick = async () => {
      addBtn.disabled = true;
      try {
        await actions.addMembers(chat.id, [...picker.selected.keys()]);
        show({ kind: 'chat', chatId: chat.id });
      } catch (e) { err.textContent = e.message; addBtn.disabled = false; }
    };
    clear(body).append(h('div.panel-pad', picker.el), h('div.panel-foot', err, h('div.foot-actions',
      h('button.btn.btn-ghost', { type: 'button', onclick: () => show({ kind: 'chat', chatId: chat.id }) }, 'Cancel'), addBtn)));
    picker.input.focus();
  }

  async function renderMessageInfo(m) {
    title.textContent = 'Message info';
    const p = previewOf(m);
    const wrap = h('div.panel-pad');
    clear(body).append(h('div.info-bubble-wrap', h('div.info-bubble', h('span', p.text || ' '), h('span.info-bubble-time', fmtFull(m.createdAt)))), wrap);
    wrap.append(spinner('Loading receipts'));
    let items = [];
    try {
      items = (await actions.receipts(m)).items || [];
    } catch (e) {
      clear(wrap).append(h('p.field-error', e.message));
      return;
    }
    if (view?.kind !== 'message' || view.m.id !== m.id) return;
    const read = items.filter((r) => r.readAt).sort((a, b) => a.readAt.localeCompare(b.readAt));
    const delivered = items.filter((r) => !r.readAt && r.deliveredAt);
    const waiting = items.filter((r) => !r.readAt && !r.deliveredAt);
    const section = (label, rows, when, testid) => h('section.receipt-section', { 'data-testid': testid },
      h('p.section-label', label),
      rows.length ? rows.map((r) => h('div.member-row', userAvatar(r.userId, 'sm'),
        h('span.member-text', h('span.member-name', userOf(r.userId).name), h('span.member-sub', when(r))))) : h('p.muted', '—'));
    append(clear(wrap), [
      section('Read by', read, (r) => fmtFull(r.readAt), 'receipts-read'),
      section('Delivered to', delivered, (r) => fmtFull(r.deliveredAt), 'receipts-delivered'),
      waiting.length ? section('Waiting', waiting, () => 'not delivered yet', 'receipts-waiting') : null]);
  }

  const schedule = scheduler(() => { if (view && view.kind === 'chat') render(); });
  on('chat', (id) => { if (view?.chatId === id) schedule(); });
  on('presence', schedule);
  on('chat-removed', (id) => { if (view?.chatId === id) onClose(); });

  return { el, show, get view() { return view; } };
}
