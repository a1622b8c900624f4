// The helper's live view of a resident's page: rrweb's Replayer in live mode, fed by the
// `cobrowse.events` frames (each a part of a batch of rrweb events). Every page (or fresh
// snapshot) starts with a Meta event, on which the view starts again, so it is never blank
// after a reconnect. The helper's pointer and highlights go back as `cobrowse.guide`.
const RRWEB_URL = new URL("../../vendor/rrweb/rrweb.js", import.meta.url).href;
const RRWEB_CSS_URL = new URL("../../vendor/rrweb/style.css", import.meta.url).href;
const POINTER_EVERY_MS = 120;
const META = 4;
// The widget's stylesheet is not recorded, so the view gets the marks it puts on the page
// here: where masked fields are (rrweb replays their values as asterisks), and the helper's
// own highlight and note as the resident sees them.
const MASK_STYLE = [
  "[data-dioa-masked] { outline: 3px dashed #d4351c !important; }",
  ".dioa-masked-note { display: block; color: #d4351c !important; font: bold 16px/1.3 arial, sans-serif !important; }",
  ".dioa-cobrowse-highlight { outline: 4px solid #ffdd00 !important; box-shadow: 0 0 0 8px #0b0c0c !important; }",
  ".dioa-cobrowse-callout { display: inline-block; margin: 8px 0; padding: 4px 8px; background: #0b0c0c; color: #ffffff; font: bold 19px/1.3 arial, sans-serif; }",
];

function loadReplayerStyles() {
  if (document.querySelector("link[data-rrweb-css]")) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = RRWEB_CSS_URL;
  link.dataset.rrwebCss = "";
  document.head.append(link);
}

export class CobrowseViewer {
  constructor({ container, send, onStatus }) {
    this.container = container;
    this.send = send;
    this.onStatus = onStatus;
    this.sessionId = null;
    // The session whose player is still loading, if any.
    this.loading = null;
    this.parts = new Map();
    this.replayer = null;
    this.highlightMode = false;
    this.lastPointer = 0;
  }

  async show(sessionId) {
    if (this.sessionId === sessionId || this.loading === sessionId) return;
    this.hide();
    this.loading = sessionId;
    loadReplayerStyles();
    this.rrweb = this.rrweb || (await import(RRWEB_URL));
    // Hidden, or another screen shown, while the player loaded: this one is not wanted now.
    if (this.loading !== sessionId) return;
    this.loading = null;
    // Only now: a reconnection meanwhile (`reattach`) must not ask for page events that
    // would arrive before there is a player for them.
    this.sessionId = sessionId;
    this.container.hidden = false;
    this.onStatus("waiting");
    this.send("cobrowse.view", { session_id: sessionId });
  }

  // After the console's socket reconnects: ask again, and a fresh snapshot follows.
  reattach() {
    if (this.sessionId !== null) this.send("cobrowse.view", { session_id: this.sessionId });
  }

  hide() {
    this.loading = null;
    this.sessionId = null;
    this.parts.clear();
    if (this.replayer) this.replayer.destroy?.();
    this.replayer = null;
    this.container.replaceChildren();
    this.container.hidden = true;
  }

  receive(frame) {
    if (frame.session_id !== this.sessionId) return;
    const key = `${frame.page}:${frame.batch}`;
    const parts = this.parts.get(key) || new Array(frame.parts);
    parts[frame.part] = frame.data;
    this.parts.set(key, parts);
    if (parts.filter((part) => part !== undefined).length < frame.parts) return;
    this.parts.delete(key);
    let events;
    try {
      events = JSON.parse(parts.join(""));
    } catch {
      return;
    }
    for (const event of events) this.play(event);
  }

  play(event) {
    if (event.type === META) this.restart(event);
    if (this.replayer) this.replayer.addEvent(event);
  }

  restart(meta) {
    if (this.replayer) this.replayer.destroy?.();
    this.container.replaceChildren();
    this.replayer = new this.rrweb.Replayer([], {
      root: this.container,
      liveMode: true,
      mouseTail: false,
      triggerFocus: false,
      insertStyleRules: MASK_STYLE,
    });
    // The resident's clock, not ours: their events play as soon as they arrive.
    this.replayer.startLive(meta.timestamp);
    this.replayer.on("resize", ({ width, height }) => this.fit(width, height));
    const iframe = this.container.querySelector("iframe");
    if (iframe) iframe.title = "The resident's page, live";
    this.addOverlay();
    this.fit(meta.data.width, meta.data.height);
    this.onStatus("live");
  }

  // The resident's viewport, scaled to fit the panel.
  fit(width, height) {
    const wrapper = this.container.querySelector(".replayer-wrapper");
    if (!wrapper || !width) return;
    this.scale = Math.min(1, this.container.clientWidth / width);
    wrapper.style.transform = `scale(${this.scale})`;
    wrapper.style.transformOrigin = "0 0";
    this.container.style.height = `${Math.round(height * this.scale)}px`;
  }

  // A transparent layer over the replay: the helper's pointer and clicks land here, never on
  // the replayed page, so the helper cannot type or click into it.
  addOverlay() {
    const overlay = document.createElement("div");
    overlay.className = "cobrowse-view__overlay";
    overlay.addEventListener("mousemove", (event) => this.pointer(event));
    overlay.addEventListener("click", (event) => this.pick(event));
    this.container.append(overlay);
    this.overlay = overlay;
  }

  replayPoint(event) {
    const iframe = this.container.querySelector("iframe");
    if (!iframe || !iframe.contentWindow) return null;
    const box = this.overlay.getBoundingClientRect();
    const x = (event.clientX - box.left) / (this.scale || 1);
    const y = (event.clientY - box.top) / (this.scale || 1);
    return { x, y, iframe };
  }

  pointer(event) {
    const now = Date.now();
    if (now - this.lastPointer < POINTER_EVERY_MS) return;
    this.lastPointer = now;
    const point = this.replayPoint(event);
    if (!point) return;
    const scrollX = point.iframe.contentWindow.scrollX || 0;
    const scrollY = point.iframe.contentWindow.scrollY || 0;
    this.send("cobrowse.guide", {
      session_id: this.sessionId,
      kind: "pointer",
      x: Math.max(0, Math.round(point.x + scrollX)),
      y: Math.max(0, Math.round(point.y + scrollY)),
    });
  }

  pick(event) {
    if (!this.highlightMode || !this.replayer) return;
    const point = this.replayPoint(event);
    if (!point) return;
    const node = point.iframe.contentDocument.elementFromPoint(point.x, point.y);
    const nodeId = node ? this.replayer.getMirror().getId(node) : -1;
    if (nodeId > 0) this.highlight(nodeId);
  }

  highlight(nodeId) {
    const note = document.getElementById("cobrowse-note").value.trim();
    const scroll = document.getElementById("cobrowse-scroll").checked;
    this.send("cobrowse.guide", { session_id: this.sessionId, kind: "highlight", node_id: nodeId, note, scroll });
    this.onStatus("highlighted");
  }

  // For keyboard users and tests: highlight the replayed element matching a CSS selector.
  highlightSelector(selector) {
    const iframe = this.container.querySelector("iframe");
    const node = iframe && iframe.contentDocument.querySelector(selector);
    const nodeId = node ? this.replayer.getMirror().getId(node) : -1;
    if (nodeId > 0) this.highlight(nodeId);
    return nodeId > 0;
  }

  clear() {
    if (this.sessionId !== null) this.send("cobrowse.guide", { session_id: this.sessionId, kind: "clear" });
  }
}
