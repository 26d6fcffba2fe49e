// Build the widget into ../chatserver/widget_build/ (inside the Python
// package, so the wheel carries it and the server finds it wherever it is
// installed): the content-hashed bundles first (the
// recorder, the replay view, co-browsing, then the chat bundle with the
// names of the first three baked in), then the loader (widget.js) with the
// chat bundle's name baked in. All minified IIFE scripts. Each bundle's
// Subresource Integrity hash (sha384) is baked in next to its name, and the
// loader and the chat bundle add them with `integrity` and
// `crossorigin="anonymous"` (the server sends `Access-Control-Allow-Origin: *`).
// The published types of `$chat` (types/chat.d.ts) are copied as chat.d.ts.
// Run: npm run build.

import { createHash } from "node:crypto";
import { copyFile, mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "..", "chatserver", "widget_build");
// ES2020 syntax: every browser with shadow DOM and constructable-free fallbacks.
const target = ["es2020"];

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });

/**
 * Build the content-hashed bundle `name` (`name.<hash>.js`) from `entry`.
 * @param {string} name @param {string} entry @param {import("esbuild").BuildOptions} [more]
 * @returns {Promise<{file: string, inputs: string[]}>} its file name and source files
 */
async function hashed(name, entry, more = {}) {
  const result = await esbuild.build({
    entryPoints: { [name]: join(root, entry) },
    bundle: true,
    minify: true,
    format: "iife",
    target,
    outdir: out,
    entryNames: "[name].[hash]",
    metafile: true,
    legalComments: "none",
    logLevel: "warning",
    ...more,
  });
  const pattern = new RegExp(`^${name}\\.[A-Z0-9]+\\.js$`);
  const file = Object.keys(result.metafile.outputs)
    .map((path) => path.split("/").pop())
    .find((n) => n && pattern.test(n));
  if (!file) throw new Error(`build: no ${name} bundle in the output`);
  return { file, inputs: Object.keys(result.metafile.inputs), integrity: await integrity(file) };
}

/**
 * The Subresource Integrity value of the built file `file`: `sha384-<base64>`.
 * @param {string} file @returns {Promise<string>}
 */
async function integrity(file) {
  const digest = createHash("sha384").update(await readFile(join(out, file))).digest("base64");
  return `sha384-${digest}`;
}

// The recorder (rrweb and our uploads): loaded by the chat bundle only in
// tabs that record, or that co-browse once the visitor allowed it.
const recorder = await hashed("recorder", "src/recorder.js");

// The replay view (rrweb's replayer; replayer.js) for the console: never
// loaded by shops' pages.
const replay = await hashed("replay", "src/replay.js", { loader: { ".css": "text" } });
// A stable name too, for pages that cannot read the manifest (cached briefly).
await copyFile(join(out, replay.file), join(out, "replay.js"));

// Co-browsing, the visitor's side (prompt, stream, banner, pointer): loaded
// by the chat bundle only when an agent asks, or to resume in a tab that
// allowed it. No rrweb: that comes with the recorder, after consent.
const cobrowse = await hashed("cobrowse", "src/cobrowse-bundle.js");
if (cobrowse.inputs.some((path) => path.includes("rrweb"))) {
  throw new Error("build: rrweb ended up in the co-browse bundle");
}

// The widget's look for the admin site page's live preview: the chat's own
// views without a connection (src/preview.js). Never loaded by shops' pages.
const preview = await hashed("preview", "src/preview.js");

// Catalan and Spanish: loaded by the chat bundle only when one of them is picked.
const langs = await hashed("langs", "src/langs-bundle.js");

// Emoji (the picker and the shortcode table): loaded by the chat bundle the
// first time the visitor opens the picker or types a shortcode.
const emoji = await hashed("emoji", "src/emoji-bundle.js");

const chat = await hashed("chat", "src/chat.js", {
  define: {
    __LANGS_BUNDLE__: JSON.stringify(`widget/${langs.file}`),
    __LANGS_INTEGRITY__: JSON.stringify(langs.integrity),
    __EMOJI_BUNDLE__: JSON.stringify(`widget/${emoji.file}`),
    __EMOJI_INTEGRITY__: JSON.stringify(emoji.integrity),
    __RECORDER_BUNDLE__: JSON.stringify(`widget/${recorder.file}`),
    __COBROWSE_BUNDLE__: JSON.stringify(`widget/${cobrowse.file}`),
    __RECORDER_INTEGRITY__: JSON.stringify(recorder.integrity),
    __COBROWSE_INTEGRITY__: JSON.stringify(cobrowse.integrity),
  },
});
for (const [path, why] of [
  ["rrweb", "rrweb"],
  ["src/cobrowse.js", "co-browsing"],
  ["src/view/cobrowse.js", "co-browsing's view"],
  ["src/emoji-table.js", "the emoji table"],
  ["src/i18n/ca.js", "the Catalan strings"],
  ["src/i18n/es.js", "the Spanish strings"],
]) {
  if (chat.inputs.some((input) => input.includes(path))) {
    throw new Error(`build: ${why} ended up in the chat bundle`);
  }
}

await esbuild.build({
  entryPoints: [join(root, "src/loader.js")],
  bundle: true,
  minify: true,
  format: "iife",
  target,
  outfile: join(out, "widget.js"),
  define: {
    __CHAT_BUNDLE__: JSON.stringify(`widget/${chat.file}`),
    __CHAT_INTEGRITY__: JSON.stringify(chat.integrity),
  },
  legalComments: "none",
  logLevel: "warning",
});

// The published types of the `$chat` API, served as /widget/chat.d.ts.
await copyFile(join(root, "types/chat.d.ts"), join(out, "chat.d.ts"));

// Which content-hashed file is which, for the server's pages (agent_console/assets.py).
const manifest = { chat: chat.file, recorder: recorder.file, replay: replay.file, cobrowse: cobrowse.file, preview: preview.file };
await writeFile(join(out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);

// The licences of the third-party code inside the bundles (rrweb and its
// parts, all MIT): one notice per npm package, shipped with the build.
await writeFile(join(out, "THIRD_PARTY_NOTICES.txt"), await notices([recorder, replay, cobrowse, langs, emoji, preview, chat]));

for (const name of (await readdir(out)).sort()) {
  console.log(`widget_build/${name}  ${(await stat(join(out, name))).size} bytes`);
}

/**
 * The third-party notices for the npm packages whose files went into `bundles`.
 * @param {{inputs: string[]}[]} bundles
 * @returns {Promise<string>}
 */
async function notices(bundles) {
  /** @type {Set<string>} */
  const dirs = new Set();
  for (const { inputs } of bundles) {
    for (const input of inputs) {
      const at = input.lastIndexOf("node_modules/");
      if (at < 0) continue;
      const parts = input.slice(at + "node_modules/".length).split("/");
      const name = parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
      dirs.add(join(root, input.slice(0, at), "node_modules", name));
    }
  }
  // Published bundles (rrweb's dist files) inline their own dependencies: the
  // closure of each one's runtime `dependencies` (types-only packages aside).
  const queue = [...dirs];
  while (queue.length > 0) {
    const dir = /** @type {string} */ (queue.pop());
    const pkg = JSON.parse(await readFile(join(dir, "package.json"), "utf8"));
    for (const dep of Object.keys(pkg.dependencies ?? {})) {
      if (dep.startsWith("@types/")) continue;
      const found = await installed(dir, dep);
      if (!dirs.has(found)) {
        dirs.add(found);
        queue.push(found);
      }
    }
  }
  const sections = [];
  for (const dir of [...dirs].sort()) {
    const pkg = JSON.parse(await readFile(join(dir, "package.json"), "utf8"));
    const files = (await readdir(dir)).filter((n) => /^(licen[cs]e|copying)(\.|$)/i.test(n));
    let file = files.length > 0 ? join(dir, files[0]) : "";
    if (!file) {
      // Published without one: the licence of its source repository (licenses/).
      const url = String(pkg.repository?.url ?? pkg.repository ?? "");
      const repo = url.match(/github\.com[/:]([\w.-]+)\/([\w.-]+?)(\.git)?$/);
      if (!repo) throw new Error(`build: ${pkg.name} has no licence file to ship`);
      file = join(root, "licenses", `${repo[1]}-${repo[2]}.txt`);
    }
    const text = await readFile(file, "utf8");
    sections.push(`${pkg.name} ${pkg.version} (${pkg.license})\n\n${text.trim()}\n`);
  }
  const head =
    "The chatserver widget bundles include the following third-party software.\n" +
    "chatserver itself is under the MIT licence (LICENSE).\n";
  return [head, ...sections].join(`\n${"-".repeat(72)}\n\n`);
}

/**
 * Where node would find package `name` required from the package in `dir`.
 * @param {string} dir @param {string} name
 * @returns {Promise<string>}
 */
async function installed(dir, name) {
  for (let at = dir; at !== dirname(at); at = dirname(at)) {
    const candidate = join(at, "node_modules", name);
    try {
      await stat(join(candidate, "package.json"));
      return candidate;
    } catch {
      // not here: one folder up
    }
  }
  throw new Error(`build: ${name} (a dependency of ${dir}) is not installed`);
}
