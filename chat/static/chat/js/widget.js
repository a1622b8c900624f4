// The resident's chat widget. One <script type="module" src=".../chat/js/widget.js"> tag adds
// a launcher button and a chat panel to any page; the conversation survives reloads and
// navigation within the site (its token lives in sessionStorage) and lost connections
// (it resumes from the last message it holds and resends what was not acknowledged).

import { announce, element } from "./dom.js";
import { FrameSocket, MessageStore, formatTime, newClientId, socketUrl } from "./socket.js";

const STORAGE_KEY = "dioa-chat";
const SCRIPT = document.getElementById("chat-widget-script");
const SOCKET_PATH = "/ws/chat/";

const TEXT = {
  launcher: "Chat with an advisor",
  title: "Chat with an advisor",
  close: "Close",
  closeHidden: " chat",
  nameLabel: "Your name (optional)",
  nameHint: "So the advisor knows what to call you.",
  privacy: "Do not share passwords or bank card numbers in the chat. We keep chat transcripts only as long as we need them.",
  start: "Start chat",
  messageLabel: "Message",
  send: "Send",
  end: "End chat",
  newChat: "Start a new chat",
  connecting: "Connecting…",
  offline: "You are offline. We will reconnect and send your messages when we can.",
  waiting: "You are in the queue. An advisor will be with you soon.",
  active: (name) => `You are chatting with ${name}.`,
  ended: "This chat has ended.",
  you: "You",
  advisor: "Advisor",
  sending: "Sending…",
  sent: "Sent",
  newMessage: (author, body) => `${author} says: ${body}`,
  notFound: "Your earlier chat could not be found. You can start a new one.",
};

class ChatWidget {
  constructor() {
    this.state = this.load();
    this.messages = new MessageStore();
    this.conversation = null;
    this.build();
    this.socket = new FrameSocket({
      url: socketUrl(SOCKET_PATH, SCRIPT ? SCRIPT.src : undefined),
      handlers: {
        "conversation.started": (data) => this.onStarted(data),
        "state.snapshot": (data) => this.onSnapshot(data),
        "message.created": (data) => this.onMessage(data),
        "conversation.updated": (data) => this.onConversation(data.conversation),
        pong: (data) => this.onPong(data),
        error: (data) => this.onError(data),
      },
      onOpen: () => this.onOpen(),
      onClose: () => this.setStatus(TEXT.offline),
    });
    if (this.state.token) {
      this.socket.connect();
      if (this.state.open) this.open({ focus: false });
    }
    this.render();
  }

  load() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY));
      if (saved && typeof saved === "object") return { outbox: [], ...saved };
    } catch {
      // A corrupt entry is treated as no conversation.
    }
    return { token: null, open: false, outbox: [] };
  }

  save() {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(this.state));
  }

  build() {
    this.launcher = element("button", {
      type: "button",
      className: "govuk-button chat-launcher",
      "aria-expanded": "false",
      "aria-controls": "chat-panel",
      text: TEXT.launcher,
    });
    this.launcher.addEventListener("click", () => this.open({ focus: true }));

    this.title = element("h2", { id: "chat-panel-title", className: "chat-panel__title", text: TEXT.title });
    this.closeButton = element(
      "button",
      { type: "button", className: "govuk-button govuk-button--inverse chat-panel__close" },
      [TEXT.close, element("span", { className: "govuk-visually-hidden", text: TEXT.closeHidden })],
    );
    this.closeButton.addEventListener("click", () => this.close());

    this.status = element("p", { className: "chat-status", id: "chat-status" });
    this.log = element("ol", { className: "chat-log", "aria-label": "Messages" });
    this.announcer = element("div", { className: "govuk-visually-hidden", "aria-live": "polite", id: "chat-announcer" });
    this.errorBox = element("p", { className: "govuk-error-message", role: "alert", hidden: "" });

    this.nameInput = element("input", {
      className: "govuk-input",
      id: "chat-name",
      name: "name",
      type: "text",
      autocomplete: "given-name",
      maxlength: "80",
      "aria-describedby": "chat-name-hint",
    });
    this.startForm = element("form", { className: "chat-start", novalidate: "" }, [
      element("p", { className: "govuk-body-s", text: TEXT.privacy }),
      element("div", { className: "govuk-form-group" }, [
        element("label", { className: "govuk-label", for: "chat-name", text: TEXT.nameLabel }),
        element("div", { className: "govuk-hint", id: "chat-name-hint", text: TEXT.nameHint }),
        this.nameInput,
      ]),
      element("button", { type: "submit", className: "govuk-button", text: TEXT.start }),
    ]);
    this.startForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    });

    this.textarea = element("textarea", {
      className: "govuk-textarea",
      id: "chat-message",
      name: "message",
      rows: "2",
      maxlength: "2000",
    });
    this.textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        this.composeForm.requestSubmit();
      }
    });
    this.endButton = element("button", { type: "button", className: "govuk-button govuk-button--warning", text: TEXT.end });
    this.endButton.addEventListener("click", () => this.socket.send("conversation.end", {}));
    this.composeForm = element("form", { className: "chat-compose", novalidate: "" }, [
      element("div", { className: "govuk-form-group govuk-!-margin-bottom-3" }, [
        element("label", { className: "govuk-label", for: "chat-message", text: TEXT.messageLabel }),
        this.textarea,
      ]),
      element("div", { className: "govuk-button-group govuk-!-margin-bottom-0" }, [
        element("button", { type: "submit", className: "govuk-button", text: TEXT.send }),
        this.endButton,
      ]),
    ]);
    this.composeForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendMessage();
    });

    this.newChatButton = element("button", { type: "button", className: "govuk-button", text: TEXT.newChat });
    this.newChatButton.addEventListener("click", () => this.reset({ focus: true }));

    this.panel = element(
      "section",
      { id: "chat-panel", className: "chat-panel", "aria-labelledby": "chat-panel-title", hidden: "" },
      [
        element("div", { className: "chat-panel__header" }, [this.title, this.closeButton]),
        element("div", { className: "chat-panel__body" }, [this.status, this.log, this.startForm]),
        element("div", { className: "chat-panel__footer" }, [this.errorBox, this.composeForm, this.newChatButton]),
        this.announcer,
      ],
    );
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.close();
    });
    document.body.append(this.launcher, this.panel);
  }

  open({ focus }) {
    this.panel.hidden = false;
    this.launcher.hidden = true;
    this.launcher.setAttribute("aria-expanded", "true");
    this.state.open = true;
    this.save();
    this.render();
    if (focus) (this.state.token ? this.textarea : this.nameInput).focus();
  }

  close() {
    this.panel.hidden = true;
    this.launcher.hidden = false;
    this.launcher.setAttribute("aria-expanded", "false");
    this.state.open = false;
    this.save();
    this.launcher.focus();
  }

  start() {
    this.pendingStart = { name: this.nameInput.value.trim() };
    if (this.socket.isOpen) this.socket.send("conversation.start", this.pendingStart);
    else this.socket.connect();
    this.setStatus(TEXT.connecting);
  }

  reset({ focus }) {
    this.socket.close();
    this.state = { token: null, open: true, outbox: [] };
    this.save();
    this.messages = new MessageStore();
    this.conversation = null;
    this.log.replaceChildren();
    this.render();
    if (focus) this.nameInput.focus();
  }

  onOpen() {
    if (this.state.token) {
      this.socket.send("conversation.resume", { token: this.state.token, last_seq: this.messages.contiguousSeq });
    } else if (this.pendingStart) {
      this.socket.send("conversation.start", this.pendingStart);
    }
  }

  onStarted({ token }) {
    this.state.token = token;
    this.pendingStart = null;
    this.save();
  }

  onSnapshot({ conversation, messages, has_more: hasMore }) {
    for (const message of messages) this.onMessage(message, { announce: false });
    this.onConversation(conversation);
    if (hasMore) {
      this.socket.send("conversation.resume", { token: this.state.token, last_seq: this.messages.contiguousSeq });
      return;
    }
    // Anything typed while offline, or sent just before the connection dropped, goes again
    // with the same client id; the server returns the stored copy instead of a duplicate.
    for (const pending of this.state.outbox) {
      this.socket.send("message.send", { client_id: pending.client_id, body: pending.body });
    }
    if (document.activeElement === this.startForm.querySelector("button")) this.textarea.focus();
  }

  onConversation(conversation) {
    const previous = this.conversation;
    this.conversation = conversation;
    this.render();
    if (previous && previous.status !== conversation.status) this.announce(this.status.textContent);
  }

  onMessage(message, { announce = true } = {}) {
    const before = this.messages.contiguousSeq;
    if (!this.messages.add(message)) return;
    const pendingIndex = this.state.outbox.findIndex((item) => item.client_id === message.client_id);
    const mine = pendingIndex !== -1 || message.author.kind === "visitor";
    if (pendingIndex !== -1) {
      this.state.outbox.splice(pendingIndex, 1);
      this.save();
      const pendingNode = this.log.querySelector(`[data-client-id="${CSS.escape(message.client_id)}"]`);
      if (pendingNode) pendingNode.remove();
    }
    this.insert(this.renderMessage(message, mine));
    if (announce && !mine) this.announce(TEXT.newMessage(this.authorName(message), message.body));
    // A message that arrived ahead of one we never got: fetch the gap from the database.
    if (this.messages.contiguousSeq === before && message.seq > before + 1 && this.state.token) {
      this.socket.send("conversation.resume", { token: this.state.token, last_seq: this.messages.contiguousSeq });
    }
  }

  onPong({ last_seq: lastSeq }) {
    if (this.state.token && typeof lastSeq === "number" && lastSeq > this.messages.contiguousSeq) {
      this.socket.send("conversation.resume", { token: this.state.token, last_seq: this.messages.contiguousSeq });
    }
  }

  onError({ code, message }) {
    if (code === "conversation_not_found") {
      this.reset({ focus: false });
      this.showError(TEXT.notFound);
      return;
    }
    this.showError(message);
  }

  showError(text) {
    this.errorBox.textContent = text;
    this.errorBox.hidden = false;
  }

  sendMessage() {
    const body = this.textarea.value.trim();
    if (!body) return;
    this.errorBox.hidden = true;
    const pending = { client_id: newClientId(), body };
    this.state.outbox.push(pending);
    this.save();
    this.textarea.value = "";
    this.insert(this.renderPending(pending));
    this.socket.send("message.send", pending);
  }

  authorName(message) {
    if (message.author.kind === "visitor") return TEXT.you;
    return message.author.name || TEXT.advisor;
  }

  renderMessage(message, mine) {
    const kind = message.author.kind;
    const item = element("li", {
      className: `chat-log__item${kind === "system" ? " chat-log__item--system" : ""}${mine ? " chat-log__item--mine" : ""}`,
      "data-seq": String(message.seq),
    });
    if (kind !== "system") item.append(element("span", { className: "chat-log__author", text: this.authorName(message) }));
    item.append(document.createTextNode(message.body));
    item.append(element("span", { className: "chat-log__state", text: mine ? `${TEXT.sent} ${formatTime(message.created_at)}` : formatTime(message.created_at) }));
    return item;
  }

  renderPending(pending) {
    const item = element("li", { className: "chat-log__item chat-log__item--mine", "data-client-id": pending.client_id });
    item.append(element("span", { className: "chat-log__author", text: TEXT.you }));
    item.append(document.createTextNode(pending.body));
    item.append(element("span", { className: "chat-log__state", text: TEXT.sending }));
    return item;
  }

  insert(node) {
    const seq = Number(node.dataset.seq);
    if (node.dataset.seq) {
      // Keep the log in sequence order even when live messages arrive out of order.
      const later = [...this.log.querySelectorAll("[data-seq]")].find((item) => Number(item.dataset.seq) > seq);
      if (later) {
        this.log.insertBefore(node, later);
        return;
      }
      const firstPending = this.log.querySelector("[data-client-id]");
      if (firstPending) {
        this.log.insertBefore(node, firstPending);
        return;
      }
    }
    this.log.append(node);
    node.scrollIntoView({ block: "nearest" });
  }

  announce(text) {
    announce(this.announcer, text);
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  render() {
    const hasConversation = Boolean(this.state.token);
    const ended = this.conversation && this.conversation.status === "ended";
    this.startForm.hidden = hasConversation;
    this.composeForm.hidden = !hasConversation || ended;
    this.newChatButton.hidden = !ended;
    if (!hasConversation) this.setStatus("");
    else if (!this.conversation) this.setStatus(TEXT.connecting);
    else if (ended) this.setStatus(TEXT.ended);
    else if (this.conversation.status === "active") this.setStatus(TEXT.active(this.conversation.helper_name || TEXT.advisor));
    else this.setStatus(TEXT.waiting);
  }
}

window.dioaChat = new ChatWidget();
