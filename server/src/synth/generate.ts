/**
 * `dnp synth`: driving vectors (generated, or given) → rendered frames of the synthetic presenter →
 * a dataset in the `dnp prepare` format (version 2). Rendering (Chromium) runs one batch ahead of the PNG
 * encoding (FFmpeg, thread pool). With a tracker model, every rendered frame is also tracked by the same
 * FaceTracker page as `dnp prepare` (landmarks.npy; the tracked pose is compared with the driving pose and
 * logged). Written to a temporary folder and renamed into place only when complete.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { BLENDSHAPE_COUNT, blendshapeIndex } from '../../../shared/src/blendshapes.js';
import { DATASET_ARRAYS, DATASET_FORMAT, DATASET_VERSION, LANDMARKS_ARRAY, parseDatasetManifest, type DatasetArrayName, type DatasetManifest } from '../../../shared/src/dataset-schema.js';
import { LANDMARK_COUNT } from '../../../shared/src/face-landmarks.js';
import { GAZE_SIZE, POSE_SIZE } from '../../../shared/src/pose.js';
import { DEFAULT_FRAMING } from '../../../client/src/synth/presenter.js';
import { splitFrames } from '../prepare/gaps.js';
import { JobPool } from '../prepare/job-pool.js';
import { encodeNpy } from '../prepare/npy.js';
import { PngEncoder } from '../prepare/png-writer.js';
import { Progress } from '../prepare/progress.js';
import { TrackingSession, type TrackedFrame } from '../prepare/tracking-server.js';
import { PROJECT_ROOT } from '../project-paths.js';
import { DEFAULT_MOTION_LIBRARY, loadMotionLibrary } from './motion-library.js';
import { readNpyFile } from '../prepare/npy.js';
import type { SynthOptions } from './options.js';
import { SynthRenderer } from './renderer.js';
import { VECTOR_SIZE, generateTrajectory } from './trajectory.js';

const SYNTH_TRACKER_NAME = 'dnp-synth';
const BATCH = 8;

export class SynthInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SynthInputError';
  }
}

export interface PoseAgreement {
  /** Frames where the tracker found the face. */
  found: number;
  /** Pearson correlation of tracked and driving pitch, yaw, roll (NaN when undefined). */
  correlation: [number, number, number];
  /** Median absolute difference of tracked and driving pitch, yaw, roll (rad). */
  medianAbsDiff: [number, number, number];
  /** Mean of tracked − driving pitch, yaw, roll (rad). */
  meanDiff: [number, number, number];
  /** Correlation of tracked and driving values of a few blendshapes and the gaze. */
  controls: Record<string, number>;
}

const CHECKED_CONTROLS: ReadonlyArray<[string, number]> = [
  ['gazeYaw', POSE_SIZE],
  ['gazePitch', POSE_SIZE + 1],
  ...(['jawOpen', 'eyeBlinkLeft', 'eyeBlinkRight', 'mouthSmileLeft', 'mouthSmileRight', 'mouthPucker', 'mouthFunnel', 'browInnerUp', 'browDownLeft', 'eyeWideLeft', 'cheekPuff'] as const).map(
    (n): [string, number] => [n, POSE_SIZE + GAZE_SIZE + blendshapeIndex(n)],
  ),
];

export interface SynthResult {
  dir: string;
  manifest: DatasetManifest;
  frames: number;
  renderMs: number;
  totalMs: number;
  agreement: PoseAgreement | null;
}

/** Loads driving vectors from a .npy file: float32 [N, 60], finite. */
function loadVectors(path: string): Float32Array {
  const a = readNpyFile(path);
  if (!(a.data instanceof Float32Array) || a.shape.length !== 2 || a.shape[1] !== VECTOR_SIZE || (a.shape[0] ?? 0) < 1) {
    throw new SynthInputError(`${path}: expected float32 [N, ${VECTOR_SIZE}] (pose 6, gaze 2, blendshapes 52), got ${a.data instanceof Float32Array ? 'float32' : 'uint8'} [${a.shape.join(', ')}]`);
  }
  for (let i = 0; i < a.data.length; i++) if (!Number.isFinite(a.data[i])) throw new SynthInputError(`${path}: value ${i} is not finite`);
  return a.data;
}

function rgbToRgba(rgb: Buffer): Buffer {
  const n = rgb.length / 3;
  const out = Buffer.alloc(n * 4, 255);
  for (let i = 0; i < n; i++) {
    out[i * 4] = rgb[i * 3] as number;
    out[i * 4 + 1] = rgb[i * 3 + 1] as number;
    out[i * 4 + 2] = rgb[i * 3 + 2] as number;
  }
  return out;
}

function correlation(a: number[], b: number[]): number {
  const n = a.length;
  if (n < 2) return NaN;
  const ma = a.reduce((s, x) => s + x, 0) / n, mb = b.reduce((s, x) => s + x, 0) / n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = (a[i] as number) - ma, db = (b[i] as number) - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : NaN;
}

/** How well the tracker, run on the rendered frames, recovers the driving head angles. */
function poseAgreement(tracked: readonly TrackedFrame[], vectors: Float32Array): PoseAgreement {
  const t: number[][] = [[], [], []], d: number[][] = [[], [], []];
  tracked.forEach((f, i) => {
    if (!f.found || !f.pose) return;
    for (let k = 0; k < 3; k++) {
      (t[k] as number[]).push(f.pose[k] as number);
      (d[k] as number[]).push(vectors[i * VECTOR_SIZE + k] as number);
    }
  });
  const med = (k: number): number => {
    const diffs = (t[k] as number[]).map((x, i) => Math.abs(x - ((d[k] as number[])[i] as number))).sort((a, b) => a - b);
    return diffs.length ? (diffs[diffs.length >> 1] as number) : NaN;
  };
  const r = (k: number): number => correlation(t[k] as number[], d[k] as number[]);
  const bias = (k: number): number => {
    const a = t[k] as number[], b = d[k] as number[];
    return a.length ? a.reduce((s, x, i) => s + x - (b[i] as number), 0) / a.length : NaN;
  };
  const controls: Record<string, number> = {};
  for (const [name, k] of CHECKED_CONTROLS) {
    const tv: number[] = [], dv: number[] = [];
    tracked.forEach((f, i) => {
      if (!f.found || !f.gaze || !f.blendshapes) return;
      tv.push(k < POSE_SIZE + GAZE_SIZE ? (f.gaze[k - POSE_SIZE] as number) : (f.blendshapes[k - POSE_SIZE - GAZE_SIZE] as number));
      dv.push(vectors[i * VECTOR_SIZE + k] as number);
    });
    controls[name] = +correlation(tv, dv).toFixed(3);
  }
  return { found: (t[0] as number[]).length, correlation: [r(0), r(1), r(2)], medianAbsDiff: [med(0), med(1), med(2)], meanDiff: [bias(0), bias(1), bias(2)], controls };
}

function readVersion(path: string): string {
  const v = (JSON.parse(readFileSync(path, 'utf8')) as { version?: unknown }).version;
  return typeof v === 'string' ? v : 'unknown';
}

export async function synthDataset(opts: SynthOptions, log: Logger, signal?: AbortSignal): Promise<SynthResult> {
  const t0 = performance.now();
  const out = resolve(opts.out);
  if (existsSync(out) && !opts.force) throw new SynthInputError(`${opts.out} already exists (use --force to replace it)`);
  const motionPath = opts.motion ?? DEFAULT_MOTION_LIBRARY;
  let vectors: Float32Array;
  let sourceFile: string;
  const hash = createHash('sha256');
  if (opts.vectors) {
    vectors = loadVectors(opts.vectors);
    sourceFile = basename(opts.vectors);
    hash.update(readFileSync(opts.vectors));
  } else {
    const lib = loadMotionLibrary(motionPath);
    const frames = Math.max(1, Math.round(opts.seconds * opts.fps));
    vectors = generateTrajectory(lib, { frames, fps: opts.fps, seed: opts.seed, framing: DEFAULT_FRAMING });
    sourceFile = `synthetic presenter, seed ${opts.seed}`;
    hash.update(readFileSync(motionPath)).update(JSON.stringify({ seed: opts.seed, fps: opts.fps, frames }));
  }
  const n = vectors.length / VECTOR_SIZE;
  const size = opts.size;
  log.info({ frames: n, fps: opts.fps, size, seed: opts.vectors ? null : opts.seed, vectors: opts.vectors, landmarks: opts.trackerModel !== null }, 'dnp synth');

  const tmp = join(dirname(out), `.${basename(out)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(join(tmp, 'frames'), { recursive: true });
  let renderer: SynthRenderer | null = null;
  let tracker: TrackingSession | null = null;
  const encoders: PngEncoder[] = [];
  const onAbort = (): void => tracker?.abort(new Error('interrupted'));
  signal?.addEventListener('abort', onAbort);
  try {
    renderer = await SynthRenderer.start({ size, handleSignals: signal === undefined, ...(opts.chromium ? { chromiumPath: opts.chromium } : {}) });
    let modelSha256 = '';
    if (opts.trackerModel) {
      const model = readFileSync(opts.trackerModel);
      modelSha256 = createHash('sha256').update(model).digest('hex');
      tracker = await TrackingSession.start({
        model,
        clientDist: join(PROJECT_ROOT, 'client', 'dist'),
        ...(opts.chromium ? { chromiumPath: opts.chromium } : {}),
        onPageLog: (t) => log.debug({ page: t }, 'tracking page'),
        handleSignals: signal === undefined,
      });
    }
    encoders.push(await PngEncoder.create(size, size, opts.pngLevel), await PngEncoder.create(size, size, opts.pngLevel));
    const writes = new JobPool(4);
    const bar = new Progress('rendering', n);
    let written = 0;
    let renderMs = 0;
    const active = renderer;
    const renderBatch = (start: number): Promise<{ start: number; frames: Buffer[] }> => {
      const count = Math.min(BATCH, n - start);
      const r0 = performance.now();
      return active.render(vectors.subarray(start * VECTOR_SIZE, (start + count) * VECTOR_SIZE), count).then((frames) => {
        renderMs += performance.now() - r0;
        return { start, frames };
      });
    };
    let next: Promise<{ start: number; frames: Buffer[] }> | null = renderBatch(0);
    next.catch(() => undefined);
    while (next) {
      const cur: { start: number; frames: Buffer[] } = await next;
      if (signal?.aborted) throw new Error('interrupted');
      const following = cur.start + cur.frames.length;
      next = following < n ? renderBatch(following) : null;
      next?.catch(() => undefined);
      // each encoder takes one frame at a time; the two run side by side on the thread pool
      const chains: Array<Promise<unknown>> = [Promise.resolve(), Promise.resolve()];
      const pngs = cur.frames.map((px, k) => {
        const e = encoders[k % 2] as PngEncoder;
        const p = (chains[k % 2] as Promise<unknown>).then(() => e.encode(px));
        p.catch(() => undefined);
        chains[k % 2] = p;
        return p;
      });
      for (const [k, px] of cur.frames.entries()) {
        const i = cur.start + k;
        if (tracker) await tracker.push(i, rgbToRgba(px), size, size, Math.round((i * 1000) / opts.fps));
        const data = await (pngs[k] as Promise<Buffer>);
        await writes.add(async () => {
          await writeFile(join(tmp, 'frames', `${String(i).padStart(6, '0')}.png`), data);
          bar.update(++written);
        });
      }
    }
    await writes.drain();
    bar.finish();
    let landmarks = new Float32Array(n * LANDMARK_COUNT * 2).fill(NaN);
    let agreement: PoseAgreement | null = null;
    if (tracker) {
      tracker.end();
      const tracked = await tracker.results();
      await tracker.close();
      tracker = null;
      landmarks = new Float32Array(n * LANDMARK_COUNT * 2).fill(NaN);
      tracked.forEach((t, i) => {
        if (!t.found || !t.landmarks) return;
        for (let k = 0; k < LANDMARK_COUNT * 2; k++) landmarks[i * LANDMARK_COUNT * 2 + k] = (t.landmarks[k] as number) * size;
      });
      agreement = poseAgreement(tracked, vectors);
      log.info({ agreement }, 'tracker on the rendered frames vs the driving pose');
    }
    await renderer.close();
    renderer = null;

    // ---- arrays and manifest -------------------------------------------------------------------------
    const pose = new Float32Array(n * POSE_SIZE), gaze = new Float32Array(n * GAZE_SIZE), blend = new Float32Array(n * BLENDSHAPE_COUNT);
    for (let i = 0; i < n; i++) {
      const o = i * VECTOR_SIZE;
      pose.set(vectors.subarray(o, o + POSE_SIZE), i * POSE_SIZE);
      gaze.set(vectors.subarray(o + POSE_SIZE, o + POSE_SIZE + GAZE_SIZE), i * GAZE_SIZE);
      blend.set(vectors.subarray(o + POSE_SIZE + GAZE_SIZE, o + VECTOR_SIZE), i * BLENDSHAPE_COUNT);
    }
    const data: Record<DatasetArrayName, Float32Array | Uint8Array> = {
      pose,
      gaze,
      blendshapes: blend,
      faceFound: new Uint8Array(n).fill(1),
      interpolated: new Uint8Array(n),
      valid: new Uint8Array(n).fill(1),
    };
    const arrays = {} as DatasetManifest['arrays'];
    for (const [name, spec] of Object.entries(DATASET_ARRAYS) as Array<[DatasetArrayName, (typeof DATASET_ARRAYS)[DatasetArrayName]]>) {
      const shape = [n, ...spec.inner];
      await writeFile(join(tmp, spec.file), encodeNpy(data[name], shape));
      arrays[name] = { file: spec.file, dtype: spec.dtype, shape };
    }
    const lmShape = [n, ...LANDMARKS_ARRAY.inner];
    await writeFile(join(tmp, LANDMARKS_ARRAY.file), encodeNpy(landmarks, lmShape));
    arrays.landmarks = { file: LANDMARKS_ARRAY.file, dtype: LANDMARKS_ARRAY.dtype, shape: lmShape };
    const tool = `dnp-live ${readVersion(join(PROJECT_ROOT, 'package.json'))}`;
    const manifest: DatasetManifest = {
      format: DATASET_FORMAT,
      version: DATASET_VERSION,
      source: { file: sourceFile, sha256: hash.digest('hex'), width: size, height: size, rotation: 0, fps: opts.fps, variableFrameRate: false, startSeconds: 0, durationSeconds: n / opts.fps },
      fps: opts.fps,
      frameCount: n,
      size,
      crop: { x: 0, y: 0, size },
      // the arrays are the driving vectors themselves (motion tracked by MediaPipe FaceLandmarker); the model hash is the landmark tracker's
      tracker: { name: SYNTH_TRACKER_NAME, version: tool, modelSha256 },
      frames: { dir: 'frames', pattern: '%06d.png' },
      arrays,
      audio: null,
      split: splitFrames(n, opts.testFraction),
      created: new Date().toISOString(),
      tool,
    };
    const checked = parseDatasetManifest(JSON.parse(JSON.stringify(manifest)) as unknown);
    await writeFile(join(tmp, 'dataset.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    if (signal?.aborted) throw new Error('interrupted');
    if (existsSync(out)) {
      const old = `${tmp}.old`;
      await rename(out, old);
      await rename(tmp, out);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, out);
    }
    const totalMs = performance.now() - t0;
    log.info({ dir: out, frames: n, renderMsPerFrame: +(renderMs / n).toFixed(1), framesPerSecond: +(n / (totalMs / 1000)).toFixed(2) }, 'dataset written');
    return { dir: out, manifest: checked, frames: n, renderMs, totalMs, agreement };
  } finally {
    signal?.removeEventListener('abort', onAbort);
    for (const e of encoders) e.close();
    await tracker?.close();
    await renderer?.close();
    await rm(tmp, { recursive: true, force: true });
  }
}
