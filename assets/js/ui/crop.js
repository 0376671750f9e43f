// Square crop for profile photos and group avatars, in the browser (canvas): the picture sits
// under a round window; drag to move it, the slider or the wheel to zoom. Resolves with a
// 512×512 JPEG Blob, or null when cancelled.

import { h } from './dom.js';
import { icon } from './icons.js';
import { pushClose, trapFocus } from './overlays.js';

const STAGE = 280;
const OUT = 512;

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('This file is not a picture the browser can open'));
    img.src = url;
  });
}

export async function cropImage(file, { title = 'Crop photo' } = {}) {
  const url = URL.createObjectURL(file);
  let img;
  try { img = await loadImage(url); } catch (e) { URL.revokeObjectURL(url); throw e; }
  const W = img.naturalWidth;
  const H = img.naturalHeight;
  const cover = Math.max(STAGE / W, STAGE / H); // the smallest scale that fills the square
  let zoom = 1;
  let cx = W / 2;
  let cy = H / 2;

  return new Promise((resolve) => {
    const dpr = Math.min(2, window.devicePixelRatio || 1);
    const canvas = h('canvas.crop-canvas', { width: STAGE * dpr, height: STAGE * dpr, 'data-testid': 'crop-canvas', 'aria-label': 'Drag to move the picture' });
    const ctx = canvas.getContext('2d');
    const slider = h('input.crop-zoom', { type: 'range', min: '1', max: '4', step: '0.01', value: '1', 'aria-label': 'Zoom', 'data-testid': 'crop-zoom' });
    const prevFocus = document.activeElement;
    let unregister = null;

    const half = () => STAGE / 2 / (cover * zoom); // half the visible side, in image pixels
    function clamp() {
      const hs = half();
      cx = Math.min(Math.max(cx, hs), W - hs);
      cy = Math.min(Math.max(cy, hs), H - hs);
    }
    function draw() {
      clamp();
      const hs = half();
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.imageSmoothingQuality = 'high';
      ctx.drawImage(img, cx - hs, cy - hs, hs * 2, hs * 2, 0, 0, canvas.width, canvas.height);
    }

    let drag = null;
    canvas.addEventListener('pointerdown', (e) => {
      drag = { x: e.clientX, y: e.clientY };
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!drag) return;
      const scale = cover * zoom;
      cx -= (e.clientX - drag.x) / scale;
      cy -= (e.clientY - drag.y) / scale;
      drag = { x: e.clientX, y: e.clientY };
      draw();
    });
    const endDrag = () => { drag = null; };
    canvas.addEventListener('pointerup', endDrag);
    canvas.addEventListener('pointercancel', endDrag);
    canvas.addEventListener('wheel', (e) => {
      e.preventDefault();
      zoom = Math.min(4, Math.max(1, zoom * (e.deltaY < 0 ? 1.1 : 1 / 1.1)));
      slider.value = String(zoom);
      draw();
    }, { passive: false });
    slider.addEventListener('input', () => { zoom = Number(slider.value) || 1; draw(); });
    canvas.tabIndex = 0;
    canvas.addEventListener('keydown', (e) => {
      const step = 10 / (cover * zoom);
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (!moves[e.key]) return;
      e.preventDefault();
      cx += moves[e.key][0];
      cy += moves[e.key][1];
      draw();
    });

    function done(result) {
      unregister?.();
      overlay.remove();
      URL.revokeObjectURL(url);
      if (prevFocus && document.contains(prevFocus)) prevFocus.focus({ preventScroll: true });
      resolve(result);
    }
    function save() {
      clamp();
      const hs = half();
      const out = document.createElement('canvas');
      out.width = OUT;
      out.height = OUT;
      const o = out.getContext('2d');
      o.fillStyle = '#ffffff'; // transparent PNGs become white, not black, as JPEG
      o.fillRect(0, 0, OUT, OUT);
      o.imageSmoothingQuality = 'high';
      o.drawImage(img, cx - hs, cy - hs, hs * 2, hs * 2, 0, 0, OUT, OUT);
      out.toBlob((blob) => done(blob), 'image/jpeg', 0.9);
    }

    const ok = h('button.btn.btn-primary', { type: 'button', 'data-testid': 'crop-save', onclick: save }, 'Done');
    const cancel = h('button.btn.btn-ghost', { type: 'button', 'data-testid': 'crop-cancel', onclick: () => done(null) }, 'Cancel');
    const dialog = h('div.dialog.crop-dialog', { role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'crop-title', 'data-testid': 'crop-dialog' },
      h('h2.dialog-title', { id: 'crop-title' }, title),
      h('div.crop-stage', canvas, h('span.crop-mask', { 'aria-hidden': 'true' })),
      h('label.crop-zoom-row', h('span', 'Zoom'), slider),
      h('p.dialog-body.crop-hint', 'Drag the picture to choose what shows in the circle.'),
      h('div.dialog-actions', cancel, ok));
    const overlay = h('div.modal-backdrop', { onclick: (e) => { if (e.target === overlay) done(null); } }, dialog);
    document.body.append(overlay);
    unregister = pushClose(() => done(null));
    trapFocus(dialog);
    draw();
    ok.focus();
  });
}

/**
 * An avatar that opens a file picker, then the crop dialog; `onCropped(blob)` uploads and saves.
 * The hidden input carries `testid` (tests set files on it).
 */
export function photoButton({ avatarEl, label, testid, onCropped, onError }) {
  const input = h('input', { type: 'file', accept: 'image/*', hidden: true, tabindex: '-1', 'data-testid': testid });
  const btn = h('button.photo-btn', { type: 'button', 'aria-label': label, title: label, onclick: () => input.click() },
    avatarEl, h('span.photo-overlay', { 'aria-hidden': 'true' }, icon('image'), h('span', label)));
  input.addEventListener('change', async () => {
    const f = input.files?.[0];
    input.value = '';
    if (!f) return;
    try {
      const blob = await cropImage(f, { title: label });
      if (!blob) return;
      btn.classList.add('busy');
      await onCropped(blob);
    } catch (e) {
      onError?.(e.message);
    } finally {
      btn.classList.remove('busy');
    }
  });
  return h('div.photo-edit', btn, input);
}
