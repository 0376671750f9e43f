// Entry point: theme, the service worker, session check, then the login screen or the app.
// Offline (the server unreachable, or silent for BOOT_WAIT_MS), a signed-in browser starts
// from the chat list it kept (offline.js) and reconciles once the server answers.

import * as api from './api.js';
import { applyTheme } from './theme.js';
import { state, emit, on, mergeUser } from './store.js';
import * as actions from './actions.js';
import * as offline from './offline.js';
import * as notify from './notify.js';
import { startWorker, checkForUpdate } from './pwa.js';
import { authScreen } from './ui/auth.js';
import { mountApp } from './ui/app.js';
import { h, clear } from './ui/dom.js';

/** How long a start waits for /auth/me before it uses the kept chat list. */
const BOOT_WAIT_MS = 3000;

applyTheme();
const root = document.getElementById('app');

// The service worker (assets/sw.js): the app shell offline, upgrades, and Web Push. A click on
// a notification asks this window to open its chat.
startWorker({
  onOpenChat: async (chatId) => {
    if (chatId == null || !state.me) return;
    if (!state.chats.has(chatId)) await actions.fetchChat(chatId);
    location.hash = `#/c/${chatId}`;
  },
});

api.session.onUnauthorized = () => {
  // The token expired or was revoked: back to the login screen.
  actions.stopRealtime();
  notify.forget();
  offline.forget();
  api.setToken(null);
  location.reload();
};

function start(user, kept = null) {
  state.me = user;
  mergeUser(user);
  if (kept) offline.apply(kept);
  else if (offline.load()?.me.id !== user.id) offline.clear();
  state.emitOpen = () => emit('open');
  const app = mountApp(root);
  emit('chats');
  if (kept) { app.route(); actions.restoreOutbox(); }
  actions.loadConfig();
  actions.startRealtime();
  const load = () => actions.loadChats()
    .then(() => {
      app.route();
      actions.restoreOutbox();
      // Started from the kept copy: my profile may have changed meanwhile.
      if (kept) api.get('/auth/me').then((me) => { mergeUser(me); emit('me'); emit('chats'); }).catch(() => {});
    })
    .catch((e) => {
      emit('load-error', e.message);
      setTimeout(load, 3000);
    });
  load();
  offline.keepSaving();
  notify.reconcile();
  // A socket that (re)opens may be talking to an upgraded server: look for a new worker.
  on('conn', (s) => {
    if (s !== 'open') return;
    checkForUpdate();
    if (!state.config) actions.loadConfig();
  });
}

/** /auth/me, or the kept copy's user when the server is unreachable, failing or too slow. */
async function whoAmI(kept) {
  const me = api.get('/auth/me');
  if (!kept) return me;
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve(null), BOOT_WAIT_MS); });
  try {
    const answer = await Promise.race([me, late]);
    if (answer) return answer;
    // Too slow: start from the copy; a 401 arriving later still signs out (onUnauthorized).
    me.catch(() => {});
    return { ...kept.me, _kept: true };
  } catch (e) {
    if (e.status === 0 || e.status >= 500) return { ...kept.me, _kept: true };
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

async function boot() {
  if (!api.session.token) { authScreen(root, start); return; }
  const kept = offline.load();
  try {
    const me = await whoAmI(kept);
    if (me._kept) { delete me._kept; start(me, kept); } else start(me);
  } catch (e) {
    if (e.status === 401) { api.setToken(null); offline.clear(); authScreen(root, start); return; }
    clear(root).append(h('div.boot-error', h('p', e.message || 'Something went wrong.'),
      h('button.btn.btn-primary', { type: 'button', onclick: () => { root.classList.add('boot'); boot(); } }, 'Try again')));
    root.classList.remove('boot');
  }
}

boot();
