// The advisor console: live queue, the helper's conversations and the selected one's chat.

import { announce as announceIn, element, isShown, keepingFocusIn, linkify, sendOnEnter } from "../../chat/js/dom.js";
import {
  FORBIDDEN_CLOSE_CODE, FrameSocket, MessageStore, RESEND_AFTER_LIMIT_MS, ROLE_CHANGED_CLOSE_CODE, formatTime, formatWhen,
  newClientId, socketUrl,
} from "../../chat/js/socket.js";
import { CobrowseViewer } from "./cobrowse_viewer.js";

const config = JSON.parse(document.getElementById("console-config").textContent);
// Times on the council's clock, as on the pages the server writes, whatever the device's zone.
const timeOf = (iso) => formatTime(iso, config.timeZone);
const byId = (id) => document.getElementById(id);

const CHANNEL_NAMES = { web: "Webchat", kiosk: "Kiosk", drop_in: "Drop-in" };

const TYPING_IDLE_MS = 3000;
const TYPING_REPEAT_MS = 2000;
// The resident's widget repeats "typing" every 2 s or so; silence this long means it stopped.
const TYPING_EXPIRY_MS = 8000;
// What the console sends by itself, not at the helper's word: a refusal of one is not theirs.
const BACKGROUND_FRAMES = new Set(["typing.start", "typing.stop", "message.read"]);

const SOUND_KEY = "dioa-console-sound";
// Set while the console loads again because its socket was refused (onClose).
const RELOADED_FOR_ROLE_KEY = "dioa-console-reloaded-for-role";
// A reload or a move to another page closes the resident's chat for a moment: only an
// absence longer than this is shown and announced.
const LEFT_NOTICE_DELAY_MS = 5000;

const state = {
  live: new Map(),
  helpers: [],
  notes: new Map(),
  watching: new Set(),
  waitingCount: 0,
  waiting: new Map(),
  callbacks: new Map(),
  typing: new Map(),
  visitorRead: new Map(),
  sentRead: new Map(),
  typingSentAt: 0,
  typingTimer: null,
  // Resending what the frame limit dropped (`resendOutboxSoon`).
  resendTimer: null,
  typingExpiry: new Map(),
  // Per conversation: the timer that will show the resident as gone, unless they come back.
  leftNotices: new Map(),
  mine: new Map(),
  stores: new Map(),
  // Conversations whose history a snapshot has brought: any later one brings news.
  snapshotSeen: new Set(),
  // Per conversation, the resident's messages the helper has not had on screen. Kept apart
  // from the conversations themselves, which each copy from the server replaces.
  unread: new Map(),
  outbox: new Map(),
  // Words typed to a conversation not shown now, kept until it is shown again.
  drafts: new Map(),
  // Conversations whose state.snapshot this console has had: their copy is kept current live.
  following: new Set(),
  selected: null,
  baseTitle: document.title,
  // Co-browse session per conversation, and a conversation to select once it arrives.
  cobrowse: new Map(),
  selectWhenOpen: null,
  // Per conversation, the `contiguousSeq` a gap was last asked for from (`onMessage`).
  gapAsked: new Map(),
  // Conversations this tab pressed Accept for and has not yet had.
  accepting: new Set(),
  // Whether a `queue.snapshot` has come before: the next one follows a lost connection.
  queueSnapshotSeen: false,
  // What is shown as not sent, to copy (`notSentText`).
  notSentShown: [],
  // A note or transfer sent and not yet answered: its words, to give back if it is refused.
  sentForm: null,
  // Per conversation, the error last shown beside it: shown again when it is chosen again.
  errors: new Map(),
};

const COBROWSE_STATUS = {
  requested: "Waiting for the resident to agree to share their screen…",
  active: "You can see their page. They see a banner and can stop at any time.",
  declined: "The resident chose not to share their screen.",
  stopped: "Screen sharing has stopped.",
};

function announce(text) {
  announceIn(byId("console-announcer"), text);
}

function visitorLabel(conversation) {
  return conversation.visitor_name || `Resident ${conversation.id}`;
}

function describe(conversation) {
  const parts = [CHANNEL_NAMES[conversation.channel] || conversation.channel];
  if (conversation.kiosk) parts.push(conversation.kiosk.location);
  if (conversation.helper_in_person) parts.push("asks for a helper in person");
  if (conversation.service) parts.push(conversation.service.name);
  // Since its current wait began: a conversation put back after help waits afresh. Once
  // answered it is waiting no longer, though it keeps the time its wait began.
  if (conversation.status === "waiting" && conversation.queued_at) parts.push(`waiting since ${timeOf(conversation.queued_at)}`);
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
      sentFormDone("conversation.transfer", conversation.id);
      state.live.delete(conversation.id);
      renderLive();
      if (config.role === "volunteer") {
        // Only about a conversation taken from this volunteer: the queue's others are counted.
        if (state.mine.has(conversation.id)) letGo(conversation.id, `The conversation with ${visitorLabel(conversation)} went back to the queue.`);
        renderMine();
        return;
      }
      state.waiting.set(conversation.id, conversation);
      // A supervisor watching it goes on watching, as the server goes on sending it.
      if (state.watching.has(conversation.id)) {
        state.mine.set(conversation.id, conversation);
        if (state.selected === conversation.id) renderSelected();
      } else if (state.mine.has(conversation.id)) letGo(conversation.id, "");
      renderQueue();
      renderMine();
      announce(`${visitorLabel(conversation)} is waiting.`);
      chime();
    },
    "queue.counted": ({ waiting_count: count }) => {
      state.waitingCount = count;
      renderQueue();
    },
    "notes.snapshot": ({ conversation_id: id, notes, read_only: readOnly }) => {
      state.notes.set(id, notes);
      if (readOnly) state.watching.add(id);
      else state.watching.delete(id);
      if (state.selected === id) renderSelected();
    },
    "note.created": ({ note }) => {
      sentFormDone("note.add", note.conversation_id);
      const notes = state.notes.get(note.conversation_id) || [];
      if (!notes.some((n) => n.id === note.id)) notes.push(note);
      state.notes.set(note.conversation_id, notes);
      if (state.selected === note.conversation_id) renderNotes();
    },
    "helpers.updated": ({ helpers }) => {
      state.helpers = helpers;
      renderHelpers();
    },
    "presence.updated": ({ status }) => {
      byId("presence").value = status;
      announce(`Your status is now ${byId("presence").selectedOptions[0].textContent}.`);
    },
    "conversation.assigned": ({ conversation }) => {
      sentFormDone("conversation.transfer", conversation.id);
      state.waiting.delete(conversation.id);
      const toAnother = conversation.assigned_helper_id !== config.helperId;
      if (toAnother) state.accepting.delete(conversation.id);
      if (config.role === "supervisor") state.live.set(conversation.id, conversation);
      renderLive();
      if (state.mine.has(conversation.id) && toAnother && !state.watching.has(conversation.id)) {
        // Transferred to someone else.
        letGo(conversation.id, `The conversation with ${visitorLabel(conversation)} is now with ${conversation.helper_name || "another helper"}.`);
      }
      if (state.watching.has(conversation.id) && toAnother) {
        // Watched, and now with another helper: shown as it is, and transferred from there.
        state.mine.set(conversation.id, conversation);
        if (state.selected === conversation.id) renderSelected();
      }
      if (!toAnother && (!state.mine.has(conversation.id) || state.watching.has(conversation.id))) {
        // Not this tab's own Accept: a transfer, routing or another tab gave it, or it was
        // given to the supervisor watching it.
        if (state.selectWhenOpen !== conversation.id) announce(`The conversation with ${visitorLabel(conversation)} is now yours.`);
        state.mine.set(conversation.id, conversation);
        // Followed here too, as its helper: opening it again ends the watch (`notes.snapshot`
        // says it is no longer read-only).
        socket.send("conversation.open", { conversation_id: conversation.id, last_seq: storeFor(conversation.id).contiguousSeq });
      }
      renderQueue();
      renderMine();
    },
    "conversation.ended": ({ conversation }) => {
      state.waiting.delete(conversation.id);
      state.live.delete(conversation.id);
      renderLive();
      if (state.mine.has(conversation.id)) {
        state.mine.set(conversation.id, conversation);
        announce(`The conversation with ${visitorLabel(conversation)} has ended.`);
        // What was being typed to them can no longer be sent: shown to copy, not hidden away
        // with the message box. (Messages already sent may yet be stored: they are kept.)
        giveBackDraft(conversation.id, conversation);
        // Not for one a supervisor only watched: nobody logs it but its helper.
        if (conversation.assigned_helper_id === config.helperId) addWrapUpLink(conversation);
      }
      renderQueue();
      renderMine();
      if (state.selected === conversation.id) renderSelected();
    },
    "state.snapshot": onSnapshot,
    "message.created": (message) => onMessage(message, { announce: true }),
    "callback.requested": ({ callback }) => {
      state.callbacks.set(callback.id, callback);
      renderCallbacks();
      announce(`${callback.name} left a message for a call back.`);
    },
    "callback.updated": ({ callback }) => {
      if (callback.status === "done") state.callbacks.delete(callback.id);
      else state.callbacks.set(callback.id, callback);
      renderCallbacks();
      if (callback.claimed_by_id === config.helperId) {
        announce(callback.status === "done" ? `Call back to ${callback.name} done.` : `You are calling ${callback.name} back.`);
      }
    },
    "typing.updated": ({ conversation_id: id, typing }) => setTyping(id, typing),
    "visitor.presence": onVisitorPresence,
    "read.updated": ({ conversation_id: id, seq }) => {
      state.visitorRead.set(id, Math.max(state.visitorRead.get(id) || 0, seq));
      if (state.selected === id) renderSelected();
    },
    // Both left out when the server's database was too slow to answer in time.
    pong: ({ conversations = [], helpers }) => {
      if (helpers) {
        state.helpers = helpers;
        renderHelpers();
      }
      for (const { id, last_seq: lastSeq } of conversations) {
        if (lastSeq > storeFor(id).contiguousSeq) {
          socket.send("conversation.open", { conversation_id: id, last_seq: storeFor(id).contiguousSeq });
        }
      }
    },
    "cobrowse.updated": ({ cobrowse }) => {
      const previous = state.cobrowse.get(cobrowse.conversation_id);
      state.cobrowse.set(cobrowse.conversation_id, cobrowse);
      if (state.selected === cobrowse.conversation_id) renderCobrowse();
      if (!previous || previous.status !== cobrowse.status) announce(COBROWSE_STATUS[cobrowse.status] || "");
    },
    "cobrowse.events": (frame) => viewer.receive(frame),
    "cobrowse.code_joined": ({ conversation_id: id }) => {
      byId("cobrowse-code-input").value = "";
      byId("cobrowse-code-error").hidden = true;
      if (state.mine.has(id) && state.stores.has(id)) select(id);
      else state.selectWhenOpen = id;
      announce("Joined. The resident is asked to agree before you see their screen.");
    },
    error: ({ code, message, frame_type: frameType, client_id: clientId, conversation_id: about }) => {
      if (code === "rate_limited" && !frameType) resendOutboxSoon();
      if (frameType === "conversation.accept") {
        // Refused (taken by someone else, or gone): nothing to open, nothing to announce, and
        // nothing to take the helper to later, unless another Accept is still on its way.
        state.accepting.delete(about);
        if (state.selectWhenOpen === about) {
          state.selectWhenOpen = null;
          state.focusComposeWhenOpen = false;
        }
      }
      const refused = clientId && state.outbox.get(clientId);
      let notSent = "";
      if (refused) {
        // Not stored: never sent later behind the helper's back. The words go back to them.
        state.outbox.delete(clientId);
        const conversation = state.mine.get(refused.conversation_id);
        if (conversation && conversation.status !== "ended" && code !== "conversation_ended" && code !== "not_assigned") {
          giveBackToBox(refused.conversation_id, refused.body);
        } else {
          // Nowhere to send them now: shown to copy, with any shown before.
          notSent = ` ${notSentText(conversation, [refused.body])}`;
        }
      }
      const formWords = restoreRefusedForm(frameType);
      if (formWords) notSent = ` ${formWords}`;
      if (frameType === "cobrowse.join_code") {
        byId("cobrowse-code-error").textContent = message;
        byId("cobrowse-code-error").hidden = false;
        return;
      }
      // Refusals of what the console sends by itself (typing, read marks) are not the
      // helper's doing, and must not replace what the error box shows them.
      if (BACKGROUND_FRAMES.has(frameType)) return;
      // About a conversation other than the one open: shown at the top, saying which.
      const other = about !== state.selected && (state.mine.get(about) || state.waiting.get(about));
      showError((other ? `Conversation with ${visitorLabel(other)}: ` : "") + message + notSent, about);
    },
  },
  onOpen: () => {
    sessionStorage.removeItem(RELOADED_FOR_ROLE_KEY);
    viewer.reattach();
  },
  onClose: (event) => {
    // Signed out, or given another role or none, since the page was drawn: it loads again, to
    // sign in or to be drawn for the role now. Not twice running: a socket refused again at
    // once is refused for a reason the page does not share, and reloading would never end.
    const roleChanged = [ROLE_CHANGED_CLOSE_CODE, FORBIDDEN_CLOSE_CODE].includes(event.code);
    if (roleChanged && !sessionStorage.getItem(RELOADED_FOR_ROLE_KEY)) {
      sessionStorage.setItem(RELOADED_FOR_ROLE_KEY, "1");
      window.location.reload();
      return;
    }
    byId("console-connection").textContent = roleChanged ? "You do not have permission to use the console." : "Connection lost. Reconnecting…";
    if (roleChanged) socket.close();
  },
});

function onQueueSnapshot({
  waiting, waiting_count: waitingCount, mine, awaiting_wrap_up: awaitingWrapUp, awaiting_wrap_up_count: awaitingWrapUpCount,
  callbacks, live, helpers, presence,
}) {
  state.waiting = new Map(waiting.map((c) => [c.id, c]));
  state.waitingCount = waitingCount;
  state.live = new Map(live.map((c) => [c.id, c]));
  state.helpers = helpers;
  byId("presence").value = presence;
  renderLive();
  renderHelpers();
  state.callbacks = new Map(callbacks.map((c) => [c.id, c]));
  renderCallbacks();
  renderWrapUp(awaitingWrapUp, awaitingWrapUpCount);
  // After a lost connection: say what became of the conversations held here meanwhile.
  const stillMine = new Set(mine.map((c) => c.id));
  const endedMeanwhile = new Map(awaitingWrapUp.map((c) => [c.id, c]));
  for (const [id, held] of state.mine) {
    if (stillMine.has(id) || held.status === "ended") continue;
    if (state.watching.has(id)) {
      if (!state.live.has(id)) letGo(id, `The conversation you were watching with ${visitorLabel(held)} is no longer live.`);
    } else if (endedMeanwhile.has(id)) {
      state.mine.set(id, endedMeanwhile.get(id));
      announce(`The conversation with ${visitorLabel(held)} ended while you were disconnected.`);
      giveBackUnsent(id, held);
      // Whatever was said before the end. Volunteers see no transcript once it has ended.
      if (config.role !== "volunteer") socket.send("conversation.open", { conversation_id: id, last_seq: storeFor(id).contiguousSeq });
    } else {
      // Volunteers are not shown the queue, so for them "passed on" includes back to it.
      letGo(id, state.waiting.has(id)
        ? `The conversation with ${visitorLabel(held)} went back to the queue while you were disconnected.`
        : `The conversation with ${visitorLabel(held)} ended or was passed on while you were disconnected.`);
    }
  }
  // Back from a lost connection (not the page's first snapshot): chats given meanwhile are news.
  const reconnected = state.queueSnapshotSeen;
  state.queueSnapshotSeen = true;
  for (const conversation of mine) {
    if (reconnected && !state.mine.has(conversation.id)) {
      announce(`The conversation with ${visitorLabel(conversation)} was given to you while you were disconnected.`);
    }
    putMine(conversation);
    socket.send("conversation.open", { conversation_id: conversation.id, last_seq: storeFor(conversation.id).contiguousSeq });
  }
  // Kept from before a reload (takeBackUnsent) for a conversation no longer the helper's.
  const unsentFor = new Set([...[...state.outbox.values()].map((pending) => pending.conversation_id), ...state.drafts.keys()]);
  for (const id of unsentFor) {
    if (!state.mine.has(id)) giveBackUnsent(id, endedMeanwhile.get(id));
  }
  // A new socket follows nothing: what a supervisor was watching is opened again too.
  for (const id of state.watching) {
    if (state.live.has(id) && !stillMine.has(id)) socket.send("conversation.open", { conversation_id: id, last_seq: storeFor(id).contiguousSeq });
  }
  renderQueue();
  renderMine();
  if (state.selected !== null) renderSelected();
  // Said once the page shows the server's state, not when the socket opens: until then what
  // a console back from a lost connection shows may be out of date.
  byId("console-connection").textContent = "Connected. The queue updates live.";
}

// Stops showing a conversation this console no longer holds.
function letGo(id, why) {
  const held = state.mine.get(id);
  clearTimeout(state.leftNotices.get(id));
  state.leftNotices.delete(id);
  // No longer ours to say "typing" in: a late stop would only be refused.
  if (state.typingFor === id) {
    clearTimeout(state.typingTimer);
    state.typingSentAt = 0;
    state.typingFor = undefined;
  }
  if (state.selected === id) select(null);
  state.mine.delete(id);
  state.unread.delete(id);
  state.watching.delete(id);
  state.following.delete(id);
  state.errors.delete(id);
  if (why) announce(why);
  giveBackUnsent(id, held);
}

// The frame limit drops frames without saying which (a burst of sends): whatever is not yet
// acknowledged goes again a little later. A resend of a message that was stored is answered
// with the stored one, never stored twice.
function resendOutboxSoon() {
  if (state.resendTimer || state.outbox.size === 0) return;
  state.resendTimer = setTimeout(() => {
    state.resendTimer = null;
    for (const pending of state.outbox.values()) socket.send("message.send", pending);
  }, RESEND_AFTER_LIMIT_MS);
}

// Words for a conversation that can no longer take them (sent while disconnected, or still
// in the box) are shown to the helper to copy, never sent to anyone else.
function giveBackUnsent(id, conversation) {
  const words = [];
  for (const [clientId, pending] of state.outbox) {
    if (pending.conversation_id !== id) continue;
    words.push(pending.body);
    state.outbox.delete(clientId);
  }
  giveBackDraft(id, conversation, words);
}

// The words typed to a conversation and not sent (`words` before them), shown to copy.
function giveBackDraft(id, conversation, words = []) {
  const box = byId("compose-message");
  const draft = state.selected === id ? box.value : state.drafts.get(id);
  if (state.selected === id) box.value = "";
  state.drafts.delete(id);
  const all = draft && draft.trim() ? [...words, draft.trim()] : words;
  if (all.length) showError(notSentText(conversation, all), id);
  if (state.selected === id) renderSelected();
}

// Every "Not sent" so far, until the helper sends again: one shown must not replace another
// (two messages refused as the chat ends, and the words still in the box).
function notSentText(conversation, words) {
  state.notSentShown.push(conversation ? `Not sent to ${visitorLabel(conversation)}: “${words.join(" ")}”` : `Not sent: “${words.join(" ")}”`);
  return state.notSentShown.join(" ");
}

// A refused message's words, back where the helper types to that conversation: after what
// is there already, so nothing typed meanwhile is overwritten.
function giveBackToBox(id, body) {
  const box = byId("compose-message");
  const before = state.selected === id ? box.value : state.drafts.get(id) || "";
  const words = before.trim() ? `${before}\n${body}` : body;
  if (state.selected === id) {
    box.value = words;
    renderSelected();
  } else {
    state.drafts.set(id, words);
  }
}

// A fresh copy of a held conversation replaces it, but whether the resident is there is
// applied as a live `visitor.presence` would be: announced, and an absence only after a while.
function putMine(conversation) {
  const held = state.mine.get(conversation.id);
  if (!held || !state.following.has(conversation.id)) {
    state.mine.set(conversation.id, conversation);
    return;
  }
  const { visitor_connected: connected, visitor_left_at: at } = conversation;
  Object.assign(conversation, { visitor_connected: held.visitor_connected, visitor_left_at: held.visitor_left_at });
  state.mine.set(conversation.id, conversation);
  if (connected !== undefined) onVisitorPresence({ conversation_id: conversation.id, connected, at });
}

function onSnapshot({ conversation, messages, has_more: hasMore, cobrowse }) {
  // The first snapshot of a conversation is its history, shown, not read out; a later one
  // (after a lost connection, or to fill a gap) brings what was missed: news, like a live one.
  const news = state.snapshotSeen.has(conversation.id) ? storeFor(conversation.id).contiguousSeq : Infinity;
  putMine(conversation);
  state.following.add(conversation.id);
  if (cobrowse !== undefined) state.cobrowse.set(conversation.id, cobrowse);
  if (config.role === "supervisor" && conversation.status === "active") state.live.set(conversation.id, conversation);
  state.visitorRead.set(conversation.id, Math.max(state.visitorRead.get(conversation.id) || 0, conversation.visitor_read_seq || 0));
  for (const message of messages) onMessage(message, { announce: message.seq > news });
  if (hasMore) {
    socket.send("conversation.open", { conversation_id: conversation.id, last_seq: storeFor(conversation.id).contiguousSeq });
    return;
  }
  state.snapshotSeen.add(conversation.id);
  for (const pending of state.outbox.values()) {
    if (pending.conversation_id === conversation.id) socket.send("message.send", pending);
  }
  // Accepted here, while the helper went on with another conversation: said, not shown.
  if (state.accepting.delete(conversation.id) && state.selectWhenOpen !== conversation.id && state.selected !== null) {
    announce(`The conversation with ${visitorLabel(conversation)} is now yours.`);
  }
  if ((state.selected === null && conversation.status !== "ended") || state.selectWhenOpen === conversation.id) {
    const focusCompose = state.selectWhenOpen === conversation.id && state.focusComposeWhenOpen;
    state.selectWhenOpen = null;
    state.focusComposeWhenOpen = false;
    select(conversation.id);
    if (focusCompose) byId("compose-message").focus();
  }
  renderMine();
  if (state.selected === conversation.id) renderSelected();
}

// Events about one resident arrive in the order they were sent (one channel layer), and the
// server makes the last one true: a page that answers another's "left" sends "here" after it.
function onVisitorPresence({ conversation_id: id, connected, at }) {
  clearTimeout(state.leftNotices.get(id));
  state.leftNotices.delete(id);
  const show = (change) => {
    const conversation = state.mine.get(id);
    if (!conversation) return;
    const wasThere = conversation.visitor_connected;
    Object.assign(conversation, change);
    if (conversation.status !== "ended" && wasThere !== conversation.visitor_connected) {
      announce(conversation.visitor_connected
        ? `${visitorLabel(conversation)} is back in the chat.`
        : `${visitorLabel(conversation)} has left the chat page.`);
    }
    renderMine();
    if (state.selected === id) renderContext(conversation);
  };
  if (connected) show({ visitor_connected: true, visitor_left_at: null });
  else state.leftNotices.set(id, setTimeout(() => {
    state.leftNotices.delete(id);
    show({ visitor_connected: false, visitor_left_at: at });
  }, LEFT_NOTICE_DELAY_MS));
}

function visitorPresenceText(conversation) {
  if (conversation.visitor_connected) return "Has the chat open";
  const left = conversation.visitor_left_at ? `Left the chat page at ${timeOf(conversation.visitor_left_at)}` : "Not connected";
  return `${left}. The chat closes if they do not come back within ${config.abandonedMinutes} minutes.`;
}

function onMessage(message, { announce: shouldAnnounce }) {
  const store = storeFor(message.conversation_id);
  if (!store.add(message)) return;
  state.outbox.delete(message.client_id);
  // Live, ahead of one never received (a layer over capacity drops events): the gap is
  // fetched now, once for each place it starts, not at the next ping.
  const id = message.conversation_id;
  const conversation = state.mine.get(id);
  const canOpen = conversation && conversation.status !== "ended" && !state.watching.has(id);
  if (canOpen && message.seq > store.contiguousSeq && state.snapshotSeen.has(id) && state.gapAsked.get(id) !== store.contiguousSeq) {
    state.gapAsked.set(id, store.contiguousSeq);
    socket.send("conversation.open", { conversation_id: id, last_seq: store.contiguousSeq });
  }
  if (shouldAnnounce && message.author.kind === "visitor" && conversation) {
    announce(`${visitorLabel(conversation)} says: ${message.body}`);
    if (state.selected !== message.conversation_id) state.unread.set(message.conversation_id, (state.unread.get(message.conversation_id) || 0) + 1);
  }
  if (message.author.kind === "visitor") {
    clearTimeout(state.typingExpiry.get(message.conversation_id));
    state.typing.set(message.conversation_id, false);
  }
  if (state.selected === message.conversation_id) renderSelected();
  renderMine();
}

function markRead() {
  const id = state.selected;
  if (id === null || state.watching.has(id) || document.visibilityState !== "visible") return;
  const seq = storeFor(id).contiguousSeq;
  if (seq > (state.sentRead.get(id) || 0) && socket.send("message.read", { conversation_id: id, seq })) {
    state.sentRead.set(id, seq);
  }
}

function setTyping(id, typing) {
  clearTimeout(state.typingExpiry.get(id));
  if (typing) state.typingExpiry.set(id, setTimeout(() => setTyping(id, false), TYPING_EXPIRY_MS));
  if (Boolean(state.typing.get(id)) === typing) return;
  state.typing.set(id, typing);
  renderMine();
  if (state.selected === id) renderTyping();
}

function renderTyping() {
  const conversation = state.mine.get(state.selected);
  const typing = conversation && conversation.status !== "ended" && state.typing.get(conversation.id);
  byId("conversation-typing").textContent = typing ? `${visitorLabel(conversation)} is typing…` : "";
}

// Lists are rebuilt on every change (a message, a typing resident); the button that had the
// keyboard gets it back, found again by its data attribute.
function keepingFocus(list, rebuild) {
  const focused = list.contains(document.activeElement) ? document.activeElement : null;
  const key = focused && [...focused.attributes].find((attribute) => attribute.name.startsWith("data-"));
  rebuild();
  if (!key) return;
  // The same button, or another action on the same item (Mark as done once taken on).
  const again =
    list.querySelector(`[${key.name}="${CSS.escape(key.value)}"]`) ||
    [...list.querySelectorAll("button")].find((button) =>
      [...button.attributes].some((attribute) => attribute.name.startsWith("data-") && attribute.value === key.value));
  if (again) {
    again.focus();
    return;
  }
  // Gone (taken, ended, done): the list's heading, not the top of the page, and not another
  // resident's button, which a second Enter would press.
  const heading = byId(list.getAttribute("aria-labelledby"));
  heading.setAttribute("tabindex", "-1");
  heading.focus();
}

function callbackButton(callback, action, label) {
  const button = element("button", {
    type: "button",
    className: "govuk-button govuk-button--secondary govuk-!-margin-bottom-0",
    [`data-callback-${action}`]: String(callback.id),
  }, [label, element("span", { className: "govuk-visually-hidden", text: ` for ${callback.name}` })]);
  button.addEventListener("click", () => socket.send(`callback.${action}`, { callback_id: callback.id }));
  return button;
}

function renderCallbacks() {
  const callbacks = [...state.callbacks.values()];
  const list = byId("callbacks-list");
  // Volunteers are not shown call-back requests.
  if (!list) return;
  keepingFocus(list, () => list.replaceChildren(
    ...callbacks.map((callback) => {
      const contact = [callback.phone, callback.email].filter(Boolean).join(" · ");
      const mine = callback.claimed_by_id === config.helperId;
      // Taken on by a helper whose account has gone since: open to anyone again.
      const open = callback.status === "open" || callback.claimer_left;
      const handling = element("p", { className: "govuk-body-s govuk-!-margin-bottom-1" });
      if (callback.claimer_left) handling.textContent = `${callback.claimed_by_name || "The advisor"} took this on but has left. Anyone may call back.`;
      else if (!open) handling.textContent = mine ? "You are calling back." : `${callback.claimed_by_name} is calling back.`;
      const actions = element("div", { className: "govuk-button-group govuk-!-margin-bottom-0" });
      // A supervisor may take over one another helper has on (who may have gone home with it).
      const takeOver = !open && !mine && config.role === "supervisor";
      if (open) actions.append(callbackButton(callback, "claim", "I will call back"));
      if (takeOver) actions.append(callbackButton(callback, "claim", "Take over"));
      if (open || mine || takeOver) actions.append(callbackButton(callback, "done", "Mark as done"));
      return element("li", { className: "govuk-!-margin-bottom-4" }, [
        element("strong", { text: callback.name }),
        element("br"),
        element("span", { className: "govuk-body-s", text: `${callback.reference} · ${contact}${callback.service ? ` · ${callback.service.name}` : ""} · left ${formatWhen(callback.created_at, { timeZone: config.timeZone })}` }),
        element("br"),
        element("span", { text: callback.message }),
        earlierMessages(callback),
        handling.textContent ? handling : "",
        actions,
      ]);
    }),
  ));
  byId("callbacks-count").textContent = String(callbacks.length);
  byId("callbacks-empty").hidden = callbacks.length > 0;
}

// Left in place of a chat: what the resident had already written there.
function earlierMessages({ earlier_messages: earlier }) {
  if (!earlier || !earlier.length) return "";
  return element("div", { className: "govuk-body-s govuk-!-margin-top-2 govuk-!-margin-bottom-1" }, [
    element("span", { text: "Written in the chat before:" }),
    element("ul", { className: "govuk-list govuk-list--bullet govuk-body-s govuk-!-margin-bottom-0" },
      earlier.map((text) => element("li", { text }))),
  ]);
}

function waitedFor(since) {
  const minutes = Math.max(0, Math.floor((Date.now() - new Date(since).getTime()) / 60000));
  return minutes < 1 ? "under a minute" : `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

function chime() {
  if (!byId("queue-sound") || !byId("queue-sound").checked) return;
  const AudioContext = window.AudioContext || window.webkitAudioContext;
  if (!AudioContext) return;
  const context = new AudioContext();
  const tone = context.createOscillator();
  const gain = context.createGain();
  tone.frequency.value = 660;
  gain.gain.setValueAtTime(0.15, context.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, context.currentTime + 0.4);
  tone.connect(gain).connect(context.destination);
  tone.start();
  tone.stop(context.currentTime + 0.4);
}

function renderQueue() {
  const list = byId("queue-list");
  if (!list) {
    // Volunteers see how many are waiting, not who.
    byId("queue-count").textContent = String(state.waitingCount);
    document.title = state.waitingCount ? `(${state.waitingCount}) ${state.baseTitle}` : state.baseTitle;
    return;
  }
  const channel = byId("queue-filter").value;
  const all = [...state.waiting.values()].sort((a, b) => (a.waiting_since < b.waiting_since ? -1 : 1));
  const waiting = all.filter((c) => !channel || c.channel === channel);
  keepingFocus(list, () => list.replaceChildren(
    ...waiting.map((conversation) => {
      const button = element("button", {
        type: "button",
        className: "govuk-button govuk-button--secondary govuk-!-margin-bottom-0",
        "data-accept": String(conversation.id),
      }, [
        "Accept",
        element("span", { className: "govuk-visually-hidden", text: ` conversation with ${visitorLabel(conversation)}` }),
      ]);
      button.addEventListener("click", () => {
        // Opened and ready to answer as soon as it is ours, whatever was open before.
        state.selectWhenOpen = conversation.id;
        state.focusComposeWhenOpen = true;
        state.accepting.add(conversation.id);
        socket.send("conversation.accept", { conversation_id: conversation.id });
      });
      return element("li", { className: "govuk-!-margin-bottom-4" }, [
        element("strong", { text: visitorLabel(conversation) }),
        element("br"),
        element("span", { className: "govuk-body-s", text: describe(conversation) }),
        element("br"),
        element("span", { className: "govuk-body-s", "data-waiting-since": conversation.queued_at, text: `Waiting ${waitedFor(conversation.queued_at)}` }),
        element("br"),
        button,
      ]);
    }),
  ));
  byId("queue-count").textContent = String(all.length);
  byId("queue-empty").hidden = waiting.length > 0;
  document.title = all.length ? `(${all.length}) ${state.baseTitle}` : state.baseTitle;
}

function tick() {
  for (const node of document.querySelectorAll("[data-waiting-since]")) {
    node.textContent = `Waiting ${waitedFor(node.dataset.waitingSince)}`;
  }
}

function renderLive() {
  const list = byId("live-list");
  if (!list) return;
  const live = [...state.live.values()];
  keepingFocus(list, () => list.replaceChildren(
    ...live.map((conversation) => {
      const button = element("button", { type: "button", className: "govuk-button govuk-button--secondary govuk-!-margin-bottom-0", "data-watch": String(conversation.id) }, [
        "Watch",
        element("span", { className: "govuk-visually-hidden", text: ` conversation with ${visitorLabel(conversation)}` }),
      ]);
      button.addEventListener("click", () => {
        state.watching.add(conversation.id);
        state.mine.set(conversation.id, conversation);
        socket.send("conversation.open", { conversation_id: conversation.id, last_seq: storeFor(conversation.id).contiguousSeq });
        select(conversation.id);
      });
      return element("li", { className: "govuk-!-margin-bottom-3" }, [
        element("span", { text: `${visitorLabel(conversation)} with ${conversation.helper_name || "a helper"} · ${describe(conversation)} ` }),
        button,
      ]);
    }),
  ));
  byId("live-empty").hidden = live.length > 0;
}

// The transfer list's value while the helper chosen has gone offline: nothing chosen.
const CHOOSE_AGAIN = "choose-again";

function renderHelpers() {
  const list = byId("helpers-list");
  const select = byId("transfer-to");
  // Neither back to a queue the conversation is in nor to the helper who has it: the server
  // refuses both (already_waiting, already_assigned).
  const conversation = state.mine.get(state.selected);
  const holder = conversation ? conversation.assigned_helper_id : null;
  const others = state.helpers.filter((helper) => helper.id !== config.helperId && helper.id !== holder);
  const choices = others.map((helper) => element("option", { value: String(helper.id), text: `${helper.name} (${helper.presence}, ${helper.active} of ${helper.capacity})` }));
  if (!conversation || conversation.status !== "waiting") {
    choices.unshift(element("option", { value: "", text: "Back to the queue" }));
  }
  // The list is refreshed by every pong: what the helper chose for this conversation stays
  // chosen. A choice no longer offered (the helper went offline or now has it, the chat went
  // back to the queue) is not silently swapped for another, which the next press would send
  // the resident to: they are told, and choose again.
  const sameConversation = select.dataset.conversationId === String(state.selected);
  select.dataset.conversationId = String(state.selected);
  const chosen = sameConversation ? select.value : null;
  select.replaceChildren(...choices);
  if (chosen !== null && choices.some((option) => option.value === chosen)) {
    select.value = chosen;
  } else if (chosen !== null && byId("transfer-details").open) {
    select.prepend(element("option", { value: CHOOSE_AGAIN, text: "Choose again", disabled: "" }));
    select.value = CHOOSE_AGAIN;
    if (chosen !== CHOOSE_AGAIN) {
      const online = state.helpers.some((helper) => String(helper.id) === chosen);
      showError(online
        ? "What you chose is no longer possible for this conversation. Choose who to transfer to again."
        : "The helper you chose is no longer online. Choose who to transfer to again.");
    }
  }
  if (!list) return;
  list.replaceChildren(
    ...state.helpers.map((helper) => element("li", { text: `${helper.name}: ${helper.presence}, ${helper.active} of ${helper.capacity} conversations` })),
  );
}

function renderNotes() {
  const notes = state.notes.get(state.selected) || [];
  byId("notes-list").replaceChildren(
    ...notes.map((note) => element("li", { className: "govuk-body-s" }, [element("strong", { text: `${note.author_name} (${timeOf(note.created_at)}): ` }), document.createTextNode(note.body)])),
  );
}

function renderGuidance() {
  const query = byId("guidance-search").value.trim().toLowerCase();
  const matches = (text) => !query || text.toLowerCase().includes(query);
  const responses = config.guidance.responses.filter((r) => matches(`${r.title} ${r.body} ${r.service}`));
  const guides = config.guidance.guides.filter((g) => matches(`${g.title} ${g.service} ${g.steps.join(" ")}`));
  byId("guidance-list").replaceChildren(
    ...responses.map((response) => {
      const insert = element("button", { type: "button", className: "govuk-button govuk-button--secondary govuk-!-margin-bottom-0" }, [
        "Insert",
        element("span", { className: "govuk-visually-hidden", text: ` ${response.title}` }),
      ]);
      insert.addEventListener("click", () => {
        const box = byId("compose-message");
        box.value = box.value ? `${box.value} ${response.body}` : response.body;
        box.focus();
      });
      return element("li", { className: "govuk-!-margin-bottom-3" }, [
        element("strong", { text: response.title }),
        response.service ? element("span", { className: "govuk-body-s", text: ` · ${response.service}` }) : "",
        element("br"),
        element("span", { className: "govuk-body-s", text: response.body }),
        element("br"),
        insert,
      ]);
    }),
    ...guides.map((guide) => element("li", { className: "govuk-!-margin-bottom-3" }, [
      element("details", { className: "govuk-details govuk-!-margin-bottom-0" }, [
        element("summary", { className: "govuk-details__summary" }, [element("span", { className: "govuk-details__summary-text", text: `Guide: ${guide.title} (${guide.service})` })]),
        element("div", { className: "govuk-details__text" }, [element("ol", { className: "govuk-list govuk-list--number" }, guide.steps.map((step) => element("li", { text: step })))]),
      ]),
    ])),
  );
}

function renderMine() {
  const list = byId("mine-list");
  const open = [...state.mine.values()].filter((c) => c.status !== "ended" || c.id === state.selected);
  keepingFocus(list, () => list.replaceChildren(
    ...open.map((conversation) => {
      const label = `${visitorLabel(conversation)}${conversation.status === "ended" ? " (ended)" : ""}`;
      const going = conversation.status !== "ended";
      const typing = state.typing.get(conversation.id) && going ? " – typing…" : "";
      const gone = going && conversation.visitor_connected === false ? " – left the page" : "";
      const count = state.unread.get(conversation.id);
      const unread = (count ? ` – ${count} unread` : "") + typing + gone;
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
  ));
  byId("mine-empty").hidden = open.length > 0;
}

function select(id) {
  if (id !== null && state.selectWhenOpen !== null && state.selectWhenOpen !== id) {
    // The helper chose another conversation while an Accept was on its way: when it is
    // answered they are not taken away from what they are typing.
    state.selectWhenOpen = null;
    state.focusComposeWhenOpen = false;
  }
  if (id !== state.selected) {
    // One box serves every conversation: words typed to one stay with it.
    const box = byId("compose-message");
    if (state.selected !== null && box.value) state.drafts.set(state.selected, box.value);
    box.value = (id !== null && state.drafts.get(id)) || "";
    state.drafts.delete(id);
    showErrorOf(id);
  }
  state.selected = id;
  state.unread.delete(id);
  renderMine();
  renderSelected();
}

const viewer = new CobrowseViewer({
  container: byId("cobrowse-view"),
  send: (type, data) => socket.send(type, data),
  onStatus: (status) => {
    if (status === "live") byId("cobrowse-status").textContent = COBROWSE_STATUS.active;
    if (status === "waiting") byId("cobrowse-status").textContent = "Loading their page…";
  },
});
window.dioaConsole = { viewer };

function renderCobrowse() {
  const conversation = state.mine.get(state.selected);
  const section = byId("cobrowse");
  const mineAndLive = conversation && conversation.status === "active" && conversation.assigned_helper_id === config.helperId && !state.watching.has(conversation.id);
  section.hidden = !mineAndLive;
  const session = conversation ? state.cobrowse.get(conversation.id) : null;
  const live = session && (session.status === "requested" || session.status === "active");
  if (!mineAndLive || !session || session.status !== "active") viewer.hide();
  if (!mineAndLive) return;
  byId("cobrowse-request").hidden = Boolean(live);
  byId("cobrowse-stop").hidden = !live;
  byId("cobrowse-tools").hidden = !(session && session.status === "active");
  if (session && session.status === "active") viewer.show(session.id);
  byId("cobrowse-status").textContent = session ? COBROWSE_STATUS[session.status] || "" : "";
}

byId("cobrowse-request").addEventListener("click", () => {
  socket.send("cobrowse.request", { conversation_id: state.selected });
});
byId("cobrowse-stop").addEventListener("click", () => {
  const session = state.cobrowse.get(state.selected);
  if (session) socket.send("cobrowse.stop", { conversation_id: state.selected, session_id: session.id });
});
byId("cobrowse-highlight").addEventListener("click", (event) => {
  viewer.highlightMode = !viewer.highlightMode;
  event.currentTarget.setAttribute("aria-pressed", String(viewer.highlightMode));
  byId("cobrowse-view").classList.toggle("cobrowse-view--picking", viewer.highlightMode);
});
byId("cobrowse-clear").addEventListener("click", () => viewer.clear());
byId("cobrowse-code-form").addEventListener("submit", (event) => {
  event.preventDefault();
  socket.send("cobrowse.join_code", { code: byId("cobrowse-code-input").value.trim() });
});

// The facts about the open conversation: who, what, where, since when, and whether the
// resident is still there (updated alone when that changes, not with the whole log).
function renderContext(conversation) {
  const context = [
    ["Channel", CHANNEL_NAMES[conversation.channel] || conversation.channel],
    ["Service", conversation.service ? conversation.service.name : "Not chosen"],
    ["Joined the queue", conversation.waiting_since ? `${timeOf(conversation.waiting_since)} (waited ${conversation.assigned_at ? Math.max(0, Math.round((new Date(conversation.assigned_at) - new Date(conversation.queued_at)) / 60000)) + " min" : "still waiting"})` : ""],
    ["Helper", conversation.helper_name || "None yet"],
  ];
  if (conversation.status !== "ended") context.push(["Resident", visitorPresenceText(conversation)]);
  if (conversation.kiosk) {
    const earlier = conversation.kiosk.earlier_in_visit;
    context.splice(1, 0,
      ["Kiosk", `${conversation.kiosk.name}, ${conversation.kiosk.location}`],
      ["Help wanted", conversation.helper_in_person ? "A helper in person, at the kiosk" : "Chat on the kiosk screen"],
      ["Earlier in this kiosk visit", earlier.length
        ? earlier.map((other) => `Conversation ${other.id} at ${timeOf(other.created_at)}${other.service ? ` (${other.service})` : ""}`).join("; ")
        : "Nothing earlier"],
    );
  }
  byId("conversation-context").replaceChildren(
    ...context.map(([key, value]) => element("div", { className: "govuk-summary-list__row" }, [
      element("dt", { className: "govuk-summary-list__key", text: key }),
      element("dd", { className: "govuk-summary-list__value", text: value }),
    ])),
  );
}

// Ending a conversation hides the message box and its buttons, which may have the focus: it
// goes to the next step, logging what was done, rather than back to the top of the page.
function renderSelected() {
  keepingFocusIn(byId("conversation-panel"), drawSelected, () => {
    const link = byId("wrap-up-link");
    if (isShown(link)) return link;
    // Taken away altogether (transferred): back to the list of the helper's conversations.
    return isShown(byId("conversation-heading")) ? byId("conversation-heading") : byId("mine-heading");
  });
}

function drawSelected() {
  const conversation = state.mine.get(state.selected);
  const panel = byId("conversation-panel");
  panel.hidden = !conversation;
  if (!conversation) {
    viewer.hide();
    return;
  }
  byId("conversation-heading").textContent = `Conversation with ${visitorLabel(conversation)}`;
  renderContext(conversation);
  renderHelpers();
  const watching = state.watching.has(conversation.id);
  byId("conversation-readonly").hidden = !watching;
  renderCobrowse();
  renderNotes();
  const log = byId("conversation-log");
  const visitorRead = state.visitorRead.get(conversation.id) || 0;
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
      item.append(...linkify(message.body));
      const read = kind === "helper" ? (message.seq <= visitorRead ? "Read " : "Sent ") : "";
      item.append(element("span", { className: "chat-log__state", text: read + timeOf(message.created_at) }));
      return item;
    }),
    // Not acknowledged yet (offline, or on its way): shown, so nothing seems to vanish.
    ...[...state.outbox.values()]
      .filter((pending) => pending.conversation_id === conversation.id)
      .map((pending) => element("li", { className: "chat-log__item chat-log__item--mine", "data-client-id": pending.client_id }, [
        element("span", { className: "chat-log__author", text: "You" }),
        ...linkify(pending.body),
        element("span", { className: "chat-log__state", text: "Sending…" }),
      ])),
  );
  log.scrollTop = log.scrollHeight;
  const ended = conversation.status === "ended";
  byId("compose-form").hidden = ended || watching;
  byId("transfer-details").hidden = ended || (watching && config.role !== "supervisor");
  byId("conversation-ended").hidden = !ended;
  // Only its helper logs what was done: a supervisor who watched would take their place.
  byId("wrap-up-link").hidden = conversation.assigned_helper_id !== config.helperId;
  byId("wrap-up-link").href = config.wrapUpUrlTemplate.replace("{id}", String(conversation.id));
  renderTyping();
  markRead();
}

function wrapUpItem(conversation) {
  return element("li", { "data-wrap-up": String(conversation.id) }, [
    element("a", {
      className: "govuk-link",
      href: config.wrapUpUrlTemplate.replace("{id}", String(conversation.id)),
      text: `Log conversation ${conversation.id} (${CHANNEL_NAMES[conversation.channel] || conversation.channel})`,
    }),
  ]);
}

// Newest first, as the page lists them.
function addWrapUpLink(conversation) {
  const list = byId("wrap-up-list");
  if (list.querySelector(`[data-wrap-up="${conversation.id}"]`)) return;
  const empty = byId("wrap-up-empty");
  if (empty) empty.remove();
  list.prepend(wrapUpItem(conversation));
}

// The server's list, after a reconnection: another tab may have logged some meanwhile. It
// holds the newest of `count`; the rest are counted, as on the page the server wrote.
function renderWrapUp(conversations, count) {
  const items = conversations.map(wrapUpItem);
  if (!items.length) items.push(element("li", { id: "wrap-up-empty", text: "Nothing to log." }));
  const more = count - conversations.length;
  if (more > 0) {
    const text = more === 1
      ? "1 older conversation is also waiting. It is listed here as you log these."
      : `${more} older conversations are also waiting. They are listed here as you log these.`;
    items.push(element("li", { id: "wrap-up-more", text }));
  }
  byId("wrap-up-list").replaceChildren(...items);
}

// Errors about the open conversation show beside it, and again whenever it is chosen
// again until the helper sends something there; anything else shows at the top.
function showError(text, about = state.selected) {
  const beside = about !== null && about === state.selected && !byId("conversation-panel").hidden;
  if (beside) state.errors.set(about, text);
  const box = beside ? byId("conversation-error") : byId("console-error");
  box.textContent = text;
  box.hidden = false;
}

// The error box beside the conversation chosen now: its own error or none. Filled only on a
// change of conversation, as a live region reads out what is put in it again.
function showErrorOf(id) {
  const box = byId("conversation-error");
  const text = (id !== null && state.errors.get(id)) || "";
  box.textContent = text;
  box.hidden = !text;
}

byId("compose-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const textarea = byId("compose-message");
  const body = textarea.value.trim();
  if (!body || state.selected === null) return;
  byId("conversation-error").hidden = true;
  state.errors.delete(state.selected);
  state.notSentShown = [];
  const pending = { conversation_id: state.selected, client_id: newClientId(), body };
  state.outbox.set(pending.client_id, pending);
  textarea.value = "";
  stopTyping();
  socket.send("message.send", pending);
  renderSelected();
});

function stopTyping() {
  clearTimeout(state.typingTimer);
  if (state.typingSentAt && state.typingFor !== undefined) {
    socket.send("typing.stop", { conversation_id: state.typingFor });
  }
  state.typingSentAt = 0;
}

byId("compose-message").addEventListener("input", () => {
  if (state.selected === null) return;
  const now = Date.now();
  if (state.typingFor !== state.selected) stopTyping();
  if (now - state.typingSentAt > TYPING_REPEAT_MS) {
    state.typingFor = state.selected;
    if (socket.send("typing.start", { conversation_id: state.selected })) state.typingSentAt = now;
  }
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
});

document.addEventListener("visibilitychange", markRead);

byId("presence").addEventListener("change", (event) => socket.send("presence.set", { status: event.target.value }));

if (byId("queue-filter")) {
  byId("queue-filter").addEventListener("change", renderQueue);
  byId("queue-sound").checked = localStorage.getItem(SOUND_KEY) === "on";
  byId("queue-sound").addEventListener("change", (event) => localStorage.setItem(SOUND_KEY, event.target.checked ? "on" : "off"));
}

byId("transfer-details").addEventListener("toggle", (event) => {
  if (event.target.open) socket.send("helpers.list", {});
});

byId("transfer-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (state.selected === null) return;
  const to = byId("transfer-to").value;
  if (to === CHOOSE_AGAIN) {
    showError("Choose who to transfer to.");
    byId("transfer-to").focus();
    return;
  }
  const data = { conversation_id: state.selected, note: byId("transfer-note").value.trim() };
  if (to) data.to_helper_id = Number(to);
  if (!sendForm("conversation.transfer", data, "transfer-note")) return;
  byId("transfer-note").value = "";
  byId("transfer-details").open = false;
  // The conversation leaves this console: the keyboard goes back to the list of the others.
  byId("mine-heading").setAttribute("tabindex", "-1");
  byId("mine-heading").focus();
});

byId("note-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const body = byId("note-body").value.trim();
  if (!body || state.selected === null) return;
  if (!sendForm("note.add", { conversation_id: state.selected, body }, "note-body")) return;
  byId("note-body").value = "";
});

// Sends a note or a transfer, whose words are kept to give back if it is refused. Offline,
// nothing is sent and the words stay where they are.
function sendForm(frameType, data, field) {
  if (!socket.send(frameType, data)) {
    showError("Not connected: nothing was sent. Try again once the console is connected.");
    return false;
  }
  state.sentForm = { frameType, field, conversationId: data.conversation_id, text: byId(field).value };
  return true;
}

// A refused note or transfer: its words back in their box, and a transfer's form open again
// on the conversation it was about. With another conversation open now, or new words in the
// box, they are to be shown to copy instead: returns that text.
function restoreRefusedForm(frameType) {
  const sent = state.sentForm;
  if (!sent || sent.frameType !== frameType) return "";
  state.sentForm = null;
  const box = byId(sent.field);
  if (state.selected !== sent.conversationId || box.value) {
    return sent.text.trim() ? notSentText(state.mine.get(sent.conversationId), [sent.text.trim()]) : "";
  }
  box.value = sent.text;
  if (frameType === "conversation.transfer") byId("transfer-details").open = true;
  return "";
}

// A note or transfer answered: nothing of it to give back any more.
function sentFormDone(frameType, conversationId) {
  if (state.sentForm && state.sentForm.frameType === frameType && state.sentForm.conversationId === conversationId) state.sentForm = null;
}

byId("guidance-search").addEventListener("input", renderGuidance);
renderGuidance();
setInterval(tick, 15000);

sendOnEnter(byId("compose-message"), byId("compose-form"));

byId("end-conversation").addEventListener("click", () => {
  if (state.selected !== null) socket.send("conversation.end", { conversation_id: state.selected });
});

// Words not yet sent are kept in this tab's storage whenever the page goes (a reload, the
// wrap-up form, another site) or is hidden (a phone may discard it), and taken back when the
// console loads again: messages are resent with their client ids once their conversation is
// open, drafts wait in their conversation, and those for a conversation no longer the
// helper's are shown to copy (onQueueSnapshot).
const UNSENT_KEY = `dioa-console-unsent-${config.helperId}`;

function keepUnsent() {
  const drafts = new Map(state.drafts);
  const box = byId("compose-message");
  if (state.selected !== null && box.value.trim()) drafts.set(state.selected, box.value);
  try {
    if (state.outbox.size || drafts.size) {
      sessionStorage.setItem(UNSENT_KEY, JSON.stringify({ outbox: [...state.outbox.values()], drafts: [...drafts] }));
    } else {
      sessionStorage.removeItem(UNSENT_KEY);
    }
  } catch {
    // Storage blocked or full: only this page has them.
  }
}

function takeBackUnsent() {
  let kept = null;
  try {
    kept = JSON.parse(sessionStorage.getItem(UNSENT_KEY));
    sessionStorage.removeItem(UNSENT_KEY);
  } catch {
    return;
  }
  if (!kept || typeof kept !== "object") return;
  for (const pending of Array.isArray(kept.outbox) ? kept.outbox : []) {
    const valid = pending && typeof pending.client_id === "string" && typeof pending.body === "string" && Number.isInteger(pending.conversation_id);
    if (valid) state.outbox.set(pending.client_id, pending);
  }
  for (const entry of Array.isArray(kept.drafts) ? kept.drafts : []) {
    if (Array.isArray(entry) && Number.isInteger(entry[0]) && typeof entry[1] === "string") state.drafts.set(entry[0], entry[1]);
  }
}

takeBackUnsent();
window.addEventListener("pagehide", keepUnsent);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") keepUnsent();
});
socket.connect();
// The browser may keep the console whole for its Back button (after the wrap-up form, or a
// visit to another site), socket and all. Closed, the helper is offline once the grace
// period passes, rather than counted online and given chats on a page nobody is looking
// at. Coming back loads it afresh: chats may have ended or moved meanwhile, and the
// wrap-up list is the server's.
window.addEventListener("pagehide", (event) => {
  if (event.persisted) socket.close();
});
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  // Unless that would lose words not yet sent: then only reconnect, as after a lost connection.
  const unsent = state.outbox.size > 0 || state.drafts.size > 0 || byId("compose-message").value || byId("note-body").value;
  if (unsent) socket.connect();
  else window.location.reload();
});
