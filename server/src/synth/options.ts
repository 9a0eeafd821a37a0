/** `dnp synth` command-line options: parsed and validated (pure apart from reading the environment and checking files). */
import { existsSync } from 'node:fs';
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

export class SynthUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SynthUsageError';
  }
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

function number(name: string, v: string | undefined, min: number, max: number, int = false): number {
  if (v === undefined || v.startsWith('--')) throw new SynthUsageError(`${name} needs a value`);
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new SynthUsageError(`${name}: '${v}' is not a number`);
  if (int && !Number.isInteger(x)) throw new SynthUsageError(`${name}: '${v}' is not an integer`);
  if (x < min || x > max) throw new SynthUsageError(`${name}: ${v} is outside ${min}..${max}`);
  return x;
}

function text(name: string, v: string | undefined): string {
  if (v === undefined || v.startsWith('--') || v.length === 0) throw new SynthUsageError(`${name} needs a value`);
  return v;
}

export function parseSynthArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): SynthOptions {
  let out: string | null = null;
  let size = 256;
  let seconds = 60, seed = 1, fps = 25, testFraction = 0.2, pngLevel = 1;
  let vectors: string | null = null, motion: string | null = null, model: string | null = null, chromium: string | null = null;
  let force = false, noLandmarks = false;
  let secondsGiven = false, seedGiven = false;
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k] as string;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const inline = eq > 0 ? a.slice(eq + 1) : undefined;
    const value = (): string | undefined => (inline !== undefined ? inline : argv[++k]);
    switch (flag) {
      case '--out': out = text(flag, value()); break;
      case '--size':
        size = number(flag, value(), 0, Infinity, true);
        if (!(SYNTH_SIZES as readonly number[]).includes(size)) throw new SynthUsageError(`--size: ${size} is not one of ${SYNTH_SIZES.join(', ')}`);
        break;
      case '--seconds': seconds = number(flag, value(), 0.2, 3600); secondsGiven = true; break;
      case '--seed': seed = number(flag, value(), 0, 4294967295, true); seedGiven = true; break;
      case '--fps': fps = number(flag, value(), 1, 120); break;
      case '--test-fraction': testFraction = number(flag, value(), 0, 0.9); break;
      case '--png-level': pngLevel = number(flag, value(), 0, 9, true); break;
      case '--vectors': vectors = text(flag, value()); break;
      case '--motion': motion = text(flag, value()); break;
      case '--tracker-model': model = text(flag, value()); break;
      case '--chromium': chromium = text(flag, value()); break;
      case '--no-landmarks': noLandmarks = true; break;
      case '--force': force = true; break;
      default:
        throw new SynthUsageError(a.startsWith('-') ? `unknown option ${a}` : `unexpected argument '${a}'`);
    }
    if (inline !== undefined && ['--force', '--no-landmarks'].includes(flag)) throw new SynthUsageError(`${flag} takes no value`);
  }
  if (out === null) throw new SynthUsageError('--out DIR is required');
  if (vectors !== null && (secondsGiven || seedGiven)) throw new SynthUsageError('--vectors renders the given vectors: leave out --seconds and --seed');
  if (vectors !== null && !existsSync(vectors)) throw new SynthUsageError(`--vectors ${vectors}: no such file`);
  if (motion !== null && !existsSync(motion)) throw new SynthUsageError(`--motion ${motion}: no such file`);
  if (noLandmarks && model !== null) throw new SynthUsageError('--no-landmarks and --tracker-model contradict each other');
  let trackerModel: string | null = null;
  if (!noLandmarks) {
    if (model !== null) {
      if (!existsSync(model)) throw new SynthUsageError(`--tracker-model ${model}: no such file`);
      trackerModel = model;
    } else if (env.DNP_TRACKER_MODEL) {
      if (!existsSync(env.DNP_TRACKER_MODEL)) throw new SynthUsageError(`DNP_TRACKER_MODEL=${env.DNP_TRACKER_MODEL}: no such file`);
      trackerModel = env.DNP_TRACKER_MODEL;
    } else if (existsSync(DEFAULT_TRACKER_MODEL)) {
      trackerModel = DEFAULT_TRACKER_MODEL;
    }
  }
  if (Math.round(seconds * fps) < 1 && vectors === null) throw new SynthUsageError('--seconds × --fps gives no frames');
  return { out, size: size as SynthOptions['size'], seconds, seed, fps, testFraction, vectors, motion, trackerModel, chromium: chromium ?? (env.DNP_CHROMIUM || null), force, pngLevel };
}
