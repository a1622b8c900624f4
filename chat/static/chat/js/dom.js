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

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/g;

// Plain text as nodes, with http(s) addresses made into links. Nothing is parsed as HTML,
// and only http(s) links are made, so a message can never run script or open `javascript:`.
export function linkify(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    // Trailing punctuation usually ends the sentence, not the address.
    const href = match[0].replace(/[.,;:!?)\]]+$/, "");
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
