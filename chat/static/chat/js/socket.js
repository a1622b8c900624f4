// One websocket to the server, kept open: reconnects with capped, jittered backoff and
// dispatches each `{type, data}` frame to the handler registered for its type.

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 30000;
const PING_INTERVAL_MS = 25000;

export function socketUrl(path, base) {
  const url = new URL(path, base || window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

export class FrameSocket {
  constructor({ url, handlers = {}, onOpen = () => {}, onClose = () => {} }) {
    this.url = url;
    this.handlers = handlers;
    this.onOpen = onOpen;
    this.onClose = onClose;
    this.attempt = 0;
    this.socket = null;
    this.stopped = false;
    this.pingTimer = null;
    this.retryTimer = null;
  }

  connect() {
    this.stopped = false;
    clearTimeout(this.retryTimer);
    // Already connecting or open: a second socket would race the first (a double click).
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) return;
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.pingTimer = setInterval(() => this.send("ping", {}), PING_INTERVAL_MS);
      this.onOpen();
    });
    socket.addEventListener("message", (event) => this.dispatch(event.data));
    socket.addEventListener("close", (event) => {
      clearInterval(this.pingTimer);
      if (this.socket !== socket) return;
      this.socket = null;
      this.onClose(event);
      if (!this.stopped) this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    const ceiling = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt);
    this.attempt += 1;
    // Full jitter spreads a crowd of clients reconnecting after a server restart.
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close(1000);
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  send(type, data) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify({ type, data }));
    return true;
  }

  dispatch(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    const handler = this.handlers[frame.type];
    if (handler) handler(frame.data || {});
  }
}

// Messages of one conversation, kept in `seq` order without duplicates. `contiguousSeq`
// is the highest number below which nothing is missing: what a client resumes from.
export class MessageStore {
  constructor() {
    this.bySeq = new Map();
    this.contiguousSeq = 0;
  }

  add(message) {
    if (this.bySeq.has(message.seq)) return false;
    this.bySeq.set(message.seq, message);
    while (this.bySeq.has(this.contiguousSeq + 1)) this.contiguousSeq += 1;
    return true;
  }

  hasGapBefore(seq) {
    return seq > this.contiguousSeq;
  }

  ordered() {
    return [...this.bySeq.values()].sort((a, b) => a.seq - b.seq);
  }
}

export function newClientId() {
  if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// A time of day as GOV.UK writes it: "9am", "5:30pm", "midday", "midnight".
export function clockText(hours, minutes) {
  if (minutes === 0 && hours === 12) return "midday";
  if (minutes === 0 && hours === 0) return "midnight";
  const hour = hours % 12 || 12;
  const suffix = hours < 12 ? "am" : "pm";
  return minutes === 0 ? `${hour}${suffix}` : `${hour}:${String(minutes).padStart(2, "0")}${suffix}`;
}

const clockFormats = new Map();

// The time of `date` in `timeZone` (the device's own without one), as `clockText` writes it;
// "" for a date that is not one.
export function timeText(date, timeZone) {
  if (Number.isNaN(date.getTime())) return "";
  const zone = timeZone || "";
  if (!clockFormats.has(zone)) {
    clockFormats.set(zone, new Intl.DateTimeFormat("en-GB", { hour: "numeric", minute: "numeric", hourCycle: "h23", ...(zone ? { timeZone: zone } : {}) }));
  }
  const parts = clockFormats.get(zone).formatToParts(date);
  const value = (type) => Number(parts.find((part) => part.type === type).value);
  return clockText(value("hour"), value("minute"));
}

export function formatTime(iso) {
  return iso ? timeText(new Date(iso)) : "";
}
