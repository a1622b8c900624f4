// The supervisors' kiosks page: each kiosk's state follows the `kiosk.updated` frames of its
// socket; a kiosk that stops sending heartbeats turns offline here without waiting for one.
import { FORBIDDEN_CLOSE_CODE, FrameSocket, formatWhen, socketUrl } from "../../chat/js/socket.js";

const config = JSON.parse(document.getElementById("kiosks-config").textContent);
const status = document.querySelector("[data-kiosks-connection]");
function setState(row, state, label, tagClass) {
  row.dataset.state = state;
  const tag = row.querySelector("[data-kiosk-state]");
  tag.className = `govuk-tag ${tagClass}`.trim();
  tag.textContent = label;
}

function update(kiosk) {
  const row = document.querySelector(`[data-kiosk-id="${kiosk.id}"]`);
  const { status, name, location } = row ? row.dataset : {};
  if (!row || status !== kiosk.status || name !== kiosk.name || location !== kiosk.location) {
    // A kiosk this page has not listed yet (a new pairing code), or one approved, revoked or
    // renamed since: the page is written again, with the actions that kiosk now has.
    if (!submitting) window.location.reload();
    return;
  }
  row.dataset.lastSeen = kiosk.last_seen_at || "";
  setState(row, kiosk.state, kiosk.state_label, kiosk.state_tag);
  showLastSeen(row);
}

function showLastSeen(row) {
  if (!row.dataset.lastSeen) return;
  const time = document.createElement("time");
  time.dateTime = row.dataset.lastSeen;
  time.textContent = formatWhen(row.dataset.lastSeen, { timeZone: config.timeZone });
  row.querySelector("[data-kiosk-last-seen]").replaceChildren(time);
}

// A silent kiosk sends nothing: it turns offline here, and its "last seen" is written again,
// so that a page left open overnight says which day it was.
function markSilentOffline() {
  const limit = Date.now() - config.offlineAfterSeconds * 1000;
  for (const row of document.querySelectorAll("[data-kiosk-id]")) {
    const live = ["idle", "in_use", "needs_help"].includes(row.dataset.state);
    if (live && (!row.dataset.lastSeen || Date.parse(row.dataset.lastSeen) < limit)) setState(row, "offline", "Offline", "govuk-tag--grey");
    showLastSeen(row);
  }
}

// A form sent from this page (Wipe, Revoke) comes back as a fresh page with its outcome:
// the news of the same change on this page's socket must not reload over it.
let submitting = false;
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}
for (const form of document.querySelectorAll("form")) {
  form.addEventListener("submit", (event) => {
    if (!event.defaultPrevented) submitting = true;
  });
}

const socket = new FrameSocket({
  url: socketUrl(config.socketPath),
  handlers: {
    "kiosks.snapshot": (data) => data.kiosks.forEach(update),
    "kiosk.updated": (data) => update(data.kiosk),
  },
  onOpen: () => {
    status.textContent = "";
  },
  onClose: (event) => {
    // Signed out, or no longer a supervisor: nothing more will come.
    if (event.code === FORBIDDEN_CLOSE_CODE) {
      status.textContent = "You do not have permission to see the kiosks now. Reload the page to sign in again.";
      socket.close();
      return;
    }
    status.textContent = "Live updates paused: reconnecting…";
  },
});
socket.connect();
setInterval(markSilentOffline, 15000);
