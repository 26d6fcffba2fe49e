// Icons for the chat actions: simple strokes drawn for chatserver (24×24 grid,
// `currentColor`, no licence to carry). Always beside a text label, so the icon
// is hidden from assistive technology (aria-hidden) and the label is the name.

const SVG = "http://www.w3.org/2000/svg";

/** @type {Record<string, string>} name -> path data */
export const PATHS = {
  join: "M10 17l5-5-5-5M15 12H3M14 4h5a1 1 0 0 1 1 1v14a1 1 0 0 1-1 1h-5",
  transfer: "M4 8h13M13 4l4 4-4 4M20 16H7M11 12l-4 4 4 4",
  invite: "M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM2 21v-1a6 6 0 0 1 10-4.5M19 14v6M16 17h6",
  cobrowse: "M4 4l6 16 2.5-6.5L19 11zM13 13l6 6",
  rewind: "M11 18l-8-6 8-6zM21 18l-8-6 8-6z",
  recordings: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM10 8.5v7l6-3.5z",
  close: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM9 9l6 6M15 9l-6 6",
  note: "M5 3h10l4 4v14H5zM14 3v5h5M8 12h8M8 16h5",
  send: "M3 11l18-8-8 18-2-8zM11 13l10-10",
};

/**
 * An inline SVG icon, hidden from assistive technology.
 * @param {keyof typeof PATHS} name
 * @returns {SVGSVGElement}
 */
export function icon(name) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `icon icon-${name}`);
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", PATHS[name]);
  svg.append(path);
  return svg;
}

/**
 * Put an icon before an element's text label (kept as the accessible name).
 * @template {Element} T
 * @param {T} node @param {keyof typeof PATHS} name @param {string} label
 * @returns {T}
 */
export function labelled(node, name, label) {
  // Unchanged: leave the nodes (pane updates come often; a replaced icon would
  // flicker and lose its layout for a frame).
  const [first, text] = node.childNodes;
  const same =
    node.childNodes.length === 2 &&
    first instanceof SVGElement &&
    first.classList.contains(`icon-${name}`) &&
    text?.nodeType === Node.TEXT_NODE &&
    text.textContent === label;
  if (!same) node.replaceChildren(icon(name), document.createTextNode(label));
  return node;
}
