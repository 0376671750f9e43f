// Slide-over panels in the left pane: new chat, new group, profile; and the user picker
// that the group info panel reuses for "Add members".

import { h, clear } from './dom.js';
import { icon } from './icons.js';
import { avatar, iconButton, spinner } from './common.js';
import { debounce, fmtLastSeen } from '../util.js';
import { state, emit, mergeUser } from '../store.js';
import * as actions from '../actions.js';
import * as api from '../api.js';
import { photoButton } from './crop.js';

export function drawer(host, title, { onClose } = {}) {
  const body = h('div.drawer-body');
  const back = iconButton('back', 'Back', () => close());
  const el = h('section.drawer', { 'aria-label': title, role: 'dialog' }, h('header.drawer-head', back, h('h2.drawer-title', title)), body);
  clear(host).append(el);
  requestAnimationFrame(() => el.classList.add('open'));
  function close() {
    el.classList.remove('open');
    setTimeout(() => el.remove(), 180);
    onClose?.();
  }
  el.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.stopPropagation(); close(); } });
  return { el, body, close, setTitle: (t) => { el.querySelector('.drawer-title').textContent = t; } };
}

/** Search users; multi-select shows chips. */
export function userPicker({ multi = false, exclude = new Set(), onPick, onChange, initialQuery = '' }) {
  const selected = new Map();
  const input = h('input.search-input', {
    type: 'search', placeholder: 'Search name or email', 'aria-label': 'Search people', 'data-testid': 'user-search-input',
    autocomplete: 'off', spellcheck: 'false', value: initialQuery,
  });
  const chips = h('div.chips');
  const results = h('div.user-results', { role: 'listbox', 'aria-label': 'People', 'aria-multiselectable': multi ? 'true' : null });
  const status = h('div.picker-status', { 'aria-live': 'polite' });
  let seq = 0;

  function renderChips() {
    clear(chips);
    for (const u of selected.values()) {
      chips.append(h('span.chip', avatar({ id: u.id, name: u.name, url: u.avatarUrl, size: 'xs' }), h('span.chip-name', u.name),
        h('button.chip-x', { type: 'button', 'aria-label': `Remove ${u.name}`, onclick: () => { selected.delete(u.id); renderChips(); search(); onChange?.(selected); } }, icon('close'))));
    }
    chips.hidden = !selected.size;
  }

  async function search() {
    const q = input.value.trim();
    const my = ++seq;
    clear(status).append(spinner('Searching'));
    let users = [];
    try {
      users = await actions.searchUsers(q);
    } catch (e) {
      if (my !== seq) return;
      clear(results);
      clear(status).append(q ? e.message : 'Type a name or email to find people.');
      return;
    }
    if (my !== seq) return;
    users = users.filter((u) => u.id !== state.me.id && !exclude.has(u.id));
    clear(status);
    clear(results);
    if (!users.length) status.append(q ? `No one found for “${q}”.` : 'No other people on this server yet.');
    for (const u of users) {
      const on = selected.has(u.id);
      results.append(h(`button.user-row${on ? '.selected' : ''}`, {
        type: 'button', role: 'option', 'aria-selected': on ? 'true' : 'false', 'data-testid': 'user-result', 'data-user-id': u.id, 'data-name': u.name,
        onclick: () => {
          if (!multi) { onPick?.(u); return; }
          if (selected.has(u.id)) selected.delete(u.id); else selected.set(u.id, u);
          renderChips();
          search();
          onChange?.(selected);
          input.focus();
        },
      },
      avatar({ id: u.id, name: u.name, url: u.avatarUrl, size: 'md', online: u.online }),
      h('span.user-row-text', h('span.user-row-name', u.name), h('span.user-row-sub', u.online ? 'online' : (u.lastSeen ? fmtLastSeen(u.lastSeen) : u.email))),
      multi ? h('span.check-box', { 'aria-hidden': 'true' }, on ? icon('check') : null) : null));
    }
  }
  const debounced = debounce(search, 200);
  input.addEventListener('input', debounced);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown') { e.preventDefault(); results.querySelector('button')?.focus(); }
    if (e.key === 'Enter') { e.preventDefault(); results.querySelector('button')?.click(); }
  });
  results.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const rows = [...results.querySelectorAll('button')];
    const i = rows.indexOf(document.activeElement);
    e.preventDefault();
    const next = rows[i + (e.key === 'ArrowDown' ? 1 : -1)];
    if (next) next.focus(); else if (e.key === 'ArrowUp') input.focus();
  });
  renderChips();
  search();
  const el = h('div.picker', chips, h('div.search-box.in-drawer', icon('search', 'search-icon'), input), status, results);
  return { el, input, selected, refresh: search };
}

export function newChatDrawer(host, { onOpened, onNewGroup, query = '' }) {
  const d = drawer(host, 'New chat');
  const picker = userPicker({
    initialQuery: query,
    onPick: async (u) => {
      try {
        const chat = await actions.createChat([u.id], false);
        d.close();
        onOpened(chat.id);
      } catch (e) { err.textContent = e.message; }
    },
  });
  const err = h('div.form-error', { role: 'alert' });
  const groupRow = h('button.action-row', { type: 'button', onclick: () => { d.close(); onNewGroup(); } },
    h('span.action-icon', icon('group')), h('span', 'New group'));
  d.body.append(groupRow, err, picker.el);
  picker.input.focus();
  return d;
}

export function newGroupDrawer(host, { onOpened }) {
  const d = drawer(host, 'Add group members');
  let picker = null;
  const next = h('button.fab', { type: 'button', 'aria-label': 'Next', title: 'Next', disabled: true, 'data-testid': 'group-next' }, icon('back', 'flip'));
  function step1() {
    d.setTitle('Add group members');
    clear(d.body);
    picker = picker || userPicker({ multi: true, onChange: (sel) => { next.disabled = !sel.size; } });
    next.disabled = !picker.selected.size;
    next.onclick = step2;
    d.body.append(picker.el, h('div.fab-bar', next));
    picker.input.focus();
  }
  function step2() {
    d.setTitle('New group');
    clear(d.body);
    const name = h('input.input', { type: 'text', maxlength: 100, placeholder: 'Group name', 'aria-label': 'Group name', 'data-testid': 'group-name-input' });
    const err = h('div.field-error', { role: 'alert' });
    const create = h('button.fab', { type: 'button', 'aria-label': 'Create group', title: 'Create group', 'data-testid': 'group-create' }, icon('check'));
    const members = [...picker.selected.values()];
    const go = async () => {
      const n = name.value.trim();
      if (!n) { err.textContent = 'Give the group a name'; name.focus(); return; }
      create.disabled = true;
      try {
        const chat = await actions.createChat(members.map((u) => u.id), true, n);
        d.close();
        onOpened(chat.id);
      } catch (e) { err.textContent = e.message; create.disabled = false; }
    };
    create.onclick = go;
    name.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
    d.body.append(
      h('div.group-setup', h('span.avatar.av-xl.av-c3', { 'aria-hidden': 'true' }, icon('group')), h('div.field.grow', name, err)),
      h('p.section-label', `${members.length} member${members.length > 1 ? 's' : ''}`),
      h('div.member-preview', members.map((u) => h('span.chip', avatar({ id: u.id, name: u.name, size: 'xs' }), h('span.chip-name', u.name)))),
      h('div.fab-bar', h('button.btn.btn-ghost', { type: 'button', onclick: step1 }, 'Back'), create));
    name.focus();
  }
  step1();
  return d;
}

export function profileDrawer(host) {
  const d = drawer(host, 'Profile');
  const me = state.me;
  const name = h('input.input', { type: 'text', maxlength: 100, value: me.name, 'aria-label': 'Your name' });
  const err = h('div.field-error', { role: 'alert' });
  const save = h('button.btn.btn-primary', { type: 'button' }, 'Save');
  save.onclick = async () => {
    const n = name.value.trim();
    if (!n) { err.textContent = 'Your name can’t be empty'; return; }
    save.disabled = true;
    err.textContent = '';
    try {
      const u = await api.patch('/auth/me', { name: n });
      state.me = { ...state.me, ...u };
      mergeUser(u);
      emit('me');
      emit('chats');
      err.textContent = 'Saved';
    } catch (e) { err.textContent = e.message; }
    save.disabled = false;
  };
  const top = h('div.profile-top');
  const renderPhoto = () => {
    const cur = state.me;
    top.replaceChildren(photoButton({
      avatarEl: avatar({ id: cur.id, name: cur.name, url: cur.avatarUrl, size: 'xxl' }),
      label: cur.avatarUrl ? 'Change profile photo' : 'Add profile photo',
      testid: 'avatar-input',
      onCropped: async (blob) => { await actions.setMyAvatar(blob); err.textContent = 'Photo saved'; renderPhoto(); },
      onError: (m) => { err.textContent = m; },
    }), cur.avatarUrl ? h('button.link-btn.photo-remove', {
      type: 'button', 'data-testid': 'avatar-remove',
      onclick: async () => { try { await actions.setMyAvatar(null); renderPhoto(); } catch (e) { err.textContent = e.message; } },
    }, 'Remove photo') : null);
  };
  renderPhoto();
  d.body.append(
    top,
    h('label.section-label', { for: 'profile-name' }, 'Your name'),
    h('div.inline-edit', name, save), err,
    h('p.section-label', 'Email'), h('p.profile-email', me.email));
  name.id = 'profile-name';
  return d;
}
