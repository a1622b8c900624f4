// GOV.UK's error pattern for a form the widget draws (the design system's error summary and
// error message components): a summary at the top of the form that takes focus and links to
// each field in error, and each message above its field, tied to it for screen readers.

import { element } from "./dom.js";

const ERROR_CLASSES = { INPUT: "govuk-input--error", SELECT: "govuk-select--error", TEXTAREA: "govuk-textarea--error" };

export class FormErrors {
  // `fields`, by the name the server gives the field: `{ input, group, before, describe }`,
  // the control a summary link focuses, its form group, and for radios the element the
  // message goes in front of (else the control) and the fieldset it describes.
  constructor(form, fields) {
    this.fields = fields;
    this.summary = element("div", { className: "govuk-error-summary", tabindex: "-1", hidden: "" });
    form.prepend(this.summary);
    this.undo = [];
  }

  // Shows `errors` ({field name: message}); false if none is about a field of this form.
  show(errors) {
    this.clear();
    const links = [];
    for (const [name, message] of Object.entries(errors)) {
      const field = this.fields[name];
      if (!field) continue;
      links.push(element("li", {}, [this.mark(field, message)]));
    }
    if (!links.length) return false;
    this.summary.replaceChildren(
      element("div", { role: "alert" }, [
        element("h2", { className: "govuk-error-summary__title", text: "There is a problem" }),
        element("div", { className: "govuk-error-summary__body" }, [
          element("ul", { className: "govuk-list govuk-error-summary__list" }, links),
        ]),
      ]),
    );
    this.summary.hidden = false;
    this.summary.focus();
    return true;
  }

  // Puts the message above the field and returns the summary's link to it.
  mark(field, message) {
    const id = `${field.input.id}-error`;
    const paragraph = element("p", { className: "govuk-error-message", id }, [
      element("span", { className: "govuk-visually-hidden", text: "Error: " }),
      message,
    ]);
    (field.before || field.input).before(paragraph);
    field.group.classList.add("govuk-form-group--error");
    const errorClass = field.describe ? null : ERROR_CLASSES[field.input.tagName];
    if (errorClass) field.input.classList.add(errorClass);
    const described = field.describe || field.input;
    const hint = described.getAttribute("aria-describedby");
    described.setAttribute("aria-describedby", hint ? `${hint} ${id}` : id);
    this.undo.push(() => {
      paragraph.remove();
      field.group.classList.remove("govuk-form-group--error");
      if (errorClass) field.input.classList.remove(errorClass);
      if (hint) described.setAttribute("aria-describedby", hint);
      else described.removeAttribute("aria-describedby");
    });
    const link = element("a", { href: `#${field.input.id}`, text: message });
    // Followed, the link would change the host page's address: it moves the keyboard instead.
    link.addEventListener("click", (event) => {
      event.preventDefault();
      field.input.focus();
    });
    return link;
  }

  clear() {
    for (const undo of this.undo.splice(0)) undo();
    this.summary.hidden = true;
    this.summary.replaceChildren();
  }
}
