// One websocket to the server, kept open: reconnects with capped, jittered backoff and
// dispatches each `{type, data}` frame to the handler registered for its type.

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 30000;
const PING_INTERVAL_MS = 25000;
// Every server socket answers a ping. A connection can die without closing (a phone moving
// from Wi-Fi to mobile data, a router forgetting it) and the browser then calls it open for
// minutes, messages going nowhere: no frame this long after a ping, and it counts as lost.
const ANSWER_TIMEOUT_MS = 10000;
// The close code this side reports for such a connection (4000-4999 are the application's).
export const NO_ANSWER_CLOSE_CODE = 4000;
// The server's: not allowed (signed out, no role, a credential withdrawn; do not reconnect),
// and a console helper's role changed since the socket opened (docs/protocol.md).
export const FORBIDDEN_CLOSE_CODE = 4403;
export const ROLE_CHANGED_CLOSE_CODE = 4409;
// After a `rate_limited` answer, unacknowledged messages are sent again this much later: by
// then the frame limit has let a few more through.
export const RESEND_AFTER_LIMIT_MS = 2000;
// An attempt made as the network changes can hang unanswered until the browser gives up,
// minutes later, and nothing tries again meanwhile: after this long it counts as failed.
const CONNECT_TIMEOUT_MS = 10000;

export function socketUrl(path, base) {
  const url = new URL(path, base || window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

export class FrameSocket {
  constructor({ url, handlers = {}, onOpen = () => {}, onClose = () => {}, connectTimeoutMs = CONNECT_TIMEOUT_MS }) {
    this.url = url;
    this.connectTimeoutMs = connectTimeoutMs;
    this.handlers = handlers;
    this.onOpen = onOpen;
    this.onClose = onClose;
    this.attempt = 0;
    this.socket = null;
    // Until the first connect(): a page with nothing to say (no chat) opens no socket.
    this.stopped = true;
    this.pingTimer = null;
    this.retryTimer = null;
    this.answerTimer = null;
    // Back from a network change or a locked phone: find out now, not at the next ping.
    window.addEventListener("online", () => this.checkNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.checkNow();
    });
  }

  connect() {
    this.stopped = false;
    clearTimeout(this.retryTimer);
    // Already connecting or open: a second socket would race the first (a double click).
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) return;
    // One closing may not have reported yet: its timers go with it.
    this.stopTimers();
    const socket = new WebSocket(this.url);
    this.socket = socket;
    this.answerTimer = setTimeout(() => this.giveUp(), this.connectTimeoutMs);
    // A socket given up on (`giveUp`, `lost`) may still open, answer or close much later:
    // ignored then, as it no longer serves this side.
    socket.addEventListener("open", () => {
      if (this.socket !== socket) return;
      clearTimeout(this.answerTimer);
      this.pingTimer = setInterval(() => this.ping(), PING_INTERVAL_MS);
      this.onOpen();
    });
    socket.addEventListener("message", (event) => {
      if (this.socket !== socket) return;
      clearTimeout(this.answerTimer);
      this.dispatch(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket === socket) this.lost(event);
    });
  }

  ping() {
    if (!this.send("ping", {})) return;
    clearTimeout(this.answerTimer);
    this.answerTimer = setTimeout(() => this.giveUp(), ANSWER_TIMEOUT_MS);
  }

  // No answer, to a ping or to the opening handshake: the socket counts as lost.
  giveUp() {
    const dead = this.socket;
    this.lost({ code: NO_ANSWER_CLOSE_CODE, reason: "no answer", wasClean: false });
    // Closing waits for an answer that will not come; this side has already moved on.
    if (dead) dead.close(NO_ANSWER_CLOSE_CODE);
  }

  lost(event) {
    this.stopTimers();
    this.socket = null;
    this.onClose(event);
    if (!this.stopped) this.scheduleReconnect();
  }

  checkNow() {
    if (this.stopped) return;
    if (this.isOpen) this.ping();
    else if (!this.socket) {
      // Waiting out a backoff: the network may be back, so try at once.
      this.attempt = 0;
      this.connect();
    }
  }

  scheduleReconnect() {
    const ceiling = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt);
    this.attempt += 1;
    // Full jitter spreads a crowd of clients reconnecting after a server restart.
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  stopTimers() {
    clearInterval(this.pingTimer);
    clearTimeout(this.answerTimer);
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stopTimers();
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
    // The backoff starts again once the server serves this socket, not when it opens: a
    // server that opens sockets and then fails what the client asks (its database down) and
    // closes them would otherwise be asked again twice a second by every client.
    if (frame.type !== "error") this.attempt = 0;
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

// 32 hex characters from the browser's random source, for an id that must not be guessed.
export function secretId() {
  const bytes = window.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// randomUUID is only offered to secure pages; the random source behind secretId is everywhere.
export function newClientId() {
  return window.crypto.randomUUID ? window.crypto.randomUUID() : secretId();
}

// A time of day as GOV.UK writes it: "9am", "5:30pm", "midday", "midnight".
function clockText(hours, minutes) {
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

export function formatTime(iso, timeZone) {
  return iso ? timeText(new Date(iso), timeZone) : "";
}

// "9:15pm" for a moment today, "Friday 27 November at 9:15pm" for one on another day of this
// year, "Thursday 27 November 2025 at 9:15pm" in another; days and times read in `timeZone` (the
// device's own without one). `when_text` in config/clock.py writes the same.
export function formatWhen(iso, { timeZone, now = new Date() } = {}) {
  if (!iso) return "";
  const date = new Date(iso);
  const zone = timeZone ? { timeZone } : {};
  const year = (moment) => moment.toLocaleDateString("en-GB", { year: "numeric", ...zone });
  const day = (moment) => moment.toLocaleDateString("en-GB", { weekday: "long", day: "numeric", month: "long", ...zone });
  const time = timeText(date, timeZone);
  if (year(date) !== year(now)) return `${day(date)} ${year(date)} at ${time}`;
  return day(date) === day(now) ? time : `${day(date)} at ${time}`;
}
