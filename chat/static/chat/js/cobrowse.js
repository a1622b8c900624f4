// The resident's side of co-browsing: the consent dialog, the "Your helper can see this page"
// banner with Stop, recording the page with rrweb (loaded only once sharing starts), masking,
// and showing the helper's pointer and highlights. Nothing is recorded before consent, and
// masked values never leave this browser: rrweb replaces them before an event is made.
import { announce, element } from "./dom.js";
import { secretId } from "./socket.js";

const RRWEB_URL = new URL("../../vendor/rrweb/rrweb.js", import.meta.url).href;
// Values that never leave the page in clear text; add data-private to mark anything else.
const SENSITIVE = 'input[type="password"], [autocomplete^="cc-"], [data-private], [data-private] input, [data-private] textarea, [data-private] select';
const BATCH_MS = 100;
const PART_CHARS = 12000;
// docs/protocol.md: a batch (a page's full snapshot, usually) of at most 4 MiB of JSON.
const MAX_BATCH_CHARS = 4 * 1024 * 1024;
const POINTER_HIDE_MS = 3000;

const TEXT = {
  consentTitle: (name) => `${name || "Your helper"} would like to see your screen`,
  consentIntro: "If you agree, your helper sees this page as you see it, and the pages of this website you go to next, until you stop sharing.",
  sharedTitle: "What your helper will see",
  shared: ["This page and where you move and click", "What you type, except hidden fields"],
  neverTitle: "What is never shared",
  never: ["Passwords and bank card details", "Fields marked as private", "Other tabs, other websites and the rest of your device"],
  control: "Your helper cannot type or click for you. You can stop sharing at any time.",
  accept: "Share my screen",
  decline: "No, thanks",
  banner: "Your helper can see this page",
  stop: "Stop sharing",
  hiddenFields: (n) => (n ? `${n} field${n === 1 ? " is" : "s are"} hidden from your helper.` : "No fields on this page are hidden."),
  hiddenNote: "Hidden from your helper",
  started: "Screen sharing has started. Your helper can see this page.",
  stopped: "Screen sharing has stopped. Your helper can no longer see your screen.",
  tooLarge: "This page is too large to share. Screen sharing has stopped.",
  highlight: (note) => `Your helper highlighted part of the page${note ? `: ${note}` : ""}.`,
  codeTitle: "Share your screen with an adviser",
  code: (code) => `Your code is ${code.slice(0, 3)} ${code.slice(3)}`,
  codeHelp: "Read this code to the adviser on the phone. It works once and expires in 20 minutes. They will ask before they see anything.",
};

// `text` cut into pieces of at most `size` UTF-16 units, never between the two halves of a
// character such as an emoji: the server refuses half of one, which is not text.
export function textParts(text, size) {
  const parts = [];
  for (let start = 0; start < text.length; ) {
    let end = Math.min(start + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && end - 1 > start && last >= 0xd800 && last <= 0xdbff) end -= 1;
    parts.push(text.slice(start, end));
    start = end;
  }
  return parts;
}

export class ResidentCobrowse {
  constructor({ send, root, maskAllInputs = false }) {
    this.send = send;
    this.root = root;
    this.maskAllInputs = maskAllInputs;
    this.session = null;
    this.sharingId = null;
    // Names this page load among the resident's others.
    this.page = secretId();
    this.batch = 0;
    this.pending = [];
    this.buildConsent();
    this.buildBanner();
    this.live = element("div", { className: "govuk-visually-hidden", "aria-live": "polite", id: "dioa-cobrowse-announcer" });
    this.root.append(this.live);
  }

  // --- Consent --------------------------------------------------------------------------
  buildConsent() {
    const list = (items) => element("ul", { className: "govuk-list govuk-list--bullet" }, items.map((text) => element("li", { text })));
    this.consentTitle = element("h2", { className: "govuk-heading-m", id: "dioa-cobrowse-consent-title" });
    this.acceptButton = element("button", { type: "button", className: "govuk-button", text: TEXT.accept });
    this.declineButton = element("button", { type: "button", className: "govuk-button govuk-button--secondary", text: TEXT.decline });
    this.consent = element("dialog", { className: "cobrowse-consent", "aria-labelledby": "dioa-cobrowse-consent-title", "aria-describedby": "dioa-cobrowse-consent-intro" }, [
      this.consentTitle,
      element("p", { className: "govuk-body", id: "dioa-cobrowse-consent-intro", text: TEXT.consentIntro }),
      element("h3", { className: "govuk-heading-s", text: TEXT.sharedTitle }),
      list(TEXT.shared),
      element("h3", { className: "govuk-heading-s", text: TEXT.neverTitle }),
      list(TEXT.never),
      element("p", { className: "govuk-body", text: TEXT.control }),
      element("div", { className: "govuk-button-group" }, [this.acceptButton, this.declineButton]),
    ]);
    this.acceptButton.addEventListener("click", () => this.answer(true));
    this.declineButton.addEventListener("click", () => this.answer(false));
    // Escape means "no": the dialog never closes without an answer being sent.
    this.consent.addEventListener("cancel", (event) => {
      event.preventDefault();
      this.answer(false);
    });
    this.root.append(this.consent);
  }

  answer(accept) {
    if (!this.session) return;
    this.send("cobrowse.respond", { session_id: this.session.id, accept });
    this.consent.close();
  }

  // --- Banner -----------------------------------------------------------------------------
  buildBanner() {
    this.hiddenCount = element("span", { className: "cobrowse-banner__hidden" });
    this.stopButton = element("button", { type: "button", className: "govuk-button govuk-button--warning cobrowse-banner__stop", text: TEXT.stop });
    this.stopButton.addEventListener("click", () => this.stopByResident());
    this.banner = element("div", { className: "cobrowse-banner", role: "region", "aria-label": "Screen sharing", hidden: "" }, [
      element("strong", { className: "cobrowse-banner__title", text: TEXT.banner }),
      this.hiddenCount,
      this.stopButton,
    ]);
    this.root.prepend(this.banner);
  }

  // --- Frames from the server --------------------------------------------------------------
  update(cobrowse) {
    this.session = cobrowse;
    if (!cobrowse) {
      this.stopRecording({ announceIt: false });
      return;
    }
    if (cobrowse.status === "requested") {
      this.consentTitle.textContent = TEXT.consentTitle(cobrowse.helper_name);
      if (!this.consent.open) this.consent.showModal();
      this.acceptButton.focus();
    } else {
      if (this.consent.open) this.consent.close();
      if (cobrowse.status === "active") this.startRecording(cobrowse.id);
      else this.stopRecording({ announceIt: this.sharingId !== null });
    }
  }

  guidance(message) {
    if (this.sharingId === null) return;
    if (message.kind === "snapshot") this.takeSnapshot();
    else if (message.kind === "pointer") this.showPointer(message.x, message.y);
    else if (message.kind === "highlight") this.highlight(message);
    else if (message.kind === "clear") this.clearHighlight();
  }

  conversationEnded() {
    this.stopRecording({ announceIt: this.sharingId !== null });
    if (this.consent.open) this.consent.close();
  }

  // --- Recording ---------------------------------------------------------------------------
  masked(el) {
    return this.maskAllInputs || Boolean(el && el.closest && el.closest(SENSITIVE)) || (el && el.type === "password");
  }

  markSensitiveFields() {
    const fields = [...document.querySelectorAll("input, textarea, select")].filter(
      (el) => !this.root.contains(el) && el.type !== "hidden" && this.masked(el),
    );
    for (const field of fields) {
      field.setAttribute("data-dioa-masked", "");
      if (!field.nextElementSibling || !field.nextElementSibling.matches(".dioa-masked-note")) {
        field.after(element("span", { className: "dioa-masked-note", text: TEXT.hiddenNote }));
      }
    }
    this.hiddenCount.textContent = TEXT.hiddenFields(fields.length);
  }

  unmarkSensitiveFields() {
    for (const field of document.querySelectorAll("[data-dioa-masked]")) field.removeAttribute("data-dioa-masked");
    for (const note of document.querySelectorAll(".dioa-masked-note")) note.remove();
  }

  async startRecording(sessionId) {
    if (this.sharingId === sessionId) {
      // Back after a lost connection: events made meanwhile were dropped, so start the
      // helper's view afresh rather than leave it out of step.
      this.takeSnapshot();
      return;
    }
    this.sharingId = sessionId;
    this.banner.hidden = false;
    document.documentElement.classList.add("dioa-cobrowsing");
    this.markSensitiveFields();
    announce(this.live, TEXT.started);
    this.rrweb = this.rrweb || (await import(RRWEB_URL));
    if (this.sharingId !== sessionId) return; // stopped while loading
    const everyInput = { color: true, date: true, "datetime-local": true, email: true, month: true, number: true, range: true, search: true, tel: true, text: true, time: true, url: true, week: true, textarea: true, select: true, password: true };
    this.stopFn = this.rrweb.record({
      emit: (event) => this.queue(event),
      // Every input value passes through maskInputFn, which keeps only what may be seen.
      maskInputOptions: everyInput,
      maskInputFn: (text, el) => (this.masked(el) ? "*".repeat(text.length) : text),
      maskTextSelector: "[data-private]",
      // The widget itself is the resident's own business (chat text is in the conversation).
      // (and its stylesheet, which the helper's view does not need).
      blockSelector: ".dioa-chat, .dioa-cobrowse-pointer, link[data-dioa-chat-css]",
      sampling: { mousemove: 50, scroll: 150 },
      recordCanvas: false,
      collectFonts: false,
    });
  }

  takeSnapshot() {
    if (this.rrweb && this.stopFn) this.rrweb.takeFullSnapshot(true);
  }

  stopByResident() {
    if (this.session) this.send("cobrowse.stop", { session_id: this.session.id });
    this.stopRecording({ announceIt: true });
  }

  stopRecording({ announceIt }) {
    if (this.stopFn) this.stopFn();
    this.stopFn = null;
    this.pending = [];
    clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const wasSharing = this.sharingId !== null;
    this.sharingId = null;
    this.banner.hidden = true;
    document.documentElement.classList.remove("dioa-cobrowsing");
    this.unmarkSensitiveFields();
    this.clearHighlight();
    if (this.pointer) this.pointer.remove();
    this.pointer = null;
    if (wasSharing && announceIt) announce(this.live, TEXT.stopped);
  }

  queue(event) {
    if (this.sharingId === null) return;
    this.pending.push(event);
    if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), BATCH_MS);
  }

  flush() {
    this.flushTimer = null;
    if (this.sharingId === null || !this.pending.length) return;
    const text = JSON.stringify(this.pending);
    this.pending = [];
    if (text.length > MAX_BATCH_CHARS) {
      announce(this.live, TEXT.tooLarge);
      this.stopByResident();
      return;
    }
    const pieces = textParts(text, PART_CHARS);
    const batch = this.batch++;
    pieces.forEach((data, part) => {
      this.send("cobrowse.events", { session_id: this.sharingId, page: this.page, batch, part, parts: pieces.length, data });
    });
  }

  // --- Guidance from the helper ---------------------------------------------------------------
  showPointer(x, y) {
    if (!this.pointer) {
      this.pointer = element("div", { className: "dioa-cobrowse-pointer", "aria-hidden": "true" });
      document.body.append(this.pointer);
    }
    this.pointer.style.left = `${x}px`;
    this.pointer.style.top = `${y}px`;
    this.pointer.hidden = false;
    clearTimeout(this.pointerTimer);
    this.pointerTimer = setTimeout(() => {
      if (this.pointer) this.pointer.hidden = true;
    }, POINTER_HIDE_MS);
  }

  highlight({ node_id: nodeId, note, scroll }) {
    const target = this.rrweb && this.rrweb.record.mirror.getNode(nodeId);
    if (!target || target.nodeType !== Node.ELEMENT_NODE || this.root.contains(target)) return;
    this.clearHighlight();
    target.classList.add("dioa-cobrowse-highlight");
    this.highlighted = target;
    if (note) {
      this.callout = element("span", { className: "dioa-cobrowse-callout", role: "note", text: note });
      target.after(this.callout);
    }
    if (scroll) target.scrollIntoView({ block: "center", behavior: "smooth" });
    announce(this.live, TEXT.highlight(note));
  }

  clearHighlight() {
    if (this.highlighted) this.highlighted.classList.remove("dioa-cobrowse-highlight");
    this.highlighted = null;
    if (this.callout) this.callout.remove();
    this.callout = null;
  }
}

// "Share my screen with an adviser" without a chat: a code to read out on the phone.
export function codeView() {
  const heading = element("h3", { className: "govuk-heading-s", id: "dioa-cobrowse-code-title", text: TEXT.codeTitle });
  // Not a live region of its own: the widget reads the whole box out once, through its own.
  const code = element("p", { className: "govuk-heading-l cobrowse-code", id: "dioa-cobrowse-code" });
  const help = element("p", { className: "govuk-body-s", text: TEXT.codeHelp });
  const box = element("section", { className: "cobrowse-code-box", "aria-labelledby": "dioa-cobrowse-code-title", hidden: "" }, [heading, code, help]);
  return {
    box,
    show(value) {
      code.textContent = TEXT.code(value);
      box.hidden = false;
    },
    hide() {
      box.hidden = true;
    },
  };
}
