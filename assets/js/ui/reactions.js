// Reactions in the conversation: the quick bar (six emoji and "+", from the React button beside
// a bubble or at the top of the message menu), the full picker (a built-in grid, nothing is
// fetched), the chips under a bubble (mine highlighted; a click on mine removes it, on another
// one reacts with that emoji) and the list of who reacted (right-click or long-press of a chip,
// or the message menu's "Reactions" item).

import { h, clear } from './dom.js';
import { icon } from './icons.js';
import { userAvatar } from './common.js';
import { pushClose, trapFocus, toast } from './overlays.js';
import { state, userOf, findMessage } from '../store.js';
import { QUICK_EMOJI, react, reactionOf } from '../find.js';

/** The full picker's emoji, by group; each with the name a screen reader says and search uses. */
const GROUPS = [
  ['Smileys', '😀 grinning|😃 smiley|😄 smile|😁 grin|😆 laughing|😅 sweat smile|🤣 rolling on the floor|😂 joy|🙂 slightly smiling|😉 wink|😊 blush|😇 innocent|🥰 smiling with hearts|😍 heart eyes|🤩 star struck|😘 kiss|😋 yum|😛 tongue|😜 winking tongue|🤪 zany|🤗 hug|🤭 hand over mouth|🤫 shush|🤔 thinking|🤐 zipper mouth|🤨 raised eyebrow|😐 neutral|😑 expressionless|😶 no mouth|😏 smirk|😒 unamused|🙄 eye roll|😬 grimace|😌 relieved|😔 pensive|😪 sleepy|😴 sleeping|😷 mask|🤒 thermometer|🤢 nauseated|🤯 mind blown|🥳 party|😎 sunglasses|🤓 nerd|🧐 monocle|😕 confused|😟 worried|🙁 frowning|😮 open mouth|😯 hushed|😲 astonished|😳 flushed|🥺 pleading|😦 frowning open mouth|😨 fearful|😰 anxious|😥 sad relieved|😢 cry|😭 sob|😱 scream|😖 confounded|😣 persevere|😞 disappointed|😓 sweat|😩 weary|😫 tired|🥱 yawn|😤 triumph|😡 pout|😠 angry|🤬 cursing|😈 smiling imp|💀 skull|💩 poop|🤡 clown|👻 ghost|👽 alien|🤖 robot'],
  ['Gestures', '👍 thumbs up|👎 thumbs down|👌 ok hand|🤌 pinched fingers|✌️ victory|🤞 crossed fingers|🤟 love you|🤘 rock on|🤙 call me|👈 left|👉 right|👆 up|👇 down|☝️ point up|✋ raised hand|👋 wave|🖐️ hand|🖖 vulcan|👏 clap|🙌 raised hands|👐 open hands|🤲 palms up|🤝 handshake|🙏 pray|✍️ writing|💪 muscle|👀 eyes|🧠 brain|🫶 heart hands'],
  ['Hearts', '❤️ red heart|🧡 orange heart|💛 yellow heart|💚 green heart|💙 blue heart|💜 purple heart|🖤 black heart|🤍 white heart|🤎 brown heart|💔 broken heart|❣️ heart exclamation|💕 two hearts|💞 revolving hearts|💓 beating heart|💗 growing heart|💖 sparkling heart|💘 heart with arrow|💝 heart with ribbon'],
  ['Nature and food', '🐶 dog|🐱 cat|🐭 mouse|🦊 fox|🐻 bear|🐼 panda|🐨 koala|🐯 tiger|🦁 lion|🐮 cow|🐷 pig|🐸 frog|🐵 monkey|🐔 chicken|🐧 penguin|🐦 bird|🦄 unicorn|🐝 bee|🦋 butterfly|🌸 blossom|🌹 rose|🌻 sunflower|🌲 tree|🍀 clover|🔥 fire|⭐ star|🌟 glowing star|✨ sparkles|⚡ lightning|☀️ sun|🌈 rainbow|☔ umbrella|❄️ snowflake|🍎 apple|🍕 pizza|🍔 burger|🍟 fries|🌮 taco|🍣 sushi|🍰 cake|🎂 birthday cake|🍩 doughnut|🍪 cookie|🍫 chocolate|☕ coffee|🍵 tea|🍺 beer|🍻 cheers|🍷 wine|🥂 toast'],
  ['Things and symbols', '🎉 tada|🎊 confetti|🎈 balloon|🎁 gift|🏆 trophy|🥇 gold medal|⚽ soccer|🏀 basketball|🎮 video game|🎵 music|🎧 headphones|📷 camera|💻 laptop|📱 phone|💡 bulb|📌 pin|📎 paperclip|📝 memo|📅 calendar|⏰ alarm|🔒 lock|🔑 key|🛠️ tools|🚀 rocket|✈️ plane|🚗 car|🏠 house|💰 money|💯 hundred|✅ check|❌ cross|❓ question|❗ exclamation|⚠️ warning|🆗 ok|🆒 cool|🆕 new|➕ plus|➖ minus|👑 crown|💎 gem'],
].map(([name, list]) => [name, list.split('|').map((x) => { const i = x.indexOf(' '); return [x.slice(0, i), x.slice(i + 1)]; })]);

const NAMES = new Map(GROUPS.flatMap(([, list]) => list));
/** What a screen reader calls an emoji ("thumbs up"), or the emoji itself. */
export const emojiName = (e) => NAMES.get(e) || e;

/**
 * A floating panel at `anchor` (an element or {x, y}): closes on Esc, a click outside, or
 * `close()`; focus goes back to where it was. Returns close.
 */
export function popover(anchor, node, { placement = 'above', align = 'left', onClose } = {}) {
  const prevFocus = document.activeElement;
  let unregister = null;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    unregister?.();
    node.remove();
    document.removeEventListener('pointerdown', outside, true);
    onClose?.();
    if (prevFocus && document.contains(prevFocus)) prevFocus.focus({ preventScroll: true });
  };
  const outside = (e) => { if (!node.contains(e.target)) close(); };
  node.classList.add('popover');
  document.body.append(node);
  const r = anchor instanceof Element ? anchor.getBoundingClientRect() : { left: anchor.x, right: anchor.x, top: anchor.y, bottom: anchor.y };
  const w = node.offsetWidth;
  const hgt = node.offsetHeight;
  let left = align === 'right' ? r.right - w : r.left;
  let top = placement === 'above' ? r.top - hgt - 6 : r.bottom + 6;
  if (top < 8) top = r.bottom + 6;
  if (top + hgt > innerHeight - 8) top = Math.max(8, r.top - hgt - 6);
  left = Math.min(Math.max(8, left), innerWidth - w - 8);
  node.style.left = `${left}px`;
  node.style.top = `${top}px`;
  setTimeout(() => document.addEventListener('pointerdown', outside, true), 0);
  unregister = pushClose(close);
  node._close = close;
  return close;
}

/** Left/Right (and Home/End) move the focus along a row of buttons. */
function arrowKeys(root) {
  root.addEventListener('keydown', (e) => {
    if (!['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) return;
    const btns = [...root.querySelectorAll('button')];
    const i = btns.indexOf(document.activeElement);
    if (i < 0) return;
    e.preventDefault();
    e.stopPropagation();
    const j = e.key === 'Home' ? 0 : e.key === 'End' ? btns.length - 1 : (i + (e.key === 'ArrowRight' ? 1 : -1) + btns.length) % btns.length;
    btns[j].focus();
  });
}

async function setReaction(m, emoji) {
  try {
    await react(m, emoji);
  } catch (e) {
    toast(e.status === 409 ? 'You can’t react to a deleted message' : (e.message || 'Could not react'), 'error');
  }
}

/** Pick `emoji` on `m`: mine already → remove it; otherwise set (replacing mine). */
function toggle(m, emoji) {
  const cur = findMessage(m.chatId, m.id) || m;
  return setReaction(cur, reactionOf(cur) === emoji ? null : emoji);
}

/** The six quick emoji and "+", as buttons; `done()` runs after a pick. */
function quickButtons(m, done, onMore, role = null) {
  const mine = reactionOf(findMessage(m.chatId, m.id) || m);
  const btns = QUICK_EMOJI.map((e) => h(`button.qr-emoji${mine === e ? '.mine' : ''}`, {
    type: 'button', role, 'aria-label': mine === e ? `Remove your ${emojiName(e)} reaction` : `React with ${emojiName(e)}`,
    'aria-pressed': role ? null : (mine === e ? 'true' : 'false'), title: emojiName(e), 'data-testid': 'quick-reaction', 'data-emoji': e,
    onclick: (ev) => { ev.stopPropagation(); done(); toggle(m, e); },
  }, e));
  btns.push(h('button.qr-more', {
    type: 'button', role, 'aria-label': 'More reactions', title: 'More reactions', 'data-testid': 'reaction-more', 'aria-haspopup': 'dialog',
    onclick: (ev) => { ev.stopPropagation(); onMore(); },
  }, icon('add')));
  return btns;
}

/** The quick bar on its own, above `anchor` (the React button beside a bubble). */
export function openQuickBar(anchor, m) {
  document.querySelector('.react-bar')?._close?.();
  const bar = h('div.react-bar', { role: 'toolbar', 'aria-label': 'React to message', 'data-testid': 'reaction-bar' });
  let close = () => {};
  bar.append(...quickButtons(m, () => close(), () => { close(); openPicker(anchor, m); }));
  arrowKeys(bar);
  // Over the bubble itself (its edge on the sender's side), not over the small button.
  const over = (anchor instanceof Element && anchor.closest('.bubble')) || anchor;
  close = popover(over, bar, { placement: 'above', align: m.senderId === state.me.id ? 'right' : 'left' });
  const mine = bar.querySelector('.mine');
  (mine || bar.querySelector('button')).focus({ preventScroll: true });
  return close;
}

/** The reaction row at the top of the message menu (also what a long-press on a phone shows). */
export function menuHeader(m, anchor) {
  return (closeMenu) => {
    const row = h('div.menu-reactions', { role: 'group', 'aria-label': 'React to message', 'data-testid': 'menu-reactions' });
    row.append(...quickButtons(m, () => closeMenu(), () => { closeMenu(); openPicker(anchor, m); }, 'menuitem'));
    return row;
  };
}

/** The full picker: a search box and the groups of emoji (arrow keys move in the grid). */
export function openPicker(anchor, m) {
  const mine = reactionOf(findMessage(m.chatId, m.id) || m);
  const input = h('input.picker-search', { type: 'search', placeholder: 'Search emoji', 'aria-label': 'Search emoji', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'emoji-search' });
  const body = h('div.picker-body');
  const panel = h('div.emoji-picker', { role: 'dialog', 'aria-label': 'Choose a reaction', 'data-testid': 'emoji-picker' }, input, body);
  let close = () => {};
  const COLS = 8;
  function render() {
    const q = input.value.trim().toLowerCase();
    clear(body);
    let any = false;
    for (const [name, list] of GROUPS) {
      const shown = q ? list.filter(([e, n]) => n.includes(q) || e === q) : list;
      if (!shown.length) continue;
      any = true;
      const grid = h('div.picker-grid', { role: 'group', 'aria-label': name });
      for (const [e, n] of shown) {
        grid.append(h(`button.picker-emoji${mine === e ? '.mine' : ''}`, {
          type: 'button', 'aria-label': mine === e ? `Remove your ${n} reaction` : n, title: n, 'data-emoji': e,
          onclick: () => { close(); toggle(m, e); },
        }, e));
      }
      body.append(h('div.picker-group-name', { 'aria-hidden': 'true' }, name), grid);
    }
    if (!any) body.append(h('p.picker-none', 'No emoji found'));
  }
  input.addEventListener('input', render);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown') { e.preventDefault(); body.querySelector('button')?.focus(); }
    if (e.key === 'Enter') { e.preventDefault(); body.querySelector('button')?.click(); }
  });
  body.addEventListener('keydown', (e) => {
    const btns = [...body.querySelectorAll('button')];
    const i = btns.indexOf(document.activeElement);
    if (i < 0) return;
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: COLS, ArrowUp: -COLS }[e.key];
    if (!step) return;
    e.preventDefault();
    const j = i + step;
    if (j < 0) input.focus();
    else btns[Math.min(j, btns.length - 1)].focus();
  });
  render();
  trapFocus(panel);
  close = popover(anchor, panel, { placement: 'above', align: m.senderId === state.me.id ? 'right' : 'left' });
  input.focus({ preventScroll: true });
  return close;
}

const nameOf = (id) => (id === state.me.id ? 'You' : userOf(id).name);

/** "Alice Johnson, You and 2 others" for a chip's label and tooltip. */
function whoText(ids) {
  const names = [...ids].sort((a, b) => (a === state.me.id) - (b === state.me.id)).map(nameOf);
  if (names.length <= 3) return names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : names.join('');
  return `${names.slice(0, 2).join(', ')} and ${names.length - 2} others`;
}

/** The chips under a bubble; null when nobody reacted. */
export function reactionChips(m) {
  const list = (m.reactions || []).filter((r) => r.count > 0);
  if (!list.length || m.isDeleted) return null;
  const me = state.me.id;
  const total = list.reduce((n, r) => n + r.count, 0);
  const wrap = h('div.reactions', { role: 'group', 'aria-label': `Reactions, ${total} in all`, 'data-testid': 'reactions' });
  for (const r of list) {
    const mine = (r.userIds || []).includes(me);
    const who = whoText(r.userIds || []);
    const chip = h(`button.react-chip${mine ? '.mine' : ''}`, {
      type: 'button', 'data-testid': 'reaction-chip', 'data-emoji': r.emoji, 'data-count': r.count, 'aria-pressed': mine ? 'true' : 'false',
      'aria-label': `${emojiName(r.emoji)} ${r.count}: ${who}. ${mine ? 'Press to remove your reaction' : 'Press to react with it'}; the context menu key lists who reacted`,
      title: `${who}${mine ? ' — click to remove' : ''}`,
      onclick: (e) => { e.stopPropagation(); if (chip._longPressed) { chip._longPressed = false; return; } toggle(m, r.emoji); },
      oncontextmenu: (e) => { e.preventDefault(); e.stopPropagation(); openReactors(chip, m, r.emoji); },
    }, h('span.rc-emoji', { 'aria-hidden': 'true' }, r.emoji), r.count > 1 ? h('span.rc-count', { 'aria-hidden': 'true' }, String(r.count)) : null);
    longPress(chip, () => { chip._longPressed = true; openReactors(chip, m, r.emoji); });
    wrap.append(chip);
  }
  return wrap;
}

/** Touch: hold `el` for half a second. */
export function longPress(el, fn) {
  let timer = null;
  let start = null;
  el.addEventListener('pointerdown', (e) => {
    if (e.pointerType !== 'touch') return;
    start = [e.clientX, e.clientY];
    timer = setTimeout(() => { timer = null; fn(e); }, 500);
  });
  const cancel = () => { clearTimeout(timer); timer = null; };
  el.addEventListener('pointerup', cancel);
  el.addEventListener('pointercancel', cancel);
  el.addEventListener('pointermove', (e) => { if (timer && start && Math.hypot(e.clientX - start[0], e.clientY - start[1]) > 10) cancel(); });
}

/** Who reacted: a tab per emoji ("All" first), a row per person; mine can be removed there. */
export function openReactors(anchor, m, emoji = null) {
  document.querySelector('.reactors')?._close?.();
  const cur = () => findMessage(m.chatId, m.id) || m;
  const tabs = h('div.reactors-tabs', { role: 'tablist', 'aria-label': 'Reactions' });
  const list = h('div.reactors-list', { role: 'tabpanel', 'data-testid': 'reactors-list' });
  const panel = h('div.reactors', { role: 'dialog', 'aria-label': 'Who reacted', 'data-testid': 'reactors' }, tabs, list);
  let close = () => {};
  let filter = emoji;
  function render() {
    const rs = (cur().reactions || []).filter((r) => r.count > 0);
    if (!rs.length) { close(); return; }
    if (filter && !rs.some((r) => r.emoji === filter)) filter = null;
    clear(tabs);
    const total = rs.reduce((n, r) => n + r.count, 0);
    const tab = (value, label, text) => h(`button.reactors-tab${filter === value ? '.on' : ''}`, {
      type: 'button', role: 'tab', 'aria-selected': filter === value ? 'true' : 'false', 'aria-label': label, 'data-testid': 'reactors-tab',
      onclick: () => { filter = value; render(); tabs.querySelector('[aria-selected="true"]')?.focus(); },
    }, text);
    tabs.append(tab(null, `All, ${total}`, `All ${total}`), ...rs.map((r) => tab(r.emoji, `${emojiName(r.emoji)}, ${r.count}`, `${r.emoji} ${r.count}`)));
    clear(list);
    const me = state.me.id;
    for (const r of rs) {
      if (filter && r.emoji !== filter) continue;
      for (const id of r.userIds || []) {
        const mine = id === me;
        list.append(h('div.reactor', { 'data-testid': 'reactor', 'data-user-id': id },
          userAvatar(id, 'sm'),
          h('span.reactor-text', h('span.reactor-name', nameOf(id)),
            mine ? h('button.reactor-remove', { type: 'button', 'data-testid': 'reactor-remove', onclick: () => setReaction(cur(), null) }, 'Click to remove') : null),
          h('span.reactor-emoji', { role: 'img', 'aria-label': emojiName(r.emoji) }, r.emoji)));
      }
    }
  }
  render();
  arrowKeys(tabs);
  trapFocus(panel);
  close = popover(anchor, panel, { placement: 'above', align: m.senderId === state.me.id ? 'right' : 'left' });
  panel._render = render;
  (tabs.querySelector('[aria-selected="true"]') || tabs.querySelector('button'))?.focus({ preventScroll: true });
  return close;
}

/** Keep an open "who reacted" list in step with live changes (the conversation calls it). */
export function refreshReactors() {
  document.querySelector('.reactors')?._render?.();
}
