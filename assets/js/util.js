// Small pure helpers: time formatting, sizes, colours, initials, linkify.

const pad = (n) => String(n).padStart(2, '0');

export function parseTime(iso) {
  const d = iso ? new Date(iso) : null;
  return d && !isNaN(d) ? d : null;
}

function startOfDay(d) {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate());
}

/** Whole days between the start of `d`'s day and today (0 = today). */
export function daysAgo(d, now = new Date()) {
  return Math.round((startOfDay(now) - startOfDay(d)) / 86400000);
}

// 24-hour locales keep their two-digit hour ("09:54"); 12-hour ones write "9:54 PM", as WhatsApp
// does (a leading zero on a 12-hour clock reads oddly).
const twelveHour = /^h1[12]$/.test(new Intl.DateTimeFormat(undefined, { hour: 'numeric' }).resolvedOptions().hourCycle || '');
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: twelveHour ? 'numeric' : '2-digit', minute: '2-digit' });
const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long' });
const dateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'numeric', year: 'numeric' });
const longDateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'long', year: 'numeric' });

export function fmtTime(iso) {
  const d = parseTime(iso);
  return d ? timeFmt.format(d) : '';
}

/** Chat list time: time today, "Yesterday", weekday within a week, then the date. */
export function fmtListTime(iso) {
  const d = parseTime(iso);
  if (!d) return '';
  const n = daysAgo(d);
  if (n <= 0) return timeFmt.format(d);
  if (n === 1) return 'Yesterday';
  if (n < 7) return weekdayFmt.format(d);
  return dateFmt.format(d);
}

/** Date separator label: Today / Yesterday / weekday / long date. */
export function fmtDayLabel(d) {
  const n = daysAgo(d);
  if (n <= 0) return 'Today';
  if (n === 1) return 'Yesterday';
  if (n < 7) return weekdayFmt.format(d);
  return longDateFmt.format(d);
}

export function dayKey(iso) {
  const d = parseTime(iso);
  return d ? `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}` : '';
}

/** "last seen today at 14:02" and friends. */
export function fmtLastSeen(iso) {
  const d = parseTime(iso);
  if (!d) return '';
  const n = daysAgo(d);
  const t = timeFmt.format(d);
  if (n <= 0) return `last seen today at ${t}`;
  if (n === 1) return `last seen yesterday at ${t}`;
  if (n < 7) return `last seen ${weekdayFmt.format(d)} at ${t}`;
  return `last seen ${dateFmt.format(d)}`;
}

export function fmtFull(iso) {
  const d = parseTime(iso);
  if (!d) return '';
  const n = daysAgo(d);
  const t = timeFmt.format(d);
  if (n <= 0) return `Today at ${t}`;
  if (n === 1) return `Yesterday at ${t}`;
  return `${dateFmt.format(d)} at ${t}`;
}

export function fmtSize(bytes) {
  if (bytes == null || isNaN(bytes)) return '';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  if (!parts.length) return '?';
  const first = [...parts[0]][0] || '';
  const last = parts.length > 1 ? [...parts[parts.length - 1]][0] || '' : '';
  return (first + last).toUpperCase();
}

export function firstName(name) {
  return String(name || '').trim().split(/\s+/)[0] || '';
}

/** Stable small integer from an id, for avatar and sender-name colours. */
export function colorIndex(id, n = 12) {
  // A stride coprime with n: consecutive ids (people who joined together) never share a colour.
  const x = Math.abs(Math.trunc(Number(id) || 0));
  return (x * 5 + 3) % n;
}

const URL_RE = /\b((?:https?:\/\/|mailto:|www\.)[^\s<>"']+)/gi;

/**
 * Split text into DOM nodes, turning http(s)/mailto URLs into safe links.
 * Nothing is ever parsed as HTML.
 */
export function linkify(text) {
  const frag = document.createDocumentFragment();
  const s = String(text ?? '');
  let last = 0;
  for (const m of s.matchAll(URL_RE)) {
    let raw = m[1];
    // Trailing punctuation is usually not part of the link.
    const trail = raw.match(/[.,;:!?)\]}]+$/);
    if (trail && !(trail[0].startsWith(')') && raw.includes('('))) raw = raw.slice(0, raw.length - trail[0].length);
    const start = m.index;
    let href = raw.toLowerCase().startsWith('www.') ? `https://${raw}` : raw;
    let ok = false;
    try {
      const u = new URL(href);
      ok = u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'mailto:';
      href = u.href;
    } catch { ok = false; }
    if (!ok) continue;
    if (start > last) frag.append(s.slice(last, start));
    const a = document.createElement('a');
    a.href = href;
    a.textContent = raw;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    frag.append(a);
    last = start + raw.length;
  }
  if (last < s.length) frag.append(s.slice(last));
  return frag;
}

export function hasLink(text) {
  URL_RE.lastIndex = 0;
  return URL_RE.test(String(text || ''));
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

export function debounce(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

export const STATUS_RANK = { SENT: 1, DELIVERED: 2, READ: 3 };
export function maxStatus(a, b) {
  return (STATUS_RANK[b] || 0) > (STATUS_RANK[a] || 0) ? b : a;
}

export { pad };
