// The pairing screen asks every few seconds whether a supervisor has approved this kiosk;
// once approved, the kiosk address hands it its credential and shows the launcher. A kiosk
// refused a code tries again by itself.
const status = document.querySelector("[data-pairing-status]");
const POLL_MS = 3000;

async function check() {
  try {
    const response = await fetch(status.dataset.statusUrl, { credentials: "same-origin", cache: "no-store" });
    const { status: state } = await response.json();
    if (state === "approved" || state === "enrolled" || state === "expired") {
      status.textContent = state === "expired" ? "The code expired. Getting a new one…" : "Approved. Starting the kiosk…";
      window.location.replace(window.location.pathname);
      return;
    }
    status.textContent = "Waiting for approval…";
  } catch {
    status.textContent = "Cannot reach the council's server. Trying again…";
  }
  setTimeout(check, POLL_MS);
}

if (status) setTimeout(check, POLL_MS);

// Refused a pairing code (too many waiting from this network): nobody may be there to reload
// a kiosk, so it asks again by itself until there is room, as often as the page says.
const refused = document.querySelector("[data-pairing-retry-seconds]");
if (refused) setTimeout(() => window.location.reload(), Number(refused.dataset.pairingRetrySeconds) * 1000);
