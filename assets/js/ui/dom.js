// A tiny DOM builder. Text always goes in as text nodes; there is no innerHTML anywhere.

/**
 * h('div.a.b', {onclick, 'aria-label': 'x', dataset: {...}}, child, ...)
 * Children may be strings, numbers, nodes, arrays, or null/false (skipped).
 */
export function h(sel, attrs, ...children) {
  const [tag, ...classes] = sel.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  if (attrs) setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = [el.className, v].filter(Boolean).join(' ');
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false || c === true) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replaceChildren(el, ...children) {
  clear(el);
  return append(el, children);
}

/**
 * Keyed reconciliation: make `parent`'s children match `items` in order,
 * reusing an existing node when its key and signature are unchanged.
 * Each node remembers its key/sig in `node._key` / `node._sig`.
 */
export function reconcile(parent, items, keyOf, sigOf, create) {
  const old = new Map();
  for (const n of parent.children) if (n._key != null) old.set(n._key, n);
  const wanted = [];
  for (const item of items) {
    const key = keyOf(item);
    const sig = sigOf(item);
    let node = old.get(key);
    if (!node || node._sig !== sig) {
      const fresh = create(item, node);
      fresh._key = key;
      fresh._sig = sig;
      node = fresh;
    }
    old.delete(key);
    wanted.push(node);
  }
  for (const n of old.values()) n.remove();
  let cursor = parent.firstElementChild;
  for (const node of wanted) {
    if (node === cursor) { cursor = cursor.nextElementSibling; continue; }
    parent.insertBefore(node, cursor);
  }
  while (cursor) { const next = cursor.nextElementSibling; cursor.remove(); cursor = next; }
}

/** Coalesce many change notifications into one call per animation frame. */
export function scheduler(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; fn(); });
  };
}
