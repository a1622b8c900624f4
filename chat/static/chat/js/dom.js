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
export function announce(region, text) {
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = text;
  }, 50);
}
