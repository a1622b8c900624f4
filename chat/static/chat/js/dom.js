// Small DOM helpers shared by the widget and the console. Text always goes in as text.

export function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// Puts `text` in a polite live region; clearing it first makes a repeated text heard again.
// Texts announced together (a reconnection's missed messages, a system message and the
// status it changes) are read out together: each would otherwise replace the one before.
const pendingAnnouncements = new WeakMap();

export function announce(region, text) {
  const pending = pendingAnnouncements.get(region);
  if (pending) {
    pending.push(text);
    return;
  }
  pendingAnnouncements.set(region, [text]);
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = pendingAnnouncements.get(region).join(" ");
    pendingAnnouncements.delete(region);
  }, 50);
}

// Whether `node` takes up room on the page: false inside anything `hidden` or not displayed.
export function isShown(node) {
  return node.getClientRects().length > 0;
}

// Runs `render` (which may hide what has the keyboard's focus, such as a form that the new
// state removes) and, if the focus was inside `container` and is now somewhere nobody can
// see, puts it on `fallback()`, unless something else placed it meanwhile (after this task).
export function keepingFocusIn(container, render, fallback) {
  const focused = document.activeElement;
  const hadFocus = container.contains(focused) && focused !== container;
  render();
  // Hidden, not replaced: a rebuilt list or log puts its own focus back, or leaves it be.
  if (!hadFocus || !focused.isConnected || isShown(focused)) return;
  window.setTimeout(() => {
    const now = document.activeElement;
    if (now === focused || now === document.body || now === null) {
      const target = fallback();
      if (target) target.focus();
    }
  }, 0);
}

// An address ends at a space or at a character that can make text read other than it is:
// a direction override (U+202A–E, U+2066–9) or one of no width.
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF]+/g;
const TRAILING = ".,;:!?]";

// Punctuation after an address usually ends the sentence, not the address; a closing
// bracket is the address's own if it closes one opened in it (a wiki page "Foo_(bar)").
function trimAddress(address) {
  let href = address;
  for (;;) {
    const last = href.slice(-1);
    const unmatched = last === ")" && href.split(")").length > href.split("(").length;
    if (!TRAILING.includes(last) && !unmatched) return href;
    href = href.slice(0, -1);
  }
}

// Whether an address goes where it reads as going: the host the browser would visit is the
// one written. Not so for a name in other alphabets (a lookalike of the council's, visited
// as "xn--…"), nor with a user name before an "@", which makes
// "https://www.council.gov.uk@elsewhere.example" go to elsewhere.example.
function goesWhereItReads(href) {
  let url;
  try {
    url = new URL(href);
  } catch {
    return false;
  }
  const written = href.slice(href.indexOf("//") + 2).split(/[/?#]/)[0];
  return url.host === written.toLowerCase();
}

// Plain text as nodes, with http(s) addresses made into links. Nothing is parsed as HTML,
// and only http(s) links are made, so a message can never run script or open `javascript:`.
// An address that could mislead stays plain text, to be read and typed with care.
export function linkify(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const href = trimAddress(match[0]);
    if (!goesWhereItReads(href)) continue;
    if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
    nodes.push(element("a", { className: "govuk-link", href, rel: "noopener noreferrer nofollow", target: "_blank", text: href }));
    last = match.index + href.length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

// Enter sends what is in a message box, Shift+Enter starts a new line. Not the Enter that
// picks a word from a Japanese or Chinese keyboard's suggestions, which would send half of it:
// Safari has ended the composition by the time it reports that key, but still gives it the
// code 229 that every browser gives a key the keyboard's suggestions took.
export function sendOnEnter(textarea, form) {
  textarea.addEventListener("keydown", (event) => {
    const choosing = event.isComposing || event.keyCode === 229;
    if (event.key === "Enter" && !event.shiftKey && !choosing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
}
