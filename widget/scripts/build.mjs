// Build the widget into build/: the content-hashed chat bundle first, then the
// loader (widget.js) with the bundle's file name baked in. Both minified,
// IIFE scripts (classic scripts: no CORS needed when the shop's origin differs
// from the chat server's). Run: npm run build.

import { copyFile, mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "build");
// ES2020 syntax: every browser with shadow DOM and constructable-free fallbacks.
const target = ["es2020"];

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });

// The recorder (rrweb and our uploads) first: its own bundle, loaded by the
// chat bundle only in tabs that record.
const recorder = await esbuild.build({
  entryPoints: { recorder: join(root, "src/recorder.js") },
  bundle: true,
  minify: true,
  format: "iife",
  target,
  outdir: out,
  entryNames: "[name].[hash]",
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});
const recorderBundle = Object.keys(recorder.metafile.outputs)
  .map((path) => path.split("/").pop())
  .find((name) => name && /^recorder\.[A-Z0-9]+\.js$/.test(name));
if (!recorderBundle) throw new Error("build: no recorder bundle in the output");

// The replay view (rrweb's replayer; replayer.js) for the console: its own
// bundle, never loaded by shops' pages.
const replay = await esbuild.build({
  entryPoints: { replay: join(root, "src/replay.js") },
  bundle: true,
  minify: true,
  format: "iife",
  target,
  outdir: out,
  entryNames: "[name].[hash]",
  metafile: true,
  loader: { ".css": "text" },
  legalComments: "none",
  logLevel: "warning",
});
const replayBundle = Object.keys(replay.metafile.outputs)
  .map((path) => path.split("/").pop())
  .find((name) => name && /^replay\.[A-Z0-9]+\.js$/.test(name));
if (!replayBundle) throw new Error("build: no replay bundle in the output");
// A stable name too, for pages that cannot read the manifest (cached briefly).
await copyFile(join(out, replayBundle), join(out, "replay.js"));

const chat = await esbuild.build({
  entryPoints: { chat: join(root, "src/chat.js") },
  bundle: true,
  minify: true,
  format: "iife",
  target,
  outdir: out,
  entryNames: "[name].[hash]",
  metafile: true,
  define: { __RECORDER_BUNDLE__: JSON.stringify(`widget/${recorderBundle}`) },
  legalComments: "none",
  logLevel: "warning",
});
if (Object.keys(chat.metafile.inputs).some((path) => path.includes("rrweb"))) {
  throw new Error("build: rrweb ended up in the chat bundle");
}
const bundle = Object.keys(chat.metafile.outputs)
  .map((path) => path.split("/").pop())
  .find((name) => name && /^chat\.[A-Z0-9]+\.js$/.test(name));
if (!bundle) throw new Error("build: no chat bundle in the output");

await esbuild.build({
  entryPoints: [join(root, "src/loader.js")],
  bundle: true,
  minify: true,
  format: "iife",
  target,
  outfile: join(out, "widget.js"),
  define: { __CHAT_BUNDLE__: JSON.stringify(`widget/${bundle}`) },
  legalComments: "none",
  logLevel: "warning",
});

// Which content-hashed file is which, for the server's pages (chatserver/widget_assets.py).
const manifest = { chat: bundle, recorder: recorderBundle, replay: replayBundle };
await writeFile(join(out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);

for (const name of (await readdir(out)).sort()) {
  console.log(`build/${name}  ${(await stat(join(out, name))).size} bytes`);
}
