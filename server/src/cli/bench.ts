/**
 * `dnp bench` (also `npm run bench`): latency, render/encode time and bandwidth of the live server, with one
 * caller per avatar size (run-bench.ts) or several callers on one avatar (callers-bench.ts, `--callers N|max`);
 * `dnp bench render`: the renderer alone (render-bench.ts); `dnp bench encode`: the encoders alone (encode-bench.ts).
 */
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { formatCallersTable, runCallersBench, type CallersBenchOptions } from '../bench/callers-bench.js';
import { formatTable, runBench, type BenchOptions } from '../bench/run-bench.js';
import { formatEncodeTable, runEncodeBench } from '../bench/encode-bench.js';
import { formatRenderTable, runRenderBench, type RenderBenchOptions } from '../bench/render-bench.js';
import { UNTRAINED_PRESETS } from '../bench/untrained-avatar.js';
import { createLogger } from '../log.js';
import { RENDER_DEVICES } from '../render/ort-session.js';
import { VIDEO_CODECS } from '../../../shared/src/signaling.js';
import { avatarDirArg, flagOptions, int, intList, parseCommandLine, UsageError, usageError, valueOptions } from './args.js';
import { encodeHelp, parseEncodeArgs } from './bench-encode.js';

// The project's test data lives beside the repository in ../shared/data.
const DEFAULT_DRIVING = fileURLToPath(new URL('../../../../shared/data/portrait-man-talking.tracker-reference.json', import.meta.url));

export const help = `Usage: dnp bench [options]
       dnp bench --callers N|max [options]
       dnp bench render [options]
       dnp bench encode [options]

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
  --max-fps F                    the server's --max-fps: serve the avatar at this frame rate at most
  --vp8-cpu-used N               the server's --vp8-cpu-used: libvpx speed for VP8, 0..16 (server default 8)
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

${encodeHelp}`;

function sizesArg(name: string, v: string): number[] {
  const sizes = intList(name, v, 64, 1024);
  for (const s of sizes) if (s % 64 !== 0) usageError(`--${name}: ${s} is not a multiple of 64`);
  return sizes;
}


const LIVE_OPTIONS = { ...valueOptions('sizes', 'size', 'preset', 'avatar', 'callers', 'max-callers', 'stop-fps', 'hold-fps', 'seconds', 'warmup', 'rate', 'fps', 'max-fps', 'vp8-cpu-used', 'codec', 'threads', 'server-threads', 'driving'), ...flagOptions('json', 'ramp') };

export type LiveBenchArgs =
  | { mode: 'sizes'; opts: Omit<BenchOptions, 'onProgress'>; json: boolean }
  | { mode: 'callers'; opts: Omit<CallersBenchOptions, 'onProgress'>; json: boolean };

export function parseBenchArgs(argv: string[]): LiveBenchArgs {
  const cl = parseCommandLine(argv, LIVE_OPTIONS);
  const sizeName = cl.given('size') ? 'size' : 'sizes';
  const sizeText = cl.str(sizeName);
  const avatarText = cl.str('avatar');
  const callersText = cl.str('callers');
  const opts: Omit<BenchOptions, 'onProgress'> = {
    sizes: sizeText === undefined ? [256, 512] : sizesArg(sizeName, sizeText),
    preset: cl.oneOf('preset', UNTRAINED_PRESETS, 'warp'),
    avatarDir: avatarText === undefined ? null : avatarDirArg('avatar', avatarText),
    seconds: cl.int('seconds', 1, 600, 15),
    warmupSeconds: cl.int('warmup', 0, 60, 3),
    rateHz: cl.int('rate', 1, 120, 30),
    fps: cl.int('fps', 1, 120, 25),
    codec: cl.oneOf('codec', VIDEO_CODECS, 'vp8'),
    threads: cl.int('server-threads', 0, 64) ?? cl.int('threads', 0, 64, 1),
    drivingFile: cl.str('driving') ?? DEFAULT_DRIVING,
    maxFps: cl.num('max-fps', 1, 240) ?? null,
    vp8CpuUsed: cl.int('vp8-cpu-used', 0, 16) ?? null,
  };
  const json = cl.flag('json');
  const callers = cl.flag('ramp') || callersText === 'max' ? 'ramp' : callersText === undefined ? null : int('callers', callersText, 1, 64);
  const rampOnly = ['max-callers', 'stop-fps', 'hold-fps'] as const;
  if (opts.avatarDir) {
    for (const o of ['sizes', 'size', 'preset', 'fps'] as const) if (cl.given(o)) usageError(`--${o} is for untrained avatars; not with --avatar`);
  }
  if (callers === null) {
    for (const o of rampOnly) if (cl.given(o)) usageError(`--${o} needs --callers max (or --ramp)`);
    return { mode: 'sizes', opts, json };
  }
  if (callers !== 'ramp') for (const o of rampOnly) if (cl.given(o)) usageError(`--${o} is for the ramp (--callers max)`);
  const stopFps = cl.num('stop-fps', 0.1, 120, 24);
  const holdFps = cl.num('hold-fps', 0.1, 120, 25);
  if (stopFps > holdFps) usageError(`--stop-fps ${stopFps} is above --hold-fps ${holdFps}`);
  if (sizeText !== undefined && opts.sizes.length !== 1) usageError('--callers benches one avatar: give one size (--size N)');
  const ramp = callers === 'ramp';
  return {
    mode: 'callers',
    json,
    opts: {
      avatar: opts.avatarDir ? { kind: 'folder', dir: opts.avatarDir } : { kind: 'untrained', preset: opts.preset, size: sizeText !== undefined ? (opts.sizes[0] as number) : 256, fps: opts.fps },
      callers,
      maxCallers: cl.int('max-callers', 1, 64, 16),
      seconds: cl.given('seconds') ? opts.seconds : ramp ? 5 : 15,
      warmupSeconds: cl.given('warmup') ? opts.warmupSeconds : ramp ? 2 : 3,
      rateHz: opts.rateHz,
      codec: opts.codec,
      threads: opts.threads,
      drivingFile: opts.drivingFile,
      maxFps: opts.maxFps,
      vp8CpuUsed: opts.vp8CpuUsed,
      stopFps,
      holdFps,
    },
  };
}

const RENDER_OPTIONS = { ...valueOptions('avatar', 'preset', 'size', 'batches', 'runs', 'threads', 'device'), ...flagOptions('json') };

export function parseRenderArgs(argv: string[]): { opts: Omit<RenderBenchOptions, 'onProgress'>; json: boolean } {
  const cl = parseCommandLine(argv, RENDER_OPTIONS);
  const avatarText = cl.str('avatar');
  const preset = cl.oneOf('preset', UNTRAINED_PRESETS, 'warp');
  const size = cl.int('size', 16, 2048, 256);
  if (size % 2) usageError(`--size: ${size} is not even`);
  const batches = cl.ints('batches', 1, 256) ?? [1, 8];
  const runs = cl.int('runs', 1, 10_000, 20);
  const threads = cl.int('threads', 0, 256, 1);
  const device = cl.oneOf('device', RENDER_DEVICES, 'cpu');
  if (avatarText !== undefined) for (const o of ['preset', 'size'] as const) if (cl.given(o)) usageError(`--${o} is for an untrained avatar; not with --avatar`);
  return {
    json: cl.flag('json'),
    opts: { avatar: avatarText !== undefined ? { kind: 'folder', dir: avatarDirArg('avatar', avatarText) } : { kind: 'untrained', preset, size, fps: 25 }, batches, runs, threads, device },
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

/** A bench's result on stdout: one JSON object, or its table. */
function print<R>(json: boolean, r: R, table: (r: R) => string): void {
  process.stdout.write(json ? `${JSON.stringify(r)}\n` : table(r));
}

export async function run(argv: string[]): Promise<number> {
  const progress = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  try {
    if (argv[0] === 'render' || argv[0] === 'encode') {
      const log = createLogger('warn', benchLogStream);
      if (argv[0] === 'render') {
        const p = parseRenderArgs(argv.slice(1));
        print(p.json, await runRenderBench({ ...p.opts, onProgress: progress }, log), formatRenderTable);
      } else {
        const p = parseEncodeArgs(argv.slice(1));
        print(p.json, await runEncodeBench({ ...p.opts, onProgress: progress }, log), formatEncodeTable);
      }
      return 0;
    }
    const p = parseBenchArgs(argv);
    if (p.mode === 'callers') print(p.json, await runCallersBench({ ...p.opts, onProgress: progress }), formatCallersTable);
    else print(p.json, await runBench({ ...p.opts, onProgress: progress }), formatTable);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`dnp bench: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
