// SPDX-License-Identifier: GPL-2.0-or-later
// Builds the Cockpit page: node build.mjs OUTDIR writes OUTDIR/index.js and OUTDIR/index.css (esbuild:
// React and PatternFly bundled, minified). Called by meson (client/cockpit/meson.build); the packages come
// from node_modules next to this file (npm ci, as tests/install-deps.sh does).
import { build } from "esbuild";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = process.argv[2];
if (!outdir) {
    console.error("usage: node build.mjs OUTDIR");
    process.exit(2);
}

await build({
    entryPoints: { index: path.join(here, "src", "index.jsx") },
    outdir,
    bundle: true,
    minify: true,
    target: ["es2020"],
    format: "iife",
    legalComments: "eof",
    define: { "process.env.NODE_ENV": '"production"' },
    // PatternFly's fonts and pictures: the fonts are Cockpit's own (src/page.css points at them), the
    // pictures are not used by this page.
    loader: { ".woff": "empty", ".woff2": "empty", ".ttf": "empty", ".otf": "empty", ".eot": "empty",
              ".svg": "empty", ".png": "empty", ".jpg": "empty", ".gif": "empty" },
    // Cockpit serves its fonts at /cockpit/static/fonts/: left as they are in src/page.css.
    external: ["../../static/*"],
    jsx: "automatic",
    logLevel: "warning",
});
