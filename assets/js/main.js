// Entry point: theme, session check, then the login screen or the app.

import * as api from './api.js';
import { applyTheme } from './theme.js';
import { state, emit, mergeUser } from './store.js';
import * as actions from './actions.js';
import { authScreen } from './ui/auth.js';
import { mountApp } from './ui/app.js';
import { h, clear } from './ui/dom.js';

applyTheme();
const root = document.getElementById('app');

// The service worker (assets/sw.js): the app shell offline, and Web Push.
// Browsers allow it on https:// and on localhost only.
if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(() => {});
}

api.session.onUnauthorized = () => {
  // The token expired or was revoked: back to the login screen.
  actions.stopRealtime();
  api.setToken(null);
  location.reload();
};

function start(user) {
  state.me = user;
  mergeUser(user);
  state.emitOpen = () => emit('open');
  const app = mountApp(root);
  emit('chats');
  actions.loadConfig();
  actions.startRealtime();
  const load = () => actions.loadChats()
    .then(() => { app.route(); actions.restoreOutbox(); })
    .catch((e) => {
      emit('load-error', e.message);
      setTimeout(load, 3000);
    });
  load();
}

async function boot() {
  if (!api.session.token) { authScreen(root, start); return; }
  try {
    const me = await api.get('/auth/me');
    start(me);
  } catch (e) {
    if (e.status === 401) { api.setToken(null); authScreen(root, start); return; }
    clear(root).append(h('div.boot-error', h('p', e.message || 'Something went wrong.'),
      h('button.btn.btn-primary', { type: 'button', onclick: () => { root.classList.add('boot'); boot(); } }, 'Try again')));
    root.classList.remove('boot');
  }
}

boot();
