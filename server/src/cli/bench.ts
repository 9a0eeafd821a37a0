/**
 * `dnp bench` (also `npm run bench`): latency, render/encode time and bandwidth of the live server, with one
 * caller per avatar size (run-bench.ts) or several callers on one avatar (callers-bench.ts, `--callers N|max`);
 * `dnp bench render`: the renderer alone (render-bench.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { formatCallersTable, runCallersBench, type CallersBenchOptions } from '../bench/callers-bench.js';
import { formatTable, runBench, type BenchOptions } from '../bench/run-bench.js';
import { formatRenderTable, runRenderBench, type RenderBenchOptions } from '../bench/render-bench.js';
import { UNTRAINED_PRESETS, type UntrainedPreset } from '../bench/untrained-avatar.js';
import { createLogger } from '../log.js';
import { RENDER_DEVICES, type RenderDevice } from '../render/ort-session.js';
import { VIDEO_CODECS, type VideoCodecName } from '../../../shared/src/signaling.js';

// The project's test data lives beside the repository in ../shared/data.
const DEFAULT_DRIVING = fileURLToPath(new URL('../../../../shared/data/portrait-man-talking.tracker-reference.json', import.meta.url));

export const help = `Usage: dnp bench [options]
       dnp bench --callers N|max [options]
       dnp bench render [options]

dnp bench: starts a server on 127.0.0.1 (child process) with an untrained avatar made on the fly at each size
(or --avatar DIR), drives it from a Node WebRTC caller, and prints latency, render/encode time, frame rate,
server CPU and bandwidth. With --callers N: N callers at once on one avatar (per caller fps received, latency,
render and encode ms, and the aggregate); --callers max (or --ramp): callers join one by one, each step measured,
until one receives fewer than --stop-fps frames/s; prints the sessions held at >= --hold-fps.
Not a test: numbers depend on the machine and its load.

Options:
  --sizes LIST      256,512      untrained avatar sizes (square, multiples of 64), comma-separated
  --size N                       one size (the same as --sizes N; --callers takes one size, default 256)
  --preset P        warp         untrained avatar model: warp (variant W, the default model) | cpu | paper
  --avatar DIR                   bench this avatar folder (avatar.json + model) instead of an untrained one
  --callers N|max                N simultaneous callers (1..64) on one avatar, or a ramp ('max')
  --ramp                         the same as --callers max
  --max-callers N   16           ramp: most callers tried
  --stop-fps F      24           ramp: stop when any caller receives fewer frames/s
  --hold-fps F      25           ramp: a step holds when every caller receives at least this
  --seconds N       15 (ramp 5)  measured seconds (per size; ramp: per step), after the warm-up
  --warmup N        3 (ramp 2)   warm-up seconds (ramp: after each join), not measured
  --rate HZ         30           driving frames per second per caller
  --fps N           25           the untrained avatar's frame rate
  --codec C         vp8          vp8 | h264
  --threads N       1            ONNX Runtime threads in the server (0 = one per core); also --server-threads
  --driving FILE    ${DEFAULT_DRIVING}
                                 MediaPipe tracker output to replay (synthetic motion when missing)
  --json                         print one JSON object instead of the table
  --help

dnp bench render: the renderer alone (no WebRTC, no server): loads the model as the server does (render worker,
same ONNX Runtime session options, device fallback to the CPU with a logged reason) and times model runs per
batch size: batch and frame ms (median, p90), frames/s, and GFLOP/s from avatar.json training.flopsPerFrame.

Options:
  --avatar DIR                   an avatar folder; or an untrained one:
  --preset P        warp         warp | cpu | paper
  --size N          256          untrained avatar size (even, 16..2048)
  --batches LIST    1,8          batch sizes (1..256), comma-separated
  --runs N          20           measured model runs per batch size (after one warm-up run)
  --threads N       1            ONNX Runtime intra-op threads (0 = one per core)
  --device D        cpu          ${RENDER_DEVICES.join(' | ')}
  --json                         print one JSON object instead of the table
`;

class UsageError extends Error {}

function fail(msg: string): never {
  throw new UsageError(msg);
}

function intArg(name: string, v: string | undefined, min: number, max: number): number {
  if (v === undefined || !/^\d+$/.test(v)) fail(`--${name} needs a whole number`);
  const n = Number(v);
  if (n < min || n > max) fail(`--${name}: ${n} is outside ${min}..${max}`);
  return n;
}

function numArg(name: string, v: string | undefined, min: number, max: number): number {
  if (v === undefined || !/^\d+(\.\d+)?$/.test(v)) fail(`--${name} needs a number`);
  const n = Number(v);
  if (n < min || n > max) fail(`--${name}: ${n} is outside ${min}..${max}`);
  return n;
}

function listArg(name: string, v: string | undefined, min: number, max: number): number[] {
  if (!v) fail(`--${name} needs a comma-separated list`);
  const l = v.split(',').map((s) => intArg(name, s.trim(), min, max));
  if (new Set(l).size !== l.length) fail(`--${name}: ${v} repeats a value`);
  return l;
}

function presetArg(v: string | undefined): UntrainedPreset {
  if (!UNTRAINED_PRESETS.includes(v as UntrainedPreset)) fail(`--preset: '${String(v)}' is not one of ${UNTRAINED_PRESETS.join(', ')}`);
  return v as UntrainedPreset;
}

function avatarArg(v: string | undefined): string {
  if (!v) fail('--avatar needs a folder');
  if (!existsSync(v) || !statSync(v).isDirectory()) fail(`--avatar: ${v} is not a folder`);
  if (!existsSync(join(v, 'avatar.json'))) fail(`--avatar: ${v} holds no avatar.json (an avatar folder holds avatar.json and its model)`);
  return v;
}

export type LiveBenchArgs =
  | { mode: 'sizes'; opts: Omit<BenchOptions, 'onProgress'>; json: boolean }
  | { mode: 'callers'; opts: Omit<CallersBenchOptions, 'onProgress'>; json: boolean };

export function parseBenchArgs(argv: string[]): LiveBenchArgs {
  const opts: Omit<BenchOptions, 'onProgress'> = { sizes: [256, 512], preset: 'warp', avatarDir: null, seconds: 15, warmupSeconds: 3, rateHz: 30, fps: 25, codec: 'vp8', threads: 1, drivingFile: DEFAULT_DRIVING };
  let json = false;
  let callers: number | 'ramp' | null = null;
  let maxCallers = 16;
  let stopFps = 24;
  let holdFps = 25;
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const v = argv[i + 1];
    given.add(a);
    switch (a) {
      case '--json':
        json = true;
        continue;
      case '--ramp':
        callers = 'ramp';
        continue;
      case '--sizes':
      case '--size':
        opts.sizes = listArg(a.slice(2), v, 64, 1024);
        for (const s of opts.sizes) if (s % 64 !== 0) fail(`${a}: ${s} is not a multiple of 64`);
        break;
      case '--preset':
        opts.preset = presetArg(v);
        break;
      case '--avatar':
        opts.avatarDir = avatarArg(v);
        break;
      case '--callers':
        callers = v === 'max' ? 'ramp' : intArg('callers', v, 1, 64);
        break;
      case '--max-callers':
        maxCallers = intArg('max-callers', v, 1, 64);
        break;
      case '--stop-fps':
        stopFps = numArg('stop-fps', v, 0.1, 120);
        break;
      case '--hold-fps':
        holdFps = numArg('hold-fps', v, 0.1, 120);
        break;
      case '--seconds':
        opts.seconds = intArg('seconds', v, 1, 600);
        break;
      case '--warmup':
        opts.warmupSeconds = intArg('warmup', v, 0, 60);
        break;
      case '--rate':
        opts.rateHz = intArg('rate', v, 1, 120);
        break;
      case '--fps':
        opts.fps = intArg('fps', v, 1, 120);
        break;
      case '--threads':
      case '--server-threads':
        opts.threads = intArg(a.slice(2), v, 0, 64);
        break;
      case '--codec':
        if (!VIDEO_CODECS.includes(v as VideoCodecName)) fail(`--codec: '${String(v)}' is not one of ${VIDEO_CODECS.join(', ')}`);
        opts.codec = v as VideoCodecName;
        break;
      case '--driving':
        if (!v) fail('--driving needs a file');
        opts.drivingFile = v;
        break;
      default:
        fail(`unknown option ${a} (see --help)`);
    }
    i++;
  }
  if (opts.avatarDir) {
    for (const o of ['--sizes', '--size', '--preset', '--fps']) if (given.has(o)) fail(`${o} is for untrained avatars; not with --avatar`);
  }
  if (callers === null) {
    for (const o of ['--max-callers', '--stop-fps', '--hold-fps']) if (given.has(o)) fail(`${o} needs --callers max (or --ramp)`);
    return { mode: 'sizes', opts, json };
  }
  if (callers !== 'ramp') for (const o of ['--max-callers', '--stop-fps', '--hold-fps']) if (given.has(o)) fail(`${o} is for the ramp (--callers max)`);
  if (stopFps > holdFps) fail(`--stop-fps ${stopFps} is above --hold-fps ${holdFps}`);
  const sizeGiven = given.has('--sizes') || given.has('--size');
  if (sizeGiven && opts.sizes.length !== 1) fail('--callers benches one avatar: give one size (--size N)');
  const size = sizeGiven ? (opts.sizes[0] as number) : 256;
  const ramp = callers === 'ramp';
  return {
    mode: 'callers',
    json,
    opts: {
      avatar: opts.avatarDir ? { kind: 'folder', dir: opts.avatarDir } : { kind: 'untrained', preset: opts.preset, size, fps: opts.fps },
      callers,
      maxCallers,
      seconds: given.has('--seconds') ? opts.seconds : ramp ? 5 : 15,
      warmupSeconds: given.has('--warmup') ? opts.warmupSeconds : ramp ? 2 : 3,
      rateHz: opts.rateHz,
      codec: opts.codec,
      threads: opts.threads,
      drivingFile: opts.drivingFile,
      stopFps,
      holdFps,
    },
  };
}

export function parseRenderArgs(argv: string[]): { opts: Omit<RenderBenchOptions, 'onProgress'>; json: boolean } {
  let avatarDir: string | null = null;
  let preset: UntrainedPreset = 'warp';
  let size = 256;
  let batches = [1, 8];
  let runs = 20;
  let threads = 1;
  let device: RenderDevice = 'cpu';
  let json = false;
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const v = argv[i + 1];
    given.add(a);
    switch (a) {
      case '--json':
        json = true;
        continue;
      case '--avatar':
        avatarDir = avatarArg(v);
        break;
      case '--preset':
        preset = presetArg(v);
        break;
      case '--size':
        size = intArg('size', v, 16, 2048);
        if (size % 2) fail(`--size: ${size} is not even`);
        break;
      case '--batches':
        batches = listArg('batches', v, 1, 256);
        break;
      case '--runs':
        runs = intArg('runs', v, 1, 10_000);
        break;
      case '--threads':
        threads = intArg('threads', v, 0, 256);
        break;
      case '--device':
        if (!RENDER_DEVICES.includes(v as RenderDevice)) fail(`--device: '${String(v)}' is not one of ${RENDER_DEVICES.join(', ')}`);
        device = v as RenderDevice;
        break;
      default:
        fail(`unknown option ${a} (see dnp bench --help)`);
    }
    i++;
  }
  if (avatarDir) for (const o of ['--preset', '--size']) if (given.has(o)) fail(`${o} is for an untrained avatar; not with --avatar`);
  return {
    json,
    opts: { avatar: avatarDir ? { kind: 'folder', dir: avatarDir } : { kind: 'untrained', preset, size, fps: 25 }, batches, runs, threads, device },
  };
}

/** stderr, without the renderer's "falling behind real time" warnings (expected when timing large batches). */
const benchLogStream = new Writable({
  write(chunk: Buffer, _enc, done): void {
    const line = chunk.toString();
    if (!line.includes('falling behind real time')) process.stderr.write(line);
    done();
  },
});

export async function run(argv: string[]): Promise<number> {
  const progress = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  try {
    if (argv[0] === 'render') {
      const p = parseRenderArgs(argv.slice(1));
      const log = createLogger('warn', benchLogStream);
      const r = await runRenderBench({ ...p.opts, onProgress: progress }, log);
      process.stdout.write(p.json ? `${JSON.stringify(r)}\n` : formatRenderTable(r));
      return 0;
    }
    const p = parseBenchArgs(argv);
    if (p.mode === 'callers') {
      const r = await runCallersBench({ ...p.opts, onProgress: progress });
      process.stdout.write(p.json ? `${JSON.stringify(r)}\n` : formatCallersTable(r));
    } else {
      const r = await runBench({ ...p.opts, onProgress: progress });
      process.stdout.write(p.json ? `${JSON.stringify(r)}\n` : formatTable(r));
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`dnp bench: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
