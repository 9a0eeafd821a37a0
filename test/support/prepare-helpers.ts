/** Helpers for the `dnp prepare` tests: an NPY reader, the CLI as a child process, client build check. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DATA = join(ROOT, '..', 'shared', 'data');
export const MODEL = join(DATA, 'face_landmarker.task');

export interface Npy {
  descr: string;
  shape: number[];
  data: Float32Array | Uint8Array;
}

/** Reads a .npy v1.0 file written as '<f4' or '|u1', C order. */
export function readNpy(path: string): Npy {
  const b = readFileSync(path);
  if (b.toString('latin1', 0, 6) !== '\x93NUMPY' || b[6] !== 1) throw new Error(`${path}: not NPY v1`);
  const hlen = b.readUInt16LE(8);
  const header = b.toString('latin1', 10, 10 + hlen);
  const descr = /'descr': '([^']+)'/.exec(header)?.[1];
  const shapeText = /'shape': \(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined || !header.includes("'fortran_order': False")) throw new Error(`${path}: bad header ${header}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const body = b.subarray(10 + hlen);
  const count = shape.reduce((a, c) => a * c, 1);
  if (descr === '<f4') {
    const ab = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
    const data = new Float32Array(ab);
    if (data.length !== count) throw new Error(`${path}: ${data.length} values for shape ${shape}`);
    return { descr, shape, data };
  }
  if (descr === '|u1') {
    if (body.length !== count) throw new Error(`${path}: ${body.length} values for shape ${shape}`);
    return { descr, shape, data: new Uint8Array(body) };
  }
  throw new Error(`${path}: unexpected dtype ${descr}`);
}

/** Builds client/dist when the tracking page is missing or older than its sources. */
export function ensureClientBuilt(): void {
  const out = join(ROOT, 'client', 'dist', 'prepare-page.js');
  const sources = [join(ROOT, 'client', 'src', 'prepare-page.ts'), join(ROOT, 'client', 'src', 'tracking', 'face-tracker.ts')];
  const stale = !existsSync(out) || sources.some((s) => statSync(s).mtimeMs > statSync(out).mtimeMs);
  if (stale) {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-client.js')], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`client build failed: ${r.stderr}`);
  }
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  stdout: string;
}

/** Runs `node bin/dnp.js prepare ARGS` and collects its output. `onStderr` may act on progress (e.g. send SIGINT). */
export function runPrepareCli(args: string[], opts: { env?: NodeJS.ProcessEnv; onStderr?: (text: string, kill: (s: NodeJS.Signals) => void) => void } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'dnp.js'), 'prepare', ...args], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(stderr, (s) => child.kill(s));
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr, stdout }));
  });
}
