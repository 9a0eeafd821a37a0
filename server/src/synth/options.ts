/** `dnp synth` command-line options: parsed and validated (pure apart from reading the environment and checking files). */
import { existsSync } from 'node:fs';
import { existingFile, flagOptions, intOneOf, parseCommandLine, usageError, valueOptions } from '../cli/args.js';
import { DEFAULT_TRACKER_MODEL } from '../project-paths.js';

export const SYNTH_SIZES = [256, 512] as const;

export interface SynthOptions {
  out: string;
  size: (typeof SYNTH_SIZES)[number];
  seconds: number;
  seed: number;
  fps: number;
  testFraction: number;
  /** Render these driving vectors (.npy float32 [N, 60]) instead of generating a trajectory. */
  vectors: string | null;
  /** Motion library (default: the one shipped in server/src/synth/motion/). */
  motion: string | null;
  /** Tracker model for the landmarks; null = no landmarks (NaN-filled). */
  trackerModel: string | null;
  chromium: string | null;
  force: boolean;
  pngLevel: number;
}

export const SYNTH_HELP = `Usage: dnp synth --out DIR [options]

Generates a training dataset of a synthetic presenter (a stylised 3D head rendered with WebGL2 in
headless Chromium), in the \`dnp prepare\` format (shared/src/dataset-schema.ts, version 2). The driving
vectors it renders are stored as the tracked arrays: pose.npy, gaze.npy, blendshapes.npy. The motion is
human: tracked from real talking clips (server/src/synth/motion/), re-timed, mirrored, mixed, with
excursions that take every control through its range (docs/synth.md).

Options:
  --out DIR              dataset folder to create (required; refused if it exists, see --force)
  --size N               frame size in pixels: 256 or 512 (default 256)
  --seconds N            length in seconds, 0.2-3600 (default 60)
  --seed S               random seed, an integer 0-4294967295 (default 1); same seed, same dataset
  --fps N                frame rate, 1-120 (default 25)
  --test-fraction F      last fraction of the frames kept for testing, 0-0.9 (default 0.2)
  --vectors FILE.npy     render these driving vectors instead (float32 [N, 60]: pose 6, gaze 2,
                         blendshapes 52); --seconds and --seed are then not used
  --motion FILE.json     motion library (default: the shipped one)
  --tracker-model PATH   FaceLandmarker model used to track the rendered frames for landmarks.npy
                         (default $DNP_TRACKER_MODEL, else ${DEFAULT_TRACKER_MODEL} if present)
  --no-landmarks         do not track the frames: landmarks.npy is NaN-filled
  --chromium PATH        Chromium binary (default $DNP_CHROMIUM, else /usr/bin/chromium)
  --png-level N          PNG zlib level 0-9 (default 1)
  --force                replace an existing DIR
  -h, --help             this help

Environment: DNP_TRACKER_MODEL, DNP_CHROMIUM, LOG_LEVEL (default info; logs are JSON lines on stderr).
`;

const OPTIONS = { ...valueOptions('out', 'size', 'seconds', 'seed', 'fps', 'test-fraction', 'png-level', 'vectors', 'motion', 'tracker-model', 'chromium'), ...flagOptions('no-landmarks', 'force') };

export function parseSynthArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): SynthOptions {
  const cl = parseCommandLine(argv, OPTIONS);
  const out = cl.str('out');
  const sizeText = cl.str('size');
  const size = sizeText === undefined ? 256 : intOneOf('size', sizeText, SYNTH_SIZES);
  const seconds = cl.num('seconds', 0.2, 3600, 60);
  const seed = cl.int('seed', 0, 4294967295, 1);
  const fps = cl.num('fps', 1, 120, 25);
  const testFraction = cl.num('test-fraction', 0, 0.9, 0.2);
  const pngLevel = cl.int('png-level', 0, 9, 1);
  const vectors = cl.str('vectors') ?? null;
  const motion = cl.str('motion') ?? null;
  const model = cl.str('tracker-model') ?? null;
  const noLandmarks = cl.flag('no-landmarks');
  if (!out) usageError('--out DIR is required');
  if (vectors !== null && (cl.given('seconds') || cl.given('seed'))) usageError('--vectors renders the given vectors: leave out --seconds and --seed');
  if (vectors !== null) existingFile('vectors', vectors);
  if (motion !== null) existingFile('motion', motion);
  if (noLandmarks && model !== null) usageError('--no-landmarks and --tracker-model contradict each other');
  let trackerModel: string | null = null;
  if (!noLandmarks) {
    if (model !== null) {
      trackerModel = existingFile('tracker-model', model);
    } else if (env.DNP_TRACKER_MODEL) {
      if (!existsSync(env.DNP_TRACKER_MODEL)) usageError(`DNP_TRACKER_MODEL=${env.DNP_TRACKER_MODEL}: no such file`);
      trackerModel = env.DNP_TRACKER_MODEL;
    } else if (existsSync(DEFAULT_TRACKER_MODEL)) {
      trackerModel = DEFAULT_TRACKER_MODEL;
    }
  }
  if (Math.round(seconds * fps) < 1 && vectors === null) usageError('--seconds × --fps gives no frames');
  return { out, size, seconds, seed, fps, testFraction, vectors, motion, trackerModel, chromium: cl.str('chromium') ?? (env.DNP_CHROMIUM || null), force: cl.flag('force'), pngLevel };
}
