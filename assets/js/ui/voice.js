// Voice messages: the recorder in the composer (MediaRecorder, Opus in WebM or Ogg) and the
// WhatsApp-style player in bubbles (play/pause, a seekable waveform, duration, 1×/1.5×/2×,
// the played state). Link preview cards live here too: both are media inside a bubble.

import { h, clear } from './dom.js';
import { icon } from './icons.js';
import { state } from '../store.js';
import * as actions from '../actions.js';

const BARS = 64;
const SPEEDS = [1, 1.5, 2];
const HOLD_MS = 300;
const SLIDE_CANCEL_PX = 80;

export function fmtDuration(ms) {
  const s = Math.max(0, Math.round((ms || 0) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** The recording types this browser can make, best first. */
function recordingType() {
  const types = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm', 'audio/mp4'];
  return types.find((t) => window.MediaRecorder?.isTypeSupported?.(t)) || '';
}

/** 64 bars (0–255) from the levels sampled while recording. */
function toBars(levels) {
  const out = new Uint8Array(BARS);
  if (!levels.length) return out;
  const peak = Math.max(...levels, 1e-3);
  for (let i = 0; i < BARS; i++) {
    const from = Math.floor((i * levels.length) / BARS);
    const to = Math.max(from + 1, Math.floor(((i + 1) * levels.length) / BARS));
    let m = 0;
    for (let j = from; j < to && j < levels.length; j++) m = Math.max(m, levels[j]);
    out[i] = Math.round(Math.min(1, m / peak) * 255);
  }
  return out;
}

function b64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(text) {
  try { return Uint8Array.from(atob(text || ''), (c) => c.charCodeAt(0)); } catch { return new Uint8Array(0); }
}

/**
 * The recorder: a mic button (shown where the send button is while the composer is empty) and
 * the recording and preview bars that replace the composer row. Hold the button to record
 * (release to stop, slide left to cancel), or click it to start and click stop; Esc cancels.
 * A recording is previewed (played back) before it is sent.
 */
export function recorder({ row, getChat, onError, onSent }) {
  const mic = h('button.send-btn.mic-btn', { type: 'button', 'aria-label': 'Record a voice message', title: 'Record a voice message', 'data-testid': 'mic-button' }, icon('mic'));
  const bar = h('div.rec-bar', { hidden: true, 'data-testid': 'recorder' });
  let rec = null; // { media, stream, ctx, timer, levels, start, chunks, held, x0, cancelled }
  let preview = null; // { blob, url, durationMs, waveform, type }

  function release() {
    if (!rec) return;
    clearInterval(rec.timer);
    rec.stream?.getTracks().forEach((t) => t.stop());
    rec.ctx?.close().catch(() => {});
  }

  function showRow(v) { row.hidden = !v; bar.hidden = v; }

  function renderRecording() {
    const time = h('span.rec-time', { 'data-testid': 'rec-time', 'aria-live': 'off' }, '0:00');
    const stopBtn = h('button.send-btn.ready', { type: 'button', 'aria-label': 'Stop recording', title: 'Stop', 'data-testid': 'rec-stop', onclick: () => stop() }, icon('stop'));
    const cancelBtn = h('button.icon-btn', { type: 'button', 'aria-label': 'Cancel recording', title: 'Cancel (Esc)', 'data-testid': 'rec-cancel', onclick: () => cancel() }, icon('trash'));
    clear(bar).append(cancelBtn, h('span.rec-dot', { 'aria-hidden': 'true' }), time,
      h('span.rec-hint', { 'data-testid': 'rec-hint' }, rec?.held ? '‹ Slide to cancel' : 'Recording…'), stopBtn);
    bar.setAttribute('aria-label', 'Recording a voice message');
    return time;
  }

  async function start(held, x0) {
    if (rec || preview || getChat() == null) return;
    if (!navigator.mediaDevices?.getUserMedia || !window.MediaRecorder) { onError('This browser cannot record audio'); return; }
    rec = { held, x0, levels: [], chunks: [], cancelled: false };
    const mine = rec;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      rec = null;
      onError('Microphone access was refused');
      return;
    }
    if (rec !== mine) { stream.getTracks().forEach((t) => t.stop()); return; }
    rec.stream = stream;
    const type = recordingType();
    rec.media = new MediaRecorder(stream, type ? { mimeType: type } : {});
    rec.media.ondataavailable = (e) => { if (e.data?.size) mine.chunks.push(e.data); };
    // Levels for the waveform, sampled while recording (no decoding afterwards).
    try {
      rec.ctx = new AudioContext();
      const an = rec.ctx.createAnalyser();
      an.fftSize = 512;
      rec.ctx.createMediaStreamSource(stream).connect(an);
      const buf = new Float32Array(an.fftSize);
      rec.sample = () => {
        an.getFloatTimeDomainData(buf);
        let sum = 0;
        for (const v of buf) sum += v * v;
        mine.levels.push(Math.sqrt(sum / buf.length));
      };
    } catch { rec.sample = () => mine.levels.push(0.1); }
    rec.start = Date.now();
    rec.media.start(250);
    showRow(false);
    const time = renderRecording();
    rec.timer = setInterval(() => {
      mine.sample();
      time.textContent = fmtDuration(Date.now() - mine.start);
    }, 100);
    bar.querySelector('[data-testid="rec-stop"]')?.focus({ preventScroll: true });
  }

  function cancel() {
    if (rec) {
      rec.cancelled = true;
      try { rec.media?.state !== 'inactive' && rec.media?.stop(); } catch { /* stopped */ }
      release();
      rec = null;
    }
    if (preview) { URL.revokeObjectURL(preview.url); preview = null; }
    clear(bar);
    showRow(true);
    mic.focus({ preventScroll: true });
  }

  function stop() {
    if (!rec?.media) { if (rec) cancel(); return; }
    const r = rec;
    const durationMs = Math.max(1, Date.now() - r.start);
    r.media.onstop = () => {
      release();
      if (r.cancelled) return;
      rec = null;
      const type = (r.media.mimeType || r.chunks[0]?.type || 'audio/webm').split(';')[0];
      const blob = new Blob(r.chunks, { type });
      if (durationMs < 500 || !blob.size) { cancel(); onError('Hold to record a voice message'); return; }
      preview = { blob, type, durationMs, waveform: toBars(r.levels), url: URL.createObjectURL(blob) };
      renderPreview();
    };
    try { r.media.requestData?.(); r.media.stop(); } catch { cancel(); }
  }

  function renderPreview() {
    const p = preview;
    const send = h('button.send-btn.ready', { type: 'button', 'aria-label': 'Send voice message', title: 'Send', 'data-testid': 'rec-send', onclick: () => sendNow() }, icon('send'));
    const discard = h('button.icon-btn', { type: 'button', 'aria-label': 'Delete recording', title: 'Delete (Esc)', 'data-testid': 'rec-discard', onclick: () => cancel() }, icon('trash'));
    const player = voicePlayer({ id: 'preview', src: p.url, durationMs: p.durationMs, waveform: p.waveform, mine: true, preview: true });
    clear(bar).append(discard, h('div.rec-preview', { 'data-testid': 'rec-preview' }, player), send);
    bar.setAttribute('aria-label', 'Voice message preview');
    send.focus({ preventScroll: true });
  }

  function sendNow() {
    const p = preview;
    const chatId = getChat();
    if (!p || chatId == null) return;
    preview = null;
    const ext = p.type.includes('ogg') ? 'ogg' : p.type.includes('mp4') ? 'm4a' : 'weba';
    const file = new File([p.blob], `voice-message-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}.${ext}`, { type: p.type });
    dropPlayer('preview');
    URL.revokeObjectURL(p.url);
    clear(bar);
    showRow(true);
    actions.sendFile(chatId, file, null, null, null, { durationMs: p.durationMs, waveform: b64(p.waveform) })
      .catch((e) => onError(e.message));
    onSent?.();
  }

  // Hold to record; a short press is a click (start, then stop with the stop button).
  let downAt = 0;
  mic.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    downAt = Date.now();
    mic.setPointerCapture?.(e.pointerId);
    start(true, e.clientX);
  });
  mic.addEventListener('pointermove', (e) => {
    if (rec?.held && rec.x0 - e.clientX > SLIDE_CANCEL_PX) cancel();
  });
  mic.addEventListener('pointerup', () => {
    if (!rec) return;
    if (Date.now() - downAt < HOLD_MS) {
      rec.held = false;
      const hint = bar.querySelector('[data-testid="rec-hint"]');
      if (hint) hint.textContent = 'Recording…';
      return;
    }
    stop();
  });
  mic.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); start(false, 0); }
  });
  bar.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); cancel(); }
  });

  return { mic, bar, cancel, get active() { return !!(rec || preview); } };
}

// ---- the player ---------------------------------------------------------------------------

// One <audio> per message, kept across re-renders of its bubble (the list re-renders rows when
// a message changes), so playback goes on while ticks or the played state update.
const players = new Map();

function dropPlayer(id) {
  const p = players.get(id);
  if (p) { p.audio.pause(); players.delete(id); }
}

function playerState(id, src) {
  let p = players.get(id);
  if (!p || p.src !== src) {
    if (p) p.audio.pause();
    const audio = new Audio();
    // Nothing is fetched before the first play: the length shown is the message's durationMs.
    audio.preload = 'none';
    p = { audio, src, speed: 0, views: new Set() };
    audio.src = src;
    const paint = () => { for (const v of p.views) v(); };
    for (const ev of ['play', 'pause', 'timeupdate', 'ended', 'ratechange', 'loadedmetadata']) audio.addEventListener(ev, paint);
    audio.addEventListener('ended', () => { audio.currentTime = 0; paint(); });
    players.set(id, p);
  }
  return p;
}

/**
 * A WhatsApp-style player. `played` (others' messages: whether I played it; mine: whether
 * every other member did) turns the mic blue; `onFirstPlay` reports the played receipt.
 */
export function voicePlayer({ id, src, durationMs, waveform, mine, played = false, onFirstPlay, preview = false }) {
  const p = playerState(id, src);
  const bars = waveform instanceof Uint8Array ? waveform : unb64(waveform);
  const wave = h('div.wave', {
    role: 'slider', tabindex: '0', 'aria-label': 'Seek', 'aria-valuemin': '0',
    'aria-valuemax': String(Math.round((durationMs || 0) / 1000)), 'data-testid': 'voice-wave',
  });
  const spans = [];
  for (let i = 0; i < BARS; i++) {
    const v = bars.length ? bars[Math.floor((i * bars.length) / BARS)] : 40;
    const s = h('span.wave-bar');
    s.style.height = `${Math.max(12, Math.round((v / 255) * 100))}%`;
    spans.push(s);
    wave.append(s);
  }
  const playBtn = h('button.voice-play', { type: 'button', 'data-testid': 'voice-play' });
  const time = h('span.voice-time', { 'data-testid': 'voice-time' });
  const speed = h('button.voice-speed', { type: 'button', 'data-testid': 'voice-speed', 'aria-label': 'Playback speed' });
  const micMark = h(`span.voice-mic${played ? '.played' : ''}`, { 'data-testid': 'voice-mic', 'aria-label': played ? 'Played' : (mine ? 'Not played yet' : 'Not played') }, icon('mic'));
  const el = h(`div.voice${mine ? '.mine' : ''}${preview ? '.preview' : ''}`, { 'data-testid': 'voice-player', 'data-played': played ? 'true' : 'false' },
    playBtn, h('div.voice-body', wave, h('div.voice-foot', time, speed)), preview ? null : micMark);

  const total = () => (Number.isFinite(p.audio.duration) && p.audio.duration > 0 ? p.audio.duration * 1000 : durationMs || 0);
  function paint() {
    // A bubble re-rendered or scrolled away: this view is done.
    if (el.dataset.mounted && !el.isConnected) { p.views.delete(paint); return; }
    if (el.isConnected) el.dataset.mounted = '1';
    const playing = !p.audio.paused;
    clear(playBtn).append(icon(playing ? 'pause' : 'play'));
    playBtn.setAttribute('aria-label', playing ? 'Pause' : 'Play voice message');
    el.classList.toggle('playing', playing);
    const at = p.audio.currentTime * 1000;
    const frac = total() ? Math.min(1, at / total()) : 0;
    spans.forEach((s, i) => s.classList.toggle('done', (i + 0.5) / BARS <= frac));
    time.textContent = playing || at > 0 ? fmtDuration(at) : fmtDuration(durationMs);
    wave.setAttribute('aria-valuenow', String(Math.round(at / 1000)));
    wave.setAttribute('aria-valuetext', `${fmtDuration(at)} of ${fmtDuration(durationMs)}`);
    speed.textContent = `${SPEEDS[p.speed]}×`;
  }
  p.views.add(paint);

  playBtn.onclick = (e) => {
    e.stopPropagation();
    if (p.audio.paused) {
      for (const [k, other] of players) if (k !== id) other.audio.pause();
      p.audio.playbackRate = SPEEDS[p.speed];
      p.audio.play().then(() => { if (!played) onFirstPlay?.(); }).catch(() => {});
    } else p.audio.pause();
  };
  speed.onclick = (e) => {
    e.stopPropagation();
    p.speed = (p.speed + 1) % SPEEDS.length;
    p.audio.playbackRate = SPEEDS[p.speed];
    paint();
  };
  const seekTo = (frac) => {
    const t = (Math.max(0, Math.min(1, frac)) * total()) / 1000;
    if (Number.isFinite(t)) p.audio.currentTime = t;
    paint();
  };
  wave.addEventListener('click', (e) => {
    e.stopPropagation();
    const r = wave.getBoundingClientRect();
    seekTo((e.clientX - r.left) / r.width);
  });
  wave.addEventListener('keydown', (e) => {
    const step = 5000 / (total() || 1);
    const frac = (p.audio.currentTime * 1000) / (total() || 1);
    if (e.key === 'ArrowRight') { e.preventDefault(); seekTo(frac + step); }
    if (e.key === 'ArrowLeft') { e.preventDefault(); seekTo(frac - step); }
    if (e.key === ' ' || e.key === 'Enter') { e.preventDefault(); playBtn.click(); }
  });
  paint();
  return el;
}

/** The player of a voice message bubble. */
export function voiceNode(m) {
  const me = state.me.id;
  const mine = m.senderId === me;
  const playedBy = m.playedBy || [];
  const chat = state.chats.get(m.chatId);
  const others = (chat?.participants || []).map((p) => p.userId ?? p.user?.id).filter((u) => u != null && u !== m.senderId);
  const played = mine ? others.length > 0 && others.every((u) => playedBy.includes(u)) : playedBy.includes(me);
  return voicePlayer({
    id: m.id, src: m.fileUrl, durationMs: m.durationMs, waveform: m.waveform, mine, played,
    onFirstPlay: mine ? null : () => actions.markPlayed(m.chatId, m.id),
  });
}

// ---- link previews --------------------------------------------------------------------------

/** The preview card of a message's first link (all text via textContent; http(s) links only). */
export function linkPreviewNode(p) {
  let href = null;
  try {
    const u = new URL(p.url);
    if (u.protocol === 'http:' || u.protocol === 'https:') href = u.href;
  } catch { /* not a link */ }
  if (!href) return null;
  const card = h('a.link-card', { href, target: '_blank', rel: 'noopener noreferrer', 'data-testid': 'link-preview', onclick: (e) => e.stopPropagation() });
  if (p.imageUrl && p.imageUrl.startsWith('/uploads/')) {
    card.append(h('img.link-card-img', { src: p.imageUrl, alt: '', decoding: 'async', loading: 'lazy', 'data-testid': 'link-preview-image' }));
  }
  const text = h('span.link-card-text');
  if (p.siteName) text.append(h('span.link-card-site', p.siteName));
  if (p.title) text.append(h('span.link-card-title', { 'data-testid': 'link-preview-title' }, p.title));
  if (p.description) text.append(h('span.link-card-desc', p.description));
  card.append(text);
  return card;
}
