// Calm notices the app shows above its content: "A new version of natter is available —
// Reload" (a new service worker waits, see pwa.js) and the one-time offer to turn on
// notifications (after a sent message; "Not now" keeps it away for a while, see notify.js).

import { h } from './dom.js';
import { icon } from './icons.js';
import { toast } from './overlays.js';
import { on } from '../store.js';
import { pwa, applyUpdate } from '../pwa.js';
import * as notify from '../notify.js';

/** The top bar offering the new version; shown once a new worker is ready. */
export function updateBar() {
  const reload = h('button.btn.btn-small.btn-primary', {
    type: 'button', 'data-testid': 'update-reload',
    onclick: () => { reload.disabled = true; applyUpdate(); },
  }, 'Reload');
  const el = h('div.update-bar', { role: 'status', 'aria-live': 'polite', 'data-testid': 'update-prompt', hidden: !pwa.waiting },
    icon('refresh'), h('span.update-text', 'A new version of natter is available.'), reload);
  on('update-ready', () => { el.hidden = false; });
  return el;
}

/** The toast that tells what turning notifications on did. */
export function enabledToast(r) {
  if (r.state === 'on' && !r.error) toast('Notifications are on. New messages reach you even when natter is closed.');
  else if (r.state === 'on') toast(`Notifications are on while natter is open. ${r.error}`);
  else if (r.state === 'blocked') toast('Notifications are blocked by the browser.');
  else toast('Notifications stay off.');
}

/** The offer to turn notifications on, at the top of the chat list. */
export function notifyPrompt() {
  const enable = h('button.btn.btn-small.btn-primary', {
    type: 'button', 'data-testid': 'notify-enable',
    onclick: async () => { enable.disabled = true; enabledToast(await notify.enable()); enable.disabled = false; },
  }, 'Turn on');
  const later = h('button.btn.btn-small.btn-ghost', { type: 'button', 'data-testid': 'notify-dismiss', onclick: () => notify.dismissPrompt() }, 'Not now');
  const el = h('section.notify-prompt', { 'aria-labelledby': 'notify-prompt-title', 'data-testid': 'notify-prompt', hidden: true },
    h('span.np-icon', icon('bellOff')),
    h('div.np-body',
      h('h2.np-title', { id: 'notify-prompt-title' }, 'Get notified of new messages'),
      h('p.np-text', 'Turn on notifications to hear about new messages when natter is in the background or closed.'),
      h('div.np-actions', enable, later)));
  const render = () => { el.hidden = !notify.push.prompt; };
  on('notify', render);
  render();
  return el;
}
