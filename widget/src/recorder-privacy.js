// What the recorder never sends (docs/recordings.md, "Privacy"). The shop marks
// its page with these attributes or classes:
//
//   data-chat-block  / .chat-block    the element is not recorded at all: the
//                                     replay shows an empty box of its size
//   data-chat-mask   / .chat-mask     its text is recorded as asterisks
//   data-chat-unmask / .chat-unmask   an input whose value may be recorded
//                                     (a search box, say); every other input
//                                     is masked
//
// Password fields and fields whose autocomplete is a card or one-time-code
// token (cc-number, cc-csc, ...) are masked even inside data-chat-unmask.
// The chat widget itself is blocked (the conversation is stored as such).

export const BLOCK = "[data-chat-block], .chat-block, chatserver-chat";
export const MASK = "[data-chat-mask], .chat-mask";
export const UNMASK = "[data-chat-unmask], .chat-unmask";

const SENSITIVE_AUTOCOMPLETE = /(^|\s)(cc-|current-password|new-password|one-time-code)/i;
const TEXT_LIMIT = 100;
const SELECTOR_DEPTH = 5;
const PLAIN = /^[A-Za-z][\w-]*$/;
// Where a click's text comes from: the thing that was meant to be clicked.
const ACTIONABLE =
  "a, button, [role=button], [role=link], [role=tab], [role=menuitem], summary, label, " +
  "input[type=submit], input[type=button], input[type=reset]";

/** Whether an input's value may never be recorded, whatever the page says.
 * @param {Element | null} el */
export function sensitive(el) {
  if (!el) return true;
  const type = (el.getAttribute("type") || "").toLowerCase();
  return type === "password" || SENSITIVE_AUTOCOMPLETE.test(el.getAttribute("autocomplete") || "");
}

/**
 * rrweb's `maskInputFn`: called for every input value (all are masked by
 * `maskAllInputs`). Unmasked only inside data-chat-unmask, never when sensitive;
 * sensitive values do not even keep their length.
 * @param {string} text
 * @param {HTMLElement | null} element
 */
export function maskInput(text, element) {
  if (element && !sensitive(element) && element.closest(UNMASK)) return text;
  if (sensitive(element)) return text ? "********" : "";
  return "*".repeat(text.length);
}

/** A short CSS selector for `el`: up to 5 levels, stopping at an id.
 * @param {Element} el */
export function selectorOf(el) {
  /** @type {string[]} */
  const parts = [];
  /** @type {Element | null} */
  let node = el;
  for (let depth = 0; node && depth < SELECTOR_DEPTH; depth++, node = node.parentElement) {
    const tag = node.localName;
    if (node.id && PLAIN.test(node.id)) {
      parts.unshift(`${tag}#${node.id}`);
      break;
    }
    let part = tag + [...node.classList].filter((c) => PLAIN.test(c)).slice(0, 2).map((c) => `.${c}`).join("");
    const parent = node.parentElement;
    if (parent) {
      const same = [...parent.children].filter((c) => c.localName === tag);
      if (same.length > 1) part += `:nth-of-type(${same.indexOf(node) + 1})`;
    }
    parts.unshift(part);
    if (tag === "body") break;
  }
  return parts.join(" > ").slice(0, 300);
}

/**
 * What the index keeps of a click: a selector and the clicked thing's text,
 * masked where the page masks (or blocks) it; never an input's value.
 * `actionable`: a button or a link (a click on it that changes nothing is a
 * "dead click", recordings/signals.py).
 * @param {EventTarget | null} target
 * @returns {{selector: string, text: string, actionable?: boolean} | null}
 */
export function describeClick(target) {
  if (!(target instanceof Element)) return null;
  if (target.closest("chatserver-chat")) return { selector: "chatserver-chat", text: "" };
  const button = target.closest(ACTIONABLE);
  const el = button || target;
  const selector = selectorOf(el);
  if (el.closest(BLOCK)) return { selector, text: "" };
  let text = "";
  const tag = el.localName;
  if (tag === "input") {
    const type = (el.getAttribute("type") || "").toLowerCase();
    if (["submit", "button", "reset"].includes(type)) text = /** @type {HTMLInputElement} */ (el).value;
  } else if (tag !== "textarea" && tag !== "select") {
    text = /** @type {HTMLElement} */ (el).innerText ?? el.textContent ?? "";
  }
  text = text.replace(/\s+/g, " ").trim().slice(0, TEXT_LIMIT);
  // Masked (or blocked) here or anywhere inside: the text says nothing.
  if (text && (el.closest(MASK) || el.querySelector(`${MASK}, ${BLOCK}`))) text = "*".repeat(text.length);
  return button ? { selector, text, actionable: true } : { selector, text };
}
