// Muting a chat's notifications (PATCH /chat/:id/settings {mutedUntil}): the choices offered
// (8 hours, 1 week, always) and how a running mute reads ("Muted until 22:30").

import { fmtTime, daysAgo } from '../util.js';

/** "Always": the latest time the server takes (the end of year 9999). */
export const MUTE_ALWAYS = 253402300799999;
const HOUR = 3600 * 1000;

/** The mute dialog's choices; each value is the mute's end in ms. */
export function muteChoices(now = Date.now()) {
  return [
    { label: '8 hours', value: now + 8 * HOUR, testid: 'mute-8h' },
    { label: '1 week', value: now + 7 * 24 * HOUR, testid: 'mute-week' },
    { label: 'Always', value: MUTE_ALWAYS, testid: 'mute-always' },
  ];
}

const dateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'long', year: 'numeric' });

/** "Muted", "Muted until 22:30", "Muted until tomorrow at 09:00", "Muted until 3 March 2027". */
export function mutedText(until) {
  const t = Number(until);
  // Anything past a lifetime is "always" (other clients may pick their own far date).
  if (!Number.isFinite(t) || t - Date.now() > 50 * 365 * 24 * HOUR) return 'Muted';
  const d = new Date(t);
  const days = -daysAgo(d);
  if (days <= 0) return `Muted until ${fmtTime(d.toISOString())}`;
  if (days === 1) return `Muted until tomorrow at ${fmtTime(d.toISOString())}`;
  return `Muted until ${dateFmt.format(d)}`;
}
