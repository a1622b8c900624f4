// The advisor console: live queue, the helper's conversations and the selected one's chat.

import { announce as announceIn, element } from "../../chat/js/dom.js";
import { FrameSocket, MessageStore, formatTime, newClientId, socketUrl } from "../../chat/js/socket.js";

const config = JSON.parse(document.getElementById("console-config").textContent);
const byId = (id) => document.getElementById(id);

const CHANNEL_NAMES = { web: "Webchat", kiosk: "Kiosk", drop_in: "Drop-in" };

const state = {
  waiting: new Map(),
  mine: new Map(),
  stores: new Map(),
  outbox: new Map(),
  selected: null,
  baseTitle: document.title,
};

function announce(text) {
  announceIn(byId("console-announcer"), text);
}

function visitorLabel(conversation) {
  return conversation.visitor_name || `Resident ${conversation.id}`;
}

function describe(conversation) {
  const parts = [CHANNEL_NAMES[conversation.channel] || conversation.channel];
  if (conversation.service) parts.push(conversation.service.name);
  if (conversation.waiting_since) parts.push(`waiting since ${formatTime(conversation.waiting_since)}`);
  return parts.join(" · ");
}

function storeFor(id) {
  if (!state.stores.has(id)) state.stores.set(id, new MessageStore());
  return state.stores.get(id);
}

const socket = new FrameSocket({
  url: socketUrl(config.socketPath),
  handlers: {
    "queue.snapshot": onQueueSnapshot,
    "conversation.queued": ({ conversation }) => {
      state.waiting.set(conversation.id, conversation);
      renderQueue();
      announce(`${visitorLabel(conversation)} is waiting.`);
    },
    "conversation.assigned": ({ conversation }) => {
      state.waiting.delete(conversation.id);
      if (conversation.assigned_helper_id === config.helperId && !state.mine.has(conversation.id)) {
        state.mine.set(conversation.id, conversation);
        // Another tab of ours accepted it: follow it here too.
        socket.send("conversation.open", { conversation_id: conversation.id, last_seq: storeFor(conversation.id).contiguousSeq });
      }
      renderQueue();
      renderMine();
    },
    "conversation.ended": ({ conversation }) => {
      state.waiting.delete(conversation.id);
      if (state.mine.has(conversation.id)) {
        state.mine.set(conversation.id, conversation);
        announce(`The conversation with ${visitorLabel(conversation)} has ended.`);
        addWrapUpLink(conversation);
      }
      renderQueue();
      renderMine();
      if (state.selected === conversation.id) renderSelected();
    },
    "state.snapshot": onSnapshot,
    "message.created": (message) => onMessage(message, { announce: true }),
    pong: ({ conversations }) => {
      for (const { id, last_seq: lastSeq } of conversations) {
        if (lastSeq > storeFor(id).contiguousSeq) {
          socket.send("conversation.open", { conversation_id: id, last_seq: storeFor(id).contiguousSeq });
        }
      }
    },
    error: ({ code, message }) => {
      if (code === "conversation_gone") announce(message);
      showError(message);
    },
  },
  onOpen: () => {
    byId("console-connection").textContent = "Connected. The queue updates live.";
  },
  onClose: (event) => {
    byId("console-connection").textContent =
      event.code === 4403 ? "You do not have permission to use the console." : "Connection lost. Reconnecting…";
    if (event.code === 4403) socket.close();
  },
});

function onQueueSnapshot({ waiting, mine }) {
  state.waiting = new Map(waiting.map((c) => [c.id, c]));
  for (const conversation of mine) {
    state.mine.set(conversation.id, conversation);
    socket.send("conversation.open", { conversation_id: conversation.id, last_seq: storeFor(conversation.id).contiguousSeq });
  }
  renderQueue();
  renderMine();
}

function onSnapshot({ conversation, messages, has_more: hasMore }) {
  state.mine.set(conversation.id, conversation);
  for (const message of messages) onMessage(message, { announce: false });
  if (hasMore) {
    socket.send("conversation.open", { conversation_id: conversation.id, last_seq: storeFor(conversation.id).contiguousSeq });
    return;
  }
  for (const pending of state.outbox.values()) {
    if (pending.conversation_id === conversation.id) socket.send("message.send", pending);
  }
  if (state.selected === null) select(conversation.id);
  renderMine();
  if (state.selected === conversation.id) renderSelected();
}

function onMessage(message, { announce: shouldAnnounce }) {
  const store = storeFor(message.conversation_id);
  if (!store.add(message)) return;
  state.outbox.delete(message.client_id);
  const conversation = state.mine.get(message.conversation_id);
  if (shouldAnnounce && message.author.kind === "visitor" && conversation) {
    announce(`${visitorLabel(conversation)} says: ${message.body}`);
    if (state.selected !== message.conversation_id) conversation.unread = (conversation.unread || 0) + 1;
  }
  if (state.selected === message.conversation_id) renderSelected();
  renderMine();
}

function renderQueue() {
  const list = byId("queue-list");
  const waiting = [...state.waiting.values()].sort((a, b) => (a.waiting_since < b.waiting_since ? -1 : 1));
  list.replaceChildren(
    ...waiting.map((conversation) => {
      const button = element("button", {
        type: "button",
        className: "govuk-button govuk-button--secondary govuk-!-margin-bottom-0",
        "data-accept": String(conversation.id),
      }, [
        "Accept",
        element("span", { className: "govuk-visually-hidden", text: ` conversation with ${visitorLabel(conversation)}` }),
      ]);
      button.addEventListener("click", () => socket.send("conversation.accept", { conversation_id: conversation.id }));
      return element("li", { className: "govuk-!-margin-bottom-4" }, [
        element("strong", { text: visitorLabel(conversation) }),
        element("br"),
        element("span", { className: "govuk-body-s", text: describe(conversation) }),
        element("br"),
        button,
      ]);
    }),
  );
  byId("queue-count").textContent = String(waiting.length);
  byId("queue-empty").hidden = waiting.length > 0;
  document.title = waiting.length ? `(${waiting.length}) ${state.baseTitle}` : state.baseTitle;
}

function renderMine() {
  const list = byId("mine-list");
  const open = [...state.mine.values()].filter((c) => c.status !== "ended" || c.id === state.selected);
  list.replaceChildren(
    ...open.map((conversation) => {
      const label = `${visitorLabel(conversation)}${conversation.status === "ended" ? " (ended)" : ""}`;
      const unread = conversation.unread ? ` – ${conversation.unread} unread` : "";
      const button = element("button", {
        type: "button",
        className: "govuk-button govuk-button--secondary govuk-!-margin-bottom-0",
        "aria-pressed": String(state.selected === conversation.id),
        "data-open": String(conversation.id),
        text: label + unread,
      });
      button.addEventListener("click", () => select(conversation.id));
      return element("li", {}, [button]);
    }),
  );
  byId("mine-empty").hidden = open.length > 0;
}

function select(id) {
  state.selected = id;
  const conversation = state.mine.get(id);
  if (conversation) conversation.unread = 0;
  renderMine();
  renderSelected();
}

function renderSelected() {
  const conversation = state.mine.get(state.selected);
  const panel = byId("conversation-panel");
  panel.hidden = !conversation;
  if (!conversation) return;
  byId("conversation-heading").textContent = `Conversation with ${visitorLabel(conversation)}`;
  byId("conversation-context").textContent = describe(conversation);
  const log = byId("conversation-log");
  log.replaceChildren(
    ...storeFor(conversation.id).ordered().map((message) => {
      const kind = message.author.kind;
      const item = element("li", {
        className: `chat-log__item${kind === "system" ? " chat-log__item--system" : ""}${kind === "helper" ? " chat-log__item--mine" : ""}`,
      });
      if (kind !== "system") {
        const author = kind === "visitor" ? visitorLabel(conversation) : message.author.name || "Advisor";
        item.append(element("span", { className: "chat-log__author", text: author }));
      }
      item.append(document.createTextNode(message.body));
      item.append(element("span", { className: "chat-log__state", text: formatTime(message.created_at) }));
      return item;
    }),
  );
  log.scrollTop = log.scrollHeight;
  const ended = conversation.status === "ended";
  byId("compose-form").hidden = ended;
  byId("conversation-ended").hidden = !ended;
  byId("wrap-up-link").href = config.wrapUpUrlTemplate.replace("{id}", String(conversation.id));
}

function addWrapUpLink(conversation) {
  const list = byId("wrap-up-list");
  if (list.querySelector(`[data-wrap-up="${conversation.id}"]`)) return;
  const empty = byId("wrap-up-empty");
  if (empty) empty.remove();
  list.append(
    element("li", { "data-wrap-up": String(conversation.id) }, [
      element("a", {
        className: "govuk-link",
        href: config.wrapUpUrlTemplate.replace("{id}", String(conversation.id)),
        text: `Log conversation ${conversation.id} (${CHANNEL_NAMES[conversation.channel] || conversation.channel})`,
      }),
    ]),
  );
}

function showError(text) {
  const box = byId("conversation-error");
  box.textContent = text;
  box.hidden = false;
}

byId("compose-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const textarea = byId("compose-message");
  const body = textarea.value.trim();
  if (!body || state.selected === null) return;
  byId("conversation-error").hidden = true;
  const pending = { conversation_id: state.selected, client_id: newClientId(), body };
  state.outbox.set(pending.client_id, pending);
  textarea.value = "";
  socket.send("message.send", pending);
});

byId("compose-message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    byId("compose-form").requestSubmit();
  }
});

byId("end-conversation").addEventListener("click", () => {
  if (state.selected !== null) socket.send("conversation.end", { conversation_id: state.selected });
});

socket.connect();
