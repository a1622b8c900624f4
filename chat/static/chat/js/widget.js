// The resident's chat widget. One tag adds a launcher button and a chat panel to any page of
// an allowed council site:
//
//   <script type="module" src="https://assist.example.gov.uk/static/chat/js/widget.js"
//           data-dioa-chat data-service="report-missed-bin"></script>
//
// The conversation survives reloads and navigation within the site (its token lives in
// sessionStorage) and lost connections (it resumes from the last message it holds and
// resends, with the same client ids, whatever was not acknowledged).

import { announce, element, isShown, keepingFocusIn, linkify, sendOnEnter } from "./dom.js";
import {
  FrameSocket, MessageStore, RESEND_AFTER_LIMIT_MS, formatTime, newClientId, secretId, socketUrl, timeText,
} from "./socket.js";
import { ResidentCobrowse, codeView } from "./cobrowse.js";
import { FormErrors } from "./form_errors.js";

const ORIGIN = new URL(import.meta.url).origin;
const SCRIPT = document.querySelector("script[data-dioa-chat]") || document.createElement("script");
const STORAGE_KEY = "dioa-chat";
// Where the panel takes the whole screen (widget.scss, GOV.UK's tablet breakpoint).
const FULL_SCREEN = window.matchMedia("(max-width: 40.0525em)");
// How often the queue's estimate, counting down, is redrawn.
const WAIT_TICK_MS = 30000;
const TYPING_IDLE_MS = 3000;
const TYPING_REPEAT_MS = 2000;
// The other side repeats "typing" every 2 s or so while typing; silence this long means it
// stopped without saying so (its connection went).
const TYPING_EXPIRY_MS = 8000;
// Asked for while offline, these go with the chat to the next page; anything else the
// resident can simply ask for again there.
const KEPT_ACROSS_PAGES = new Set(["conversation.end", "callback.request"]);
// Read marks are cumulative: one frame for a burst of messages (a snapshot holds many).
const READ_MARK_DELAY_MS = 250;
// While waiting, whether chat is still open is also asked this often. Each `queue.position`
// says it, but the server's periodic pass (closing time, a console past its grace period)
// reaches sockets only through a shared channel layer: not on one process with the
// in-memory layer, where it runs in a process of its own.
const CONFIG_RECHECK_MS = 2 * 60 * 1000;
// How far below the view the latest message may end for a resident still to be reading it.
const LINE_SLACK_PX = 48;

const TEXT = {
  launcher: "Chat with an advisor",
  launcherUnread: (count) => `Chat with an advisor (${count} new message${count === 1 ? "" : "s"})`,
  title: SCRIPT.dataset.title || "Chat with an advisor",
  close: "Close",
  closeHidden: " chat",
  body: "The chat so far",
  privacy: (council) =>
    (council ? `This chat is run by ${council}. ` : "") +
    "Do not type passwords or bank card numbers. " +
    "We keep what you write only as long as we need it to help you and improve our service.",
  privacyLink: "How we use your information (opens in new tab)",
  nameLabel: "Your name (optional)",
  nameHint: "So the advisor knows what to call you.",
  topicLabel: "What do you need help with?",
  topicOther: "Something else",
  emailLabel: "Email address (optional)",
  emailHint: "If an advisor answers, we will email you a copy of the conversation when it ends.",
  start: "Start chat",
  messageLabel: "Message",
  send: "Send",
  end: "End chat",
  newChat: "Start a new chat",
  connecting: "Connecting…",
  offline: "You are offline. We will reconnect and send your messages when we can.",
  reconnected: "Connected again.",
  keepOpen: (minutes) =>
    `Keep this website open to keep your place in the queue. If you close it for more than ${minutes} minute${minutes === 1 ? "" : "s"}, your chat will end.`,
  waiting: "You are in the queue. An advisor will be with you soon.",
  position: (position, minutes) =>
    `You are number ${position} in the queue. Estimated wait: about ${minutes} minute${minutes === 1 ? "" : "s"}.`,
  positionLong: (position) =>
    `You are number ${position} in the queue. An advisor may not be free in time to answer this chat. You can leave a message instead.`,
  positionUnavailable: (position, reason) =>
    `You are number ${position} in the queue. ${reason === "closed" ? "Webchat has now closed, but an advisor may still answer you." : "All our advisors are busy or away at the moment."} You can leave a message instead.`,
  positionLate: (position) =>
    `You are number ${position} in the queue. It is taking longer than we estimated. An advisor will be with you as soon as they can.`,
  active: (name) => `You are chatting with ${name}.`,
  ended: "This chat has ended.",
  typing: (name) => `${name} is typing…`,
  you: "You",
  advisor: "Advisor",
  sending: "Sending…",
  sent: "Sent",
  read: "Read",
  failed: "Not sent.",
  retry: "Try again",
  newMessage: (author, body) => `${author} says: ${body}`,
  notFound: "Your earlier chat has ended or could not be found. You can start a new one.",
  unavailableClosed: "Webchat is closed at the moment.",
  unavailableBusy: "All our advisors are busy or away at the moment.",
  unanswered: "No advisor was free to answer in time.",
  abandoned: (minutes) =>
    `This chat closed because the website was closed for more than ${minutes} minute${minutes === 1 ? "" : "s"}.`,
  nextOpen: (when) => `We open again ${when}.`,
  hoursHeading: "Webchat opening hours",
  hours: (day, when) => `${day}: ${when}`,
  closedOn: (when, reason) => `Closed on ${when}${reason ? ` (${reason})` : ""}`,
  leaveMessageIntro: "Leave a message and we will get back to you by phone or email.",
  leaveInstead: "Leave a message instead",
  keepPlace: "You keep your place in the queue until you send your message.",
  keepWaiting: "Keep waiting in the queue",
  leftMessage: "You left a message, so you are no longer in the queue. We will get back to you by phone or email.",
  leaveMessage: "Leave a message",
  phoneLabel: "Phone number",
  phoneHint: "Give a phone number or an email address, or both.",
  callbackMessageLabel: "Your message",
  sendMessage: "Send message",
  callbackDone: (reference) => `Thank you. Your message has been sent. Your reference is ${reference}.`,
  rateLegend: "How helpful was this chat?",
  rateLabels: ["1 – Not helpful", "2", "3", "4", "5 – Very helpful"],
  rateComment: "Tell us more (optional)",
  rateSubmit: "Send feedback",
  rated: "Thank you for your feedback.",
  ratingRequired: "Select how helpful this chat was",
  transcript: "Download the conversation",
  shareScreen: "Share my screen with an adviser",
  shareScreenHint: "On the phone to us? Get a code to read to the adviser.",
};

function loadStylesheet() {
  if (document.querySelector("link[data-dioa-chat-css]")) return;
  const link = element("link", { rel: "stylesheet", href: `${ORIGIN}/static/chat/css/widget.css`, "data-dioa-chat-css": "" });
  document.head.append(link);
}

function textField({ id, name, label, hint, type = "text", autocomplete, maxlength }) {
  const input = element("input", { className: "govuk-input", id, name, type });
  if (autocomplete) input.setAttribute("autocomplete", autocomplete);
  if (maxlength) input.setAttribute("maxlength", String(maxlength));
  const group = element("div", { className: "govuk-form-group" }, [
    element("label", { className: "govuk-label", for: id, text: label }),
  ]);
  if (hint) {
    group.append(element("div", { className: "govuk-hint", id: `${id}-hint`, text: hint }));
    input.setAttribute("aria-describedby", `${id}-hint`);
  }
  group.append(input);
  return { group, input };
}

class ChatWidget {
  constructor() {
    this.state = this.load();
    this.messages = new MessageStore();
    this.conversation = null;
    this.helperReadSeq = 0;
    this.sentReadSeq = 0;
    this.typingSentAt = 0;
    this.typingTimer = null;
    this.typingExpiry = null;
    this.readTimer = null;
    this.resendTimer = null;
    this.unread = 0;
    this.online = false;
    this.configAnsweredAt = 0;
    this.serverAhead = 0;
    // The connection went while a chat was open: its return is announced.
    this.reconnecting = false;
    this.starting = false;
    // Set by the resident's own action (starting, a helper using their code): the snapshot
    // that follows moves focus to the message box. A page load or a reconnect never does.
    this.focusComposeOnSnapshot = false;
    // The first snapshot on a page holds the history; later ones (after a lost connection)
    // hold what was missed, which is announced.
    this.snapshotSeen = false;
    // Texts of messages that arrived ahead of one still missing, by seq: read out once the
    // gap is filled, so a screen reader hears the conversation in its order.
    this.heldAnnouncements = new Map();
    this.config = { available: true, services: [] };
    loadStylesheet();
    this.build();
    this.setUnread(this.state.unread || 0);
    this.cobrowse = new ResidentCobrowse({ send: (type, data) => this.socket.send(type, data), root: this.root });
    this.socket = new FrameSocket({
      url: socketUrl("/ws/chat/", ORIGIN),
      handlers: {
        "conversation.started": (data) => this.onStarted(data),
        "state.snapshot": (data) => this.onSnapshot(data),
        "message.created": (data) => this.onMessage(data),
        "conversation.updated": (data) => this.onConversation(data.conversation),
        "queue.position": (data) => this.onPosition(data),
        "typing.updated": (data) => this.onTyping(data),
        "read.updated": (data) => this.onRead(data),
        "conversation.rated": () => this.onRated(),
        "callback.requested": (data) => this.onCallbackRequested(data),
        "cobrowse.updated": (data) => this.cobrowse.update(data.cobrowse),
        "cobrowse.guidance": (data) => this.cobrowse.guidance(data),
        "cobrowse.code": (data) => this.onCobrowseCode(data),
        "cobrowse.joined": (data) => this.onCobrowseJoined(data),
        pong: (data) => this.onPong(data),
        error: (data) => this.onError(data),
      },
      onOpen: () => this.onOpen(),
      onClose: () => this.onClose(),
    });
    if (this.state.token) {
      this.socket.connect();
      if (this.state.open) this.open({ focus: false });
    }
    document.addEventListener("visibilitychange", () => this.markRead());
    // A page the resident leaves can be kept whole in the browser's back/forward cache, its
    // socket open: closed here, their helper learns they left; opened again if they return.
    window.addEventListener("pagehide", (event) => {
      if (event.persisted) this.disconnect();
    });
    window.addEventListener("pageshow", (event) => {
      if (event.persisted) this.restoreFromCache();
    });
    this.loadConfig();
    this.render();
  }

  load() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY));
      if (saved && typeof saved === "object") {
        // What a page held for a chat it had (an end, a message left) goes on here; anything
        // else it held is that page's to ask for again.
        const pending = saved.pendingFrame;
        const kept = saved.token && pending && KEPT_ACROSS_PAGES.has(pending.type) ? pending : undefined;
        const list = (value) => (Array.isArray(value) ? value : []);
        return { ...saved, outbox: list(saved.outbox), notSent: list(saved.notSent), pendingFrame: kept };
      }
    } catch {
      // A corrupt entry is treated as no conversation.
    }
    return { token: null, open: false, outbox: [], notSent: [] };
  }

  save() {
    const saved = JSON.stringify(this.state);
    try {
      sessionStorage.setItem(STORAGE_KEY, saved);
      this.storageWorks = true;
      return;
    } catch {
      // Full, perhaps: without the copy saved before, this one may fit.
    }
    try {
      sessionStorage.removeItem(STORAGE_KEY);
      sessionStorage.setItem(STORAGE_KEY, saved);
      this.storageWorks = true;
      return;
    } catch {
      // Storage blocked (cookies off, a sandboxed frame) or full: the chat still works on
      // this page from what is held here. Never an older copy, which the next page would
      // resume from and read out again what was heard since.
      this.storageWorks = false;
    }
    // Full: at least the chat itself, so that the next page still resumes it without saying
    // its status again, and with it the messages not sent yet if they fit (else this page
    // still sends them, if it can).
    const { token, open, heard, announcedStatus, outbox, notSent } = this.state;
    if (!token) return;
    const chat = { token, open, heard, announcedStatus };
    for (const kept of [{ ...chat, outbox, notSent }, { ...chat, outbox: [] }]) {
      try {
        sessionStorage.setItem(STORAGE_KEY, JSON.stringify(kept));
        return;
      } catch {
        // Too big for what is left, or blocked: only this page has the chat.
      }
    }
  }

  // Back on a page the browser kept: another page of the site may have started, moved on or
  // ended the chat meanwhile, and what it saved is the truth.
  restoreFromCache() {
    // Stood down (standDown): nothing here may connect again.
    if (!this.root.isConnected) return;
    // Without storage no other page can have moved the chat on: this page's is the truth.
    if (this.storageWorks === false) {
      if (this.state.token) this.socket.connect();
      return;
    }
    const saved = this.load();
    if (saved.token !== this.state.token) this.reset({ focus: false });
    // The same chat or another: what the other page left unsent is sent from here.
    this.state = saved;
    this.save();
    this.setUnread(saved.unread || 0);
    // What arrived while away was heard, and counted, on the other page if it came after
    // `heard` there: the next snapshot applies the same rule as a new page's first one.
    this.snapshotSeen = false;
    if (saved.open) this.open({ focus: false });
    else this.close({ focus: false });
    this.render();
    if (this.state.token) this.socket.connect();
  }

  async loadConfig() {
    const askedAt = (this.configLoadedAt = Date.now());
    try {
      const response = await fetch(`${ORIGIN}/chat/widget/config.json`, { credentials: "omit" });
      if (response.status === 403) {
        const refusal = await response.json().catch(() => ({}));
        if (refusal.code === "origin_not_allowed") return this.standDown();
      }
      if (response.ok) {
        const config = await response.json();
        // An older request answering last must not undo a newer answer ("nobody is free").
        if (askedAt < this.configAnsweredAt) return;
        this.configAnsweredAt = askedAt;
        this.config = config;
        // Only a fresh answer: the configuration kept from before must not outvote a newer frame.
        if (this.noteAvailability(this.config, askedAt)) this.save();
      }
      this.cobrowse.maskAllInputs = Boolean(this.config.cobrowse_mask_all_inputs);
    } catch {
      // Offline: keep the defaults; starting a chat will say so.
    }
    this.fillTopics();
    // What the configuration says in the panel's words, set once per load, not per redraw.
    for (const text of this.privacyTexts) text.textContent = TEXT.privacy(this.config.council_name);
    const minutes = this.config.abandoned_minutes;
    this.keepOpenHint.textContent = minutes ? TEXT.keepOpen(minutes) : "";
    this.render();
    // Said once: chat closed, or nobody is online, while the resident waits.
    if (this.conversation && this.conversation.status === "waiting") this.announceStatus();
  }

  // GOV.UK's sizes are in rem, the page's root font size, which many sites shrink for their own
  // arithmetic; the widget's (--dioa-rem, see the Makefile) is the browser's text size, which
  // is the resident's own setting.
  fitRemToTheBrowser() {
    const probe = document.createElement("span");
    probe.style.fontSize = "medium";
    this.root.append(probe);
    const browsers = getComputedStyle(probe).fontSize;
    probe.remove();
    if (browsers !== getComputedStyle(document.documentElement).fontSize) {
      this.root.style.setProperty("--dioa-rem", browsers);
    }
  }

  // The council has not listed this site (CHAT_WIDGET_ORIGINS), so its socket would be
  // refused: a launcher here could only hang at "Connecting…". The site's web team is told.
  standDown() {
    this.disconnect();
    this.root.remove();
    console.error(
      `Do It Online Assist: no webchat on this page, because ${location.origin} is not in the service's CHAT_WIDGET_ORIGINS.`,
    );
  }

  build() {
    this.root = element("div", { className: "dioa-chat" });
    this.launcher = element("button", {
      type: "button",
      className: "govuk-button chat-launcher",
      "aria-expanded": "false",
      "aria-controls": "dioa-chat-panel",
      text: TEXT.launcher,
    });
    this.launcher.addEventListener("click", () => this.open({ focus: true }));

    this.closeButton = element(
      "button",
      { type: "button", className: "govuk-button govuk-button--inverse chat-panel__close" },
      [TEXT.close, element("span", { className: "govuk-visually-hidden", text: TEXT.closeHidden })],
    );
    this.closeButton.addEventListener("click", () => this.close());

    this.status = element("p", { className: "chat-status", id: "dioa-chat-status" });
    // A phone's browser closes the connection of a page in the background; a long wait
    // should not cost the resident their place without warning.
    this.keepOpenHint = element("p", { className: "govuk-hint", id: "dioa-chat-keep-open", hidden: "" });
    // A long wait, or nobody coming (the advisors went home): the resident can stop waiting.
    this.leaveInsteadButton = element("button", { type: "button", className: "govuk-button govuk-button--secondary", id: "dioa-chat-leave-instead", text: TEXT.leaveInstead, hidden: "" });
    this.leaveInsteadButton.addEventListener("click", () => this.startLeavingMessage(true));
    this.log = element("ol", { className: "chat-log", "aria-label": "Messages" });
    this.typingLine = element("p", { className: "chat-typing", id: "dioa-chat-typing" });
    this.announcer = element("div", { className: "govuk-visually-hidden", "aria-live": "polite", id: "dioa-chat-announcer" });
    this.errorBox = element("p", { className: "govuk-error-message", role: "alert", id: "dioa-chat-error", hidden: "" });

    this.buildStartForm();
    this.buildUnavailable();
    this.buildCompose();
    this.buildEnded();

    this.panel = element(
      "section",
      { id: "dioa-chat-panel", className: "chat-panel", "aria-labelledby": "dioa-chat-panel-title", hidden: "" },
      [
        element("div", { className: "chat-panel__header" }, [
          element("h2", { id: "dioa-chat-panel-title", className: "chat-panel__title", text: TEXT.title }),
          this.closeButton,
        ]),
        // Focusable, so that a long chat scrolls from the keyboard too, whatever it holds.
        element("div", {
          className: "chat-panel__body", id: "dioa-chat-body", tabindex: "0", role: "region", "aria-label": TEXT.body,
        }, [
          this.status,
          this.keepOpenHint,
          this.leaveInsteadButton,
          this.log,
          this.typingLine,
          this.startForm,
          this.codeBox.box,
          this.unavailable,
          this.endedBox,
        ]),
        element("div", { className: "chat-panel__footer" }, [this.errorBox, this.composeForm, this.newChatButton]),
      ],
    );
    this.panelBody = this.panel.querySelector(".chat-panel__body");
    this.followingLatest = true;
    for (const box of [this.panelBody, this.panel]) {
      box.addEventListener("scroll", () => (this.followingLatest = this.readingTheLatest()), { passive: true });
    }
    this.panel.addEventListener("keydown", (event) => {
      // Not the Escape that cancels a word on a Japanese or Chinese keyboard (see sendOnEnter).
      if (event.key === "Escape" && !event.isComposing && event.keyCode !== 229) this.close();
    });
    // Outside the panel, so that what arrives while the panel is closed is still heard.
    this.root.append(this.launcher, this.panel, this.announcer);
    document.body.append(this.root);
    this.fitRemToTheBrowser();
    FULL_SCREEN.addEventListener("change", () => this.updateModal());
  }

  buildStartForm() {
    const name = textField({ id: "dioa-chat-name", name: "name", label: TEXT.nameLabel, hint: TEXT.nameHint, autocomplete: "given-name", maxlength: 80 });
    const email = textField({ id: "dioa-chat-email", name: "email", label: TEXT.emailLabel, hint: TEXT.emailHint, type: "email", autocomplete: "email", maxlength: 254 });
    this.nameInput = name.input;
    this.emailInput = email.input;
    this.topicSelect = element("select", { className: "govuk-select", id: "dioa-chat-topic", name: "service" });
    const topic = element("div", { className: "govuk-form-group" }, [
      element("label", { className: "govuk-label", for: "dioa-chat-topic", text: TEXT.topicLabel }),
      this.topicSelect,
    ]);
    this.startForm = element("form", { className: "chat-start", novalidate: "" }, [
      this.privacyNotice(),
      name.group,
      topic,
      email.group,
      element("button", { type: "submit", className: "govuk-button", text: TEXT.start }),
    ]);
    this.startErrors = new FormErrors(this.startForm, {
      name,
      service: { input: this.topicSelect, group: topic },
      email,
    });
    this.shareButton = element("button", { type: "button", className: "govuk-button govuk-button--secondary", id: "dioa-chat-share-screen", "aria-describedby": "dioa-chat-share-screen-hint", text: TEXT.shareScreen });
    this.shareButton.addEventListener("click", () => this.requestCobrowseCode());
    this.codeBox = codeView();
    this.startForm.append(
      element("p", { className: "govuk-hint", id: "dioa-chat-share-screen-hint", text: TEXT.shareScreenHint }),
      this.shareButton,
    );
    this.fillTopics();
    this.startForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    });
  }

  // Where the resident is asked for details: who runs the chat, what not to type, and the
  // council's full notice when the embedding page names it (`data-privacy-url`).
  privacyNotice() {
    const text = element("span", { text: TEXT.privacy("") });
    this.privacyTexts = [...(this.privacyTexts || []), text];
    const notice = element("p", { className: "govuk-body-s" }, [text]);
    if (SCRIPT.dataset.privacyUrl) {
      const link = { className: "govuk-link", href: SCRIPT.dataset.privacyUrl, target: "_blank", rel: "noopener", text: TEXT.privacyLink };
      notice.append(" ", element("a", link));
    }
    return notice;
  }

  fillTopics() {
    const chosen = this.topicSelect.value || SCRIPT.dataset.service || "";
    const topics = [["", TEXT.topicOther], ...(this.config.services || []).map((service) => [service.slug, service.name])];
    const shown = [...this.topicSelect.options].map((option) => [option.value, option.text]);
    // The configuration is read again each time the panel opens: rebuild only what changed,
    // so a list the resident is choosing from is not swapped under them.
    if (JSON.stringify(shown) === JSON.stringify(topics)) return;
    this.topicSelect.replaceChildren(...topics.map(([value, text]) => element("option", { value, text })));
    this.topicSelect.value = [...this.topicSelect.options].some((o) => o.value === chosen) ? chosen : "";
  }

  buildUnavailable() {
    // Focused when the panel opens on it (see focusTarget), so it is never skipped.
    this.unavailableReason = element("p", { className: "govuk-body", id: "dioa-chat-unavailable-reason", tabindex: "-1" });
    const name = textField({ id: "dioa-callback-name", name: "name", label: "Your name", autocomplete: "name", maxlength: 80 });
    const phone = textField({ id: "dioa-callback-phone", name: "phone", label: TEXT.phoneLabel, hint: TEXT.phoneHint, type: "tel", autocomplete: "tel", maxlength: 32 });
    const email = textField({ id: "dioa-callback-email", name: "email", label: "Email address", type: "email", autocomplete: "email", maxlength: 254 });
    this.callbackMessage = element("textarea", { className: "govuk-textarea", id: "dioa-callback-message", name: "message", rows: "3", maxlength: "2000" });
    this.callbackInputs = { name: name.input, phone: phone.input, email: email.input };
    const message = element("div", { className: "govuk-form-group" }, [
      element("label", { className: "govuk-label", for: "dioa-callback-message", text: TEXT.callbackMessageLabel }),
      this.callbackMessage,
    ]);
    this.callbackForm = element("form", { className: "chat-callback", novalidate: "" }, [
      this.privacyNotice(),
      name.group,
      phone.group,
      email.group,
      message,
      element("button", { type: "submit", className: "govuk-button", text: TEXT.sendMessage }),
    ]);
    this.callbackErrors = new FormErrors(this.callbackForm, {
      name,
      phone,
      email,
      message: { input: this.callbackMessage, group: message },
    });
    this.callbackForm.addEventListener("input", () => this.callbackEdited());
    this.callbackForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.requestCallback();
    });
    this.callbackConfirmation = element("div", { className: "govuk-panel govuk-panel--confirmation", id: "dioa-callback-confirmation", tabindex: "-1", hidden: "" });
    this.hoursBox = element("div", { className: "chat-hours", hidden: "" });
    this.leaveMessageIntro = element("p", { className: "govuk-body", text: TEXT.leaveMessageIntro });
    this.keepWaitingButton = element("button", { type: "button", className: "govuk-button govuk-button--secondary", id: "dioa-chat-keep-waiting", text: TEXT.keepWaiting, hidden: "" });
    this.keepWaitingButton.addEventListener("click", () => this.startLeavingMessage(false));
    this.unavailable = element("div", { className: "chat-unavailable", hidden: "" }, [
      this.unavailableReason,
      this.hoursBox,
      this.leaveMessageIntro,
      this.callbackForm,
      this.callbackConfirmation,
      this.keepWaitingButton,
    ]);
  }

  buildCompose() {
    this.textarea = element("textarea", { className: "govuk-textarea", id: "dioa-chat-message", name: "message", rows: "2", maxlength: "2000" });
    this.textarea.addEventListener("input", () => this.typed());
    this.endButton = element("button", { type: "button", className: "govuk-button govuk-button--warning", text: TEXT.end });
    this.endButton.addEventListener("click", () => this.send("conversation.end", {}));
    this.composeForm = element("form", { className: "chat-compose", novalidate: "" }, [
      element("div", { className: "govuk-form-group govuk-!-margin-bottom-3" }, [
        element("label", { className: "govuk-label", for: "dioa-chat-message", text: TEXT.messageLabel }),
        this.textarea,
      ]),
      element("div", { className: "govuk-button-group govuk-!-margin-bottom-0" }, [
        element("button", { type: "submit", className: "govuk-button", text: TEXT.send }),
        this.endButton,
      ]),
    ]);
    sendOnEnter(this.textarea, this.composeForm);
    this.composeForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendMessage();
    });
    this.newChatButton = element("button", { type: "button", className: "govuk-button", text: TEXT.newChat });
    this.newChatButton.addEventListener("click", () => this.reset({ focus: true }));
  }

  buildEnded() {
    this.ratingInputs = TEXT.rateLabels.map((label, index) => {
      const id = `dioa-chat-rating-${index + 1}`;
      const input = element("input", { className: "govuk-radios__input", id, name: "rating", type: "radio", value: String(index + 1) });
      return { input, item: element("div", { className: "govuk-radios__item" }, [input, element("label", { className: "govuk-label govuk-radios__label", for: id, text: label })]) };
    });
    this.ratingComment = element("textarea", { className: "govuk-textarea", id: "dioa-chat-rating-comment", name: "comment", rows: "2", maxlength: "500" });
    const radios = element("div", { className: "govuk-radios govuk-radios--small" }, this.ratingInputs.map((r) => r.item));
    const fieldset = element("fieldset", { className: "govuk-fieldset" }, [
      element("legend", { className: "govuk-fieldset__legend govuk-fieldset__legend--s", text: TEXT.rateLegend }),
      radios,
    ]);
    const rating = element("div", { className: "govuk-form-group" }, [fieldset]);
    const comment = element("div", { className: "govuk-form-group" }, [
      element("label", { className: "govuk-label", for: "dioa-chat-rating-comment", text: TEXT.rateComment }),
      this.ratingComment,
    ]);
    this.rateForm = element("form", { className: "chat-rate", novalidate: "" }, [
      rating,
      comment,
      element("button", { type: "submit", className: "govuk-button govuk-button--secondary", text: TEXT.rateSubmit }),
    ]);
    this.rateErrors = new FormErrors(this.rateForm, {
      rating: { input: this.ratingInputs[0].input, group: rating, before: radios, describe: fieldset },
      comment: { input: this.ratingComment, group: comment },
    });
    this.rateForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.hideError();
      const chosen = this.ratingInputs.find((r) => r.input.checked);
      if (!chosen) {
        this.rateErrors.show({ rating: TEXT.ratingRequired });
        return;
      }
      this.rateErrors.clear();
      this.send("conversation.rate", { rating: Number(chosen.input.value), comment: this.ratingComment.value.trim() });
    });
    this.ratedText = element("p", { className: "govuk-body", id: "dioa-chat-rated", text: TEXT.rated, tabindex: "-1", hidden: "" });
    this.transcriptButton = element("button", { type: "button", className: "govuk-button govuk-button--secondary", id: "dioa-chat-transcript", text: TEXT.transcript });
    this.transcriptButton.addEventListener("click", () => this.downloadTranscript());
    this.endedBox = element("div", { className: "chat-ended", hidden: "" }, [this.rateForm, this.ratedText, this.transcriptButton]);
  }

  open({ focus }) {
    this.panel.hidden = false;
    this.launcher.hidden = true;
    this.launcher.setAttribute("aria-expanded", "true");
    this.state.open = true;
    this.save();
    this.updateModal();
    this.setUnread(0);
    // Whether anyone can take a chat may have changed since the page loaded.
    if (!this.state.token) this.loadConfig();
    this.render();
    this.markRead();
    if (focus) this.focusFirst();
  }

  focusFirst() {
    this.focusTarget().focus();
  }

  // Covering the whole screen, the open panel is modal: the page behind it is inert (out of
  // the keyboard's and the screen reader's reach) until it closes or the screen widens.
  updateModal() {
    const modal = !this.panel.hidden && FULL_SCREEN.matches;
    if (modal && !this.madeInert) {
      // What the host page marks `data-dioa-keep-usable` stays usable (the kiosk's own bar and
      // idle warning, a session-timeout dialog).
      const keep = (node) => node === this.root || node.inert || node.hasAttribute("data-dioa-keep-usable");
      this.madeInert = [...document.body.children].filter((node) => !keep(node));
      for (const node of this.madeInert) node.inert = true;
    } else if (!modal && this.madeInert) {
      for (const node of this.madeInert) node.inert = false;
      this.madeInert = null;
    }
  }

  close({ focus = true } = {}) {
    this.panel.hidden = true;
    this.updateModal();
    this.launcher.hidden = false;
    this.launcher.setAttribute("aria-expanded", "false");
    this.state.open = false;
    this.save();
    if (focus) this.launcher.focus();
  }

  send(type, data) {
    // With a chat, only once it is served: an end or a call back sent before the snapshot
    // would overtake the messages the snapshot resends, which would then be refused.
    if (this.socket.isOpen && (this.online || !this.state.token)) this.socket.send(type, data);
    else {
      this.hold({ type, data });
      this.socket.connect();
      this.setStatus(TEXT.connecting);
    }
  }

  start() {
    // A second press while the first is on its way would only be refused.
    if (this.starting) return;
    this.starting = true;
    this.focusComposeOnSnapshot = true;
    this.hideError();
    this.startErrors.clear();
    // Pressed again after the answer was lost (the connection went, the page reloaded), the
    // same key brings back the chat the first press opened instead of queueing a second.
    if (!this.state.startKey) {
      this.state.startKey = secretId();
      this.save();
    }
    const data = {
      client_id: this.state.startKey,
      name: this.nameInput.value.trim(),
      email: this.emailInput.value.trim(),
      service: this.topicSelect.value,
    };
    this.send("conversation.start", data);
  }

  // Switches a waiting resident between the queue and the leave-a-message form (the chat
  // ends only when the message is sent), with the keyboard on what they switched to.
  startLeavingMessage(leaving) {
    this.state.leavingMessage = leaving;
    this.save();
    if (leaving) {
      // A message left earlier on this page (before this chat) is not this one.
      this.callbackForm.hidden = false;
      this.callbackConfirmation.hidden = true;
      // What they already told us, as a head start.
      if (!this.callbackInputs.name.value) this.callbackInputs.name.value = this.nameInput.value;
      if (!this.callbackInputs.email.value) this.callbackInputs.email.value = this.emailInput.value;
    } else if (this.state.pendingFrame && this.state.pendingFrame.type === "callback.request") {
      // Sent while offline, not yet gone: back in the queue, it is not sent at all.
      this.hold(null);
    }
    this.render();
    (leaving ? this.callbackInputs.name : this.leaveInsteadButton).focus();
  }

  requestCallback() {
    this.hideError();
    this.callbackErrors.clear();
    // Sent again after the answer was lost (the connection went, the page reloaded), the same
    // key is answered with the message already kept instead of leaving it twice. Changing the
    // form makes it another message (callbackEdited).
    if (!this.state.callbackKey) {
      this.state.callbackKey = secretId();
      this.save();
    }
    this.send("callback.request", { client_id: this.state.callbackKey, ...this.callbackValues(), service: this.topicSelect.value });
  }

  callbackEdited() {
    if (!this.state.callbackKey) return;
    delete this.state.callbackKey;
    this.save();
  }

  // `messageAfterGone`: a message is being left for the chat found gone (conversationGone).
  reset({ focus, messageAfterGone = false }) {
    this.disconnect();
    for (const timer of [this.typingTimer, this.typingExpiry, this.readTimer, this.resendTimer]) clearTimeout(timer);
    this.typingTimer = this.typingExpiry = this.readTimer = this.resendTimer = null;
    this.typingSentAt = 0;
    this.setUnread(0);
    this.callbackForm.hidden = false;
    this.callbackConfirmation.hidden = true;
    this.callbackMessage.value = "";
    // Still where the resident left it: a chat found gone with the panel closed does not
    // open it on the next page.
    this.state = { token: null, open: !this.panel.hidden, outbox: [], notSent: [] };
    this.save();
    this.messages = new MessageStore();
    this.conversation = null;
    clearInterval(this.waitTimer);
    this.reconnecting = false;
    this.rated = false;
    for (const errors of [this.startErrors, this.callbackErrors, this.rateErrors]) errors.clear();
    this.helperReadSeq = 0;
    this.sentReadSeq = 0;
    this.starting = false;
    this.snapshotSeen = false;
    this.heldAnnouncements.clear();
    this.messageAfterGone = messageAfterGone;
    this.log.replaceChildren();
    this.followingLatest = true;
    this.typingLine.textContent = "";
    this.loadConfig();
    this.render();
    if (focus) this.focusFirst();
  }

  onOpen() {
    // A read mark sent on a socket that died on the way may never have arrived.
    this.sentReadSeq = 0;
    // With a conversation, online once it is served (onSnapshot): a socket closed again
    // because the resume failed is one more try, not a connection lost to announce again.
    // What the resident asked for while offline goes then, after what they typed before it.
    if (this.state.token) {
      this.socket.send("conversation.resume", { token: this.state.token, last_seq: this.messages.contiguousSeq });
    } else {
      this.online = true;
      this.sendPendingFrame();
    }
  }

  // Closed by this side: a socket it opens later serves nothing until its snapshot (the
  // close of this one may never be reported, once another has replaced it).
  disconnect() {
    this.socket.close();
    this.online = false;
  }

  // What the resident asked for while offline (a call back after an unanswered chat, too).
  sendPendingFrame() {
    const pending = this.state.pendingFrame;
    if (!pending) return;
    this.hold(null);
    this.socket.send(pending.type, pending.data);
  }

  // Held until the chat is served (`send`), with the chat's state: an end or a message left
  // is still sent from the next page of the site, once the chat is resumed (`load`).
  hold(frame) {
    this.state.pendingFrame = frame || undefined;
    this.save();
  }

  requestCobrowseCode() {
    this.hideError();
    this.send("cobrowse.code.request", {});
  }

  onCobrowseCode({ code }) {
    this.codeBox.show(code);
    this.announce(this.codeBox.box.textContent);
  }

  onClose() {
    // A start lost with the connection can be pressed again (the server ends the half-made
    // chat when nobody comes back to it).
    if (!this.state.pendingFrame) this.starting = false;
    const wasOnline = this.online;
    this.online = false;
    if (!this.state.token) {
      this.render();
      return;
    }
    this.setStatus(TEXT.offline);
    // Said once when the connection goes, not at every attempt to get it back.
    if (wasOnline) {
      this.announce(TEXT.offline);
      this.reconnecting = true;
    }
  }

  // An adviser used the code: the conversation they started is this widget's from now on.
  onCobrowseJoined({ token }) {
    this.codeBox.hide();
    this.focusComposeOnSnapshot = true;
    this.state.token = token;
    this.save();
    this.render();
    this.resume();
  }

  onStarted({ token }) {
    this.starting = false;
    this.state.token = token;
    // Nothing heard yet: a reply that lands while the resident is on another page of the site,
    // before any message reached this one, is news on the next (onSnapshot).
    this.state.heard = 0;
    delete this.state.startKey;
    this.save();
  }

  onSnapshot({ conversation, messages, has_more: hasMore, cobrowse, server_time: serverTime }) {
    // How far the server's clock is ahead of this device's (a phone's can be minutes out).
    if (serverTime) this.serverAhead = Date.parse(serverTime) - Date.now();
    // Before what was missed; the status is read out only if it changed meanwhile.
    if (this.reconnecting) this.announce(TEXT.reconnected);
    this.reconnecting = false;
    // The first snapshot on a page is history, but not what arrived after the last page
    // had it (a reply that landed while the resident moved to another page): that is news.
    const heard = this.snapshotSeen ? null : this.state.heard;
    for (const message of messages) {
      this.onMessage(message, { announce: this.snapshotSeen || (typeof heard === "number" && message.seq > heard) });
    }
    this.onConversation(conversation);
    if (conversation.status !== "ended") this.cobrowse.update(cobrowse);
    if (hasMore) {
      this.resume();
      return;
    }
    // Everything the database holds is here: what is held is read out, gap or not. Online
    // from now: what the resident asks for goes after the outbox resent below.
    this.online = true;
    this.releaseAnnouncements({ all: true });
    this.snapshotSeen = true;
    // Typed before a reload or while offline: shown as sending, and sent again.
    for (const pending of this.state.outbox) {
      if (!this.pendingNode(pending.client_id)) this.insert(this.renderPending(pending));
    }
    // Refused on an earlier page: still there to try again.
    for (const refused of this.state.notSent) {
      if (!this.pendingNode(refused.client_id)) {
        const node = this.renderPending(refused);
        this.insert(node);
        this.showNotSent(node, refused);
      }
    }
    this.resendOutbox();
    this.sendPendingFrame();
    // Replies that came while the socket was down, or while a read mark could not be sent.
    this.markRead();
    if (this.focusComposeOnSnapshot && !this.panel.hidden) this.textarea.focus();
    this.focusComposeOnSnapshot = false;
  }

  resendOutbox() {
    for (const pending of this.state.outbox) {
      this.socket.send("message.send", { client_id: pending.client_id, body: pending.body });
    }
  }

  pendingNode(clientId) {
    return this.log.querySelector(`[data-client-id="${CSS.escape(clientId)}"]`);
  }

  resume() {
    this.socket.send("conversation.resume", { token: this.state.token, last_seq: this.messages.contiguousSeq });
  }

  onConversation(conversation) {
    const previous = this.conversation;
    // Read before one already shown (frames from two server processes can cross, and a
    // snapshot can be read before a live update it arrives after): every change that matters
    // adds a message, so an older reading has a lower `last_seq`.
    if (previous && previous.id === conversation.id && conversation.last_seq < previous.last_seq) return;
    this.conversation = conversation;
    if (previous && previous.helper_name !== conversation.helper_name) this.onTyping({ typing: false });
    // The message box is about to be hidden: keep the keyboard in the panel.
    const focusInCompose = this.composeForm.contains(document.activeElement);
    this.helperReadSeq = Math.max(this.helperReadSeq, conversation.helper_read_seq || 0);
    if (conversation.rating) this.rated = true;
    if (conversation.status !== "waiting" && (this.state.queue || this.state.leavingMessage)) {
      delete this.state.queue;
      delete this.state.leavingMessage;
      this.save();
    }
    if (conversation.status === "ended") this.cobrowse.conversationEnded();
    this.render();
    this.refreshStates();
    // Only what changed: a page load or a resume finding the same status says nothing.
    this.announceStatus();
    if (conversation.status === "ended" && focusInCompose) this.focusAfterEnd();
  }

  focusAfterEnd() {
    if (!this.rateForm.hidden) this.ratingInputs[0].input.focus();
    else if (!this.unavailable.hidden) this.callbackInputs.name.focus();
    else this.newChatButton.focus();
  }

  // The estimate counts down as the resident waits. The same place and estimate sent again
  // (a resume, another page of the site) keep the wait already counted, kept with the chat's
  // state; a new estimate for the same place (helpers are taking longer today) replaces it.
  onPosition({ position, estimated_wait_seconds: seconds, available, reason }) {
    // A place sent before a helper took the chat, arriving after the news: the chat is not in
    // the queue, and an old place kept now would be counted down from if it went back there.
    if (!this.conversation || this.conversation.status !== "waiting") return;
    const queue = this.state.queue;
    if (!queue || queue.position !== position) {
      this.state.queue = { ...queue, position, estimate: seconds, until: Date.now() + Math.max(60, seconds) * 1000 };
    } else if (queue.estimate !== seconds) {
      // The same place, a new estimate: the time already waited still counts.
      const until = (queue.until || Date.now()) + (seconds - (queue.estimate ?? seconds)) * 1000;
      this.state.queue = { ...queue, estimate: seconds, until };
    }
    // Each place comes with whether chat is still open (closing time, the last advisor gone):
    // said once, as part of the status, with the offer to leave a message.
    this.noteAvailability({ available, reason }, Date.now());
    this.save();
    this.render();
    this.announceStatus();
    clearInterval(this.waitTimer);
    this.waitTimer = setInterval(() => this.waitTick(), WAIT_TICK_MS);
  }

  waitTick() {
    if (!this.state.queue || !this.conversation || this.conversation.status !== "waiting") {
      clearInterval(this.waitTimer);
      return;
    }
    this.render();
    // Said once: the wait has outrun its estimate. The minutes counting down are only shown.
    if (Date.now() >= this.state.queue.until) this.announceStatus();
    if (Date.now() - this.configLoadedAt >= CONFIG_RECHECK_MS) this.loadConfig();
  }

  // Whether chat is open, kept with the place in the queue (and so across the site's pages,
  // where the status must not be said again): the newest word wins, whether a frame or a
  // configuration asked for before it arrived and answered after. Returns whether it noted
  // it; the caller saves.
  noteAvailability({ available, reason }, at) {
    const queue = this.state.queue;
    if (!queue || typeof available !== "boolean" || at < (queue.availabilityAt || 0)) return false;
    Object.assign(queue, { available, reason: reason || null, availabilityAt: at });
    return true;
  }

  // Why chat is closed to the resident waiting (`closed`, `no_helpers`), or null while open.
  // Every `queue.position` says it, and so the queue always holds the newest word.
  // No chat of the resident's own, and none can start now (closed, or nobody free): the panel
  // says why and offers to leave a message.
  closedToNewChats() {
    return !this.state.token && this.config.available === false;
  }

  queueUnavailable() {
    const queue = this.state.queue;
    return queue && queue.available === false ? queue.reason : null;
  }

  queueText() {
    const { position, until } = this.state.queue;
    const minutes = Math.ceil((until - Date.now()) / 60000);
    const unavailable = this.queueUnavailable();
    if (unavailable) return TEXT.positionUnavailable(position, unavailable);
    // Past the time a chat nobody answers is closed, "about 90 minutes" would promise a wait
    // the chat does not last.
    const closesAt = this.unansweredEndsAt();
    if (closesAt && until > closesAt) return TEXT.positionLong(position);
    return minutes >= 1 ? TEXT.position(position, minutes) : TEXT.positionLate(position);
  }

  // When a chat still waiting ends as unanswered, on this device's clock: its wait began at
  // `queued_at`, on the server's (`serverAhead`).
  unansweredEndsAt() {
    const queuedAt = this.conversation && this.conversation.queued_at;
    const minutes = this.config.waiting_minutes;
    return queuedAt && minutes ? Date.parse(queuedAt) + minutes * 60000 - this.serverAhead : null;
  }

  onTyping({ typing }) {
    const name = (this.conversation && this.conversation.helper_name) || TEXT.advisor;
    this.typingLine.textContent = typing ? TEXT.typing(name) : "";
    clearTimeout(this.typingExpiry);
    if (typing) this.typingExpiry = setTimeout(() => this.onTyping({ typing: false }), TYPING_EXPIRY_MS);
  }

  onRead({ seq }) {
    this.helperReadSeq = Math.max(this.helperReadSeq, seq);
    this.refreshStates();
  }

  onRated() {
    this.rated = true;
    this.rateErrors.clear();
    this.hideError();
    this.render();
    // Focus moves to the thanks, which is read out on arriving there.
    this.ratedText.focus();
  }

  onCallbackRequested({ reference }) {
    delete this.state.leavingMessage;
    delete this.state.callbackKey;
    this.save();
    this.callbackErrors.clear();
    this.hideError();
    this.callbackForm.hidden = true;
    // Sent: a later message (instead of a later chat's wait) starts from an empty box.
    this.callbackMessage.value = "";
    this.callbackConfirmation.hidden = false;
    this.callbackConfirmation.replaceChildren(element("div", { className: "govuk-panel__body", text: TEXT.callbackDone(reference) }));
    this.callbackConfirmation.focus();
  }

  onMessage(message, { announce = true } = {}) {
    const before = this.messages.contiguousSeq;
    if (!this.messages.add(message)) return;
    const pendingIndex = this.state.outbox.findIndex((item) => item.client_id === message.client_id);
    const mine = pendingIndex !== -1 || message.author.kind === "visitor";
    if (pendingIndex !== -1) this.state.outbox.splice(pendingIndex, 1);
    // Refused once, yet stored (a fault after its commit, then a resend from another tab).
    this.forgetNotSent(message.client_id);
    // How far this page has had every message, kept for the next page (see onSnapshot): not
    // past a gap, whose later messages are held unannounced until it is filled.
    if (pendingIndex !== -1 || this.messages.contiguousSeq > (this.state.heard || 0)) {
      this.state.heard = Math.max(this.messages.contiguousSeq, this.state.heard || 0);
      this.save();
    }
    const pendingNode = message.client_id && this.pendingNode(message.client_id);
    if (pendingNode) pendingNode.remove();
    if (message.author.kind === "helper") this.onTyping({ typing: false });
    this.insert(this.renderMessage(message, mine));
    if (announce && !mine) {
      this.heldAnnouncements.set(message.seq, message.author.kind === "system" ? message.body : TEXT.newMessage(this.authorName(message), message.body));
      if (this.panel.hidden) this.setUnread(this.unread + 1);
    }
    this.releaseAnnouncements();
    this.markRead();
    // A message that arrived ahead of one we never got: fetch the gap from the database.
    if (this.messages.contiguousSeq === before && message.seq > before + 1 && this.state.token) this.resume();
  }

  // Reads out, in seq order, the held texts of messages with nothing missing before them
  // (`all`: every one held).
  releaseAnnouncements({ all = false } = {}) {
    for (const seq of [...this.heldAnnouncements.keys()].sort((a, b) => a - b)) {
      if (!all && seq > this.messages.contiguousSeq) break;
      this.announce(this.heldAnnouncements.get(seq));
      this.heldAnnouncements.delete(seq);
    }
  }

  onPong({ last_seq: lastSeq }) {
    if (this.state.token && typeof lastSeq === "number" && lastSeq > this.messages.contiguousSeq) this.resume();
  }

  onError({ code, message, client_id: clientId, frame_type: frameType, fields }) {
    // The start refused, or perhaps dropped unanswered by the frame limit (which names no
    // frame): Start may be pressed again. Not for a refusal of anything else, while the
    // start is still on its way: a second press would replace the chat it opens.
    if (frameType === "conversation.start" || !frameType) this.starting = false;
    if (this.showFieldErrors(frameType, code === "contact_required" ? { phone: [message] } : fields)) return;
    if (code === "conversation_not_found" || (code === "invalid_frame" && frameType === "conversation.resume")) {
      this.conversationGone();
      return;
    }
    // Rated from another tab, or the answer to this one lost: rated all the same.
    if (code === "already_rated") {
      this.onRated();
      return;
    }
    if (code === "chat_unavailable") {
      this.config.available = false;
      this.render();
      // For the reason (closed, or everyone busy) and when it opens again.
      this.loadConfig();
    }
    if (code === "rate_limited" && this.state.outbox.length && !this.resendTimer) {
      // A refused frame names no message: send whatever is unacknowledged again shortly.
      this.resendTimer = setTimeout(() => {
        this.resendTimer = null;
        this.resendOutbox();
      }, RESEND_AFTER_LIMIT_MS);
    }
    // An ended chat takes no message, however often it is tried.
    if (clientId) this.markFailed(clientId, { retry: code !== "conversation_ended" });
    this.showError(message);
  }

  // Its token opens it no more (expired, or the chat moved to another device): start again.
  conversationGone() {
    const pending = this.state.pendingFrame && this.state.pendingFrame.type === "callback.request" ? this.state.pendingFrame : null;
    // A message being left for it (after a chat nobody answered) outlives the chat.
    const writing = this.callbackFormInUse() ? this.callbackValues() : null;
    const values = pending ? pending.data : writing;
    // The form stays shown throughout, so the keyboard stays where the resident is typing.
    this.reset({ focus: false, messageAfterGone: Boolean(values) });
    this.showError(TEXT.notFound);
    if (!values) return;
    const { name, phone, email } = this.callbackInputs;
    name.value = values.name || "";
    phone.value = values.phone || "";
    email.value = values.email || "";
    this.callbackMessage.value = values.message || "";
    // One left offline is still sent, as an ordinary call back, on a socket that follows no
    // conversation, and its answer is shown: the reference, or what is wrong with it on the
    // form, filled in as the resident left it. One still being written stays to be sent.
    if (pending) {
      this.state.callbackKey = pending.data.client_id;
      this.send(pending.type, pending.data);
    }
    this.render();
  }

  callbackFormInUse() {
    return !this.unavailable.hidden && !this.callbackForm.hidden && Object.values(this.callbackValues()).some(Boolean);
  }

  callbackValues() {
    const { name, phone, email } = this.callbackInputs;
    return { name: name.value.trim(), phone: phone.value.trim(), email: email.value.trim(), message: this.callbackMessage.value.trim() };
  }

  // A refusal of one of the resident's forms is shown on the form, beside the fields.
  showFieldErrors(frameType, fields) {
    const form = { "conversation.start": this.startErrors, "callback.request": this.callbackErrors, "conversation.rate": this.rateErrors }[frameType];
    if (!form || !fields) return false;
    const errors = Object.entries(fields).map(([name, messages]) => [name, messages[0]]);
    if (!form.show(Object.fromEntries(errors))) return false;
    // About something the form does not show (the page's topic, say): said below it.
    const others = errors.filter(([name]) => !form.fields[name]).map(([, message]) => message);
    if (others.length) this.showError(others.join(" "));
    return true;
  }

  showError(text) {
    this.errorBox.textContent = text;
    this.errorBox.hidden = false;
  }

  hideError() {
    this.errorBox.hidden = true;
  }

  typed() {
    if (!this.state.token || !this.socket.isOpen) return;
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_REPEAT_MS) {
      this.socket.send("typing.start", {});
      this.typingSentAt = now;
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.typingTimer);
    if (this.typingSentAt && this.socket.isOpen) this.socket.send("typing.stop", {});
    this.typingSentAt = 0;
  }

  markRead() {
    if (this.readTimer) return;
    this.readTimer = setTimeout(() => {
      this.readTimer = null;
      if (!this.state.token || this.panel.hidden || document.visibilityState !== "visible") return;
      const seq = this.messages.contiguousSeq;
      if (seq > this.sentReadSeq && this.socket.isOpen) {
        this.sentReadSeq = seq;
        this.socket.send("message.read", { seq });
      }
    }, READ_MARK_DELAY_MS);
  }

  setUnread(count) {
    this.unread = count;
    // Kept with the chat: the launcher on the next page of the site still says it.
    if (this.state.token && (this.state.unread || 0) !== count) {
      this.state.unread = count;
      this.save();
    }
    this.launcher.textContent = count ? TEXT.launcherUnread(count) : TEXT.launcher;
  }

  sendMessage() {
    const body = this.textarea.value.trim();
    if (!body) return;
    this.hideError();
    this.stopTyping();
    this.textarea.value = "";
    this.enqueue({ client_id: newClientId(), body });
  }

  // Kept until the server has it (saved for the next page), shown as sending, and sent.
  enqueue(pending) {
    this.state.outbox.push(pending);
    this.save();
    this.insert(this.renderPending(pending));
    this.socket.send("message.send", pending);
  }

  markFailed(clientId, { retry = true } = {}) {
    const index = this.state.outbox.findIndex((item) => item.client_id === clientId);
    const pending = this.state.outbox[index];
    if (index !== -1) {
      this.state.outbox.splice(index, 1);
      // Kept with the chat, so the next page still offers to try again: typed words are not
      // lost because the resident moved on before pressing the button.
      if (retry) this.state.notSent.push(pending);
      this.save();
    }
    const node = this.pendingNode(clientId);
    if (node) this.showNotSent(node, retry ? pending : null);
  }

  // "Not sent", with "Try again" for a message that may yet be sent (`retryable`).
  showNotSent(node, retryable) {
    const state = node.querySelector(".chat-log__state");
    state.replaceChildren(TEXT.failed);
    if (!retryable) return;
    const retryButton = element("button", { type: "button", className: "govuk-button govuk-button--secondary chat-retry", text: TEXT.retry });
    retryButton.addEventListener("click", () => {
      node.remove();
      this.forgetNotSent(retryable.client_id);
      this.enqueue(retryable);
      // The button pressed is gone with its row: the keyboard goes back to the message box,
      // or, in a chat that has ended, to where the panel's keyboard goes.
      (this.composeForm.hidden ? this.focusTarget() : this.textarea).focus();
    });
    state.append(" ", retryButton);
  }

  forgetNotSent(clientId) {
    const notSent = this.state.notSent;
    if (!clientId || !notSent.some((item) => item.client_id === clientId)) return;
    this.state.notSent = notSent.filter((item) => item.client_id !== clientId);
    this.save();
  }

  async downloadTranscript() {
    const body = new URLSearchParams({ token: this.state.token || "" });
    try {
      const response = await fetch(`${ORIGIN}/chat/widget/transcript/`, { method: "POST", body, credentials: "omit" });
      // Trying again could never work.
      if (response.status === 404 && (await response.clone().json().catch(() => ({}))).code === "conversation_not_found") {
        this.conversationGone();
        return;
      }
      if (!response.ok) throw new Error(String(response.status));
      const blob = await response.blob();
      const disposition = response.headers.get("Content-Disposition") || "";
      const match = disposition.match(/filename="([^"]+)"/);
      const link = element("a", { href: URL.createObjectURL(blob), download: match ? match[1] : "conversation.txt" });
      document.body.append(link);
      link.click();
      link.remove();
    } catch {
      this.showError("The conversation could not be downloaded. Try again.");
    }
  }

  authorName(message) {
    if (message.author.kind === "visitor") return TEXT.you;
    return message.author.name || TEXT.advisor;
  }

  stateText(message) {
    const time = formatTime(message.created_at);
    if (message.author.kind !== "visitor") return time;
    return `${message.seq <= this.helperReadSeq ? TEXT.read : TEXT.sent} ${time}`;
  }

  renderMessage(message, mine) {
    const kind = message.author.kind;
    const item = element("li", {
      className: `chat-log__item${kind === "system" ? " chat-log__item--system" : ""}${mine ? " chat-log__item--mine" : ""}`,
      "data-seq": String(message.seq),
    });
    if (kind !== "system") item.append(element("span", { className: "chat-log__author", text: this.authorName(message) }));
    item.append(...linkify(message.body));
    item.append(element("span", { className: "chat-log__state", text: this.stateText(message) }));
    return item;
  }

  refreshStates() {
    for (const message of this.messages.ordered()) {
      if (message.author.kind !== "visitor") continue;
      const node = this.log.querySelector(`[data-seq="${message.seq}"] .chat-log__state`);
      if (node) node.textContent = this.stateText(message);
    }
  }

  renderPending(pending) {
    const item = element("li", { className: "chat-log__item chat-log__item--mine", "data-client-id": pending.client_id });
    item.append(element("span", { className: "chat-log__author", text: TEXT.you }));
    item.append(...linkify(pending.body));
    item.append(element("span", { className: "chat-log__state", text: TEXT.sending }));
    return item;
  }

  insert(node) {
    this.place(node);
    // A resident who scrolled up to read earlier messages is left there (a new one is still
    // read out); one at the latest sees each new message, and always their own.
    if (!node.dataset.seq || this.followingLatest) this.log.lastElementChild.scrollIntoView({ block: "nearest" });
  }

  // Whether the log's last item is in view, give or take a line, in what scrolls the log (the
  // panel's body; the whole panel on a short screen). Asked when the resident scrolls, not
  // when a message comes: the footer growing (an error shown) also pushes it out of view.
  readingTheLatest() {
    const latest = this.log.lastElementChild;
    if (!latest) return true;
    const bottom = latest.getBoundingClientRect().bottom;
    return [this.panelBody, this.panel].every((box) => bottom <= box.getBoundingClientRect().bottom + LINE_SLACK_PX);
  }

  place(node) {
    if (node.dataset.seq) {
      const seq = Number(node.dataset.seq);
      // Keep the log in sequence order even when live messages arrive out of order.
      const later = [...this.log.querySelectorAll("[data-seq]")].find((item) => Number(item.dataset.seq) > seq);
      if (later) {
        this.log.insertBefore(node, later);
        return;
      }
      // The newest stored message goes above those still sending or not sent, which stay last.
      const unsent = this.log.querySelector("[data-client-id]");
      if (unsent) this.log.insertBefore(node, unsent);
      else this.log.append(node);
    } else {
      this.log.append(node);
    }
  }

  announce(text) {
    if (text) announce(this.announcer, text);
  }

  // Each status is read out once, on whichever page of the site: a resume, a move to another
  // page or a gap filled sends the same queue position again.
  announceStatus() {
    const key = this.statusKey();
    if (!key || key === this.state.announcedStatus) return;
    this.announce(this.status.textContent);
    this.state.announcedStatus = key;
    this.save();
  }

  // What the status says, without what merely counts down: the place in the queue, and
  // whether the wait has outrun its estimate, not the minutes left. Null: nothing to say yet
  // (offline is said on its own; "in the queue" is followed at once by the place).
  statusKey() {
    if (!this.conversation || this.reconnecting) return null;
    if (this.conversation.status !== "waiting") return this.status.textContent;
    if (!this.state.queue) return null;
    const late = Date.now() >= this.state.queue.until;
    const unavailable = this.queueUnavailable();
    return `queue ${this.state.queue.position}${late ? " late" : ""}${unavailable ? ` ${unavailable}` : ""}`;
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  // Times as the council keeps them (its own time zone), whatever the resident's device says.
  councilTime(date, options) {
    const zone = this.config.time_zone ? { timeZone: this.config.time_zone } : {};
    // The widget's words are English whatever the host page's language.
    return date.toLocaleString("en-GB", { ...options, ...zone });
  }

  // Why a chat nobody answered has closed: nobody was free, or the resident was away too long.
  unansweredText() {
    const away = this.conversation.ended_reason === "abandoned" && this.config.abandoned_minutes;
    return away ? TEXT.abandoned(this.config.abandoned_minutes) : TEXT.unanswered;
  }

  unavailableText() {
    const parts = [this.config.reason === "closed" ? TEXT.unavailableClosed : TEXT.unavailableBusy];
    if (this.config.next_open) {
      const opening = new Date(this.config.next_open);
      // A week or more away (a Christmas closure), the day's name alone could be either week.
      const farOff = opening - Date.now() > 6 * 24 * 3600 * 1000;
      const dayOptions = farOff ? { weekday: "long", day: "numeric", month: "long" } : { weekday: "long" };
      const day = this.councilTime(opening, dayOptions);
      const time = timeText(opening, this.config.time_zone);
      // Opening at midnight (no weekly hours, or a day's from 00:00): "at midnight" would leave it unclear which midnight.
      parts.push(TEXT.nextOpen(time === "midnight" ? `on ${day}` : `on ${day} at ${time}`));
    }
    return parts.join(" ");
  }

  renderHours() {
    const hours = this.config.opening_hours || [];
    const closures = this.config.closures || [];
    this.hoursBox.hidden = !hours.length && !closures.length;
    const items = hours.map((h) => element("li", { text: TEXT.hours(h.day, h.text) }));
    for (const closure of closures) {
      // A date without a time: noon UTC is the same calendar day in every council time zone.
      const when = this.councilTime(new Date(`${closure.date}T12:00:00Z`), { weekday: "long", day: "numeric", month: "long" });
      items.push(element("li", { text: TEXT.closedOn(when, closure.reason) }));
    }
    this.hoursBox.replaceChildren(
      element("h3", { className: "govuk-heading-s", text: TEXT.hoursHeading }),
      element("ul", { className: "govuk-list" }, items),
    );
  }

  // The state's main control; after a change, the keyboard goes there if what it was on is gone.
  focusTarget() {
    // Chat closed, or nobody free: why, and when it opens, are read before the form to leave
    // a message, which would otherwise take the keyboard and the screen reader past them.
    if (this.closedToNewChats()) return this.unavailableReason;
    const candidates = [this.textarea, this.ratingInputs[0].input, this.callbackInputs.name, this.nameInput, this.newChatButton];
    return candidates.find((node) => isShown(node)) || this.closeButton;
  }

  render() {
    if (this.panel.hidden) this.draw();
    else keepingFocusIn(this.panel, () => this.draw(), () => (this.panel.hidden ? null : this.focusTarget()));
  }

  draw() {
    const hasConversation = Boolean(this.state.token);
    const ended = Boolean(this.conversation && this.conversation.status === "ended");
    const unavailable = this.closedToNewChats();
    const waiting = Boolean(this.conversation && this.conversation.status === "waiting");
    const leaving = waiting && Boolean(this.state.leavingMessage);
    // Ended by the system before any advisor took it: the chat promised a way to leave a message.
    const unanswered = ended && this.conversation.ended_by === "system" && !this.conversation.helper_name;
    const leftMessage = ended && this.conversation.ended_reason === "left_message";
    // A message left for a chat found gone since (conversationGone): its answer is shown here.
    const messageAfterGone = !hasConversation && Boolean(this.messageAfterGone);
    this.startForm.hidden = hasConversation || unavailable;
    this.unavailable.hidden = !(unavailable || unanswered || leaving || leftMessage || messageAfterGone);
    this.unavailableReason.textContent = unavailable
      ? this.unavailableText()
      : unanswered
        ? this.unansweredText()
        : leaving
          ? TEXT.keepPlace
          : leftMessage
            ? TEXT.leftMessage
            : "";
    this.renderHours();
    if (leaving || leftMessage || messageAfterGone) this.hoursBox.hidden = true;
    this.leaveMessageIntro.hidden = leftMessage || messageAfterGone;
    // Sent (here or on another page): the confirmation, if this page saw it, and no second form.
    if (leftMessage) this.callbackForm.hidden = true;
    this.keepWaitingButton.hidden = !leaving;
    this.leaveInsteadButton.hidden = !waiting || leaving;
    this.composeForm.hidden = !hasConversation || ended || leaving;
    this.endedBox.hidden = !ended;
    this.rateForm.hidden = !ended || Boolean(this.rated) || unanswered || leftMessage;
    this.ratedText.hidden = !this.rated;
    this.newChatButton.hidden = !ended;
    this.keepOpenHint.hidden = !(waiting && this.keepOpenHint.textContent);
    if (ended) this.typingLine.textContent = "";
    if (!hasConversation) this.setStatus(this.state.pendingFrame ? TEXT.connecting : "");
    else if (!this.conversation) this.setStatus(TEXT.connecting);
    // Offline until what was missed has arrived, whatever redraws meanwhile.
    else if (this.reconnecting) this.setStatus(TEXT.offline);
    else if (ended) this.setStatus(TEXT.ended);
    else if (this.conversation.status === "active") this.setStatus(TEXT.active(this.conversation.helper_name || TEXT.advisor));
    else if (this.state.queue) this.setStatus(this.queueText());
    else this.setStatus(TEXT.waiting);
  }
}

window.dioaChat = new ChatWidget();
