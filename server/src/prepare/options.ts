/** `dnp prepare` command-line options: parsed and validated (pure apart from reading the environment). */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { OFFICIAL_TRACKER_MODEL_URL, TRACKER_MODEL_SHA256 } from '../../../shared/src/tracker-model.js';
import { flagOptions, intOneOf, parseCommandLine, usageError, valueOptions } from '../cli/args.js';

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

const OPTIONS = { ...valueOptions('out', 'size', 'fps', 'start', 'max-seconds', 'test-fraction', 'max-gap', 'png-level', 'tracker-model', 'chromium'), ...flagOptions('force') };

export function parsePrepareArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): PrepareOptions {
  const cl = parseCommandLine(argv, OPTIONS, { maxPositionals: Infinity });
  const positional = cl.positionals;
  if (positional.length !== 1) usageError(positional.length === 0 ? 'missing INPUT video' : `expected one INPUT, got ${positional.length}`);
  const out = cl.str('out');
  if (!out) usageError('missing --out DIR');
  const size = cl.str('size');
  const o = {
    input: positional[0] as string,
    out,
    size: size === undefined ? 256 : intOneOf('size', size, SIZES),
    fps: cl.num('fps', 1, 120) ?? null,
    startSeconds: cl.num('start', 0, 1e7, 0),
    maxSeconds: cl.num('max-seconds', 0.001, 1e7) ?? null,
    testFraction: cl.num('test-fraction', 0, 0.9, 0.2),
    chromium: cl.str('chromium') || null,
    force: cl.flag('force'),
    maxGapSeconds: cl.num('max-gap', 0, 10, 0.5),
    pngLevel: cl.int('png-level', 0, 9, 1),
  };
  const model = cl.str('tracker-model') || undefined;
  const fromEnv = env.DNP_TRACKER_MODEL;
  const trackerModel = model ?? (fromEnv && fromEnv.length > 0 ? fromEnv : existsSync(DEFAULT_TRACKER_MODEL) ? DEFAULT_TRACKER_MODEL : undefined);
  if (!trackerModel) {
    usageError(
      `no FaceLandmarker model configured: pass --tracker-model PATH or set DNP_TRACKER_MODEL, or place face_landmarker.task at ${DEFAULT_TRACKER_MODEL} ` +
        `(MediaPipe model "face_landmarker/float16/1", sha256 ${TRACKER_MODEL_SHA256}; download it with: ` +
        `mkdir -p ${dirname(DEFAULT_TRACKER_MODEL)} && curl -L -o ${DEFAULT_TRACKER_MODEL} ${OFFICIAL_TRACKER_MODEL_URL})`,
    );
  }
  return { ...o, trackerModel };
}
