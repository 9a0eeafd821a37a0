/** `dnp prepare` command-line options: parsed and validated (pure apart from reading the environment). */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { OFFICIAL_TRACKER_MODEL_URL, TRACKER_MODEL_SHA256 } from '../../../shared/src/tracker-model.js';

import { DEFAULT_TRACKER_MODEL, PROJECT_ROOT } from '../project-paths.js';

export { DEFAULT_TRACKER_MODEL, PROJECT_ROOT };
export const SIZES = [256, 512, 1024] as const;

export interface PrepareOptions {
  input: string;
  out: string;
  size: (typeof SIZES)[number];
  /** Output frame rate; null = the source's. */
  fps: number | null;
  startSeconds: number;
  maxSeconds: number | null;
  testFraction: number;
  trackerModel: string;
  chromium: string | null;
  force: boolean;
  /** Longest gap without a face (seconds) that is interpolated. */
  maxGapSeconds: number;
  /** zlib level for the PNG frames (1 = fastest, 9 = smallest). */
  pngLevel: number;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const PREPARE_HELP = `Usage: dnp prepare INPUT --out DIR [options]

Turns a video of one person (fixed camera, a minute or more) into a training dataset
(format: shared/src/dataset-schema.ts, docs/prepare.md), tracked with the same FaceLandmarker
as the live client.

Options:
  --out DIR              dataset folder to create (required; refused if it exists, see --force)
  --size N               frame size in pixels: 256, 512 or 1024 (default 256)
  --fps N                output frame rate, 1-120 (default: the source's; variable frame rate is
                         resampled to a constant rate)
  --start S              skip the first S seconds (default 0)
  --max-seconds S        use at most S seconds from --start (default: all)
  --test-fraction F      last fraction of the clip kept for testing, 0-0.9 (default 0.2)
  --tracker-model PATH   FaceLandmarker model (face_landmarker.task); default $DNP_TRACKER_MODEL,
                         else ${DEFAULT_TRACKER_MODEL}
  --chromium PATH        Chromium binary (default $DNP_CHROMIUM, else /usr/bin/chromium)
  --max-gap S            interpolate gaps without a face up to S seconds (default 0.5)
  --png-level N          PNG zlib level 0-9 (default 1: fastest, still lossless)
  --force                replace an existing DIR
  -h, --help             this help

Environment: DNP_TRACKER_MODEL, DNP_CHROMIUM, LOG_LEVEL (default info; logs are JSON lines on stderr).
`;

function number(name: string, v: string | undefined, min: number, max: number): number {
  if (v === undefined || v.startsWith('--')) throw new UsageError(`${name} needs a value`);
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new UsageError(`${name}: '${v}' is not a number`);
  if (x < min || x > max) throw new UsageError(`${name}: ${v} is outside ${min}..${max}`);
  return x;
}

export function parsePrepareArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): PrepareOptions {
  const positional: string[] = [];
  const o: Partial<PrepareOptions> & { force: boolean } = { force: false };
  let size: number = 256;
  let model: string | undefined;
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k] as string;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const inline = eq > 0 ? a.slice(eq + 1) : undefined;
    const value = (): string | undefined => (inline !== undefined ? inline : argv[++k]);
    switch (flag) {
      case '--out': {
        const v = value();
        if (!v) throw new UsageError('--out needs a folder');
        o.out = v;
        break;
      }
      case '--size':
        size = number('--size', value(), 1, 4096);
        if (!(SIZES as readonly number[]).includes(size)) throw new UsageError(`--size must be one of ${SIZES.join(', ')}`);
        break;
      case '--fps':
        o.fps = number('--fps', value(), 1, 120);
        break;
      case '--start':
        o.startSeconds = number('--start', value(), 0, 1e7);
        break;
      case '--max-seconds':
        o.maxSeconds = number('--max-seconds', value(), 0.001, 1e7);
        break;
      case '--test-fraction':
        o.testFraction = number('--test-fraction', value(), 0, 0.9);
        break;
      case '--max-gap':
        o.maxGapSeconds = number('--max-gap', value(), 0, 10);
        break;
      case '--png-level':
        o.pngLevel = number('--png-level', value(), 0, 9);
        if (!Number.isInteger(o.pngLevel)) throw new UsageError('--png-level must be an integer');
        break;
      case '--tracker-model': {
        const v = value();
        if (!v) throw new UsageError('--tracker-model needs a path');
        model = v;
        break;
      }
      case '--chromium': {
        const v = value();
        if (!v) throw new UsageError('--chromium needs a path');
        o.chromium = v;
        break;
      }
      case '--force':
        o.force = true;
        break;
      default:
        if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${a}`);
        positional.push(a);
    }
  }
  if (positional.length !== 1) throw new UsageError(positional.length === 0 ? 'missing INPUT video' : `expected one INPUT, got ${positional.length}`);
  if (!o.out) throw new UsageError('missing --out DIR');
  const fromEnv = env.DNP_TRACKER_MODEL;
  const trackerModel = model ?? (fromEnv && fromEnv.length > 0 ? fromEnv : existsSync(DEFAULT_TRACKER_MODEL) ? DEFAULT_TRACKER_MODEL : undefined);
  if (!trackerModel) {
    throw new UsageError(
      `no FaceLandmarker model configured: pass --tracker-model PATH or set DNP_TRACKER_MODEL, or place face_landmarker.task at ${DEFAULT_TRACKER_MODEL} ` +
        `(MediaPipe model "face_landmarker/float16/1", sha256 ${TRACKER_MODEL_SHA256}; download it with: ` +
        `mkdir -p ${dirname(DEFAULT_TRACKER_MODEL)} && curl -L -o ${DEFAULT_TRACKER_MODEL} ${OFFICIAL_TRACKER_MODEL_URL})`,
    );
  }
  return {
    input: positional[0] as string,
    out: o.out,
    size: size as PrepareOptions['size'],
    fps: o.fps ?? null,
    startSeconds: o.startSeconds ?? 0,
    maxSeconds: o.maxSeconds ?? null,
    testFraction: o.testFraction ?? 0.2,
    trackerModel,
    chromium: o.chromium ?? null,
    force: o.force,
    maxGapSeconds: o.maxGapSeconds ?? 0.5,
    pngLevel: o.pngLevel ?? 1,
  };
}
