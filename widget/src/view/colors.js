// The site's colour (any CSS hex) with a text colour that keeps a contrast of
// at least 4.5:1 (WCAG AA) on it: white or black, whichever is higher (for
// any colour one of them reaches 4.58:1).

/** @param {string} hex @returns {[number, number, number] | null} */
function parse(hex) {
  const m = /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(hex.trim());
  if (!m) return null;
  const s = m[1].length === 3 ? [...m[1]].map((c) => c + c).join("") : m[1];
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(s.slice(i, i + 2), 16));
  return [r, g, b];
}

/** Relative luminance (WCAG 2). @param {[number, number, number]} rgb */
function luminance(rgb) {
  const [r, g, b] = rgb.map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** @param {number} a @param {number} b */
const contrast = (a, b) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);

const FALLBACK = "#2563eb";
const DARK = "#000000";

/**
 * @param {string | undefined} color the site's colour
 * @returns {{brand: string, text: string}} a valid brand colour and its text colour
 */
export function palette(color) {
  const rgb = parse(color || "") || /** @type {[number, number, number]} */ (parse(FALLBACK));
  const brand = `rgb(${rgb.join(",")})`;
  const lum = luminance(rgb);
  return { brand, text: contrast(lum, 1) >= contrast(lum, 0) ? "#fff" : DARK };
}
