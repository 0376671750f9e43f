// Light/dark theme: follows the system unless the user picked one (kept in localStorage).

const KEY = 'natter.theme';
const media = matchMedia('(prefers-color-scheme: dark)');

export function applyTheme() {
  const t = localStorage.getItem(KEY);
  if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
  const meta = document.querySelector('meta[name="theme-color"]');
  if (meta) meta.setAttribute('content', currentTheme() === 'dark' ? '#111b21' : '#f0f2f5');
}

export function currentTheme() {
  const t = localStorage.getItem(KEY);
  if (t === 'light' || t === 'dark') return t;
  return media.matches ? 'dark' : 'light';
}

export function hasManualTheme() {
  return !!localStorage.getItem(KEY);
}

export function toggleTheme() {
  localStorage.setItem(KEY, currentTheme() === 'dark' ? 'light' : 'dark');
  applyTheme();
}

export function resetTheme() {
  localStorage.removeItem(KEY);
  applyTheme();
}

media.addEventListener?.('change', applyTheme);
