// Bundles the browser code (client/src) into client/dist with esbuild and copies MediaPipe's wasm files
// next to it, so the page loads nothing from a CDN. Run by `npm install` (prepare) and `npm run build`.
// Entry points: client/src/main.ts (the live page) and client/src/prepare-page.ts (the tracking page
// that `dnp prepare` drives in headless Chromium) and client/src/synth-page.ts (the synthetic presenter that
// `dnp synth` renders with), each only if it exists.
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'client', 'src');
const out = join(root, 'client', 'dist');
const entries = ['main.ts', 'prepare-page.ts', 'synth-page.ts'].filter((f) => existsSync(join(src, f)));

mkdirSync(out, { recursive: true });
if (entries.length > 0) {
  await build({
    entryPoints: entries.map((f) => join(src, f)),
    outdir: out,
    bundle: true,
    format: 'esm',
    target: 'chrome110',
    sourcemap: true,
    minify: process.env.NODE_ENV === 'production',
    logLevel: 'warning',
  });
}
const staticDir = join(root, 'client', 'static');
if (existsSync(staticDir)) cpSync(staticDir, out, { recursive: true });
const wasmSrc = join(root, 'node_modules', '@mediapipe', 'tasks-vision', 'wasm');
const wasmOut = join(out, 'wasm');
mkdirSync(wasmOut, { recursive: true });
for (const f of readdirSync(wasmSrc)) cpSync(join(wasmSrc, f), join(wasmOut, f));
process.stdout.write(`client: built ${entries.join(', ') || 'no entry points'} into client/dist\n`);
