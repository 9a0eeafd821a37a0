/** `dnp bench` (also `npm run bench`): latency, render/encode time and bandwidth of the live server. */
import { fileURLToPath } from 'node:url';
import { formatTable, runBench, type BenchOptions } from '../bench/run-bench.js';
import { VIDEO_CODECS, type VideoCodecName } from '../../../shared/src/signaling.js';

// The project's test data lives beside the repository in ../shared/data.
const DEFAULT_DRIVING = fileURLToPath(new URL('../../../../shared/data/portrait-man-talking.tracker-reference.json', import.meta.url));

export const help = `Usage: dnp bench [options]

Starts a server on 127.0.0.1 (child process) with an untrained CPU avatar made on the fly at each size,
drives it from a Node WebRTC caller, and prints latency, render/encode time, frame rate, server CPU and
bandwidth. Not a test: numbers depend on the machine and its load.

Options:
  --sizes LIST      256,512      avatar sizes (square), comma-separated
  --seconds N       15           measured seconds per size (after the warm-up)
  --warmup N        3            warm-up seconds per size (not measured)
  --rate HZ         30           driving frames per second
  --fps N           25           the avatar's frame rate
  --codec C         vp8          vp8 | h264
  --threads N       1            ONNX Runtime threads in the server (0 = one per core)
  --driving FILE    ${DEFAULT_DRIVING}
                                 MediaPipe tracker output to replay (synthetic motion when missing)
  --json                         print one JSON object instead of the table
  --help
`;

function fail(msg: string): never {
  throw new Error(msg);
}

function intArg(name: string, v: string | undefined, min: number, max: number): number {
  if (v === undefined || !/^\d+$/.test(v)) fail(`--${name} needs a whole number`);
  const n = Number(v);
  if (n < min || n > max) fail(`--${name}: ${n} is outside ${min}..${max}`);
  return n;
}

export function parseBenchArgs(argv: string[]): { opts: Omit<BenchOptions, 'onProgress'>; json: boolean } {
  const opts: Omit<BenchOptions, 'onProgress'> = { sizes: [256, 512], seconds: 15, warmupSeconds: 3, rateHz: 30, fps: 25, codec: 'vp8', threads: 1, drivingFile: DEFAULT_DRIVING };
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const v = argv[i + 1];
    switch (a) {
      case '--json':
        json = true;
        continue;
      case '--sizes':
        opts.sizes = (v ?? '').split(',').map((s) => intArg('sizes', s.trim(), 64, 1024));
        for (const s of opts.sizes) if (s % 64 !== 0) fail(`--sizes: ${s} is not a multiple of 64`);
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
        opts.threads = intArg('threads', v, 0, 64);
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
  return { opts, json };
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseBenchArgs(argv);
  } catch (err) {
    process.stderr.write(`dnp bench: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const result = await runBench({ ...parsed.opts, onProgress: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(parsed.json ? `${JSON.stringify(result)}\n` : formatTable(result));
  return 0;
}
