// WebSocket transport: connect with the token, reconnect with jittered exponential back-off,
// numbered acks for requests, and offline detection (browsers keep dead sockets open).

export class Realtime {
  /**
   * @param {object} o
   * @param {() => string|null} o.token
   * @param {(event: string, data: any) => void} o.onEvent   every server push except acks
   * @param {(data: any) => void} o.onReady                 the `ready` frame of each connection
   * @param {(state: 'connecting'|'open'|'offline') => void} o.onState
   * @param {() => void} [o.onRefused]  the upgrade keeps failing before `ready`
   */
  constructor({ token, onEvent, onReady, onState, onRefused }) {
    this.tokenFn = token;
    this.onRefused = onRefused;
    this.onEvent = onEvent;
    this.onReady = onReady;
    this.onState = onState;
    this.ws = null;
    this.ready = false;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.nextAck = 1;
    this.acks = new Map();
    this.state = 'connecting';
    this._online = () => { if (!this.stopped) { this.attempt = 0; this.connectSoon(0); } };
    this._offline = () => { if (!this.stopped) this.drop('offline'); };
  }

  start() {
    this.stopped = false;
    addEventListener('online', this._online);
    addEventListener('offline', this._offline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    removeEventListener('online', this._online);
    removeEventListener('offline', this._offline);
    clearTimeout(this.timer);
    this.drop('stopped');
  }

  get isOpen() {
    return !!(this.ws && this.ready && this.ws.readyState === WebSocket.OPEN);
  }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.onState?.(s);
  }

  connect() {
    clearTimeout(this.timer);
    if (this.stopped || this.ws) return;
    const token = this.tokenFn();
    if (!token) return;
    if (navigator.onLine === false) { this.setState('offline'); return; }
    this.setState('connecting');
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    let ws;
    try {
      ws = new WebSocket(`${proto}://${location.host}/ws?token=${encodeURIComponent(token)}`);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.ready = false;
    ws.onmessage = (e) => this.handle(e.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      const refused = !this.ready;
      this.drop('closed');
      // Refused before `ready` twice in a row: maybe the token is no longer valid.
      if (refused && this.attempt >= 1) this.onRefused?.();
      this.scheduleReconnect();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  /** Forget the current socket immediately (it may linger half-open when the network is gone). */
  drop(reason) {
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(); } catch { /* ignore */ }
    }
    for (const [, p] of this.acks) {
      clearTimeout(p.timer);
      p.reject(Object.assign(new Error('Disconnected'), { code: 'disconnected' }));
    }
    this.acks.clear();
    if (!this.stopped) this.setState(reason === 'offline' || navigator.onLine === false ? 'offline' : 'connecting');
  }

  scheduleReconnect() {
    if (this.stopped) return;
    const base = Math.min(10000, 500 * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt++;
    this.connectSoon(delay);
  }

  connectSoon(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  handle(raw) {
    let frame;
    try { frame = JSON.parse(raw); } catch { return; }
    if (!frame || typeof frame.event !== 'string') return;
    const { event, data, ack } = frame;
    if (ack != null && (event === 'ack' || event === 'error') && this.acks.has(ack)) {
      const p = this.acks.get(ack);
      this.acks.delete(ack);
      clearTimeout(p.timer);
      if (event === 'ack') p.resolve(data);
      else p.reject(Object.assign(new Error(data?.message || 'Request failed'), { code: data?.code || 'error' }));
      return;
    }
    if (event === 'ready') {
      this.ready = true;
      this.attempt = 0;
      this.setState('open');
      this.onReady?.(data || {});
      return;
    }
    if (event === 'error') return; // an error for a fire-and-forget frame: nothing to do
    this.onEvent?.(event, data || {});
  }

  /** Fire and forget. Returns false when not connected. */
  send(event, data) {
    if (!this.isOpen) return false;
    try { this.ws.send(JSON.stringify({ event, data })); return true; } catch { return false; }
  }

  /** Send with an ack number; resolves with the ack's data or rejects with {code, message}. */
  request(event, data, timeoutMs = 15000) {
    if (!this.isOpen) return Promise.reject(Object.assign(new Error('Not connected'), { code: 'disconnected' }));
    const ack = this.nextAck++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.acks.delete(ack);
        reject(Object.assign(new Error('Timed out'), { code: 'timeout' }));
      }, timeoutMs);
      this.acks.set(ack, { resolve, reject, timer });
      try { this.ws.send(JSON.stringify({ event, data, ack })); } catch (e) {
        clearTimeout(timer);
        this.acks.delete(ack);
        reject(Object.assign(new Error('Not connected'), { code: 'disconnected' }));
      }
    });
  }
}
