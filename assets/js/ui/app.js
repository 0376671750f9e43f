// The signed-in app shell: two panes on desktop, one at a time on phones, the info panel,
// the connection banner, routing via the URL hash (#/c/<chatId>) so Back works on phones;
// the main menu (notifications on/off with their state, "Install app"), the new-version bar.

import { h, clear } from './dom.js';
import { icon } from './icons.js';
import { sidebar } from './sidebar.js';
import { conversation } from './conversation.js';
import { infoPanel } from './info.js';
import { newChatDrawer, newGroupDrawer, profileDrawer } from './drawers.js';
import { popupMenu, toast } from './overlays.js';
import { previewOf } from './common.js';
import { state, on, hooks, unreadTotal, chatTitle, userOf } from '../store.js';
import * as actions from '../actions.js';
import * as api from '../api.js';
import { currentTheme, toggleTheme, resetTheme, hasManualTheme } from '../theme.js';
import * as notify from '../notify.js';
import * as offline from '../offline.js';
import { pwa, install, isStandalone, closeNotifications } from '../pwa.js';
import { updateBar, notifyPrompt, enabledToast } from './notices.js';
import { openSearch } from './search.js';

export function mountApp(root) {
  const banner = h('div.conn-banner', { role: 'status', 'aria-live': 'polite', 'data-testid': 'conn-banner', hidden: true });
  const side = sidebar({
    onOpen: (id) => go(id),
    onNewChat: (q) => openNewChat(typeof q === 'string' ? q : ''),
    onNewGroup: () => openNewGroup(),
    onMenu: (anchor) => mainMenu(anchor),
    onProfile: () => profileDrawer(side.drawerHost),
    onSearchMessages: () => openMessageSearch(),
  });
  const conv = conversation({
    onBack: () => go(null),
    onInfo: () => toggleInfo(),
    onMessageInfo: (m) => { info.show({ kind: 'message', m }); setPanel(true); },
  });
  const info = infoPanel({ onClose: () => setPanel(false), onLeft: () => go(null) });
  const welcome = h('div.welcome', { 'data-testid': 'welcome' },
    h('img.welcome-logo', { src: 'favicon.svg', alt: '' }),
    h('h1.welcome-title', 'natter'),
    h('p.welcome-text', 'Select a chat to start messaging'),
    h('p.welcome-foot', icon('lock', 'pill-icon'), 'Your messages stay on your own server.'));
  // No chat is open until route() says so: the conversation pane starts hidden (not merely
  // unselected), so a fresh load never shows a composer that belongs to no chat.
  conv.el.hidden = true;
  const mainPane = h('section.main-pane', welcome, conv.el);
  const layout = h('div.layout', side.el, mainPane, info.el);
  side.notices.append(notifyPrompt());
  const app = h('div.app', { 'data-testid': 'app' }, banner, updateBar(), layout);
  clear(root).append(app);
  root.classList.remove('boot');
  root.removeAttribute('aria-busy');

  function setPanel(open) {
    layout.classList.toggle('has-panel', open);
    if (!open) conv.focusComposer();
  }
  function toggleInfo() {
    const open = layout.classList.contains('has-panel') && info.view?.kind === 'chat';
    if (open) { setPanel(false); return; }
    info.show({ kind: 'chat', chatId: state.openChatId });
    setPanel(true);
  }

  function go(chatId) {
    const target = chatId == null ? '#/' : `#/c/${chatId}`;
    if (location.hash !== target) location.hash = target;
    else route();
  }

  function route() {
    const m = location.hash.match(/^#\/c\/(\d+)$/);
    const id = m ? Number(m[1]) : null;
    if (id != null && !state.chats.has(id)) {
      if (state.chatsLoaded) history.replaceState(null, '', '#/');
      return showChat(null);
    }
    showChat(id);
  }

  function showChat(id) {
    if (state.openChatId === id) return;
    state.openChatId = id;
    layout.classList.toggle('has-chat', id != null);
    welcome.hidden = id != null;
    conv.el.hidden = id == null;
    if (layout.classList.contains('has-panel')) {
      if (id != null && info.view?.kind === 'chat') info.show({ kind: 'chat', chatId: id });
      else setPanel(false);
    }
    if (id != null) {
      if (document.visibilityState === 'visible') closeNotifications(id);
      conv.open(id);
      if (matchMedia('(min-width: 900px)').matches) conv.focusComposer();
    } else conv.close();
    state.emitOpen?.();
  }

  function openNewChat(q = '') {
    newChatDrawer(side.drawerHost, { onOpened: (id) => go(id), onNewGroup: () => openNewGroup(), query: q });
  }
  function openNewGroup() {
    newGroupDrawer(side.drawerHost, { onOpened: (id) => go(id) });
  }

  function mainMenu(anchor) {
    const dark = currentTheme() === 'dark';
    const [notifyLabel, notifyState] = notify.menuText();
    popupMenu(anchor, [
      { label: 'Profile', icon: 'person', onSelect: () => profileDrawer(side.drawerHost) },
      { label: 'New group', icon: 'group', onSelect: () => openNewGroup() },
      { label: dark ? 'Light theme' : 'Dark theme', icon: 'moon', testid: 'toggle-theme', onSelect: () => toggleTheme() },
      hasManualTheme() ? { label: 'Use system theme', icon: 'moon', onSelect: () => resetTheme() } : null,
      { label: notifyLabel, sub: notifyState, icon: notify.notifyState() === 'on' ? 'bell' : 'bellOff', testid: 'menu-notifications', onSelect: () => toggleNotifications() },
      pwa.installOffer && !isStandalone() ? { label: 'Install app', icon: 'install', testid: 'menu-install', onSelect: () => installApp() } : null,
      { label: 'Log out', icon: 'logout', danger: true, testid: 'logout', onSelect: () => logout() },
    ]);
  }

  async function toggleNotifications() {
    switch (notify.notifyState()) {
      case 'on':
        await notify.disable();
        toast('Notifications are off on this device.');
        break;
      case 'off':
        enabledToast(await notify.enable());
        break;
      case 'blocked':
        toast('Notifications are blocked for this site. Allow them in the browser’s site settings, then reload.');
        break;
      case 'insecure':
        toast('Notifications need natter to be served over HTTPS (or opened on localhost).');
        break;
      default:
        toast('This browser cannot show notifications.');
    }
  }

  async function installApp() {
    const outcome = await install();
    if (outcome === 'accepted') toast('natter is installed. Open it like any other app.');
  }

  async function logout() {
    // While the token still works: this browser stops getting this person's pushes.
    await notify.signOut();
    offline.forget();
    try { await api.post('/auth/logout'); } catch { /* the token goes anyway */ }
    actions.stopRealtime();
    api.setToken(null);
    location.hash = '';
    location.reload();
  }

  // ---- connection banner ----------------------------------------------------------
  let bannerTimer = null;
  let bannerShown = false;
  function setBanner(kind, text) {
    clearTimeout(bannerTimer);
    if (!kind) { banner.hidden = true; bannerShown = false; return; }
    banner.className = `conn-banner ${kind}`;
    clear(banner).append(kind === 'ok' ? icon('check') : h('span.spinner.small'), h('span', text));
    banner.hidden = false;
    bannerShown = kind !== 'ok';
  }
  function connChanged(s) {
    clearTimeout(bannerTimer);
    if (s === 'open') {
      if (!bannerShown) banner.hidden = true;
      return;
    }
    if (s === 'offline') { setBanner('warn', 'You’re offline. Messages will be sent when you reconnect.'); return; }
    bannerTimer = setTimeout(() => setBanner('warn', 'Connecting…'), bannerShown ? 0 : 1200);
  }
  on('conn', connChanged);
  // The first connection has not happened yet: if it fails, the socket stays "connecting"
  // (no change to announce), so the banner must be armed now.
  connChanged(state.conn);
  on('reconnected', () => {
    if (!bannerShown) return;
    setBanner('ok', 'Reconnected');
    bannerTimer = setTimeout(() => setBanner(null), 2000);
  });

  // ---- title, notifications ---------------------------------------------------------
  on('chats', () => {
    const n = unreadTotal();
    document.title = n ? `(${n}) natter` : 'natter';
    if (state.openChatId != null && !state.chats.has(state.openChatId)) go(null);
  });
  on('chat-removed', (id) => {
    if (state.openChatId !== id) return;
    toast(state.leftByMe === id ? 'You left the group.' : 'You are no longer in that chat.');
    state.leftByMe = null;
    go(null);
  });

  // While the tab is hidden (a push would not come: this tab's socket is open), on the same
  // terms as a push: one notification per chat, none for muted chats (notify.js).
  hooks.notify = (chat, m) => {
    notify.notifyInTab(chat, { title: chatTitle(chat), senderName: userOf(m.senderId).name, text: previewOf(m).text });
  };

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible' || state.openChatId == null) return;
    actions.markRead(state.openChatId);
    closeNotifications(state.openChatId);
  });
  addEventListener('focus', () => { if (state.openChatId != null) actions.markRead(state.openChatId); });

  // ---- keyboard -------------------------------------------------------------------------
  document.addEventListener('keydown', (e) => {
    // Ctrl/Cmd+K: search messages (and chat names) across every chat (search.js).
    if ((e.ctrlKey || e.metaKey) && !e.shiftKey && !e.altKey && (e.key === 'k' || e.key === 'K')) {
      e.preventDefault();
      openMessageSearch();
      return;
    }
    if (e.key === 'Escape') {
      const drawer = side.drawerHost.querySelector('.drawer.open');
      if (layout.classList.contains('has-panel')) { setPanel(false); e.preventDefault(); return; }
      if (drawer) { drawer.querySelector('.drawer-head .icon-btn')?.click(); e.preventDefault(); }
    }
  });

  function openMessageSearch() {
    openSearch({
      onOpenChat: (id) => go(id),
      onOpenMessage: (id, messageId, ranges) => { if (!conv.openAt(id, messageId, ranges)) return; if (state.openChatId === id) conv.open(id); else go(id); },
    });
  }

  addEventListener('hashchange', route);
  return { route, conv };
}
