// The size budget: fails (exit 1) when the built loader is over 2 KB gzip, the
// chat bundle over 20 KB gzip, the co-browse bundle over 6 KB gzip, the
// languages and the emoji bundles over 3 KB gzip each, the preview bundle over
// 20 KB gzip, the
// recorder bundle over 40 KB gzip or the replay bundle over 80 KB gzip. Run
// after the build: npm run size.

import { readFile, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const build = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "chatserver", "widget_build");
const KB = 1024;
const budgets = [
  { label: "loader", match: (/** @type {string} */ n) => n === "widget.js", limit: 2 * KB },
  { label: "chat bundle", match: (/** @type {string} */ n) => /^chat\.[A-Z0-9]+\.js$/.test(n), limit: 20 * KB },
  // Loaded only when an agent asks to co-browse (docs/cobrowse.md): prompt, stream, banner, pointer.
  { label: "cobrowse", match: (/** @type {string} */ n) => /^cobrowse\.[A-Z0-9]+\.js$/.test(n), limit: 6 * KB },
  // Loaded only where the widget speaks Catalan or Spanish (docs/widget.md).
  { label: "languages", match: (/** @type {string} */ n) => /^langs\.[A-Z0-9]+\.js$/.test(n), limit: 3 * KB },
  // Loaded only when the visitor opens the emoji picker or types a shortcode (docs/widget.md).
  { label: "emoji", match: (/** @type {string} */ n) => /^emoji\.[A-Z0-9]+\.js$/.test(n), limit: 3 * KB },
  // Loaded only in tabs that record (docs/recordings.md): rrweb's recorder and our uploads.
  { label: "recorder", match: (/** @type {string} */ n) => /^recorder\.[A-Z0-9]+\.js$/.test(n), limit: 40 * KB },
  // Loaded only by the admin site page: the chat's views for the live preview.
  { label: "preview", match: (/** @type {string} */ n) => /^preview\.[A-Z0-9]+\.js$/.test(n), limit: 20 * KB },
  // Loaded only by console pages (co-browsing, replay): rrweb's replayer.
  { label: "replay", match: (/** @type {string} */ n) => /^replay\.[A-Z0-9]+\.js$/.test(n), limit: 80 * KB },
];

let names;
try {
  names = await readdir(build);
} catch {
  console.error("size: no build/ folder; run `npm run build` first");
  process.exit(1);
}
let failed = false;
for (const { label, match, limit } of budgets) {
  const files = names.filter(match);
  if (files.length !== 1) {
    console.error(`size: expected one ${label} in build/, found ${files.length}`);
    failed = true;
    continue;
  }
  const raw = await readFile(join(build, files[0]));
  const gz = gzipSync(raw, { level: 9 }).length;
  const ok = gz <= limit;
  failed ||= !ok;
  console.log(`${ok ? "ok  " : "OVER"} ${label.padEnd(12)} ${files[0].padEnd(22)} ${raw.length} B, ${gz} B gzip (budget ${limit} B)`);
}
process.exit(failed ? 1 : 0);
