/**
 * The encode bench of the GPU bundle's encoder part (`npm run bundle:gpu -- --encoder`, scripts/bundle-gpu.js):
 * `dnp bench encode` (encode-bench.ts) with its options, bundled with esbuild beside node-av, for GPU hosts without
 * Node or a registry: how many sessions the host's CPU cores encode while a GPU renders. `--out FILE` also writes
 * the results as JSON.
 *
 *   node encode-bench.mjs --avatar DIR [dnp bench encode options] [--out FILE]
 */
import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { encodeHelp, parseEncodeArgs } from '../cli/bench-encode.js';
import { UsageError } from '../cli/args.js';
import { createLogger } from '../log.js';
import { formatEncodeTable, runEncodeBench } from './encode-bench.js';

export async function gpuBundleEncodeMain(argv: string[]): Promise<number> {
  const at = argv.indexOf('--out');
  const out = at >= 0 ? argv[at + 1] : undefined;
  if (at >= 0 && (out === undefined || out.startsWith('--'))) {
    process.stderr.write('encode-bench: --out needs a file name\n');
    return 2;
  }
  const rest = at >= 0 ? [...argv.slice(0, at), ...argv.slice(at + 2)] : argv;
  if (rest.includes('--help')) {
    process.stdout.write(`usage: node encode-bench.mjs [options] [--out FILE]\n\n${encodeHelp}`);
    return 0;
  }
  try {
    const p = parseEncodeArgs(rest);
    const log = createLogger('warn', new Writable({ write: (c: Buffer, _e, done) => (process.stderr.write(c), done()) }));
    const r = await runEncodeBench({ ...p.opts, onProgress: (line) => process.stderr.write(`${line}\n`) }, log);
    process.stdout.write(p.json ? `${JSON.stringify(r)}\n` : formatEncodeTable(r));
    if (out) writeFileSync(out, `${JSON.stringify(r, null, 1)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`encode-bench: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
