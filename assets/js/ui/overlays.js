// Popup menus, confirm dialogs, the image viewer and toasts. Esc closes the topmost.

import { h, clear } from './dom.js';
import { icon } from './icons.js';

const stack = []; // close functions, topmost last

export function closeTop() {
  const fn = stack.pop();
  if (fn) { fn(); return true; }
  return false;
}

export function pushClose(fn) {
  stack.push(fn);
  return () => { const i = stack.indexOf(fn); if (i >= 0) stack.splice(i, 1); };
}

/**
 * A popup menu at an element or a point. items: [{label, icon, onSelect, danger, testid, sub}]
 * (`sub`: a second, smaller line under the label, e.g. a setting's current state).
 * `header(close)` may add nodes above the items; their buttons join the arrow-key order.
 */
export function popupMenu(anchor, items, { align = 'right', header = null } = {}) {
  closeMenus();
  const menu = h('div.popup-menu', { role: 'menu' });
  const prevFocus = document.activeElement;
  let unregister = null;
  const close = () => {
    unregister?.();
    menu.remove();
    document.removeEventListener('pointerdown', outside, true);
    if (prevFocus && document.contains(prevFocus)) prevFocus.focus({ preventScroll: true });
  };
  const outside = (e) => { if (!menu.contains(e.target)) close(); };
  // `header(close)`: nodes above the items (the message menu's reaction bar).
  if (header) menu.append(header(close));
  for (const it of items.filter(Boolean)) {
    menu.append(h(`button.menu-item${it.danger ? '.danger' : ''}`, {
      type: 'button', role: 'menuitem', 'data-testid': it.testid,
      onclick: (e) => { e.stopPropagation(); close(); it.onSelect(); },
    }, it.icon ? icon(it.icon) : null, it.sub ? h('span.menu-text', h('span', it.label), h('span.menu-sub', it.sub)) : h('span', it.label)));
  }
  menu.addEventListener('keydown', (e) => {
    const btns = [...menu.querySelectorAll('button')];
    const i = btns.indexOf(document.activeElement);
    if (e.key === 'ArrowDown') { e.preventDefault(); btns[(i + 1) % btns.length].focus(); }
    if (e.key === 'ArrowUp') { e.preventDefault(); btns[(i - 1 + btns.length) % btns.length].focus(); }
    if (e.key === 'Tab') close();
  });
  document.body.append(menu);
  const r = anchor instanceof Element ? anchor.getBoundingClientRect() : { left: anchor.x, right: anchor.x, top: anchor.y, bottom: anchor.y };
  const mw = menu.offsetWidth;
  const mh = menu.offsetHeight;
  let left = align === 'right' ? r.right - mw : r.left;
  let top = r.bottom + 4;
  if (top + mh > innerHeight - 8) top = Math.max(8, r.top - mh - 4);
  left = Math.min(Math.max(8, left), innerWidth - mw - 8);
  menu.style.left = `${left}px`;
  menu.style.top = `${top}px`;
  setTimeout(() => document.addEventListener('pointerdown', outside, true), 0);
  unregister = pushClose(close);
  menu.querySelector('button')?.focus({ preventScroll: true });
  menu._close = close;
  return close;
}

export function closeMenus() {
  for (const m of document.querySelectorAll('.popup-menu')) m._close?.();
}

/** A modal confirm dialog; resolves true/false. Never window.confirm(). */
export function confirmDialog({ title, body, confirmLabel = 'OK', danger = false }) {
  return choiceDialog({ title, body, choices: [{ label: confirmLabel, value: true, danger, testid: 'confirm-ok' }] }).then((v) => v === true);
}

/**
 * A modal dialog with several actions (e.g. "Delete for me" / "Delete for everyone"); resolves
 * with the chosen action's value, or null for Cancel, Esc or a click outside.
 */
export function choiceDialog({ title, body, choices }) {
  return new Promise((resolve) => {
    const prevFocus = document.activeElement;
    let unregister = null;
    const done = (v) => {
      unregister?.();
      overlay.remove();
      if (prevFocus && document.contains(prevFocus)) prevFocus.focus({ preventScroll: true });
      resolve(v);
    };
    const buttons = choices.map((c) => h(`button.btn${c.danger ? '.btn-danger' : '.btn-primary'}`, { type: 'button', 'data-testid': c.testid, onclick: () => done(c.value) }, c.label));
    const cancel = h('button.btn.btn-ghost', { type: 'button', 'data-testid': 'dialog-cancel', onclick: () => done(null) }, 'Cancel');
    const dialog = h(`div.dialog${choices.length > 1 ? '.stacked' : ''}`, { role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'dlg-title' },
      h('h2.dialog-title', { id: 'dlg-title' }, title),
      body ? h('p.dialog-body', body) : null,
      h('div.dialog-actions', choices.length > 1 ? [...buttons, cancel] : [cancel, ...buttons]));
    const overlay = h('div.modal-backdrop', { onclick: (e) => { if (e.target === overlay) done(null); } }, dialog);
    document.body.append(overlay);
    unregister = pushClose(() => done(null));
    trapFocus(dialog);
    buttons.at(-1)?.focus();
  });
}

export function trapFocus(root) {
  root.addEventListener('keydown', (e) => {
    if (e.key !== 'Tab') return;
    const f = [...root.querySelectorAll('button, a[href], input, textarea, [tabindex]:not([tabindex="-1"])')].filter((x) => !x.disabled);
    if (!f.length) return;
    const first = f[0];
    const last = f[f.length - 1];
    if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
  });
}

/** Full-size image viewer with close and download. */
export function openViewer({ src, fileName, caption, subtitle }) {
  const prevFocus = document.activeElement;
  let unregister = null;
  const close = () => {
    unregister?.();
    viewer.remove();
    if (prevFocus && document.contains(prevFocus)) prevFocus.focus({ preventScroll: true });
  };
  const closeBtn = h('button.icon-btn.on-dark', { type: 'button', 'aria-label': 'Close', title: 'Close (Esc)', onclick: close }, icon('close'));
  const dl = h('a.icon-btn.on-dark', { href: src, download: fileName || '', 'aria-label': 'Download', title: 'Download', 'data-testid': 'viewer-download' }, icon('download'));
  // Fitted to the stage (contain) at first; a click toggles the full size, scrollable, zoomed
  // in around the point clicked.
  const img = h('img.viewer-img', { src, alt: fileName || 'Image', 'data-testid': 'viewer-image', title: 'Click to zoom' });
  const stage = h('div.viewer-stage', { 'data-testid': 'viewer-stage' }, img);
  stage.addEventListener('click', (e) => {
    if (e.target !== img) { if (!stage.classList.contains('zoomed')) close(); return; }
    const r = img.getBoundingClientRect();
    const fx = (e.clientX - r.left) / r.width;
    const fy = (e.clientY - r.top) / r.height;
    const zoom = !stage.classList.contains('zoomed');
    stage.classList.toggle('zoomed', zoom);
    img.title = zoom ? 'Click to fit to the screen' : 'Click to zoom';
    if (zoom) {
      stage.scrollLeft = fx * stage.scrollWidth - stage.clientWidth / 2;
      stage.scrollTop = fy * stage.scrollHeight - stage.clientHeight / 2;
    }
  });
  const viewer = h('div.viewer', { role: 'dialog', 'aria-modal': 'true', 'aria-label': 'Image viewer', 'data-testid': 'image-viewer' },
    h('div.viewer-bar', h('div.viewer-title', h('div.viewer-name', caption || fileName || 'Photo'), subtitle ? h('div.viewer-sub', subtitle) : null), dl, closeBtn),
    stage);
  document.body.append(viewer);
  unregister = pushClose(close);
  trapFocus(viewer);
  closeBtn.focus();
}

let toastTimer = null;
export function toast(text, kind = '') {
  let el = document.querySelector('.toast');
  if (!el) { el = h('div.toast', { role: 'status', 'aria-live': 'polite' }); document.body.append(el); }
  clear(el).append(text);
  el.className = `toast show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = 'toast'; }, 3500);
}

document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && stack.length) {
    e.preventDefault();
    e.stopImmediatePropagation();
    closeTop();
  }
}, true);
