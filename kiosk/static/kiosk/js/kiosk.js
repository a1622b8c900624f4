// The kiosk shell on every page an enrolled kiosk shows: the bar (Home, Get help, Continue on
// your phone, Accessibility, Finish), the visit's idle warning and privacy wipe, a helper
// asked to come over, and the device socket (heartbeat, remote wipe, revocation).
import { FrameSocket, socketUrl } from "../../chat/js/socket.js";

const shell = document.querySelector("[data-kiosk-shell]");
const HEARTBEAT_MS = 30000;
const HELP_KEY = "dioa-kiosk-help";
const PREFERENCES_KEY = "dioa-kiosk-preferences";
const TEXT = {
  offline: "This kiosk has lost its connection to the council. You can carry on using the services; help on screen will come back by itself.",
  waiting: (position) => (position ? `You have asked for a helper. You are number ${position} in the queue.` : "You have asked for a helper."),
  onTheWay: (name) => `${name || "A helper"} is on the way to you.`,
  ended: "Your request for help has ended.",
  endedOrMoved: "Your request for help has ended, or continues on your phone.",
  handoffFailed: "Sorry, this page cannot be opened on a phone. Please try again or ask for help.",
  handoffNote: (minutes) => `The code works once, for ${minutes} minutes. Your details are not on it.`,
};

function visitCookie() {
  const match = document.cookie.match(/(?:^|; )dioa_visit=([^;]*)/);
  return match ? match[1] : "";
}

async function post(url, fields = {}) {
  const body = new URLSearchParams(fields);
  const response = await fetch(url, {
    method: "POST",
    body,
    credentials: "same-origin",
    headers: { "X-CSRFToken": shell.dataset.csrf },
  });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

class KioskShell {
  constructor(root) {
    this.root = root;
    this.idleSeconds = Number(root.dataset.idleSeconds) || 120;
    this.warningSeconds = Number(root.dataset.warningSeconds) || 30;
    this.connection = root.querySelector("[data-kiosk-connection]");
    this.dialogs = Object.fromEntries([...root.querySelectorAll("[data-kiosk-dialog]")].map((d) => [d.dataset.kioskDialog, d]));
    this.wiping = false;
    this.bindActions();
    this.bindPreferences();
    this.watchActivity();
    this.connectDevice();
    this.helpRequest = new HelpRequest(root, this);
    this.bindSearch();
  }

  // --- Bar and dialogs ---------------------------------------------------------------
  bindActions() {
    const actions = {
      help: () => this.openHelp(),
      "help-chat": () => this.chatOnScreen(),
      "help-in-person": () => this.helpInPerson(),
      "cancel-help": () => this.helpRequest.cancel(),
      phone: () => this.continueOnPhone(),
      accessibility: () => this.showDialog("accessibility"),
      "read-aloud": () => this.readAloud(),
      "stop-reading": () => window.speechSynthesis && window.speechSynthesis.cancel(),
      finish: () => this.wipe("finished"),
      "still-here": () => this.stillHere(),
    };
    this.root.addEventListener("click", (event) => {
      const button = event.target.closest("[data-kiosk-action], [data-kiosk-close]");
      if (!button) return;
      if (button.hasAttribute("data-kiosk-close")) {
        button.closest("dialog").close();
        return;
      }
      actions[button.dataset.kioskAction]?.();
    });
    for (const dialog of Object.values(this.dialogs)) {
      dialog.addEventListener("close", () => this.opener?.focus());
    }
  }

  showDialog(name) {
    this.opener = document.activeElement;
    const dialog = this.dialogs[name];
    if (!dialog.open) dialog.showModal();
    return dialog;
  }

  async openHelp() {
    const dialog = this.showDialog("help");
    const available = await this.helpAvailable();
    dialog.querySelector("[data-kiosk-help-choices]").hidden = !available;
    dialog.querySelector("[data-kiosk-help-unavailable]").hidden = available;
  }

  async helpAvailable() {
    if (!this.socket || !this.socket.isOpen) return false;
    try {
      const response = await fetch("/chat/widget/config.json", { credentials: "omit" });
      return response.ok && (await response.json()).available === true;
    } catch {
      return false;
    }
  }

  chatOnScreen() {
    this.dialogs.help.close();
    this.startVisit();
    window.dioaChat?.open({ focus: true });
  }

  helpInPerson() {
    this.dialogs.help.close();
    this.startVisit();
    this.helpRequest.start();
  }

  async continueOnPhone() {
    const dialog = this.showDialog("phone");
    const choice = dialog.querySelector("[data-kiosk-handoff-chat]");
    const box = choice.querySelector("input");
    // Offer to bring the conversation only when there is one; a new code follows each change.
    choice.hidden = !(this.helpRequest.active || window.dioaChat?.state?.token);
    if (!this.handoffChoiceBound) {
      box.addEventListener("change", () => this.showHandoffCode(dialog, !choice.hidden && box.checked));
      this.handoffChoiceBound = true;
    }
    await this.showHandoffCode(dialog, !choice.hidden && box.checked);
  }

  async showHandoffCode(dialog, withConversation) {
    const holder = dialog.querySelector("[data-kiosk-qr]");
    const note = dialog.querySelector("[data-kiosk-qr-note]");
    holder.replaceChildren();
    dialog.querySelector("[data-kiosk-handoff-url]").textContent = "";
    try {
      const data = await post(this.root.dataset.handoffUrl, {
        path: window.location.pathname,
        with_conversation: withConversation ? "1" : "0",
      });
      // The server's own SVG, made by the qrcode library from our link: no resident text in it.
      const svg = new DOMParser().parseFromString(data.qr_svg, "image/svg+xml").documentElement;
      svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", "QR code linking to this service on your phone");
      holder.append(document.importNode(svg, true));
      dialog.querySelector("[data-kiosk-handoff-url]").textContent = data.url;
      note.textContent = TEXT.handoffNote(data.minutes);
    } catch {
      note.textContent = TEXT.handoffFailed;
    }
  }

  // --- Accessibility -------------------------------------------------------------------
  bindPreferences() {
    const preferences = this.preferences();
    for (const box of this.root.querySelectorAll("[data-kiosk-preference]")) {
      const name = box.dataset.kioskPreference;
      box.checked = Boolean(preferences[name]);
      box.addEventListener("change", () => {
        const next = { ...this.preferences(), [name]: box.checked };
        sessionStorage.setItem(PREFERENCES_KEY, JSON.stringify(next));
        document.documentElement.classList.toggle(`kiosk-${name}`, box.checked);
      });
    }
    if (!("speechSynthesis" in window)) {
      this.root.querySelector("[data-kiosk-speech-unavailable]").hidden = false;
      for (const button of this.root.querySelectorAll('[data-kiosk-action="read-aloud"], [data-kiosk-action="stop-reading"]')) button.hidden = true;
    }
  }

  preferences() {
    try {
      return JSON.parse(sessionStorage.getItem(PREFERENCES_KEY) || "{}");
    } catch {
      return {};
    }
  }

  readAloud() {
    if (!("speechSynthesis" in window)) return;
    window.speechSynthesis.cancel();
    const main = document.getElementById("main-content");
    const utterance = new SpeechSynthesisUtterance(main ? main.innerText : document.body.innerText);
    utterance.lang = document.documentElement.lang || "en-GB";
    window.speechSynthesis.speak(utterance);
  }

  // --- Search on the home screen --------------------------------------------------------
  bindSearch() {
    const input = document.getElementById("kiosk-search");
    if (!input) return;
    const count = document.getElementById("kiosk-search-count");
    const none = document.querySelector("[data-kiosk-no-results]");
    input.addEventListener("input", () => {
      const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      let shown = 0;
      for (const category of document.querySelectorAll("[data-kiosk-category]")) {
        let inCategory = 0;
        for (const item of category.querySelectorAll("[data-kiosk-service]")) {
          const match = words.every((word) => item.dataset.search.includes(word));
          item.hidden = !match;
          if (match) inCategory += 1;
        }
        category.hidden = inCategory === 0;
        shown += inCategory;
      }
      none.hidden = shown > 0;
      count.textContent = words.length ? `${shown} ${shown === 1 ? "service" : "services"} found` : "";
    });
  }

  // --- Visits, idle warning and the wipe --------------------------------------------------
  watchActivity() {
    const activity = () => this.touched();
    for (const type of ["pointerdown", "keydown", "touchstart", "wheel", "input"]) {
      document.addEventListener(type, activity, { capture: true, passive: true });
    }
    this.resetIdle();
  }

  touched() {
    if (this.wiping || this.dialogs.idle.open) return;
    this.startVisit();
    this.resetIdle();
  }

  startVisit() {
    if (visitCookie() || this.visitStarting) return;
    this.visitStarting = post(this.root.dataset.visitStartUrl)
      .then(() => {
        history.replaceState({ ...(history.state || {}), dioaVisit: visitCookie() }, "");
        this.heartbeat();
      })
      .catch(() => {})
      .finally(() => {
        this.visitStarting = null;
      });
  }

  resetIdle() {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.warnIdle(), this.idleSeconds * 1000);
  }

  warnIdle() {
    // Nothing to clear if nobody has touched the screen since the last wipe.
    if (!visitCookie() && !this.helpRequest.active) {
      this.resetIdle();
      return;
    }
    const dialog = this.showDialog("idle");
    const counter = dialog.querySelector("[data-kiosk-countdown]");
    let remaining = this.warningSeconds;
    counter.textContent = String(remaining);
    clearInterval(this.countdown);
    this.countdown = setInterval(() => {
      remaining -= 1;
      counter.textContent = String(Math.max(remaining, 0));
      if (remaining <= 0) {
        clearInterval(this.countdown);
        this.wipe("idle");
      }
    }, 1000);
  }

  stillHere() {
    clearInterval(this.countdown);
    this.dialogs.idle.close();
    this.resetIdle();
  }

  async wipe(reason) {
    if (this.wiping) return;
    this.wiping = true;
    clearInterval(this.countdown);
    window.speechSynthesis?.cancel();
    try {
      await post(this.root.dataset.finishUrl, { reason });
    } catch {
      // Offline: clear what this browser holds; the server ends the visit when it is told
      // (a stale visit cookie is refused and its session flushed on the next request).
    }
    sessionStorage.clear();
    localStorage.clear();
    document.cookie = "dioa_visit=; Max-Age=0; path=/; SameSite=Strict";
    window.location.replace(this.root.dataset.homeUrl);
  }

  // --- Device socket -----------------------------------------------------------------------
  // No longer enrolled: the home address shows the pairing screen, and nothing a resident
  // left in this browser stays, however the kiosk learnt it (told while connected, or refused
  // on reconnecting after it was revoked offline). Once: the revoked frame and the socket's
  // close both say so, and each page load there starts a new pairing, so a second would leave
  // a code on the Kiosks page that no kiosk shows.
  backToPairing() {
    if (this.leavingForPairing) return;
    this.leavingForPairing = true;
    this.socket.close();
    sessionStorage.clear();
    localStorage.clear();
    window.location.replace(this.root.dataset.homeUrl);
  }

  connectDevice() {
    this.socket = new FrameSocket({
      url: socketUrl("/ws/kiosk/"),
      handlers: {
        "kiosk.ready": (data) => {
          if (data.idle_timeout_seconds) this.idleSeconds = data.idle_timeout_seconds;
          this.heartbeat();
        },
        "kiosk.wipe": () => this.wipe("remote"),
        "kiosk.revoked": () => this.backToPairing(),
      },
      onOpen: () => {
        this.connection.textContent = "";
        this.connection.classList.remove("kiosk-connection--lost");
      },
      onClose: (event) => {
        if (event.code === 4403 || event.code === 4401) {
          this.backToPairing();
          return;
        }
        this.connection.textContent = TEXT.offline;
        this.connection.classList.add("kiosk-connection--lost");
      },
    });
    this.socket.connect();
    setInterval(() => this.heartbeat(), HEARTBEAT_MS);
  }

  heartbeat() {
    this.socket?.send("kiosk.heartbeat", { activity: visitCookie() ? "in_use" : "idle" });
  }
}

// A helper asked to come over: a kiosk conversation with nothing typed, followed on the chat
// socket until a helper accepts it (they are on their way) or the resident cancels.
class HelpRequest {
  constructor(root, shell) {
    this.panel = root.querySelector("[data-kiosk-help-status]");
    this.text = root.querySelector("[data-kiosk-help-text]");
    this.shell = shell;
    this.socket = null;
    const saved = sessionStorage.getItem(HELP_KEY);
    if (saved) this.follow({ resume: saved });
  }

  get active() {
    return Boolean(sessionStorage.getItem(HELP_KEY));
  }

  start() {
    if (this.active) return;
    this.follow({ resume: null });
  }

  follow({ resume }) {
    this.panel.hidden = false;
    this.text.textContent = TEXT.waiting(null);
    this.socket = new FrameSocket({
      url: socketUrl("/ws/chat/"),
      handlers: {
        "conversation.started": (data) => sessionStorage.setItem(HELP_KEY, data.token),
        "state.snapshot": (data) => this.show(data.conversation),
        "conversation.updated": (data) => this.show(data.conversation),
        "queue.position": (data) => {
          this.text.textContent = TEXT.waiting(data.position);
        },
        error: (data) => {
          // A token that no longer opens the conversation: it ended, or moved to the phone.
          if (data.frame_type === "conversation.resume") this.finish(TEXT.endedOrMoved);
          else if (data.code === "chat_unavailable") this.finish(data.message);
        },
      },
      onOpen: () => {
        const token = sessionStorage.getItem(HELP_KEY);
        if (token) this.socket.send("conversation.resume", { token, last_seq: 0 });
        else this.socket.send("conversation.start", { in_person: true });
      },
    });
    this.socket.connect();
  }

  show(conversation) {
    if (conversation.status === "ended") this.finish(TEXT.ended);
    else if (conversation.status === "active") this.text.textContent = TEXT.onTheWay(conversation.helper_name);
  }

  cancel() {
    this.socket?.send("conversation.end", {});
    this.finish(TEXT.ended);
  }

  finish(message) {
    sessionStorage.removeItem(HELP_KEY);
    this.socket?.close();
    this.socket = null;
    this.text.textContent = message;
    this.panel.querySelector("button").hidden = true;
    setTimeout(() => {
      this.panel.hidden = true;
      this.panel.querySelector("button").hidden = false;
    }, 8000);
  }
}

if (shell) window.dioaKiosk = new KioskShell(shell);
