/**
 * Idle motion: what moves an avatar's head, eyes and eyelids when no camera drives it (a microphone-only
 * caller). It is the avatar's own tracked motion — head pose, gaze and the eye blendshapes (blinks, looks,
 * squints) of its training dataset — stored with the avatar as idle-motion.json, a one-clip document in the
 * motion-library format (server/src/synth/motion-library.ts; written by `dnp idle-motion`). Playback runs the
 * clip forwards and backwards (no jump at the ends), interpolating between frames. Without the file, or with a
 * bad one, a gentle generated motion is used instead and the log says so.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BLENDSHAPE_COUNT, BLENDSHAPE_NAMES, blendshapeIndex } from '../../../shared/src/blendshapes.js';
import type { DrivingValues } from '../../../shared/src/driving-values.js';
import { arr, num, obj } from '../../../shared/src/json-check.js';
import { GAZE_SIZE, POSE_SIZE } from '../../../shared/src/pose.js';
import type { EvalDataset } from '../eval/dataset-reader.js';
import type { Logger } from '../log.js';
import { encodeMotionLibrary, parseMotionLibrary, type MotionClip } from '../synth/motion-library.js';

export const IDLE_MOTION_FILE = 'idle-motion.json';

/** The blendshapes idle motion drives: everything of the eyes (the rest stays as the caller or the voice sets it). */
const IDLE_BLENDSHAPES: readonly number[] = BLENDSHAPE_NAMES.map((n, i) => (n.startsWith('eye') ? i : -1)).filter((i) => i >= 0);

export interface IdleMotionSource {
  /** Writes the pose, the gaze and the eye blendshapes at time `tMs` into `out`. */
  sample(tMs: number, out: DrivingValues): void;
  readonly kind: 'avatar' | 'generated' | 'still';
  readonly seconds: number;
}

/** Plays a tracked clip forwards and backwards; translation = the clip's mean + its stored offsets. */
export class ClipIdleMotion implements IdleMotionSource {
  readonly kind = 'avatar' as const;
  readonly seconds: number;
  constructor(
    private readonly clip: MotionClip,
    private readonly meanTranslation: readonly [number, number, number],
  ) {
    this.seconds = clip.frames / clip.fps;
  }

  sample(tMs: number, out: DrivingValues): void {
    const { clip } = this;
    const period = 2 * (clip.frames - 1);
    let f = ((tMs / 1000) * clip.fps) % period;
    if (f < 0) f += period;
    if (f > clip.frames - 1) f = period - f;
    const i0 = Math.floor(f);
    const i1 = Math.min(clip.frames - 1, i0 + 1);
    const w = f - i0;
    const lerp = (a: Float32Array, n: number, k: number): number => (a[i0 * n + k] as number) * (1 - w) + (a[i1 * n + k] as number) * w;
    for (let k = 0; k < POSE_SIZE; k++) out.pose[k] = lerp(clip.pose, POSE_SIZE, k) + (k >= 3 ? (this.meanTranslation[k - 3] as number) : 0);
    for (let k = 0; k < GAZE_SIZE; k++) out.gaze[k] = lerp(clip.gaze, GAZE_SIZE, k);
    for (const k of IDLE_BLENDSHAPES) out.blendshapes[k] = lerp(clip.blendshapes, BLENDSHAPE_COUNT, k);
  }
}

/**
 * A gentle generated motion around the avatar's neutral (used when the avatar has no idle-motion.json): slow sway
 * of a degree or two at unrelated frequencies, small eye drift, and a blink every 2.5-5 s.
 */
export class GeneratedIdleMotion implements IdleMotionSource {
  readonly kind = 'generated' as const;
  readonly seconds = Infinity;
  private readonly blinkL = blendshapeIndex('eyeBlinkLeft');
  private readonly blinkR = blendshapeIndex('eyeBlinkRight');
  constructor(private readonly neutral: DrivingValues) {}

  sample(tMs: number, out: DrivingValues): void {
    const t = tMs / 1000;
    const deg = Math.PI / 180;
    const n = this.neutral;
    out.pose.set(n.pose);
    out.pose[0] = (n.pose[0] as number) + 1.5 * deg * Math.sin(2 * Math.PI * 0.11 * t) + 0.5 * deg * Math.sin(2 * Math.PI * 0.37 * t);
    out.pose[1] = (n.pose[1] as number) + 2.0 * deg * Math.sin(2 * Math.PI * 0.07 * t + 1) + 0.6 * deg * Math.sin(2 * Math.PI * 0.23 * t);
    out.pose[2] = (n.pose[2] as number) + 1.0 * deg * Math.sin(2 * Math.PI * 0.05 * t + 2);
    out.gaze[0] = (n.gaze[0] as number) + 2 * deg * Math.sin(2 * Math.PI * 0.13 * t);
    out.gaze[1] = (n.gaze[1] as number) + 1 * deg * Math.sin(2 * Math.PI * 0.09 * t + 0.5);
    for (const k of IDLE_BLENDSHAPES) out.blendshapes[k] = n.blendshapes[k] as number;
    const blink = blinkAt(t);
    out.blendshapes[this.blinkL] = Math.max(n.blendshapes[this.blinkL] as number, blink);
    out.blendshapes[this.blinkR] = Math.max(n.blendshapes[this.blinkR] as number, blink);
  }
}

/** The neutral head held still with open eyes (measurements and tests: only the voice changes the picture). */
export class StillIdleMotion implements IdleMotionSource {
  readonly kind = 'still' as const;
  readonly seconds = Infinity;
  constructor(private readonly neutral: DrivingValues) {}

  sample(_tMs: number, out: DrivingValues): void {
    out.pose.set(this.neutral.pose);
    out.gaze.set(this.neutral.gaze);
    for (const k of IDLE_BLENDSHAPES) out.blendshapes[k] = this.neutral.blendshapes[k] as number;
  }
}

/** Eyelid closure (0..1) of a deterministic blink train: one 200 ms blink in each 2.5-5 s interval. */
export function blinkAt(t: number): number {
  const k = Math.floor(t / 3.75);
  const jitter = ((Math.sin(k * 12.9898) * 43758.5453) % 1 + 1) % 1; // a fixed pseudo-random number per interval
  const start = k * 3.75 + jitter * 2.5;
  const x = (t - start) / 0.2;
  return x >= 0 && x <= 1 ? Math.sin(Math.PI * x) : 0;
}

/** Reads and validates an idle-motion document (throws an Error naming the file and the problem). */
export function parseIdleMotion(v: unknown, where: string): ClipIdleMotion {
  const lib = parseMotionLibrary(v, where);
  const clip = lib.clips[0];
  if (lib.clips.length !== 1 || !clip) throw new Error(`${where}: an idle motion holds exactly one clip`);
  const c = obj(arr(obj(v, where).clips, `${where}: clips`)[0], `${where}: clips[0]`);
  const mt = arr(c.meanTranslation, `${where}: clips[0].meanTranslation`, { len: 3 }).map((x, i) => num(x, `${where}: clips[0].meanTranslation[${i}]`, { min: -400, max: 400 }));
  for (let i = 0; i < clip.frames * POSE_SIZE; i++) {
    if (i % POSE_SIZE < 3 && Math.abs(clip.pose[i] as number) > Math.PI / 2) throw new Error(`${where}: head angle out of range at frame ${Math.floor(i / POSE_SIZE)}`);
  }
  return new ClipIdleMotion(clip, [mt[0] as number, mt[1] as number, mt[2] as number]);
}

/** The avatar's idle motion from DIR/idle-motion.json, or the generated fallback (logged either way). */
export function loadIdleMotion(dir: string, neutral: DrivingValues, log: Logger): IdleMotionSource {
  const file = join(dir, IDLE_MOTION_FILE);
  if (!existsSync(file)) {
    log.info({ file }, 'avatar has no idle motion: a generated one is used for microphone-only callers (dnp idle-motion writes it)');
    return new GeneratedIdleMotion(neutral);
  }
  try {
    const m = parseIdleMotion(JSON.parse(readFileSync(file, 'utf8')) as unknown, file);
    log.info({ file, seconds: Math.round(m.seconds) }, 'idle motion from the avatar\'s own data');
    return m;
  } catch (err) {
    log.warn({ file, err: err instanceof Error ? err.message : String(err) }, 'bad idle motion: a generated one is used instead');
    return new GeneratedIdleMotion(neutral);
  }
}

/**
 * An idle-motion document from a dataset: the first `seconds` of its training frames, invalid frames replaced
 * by the previous valid one, head pose smoothed over 3 frames (tracker jitter).
 */
export function extractIdleMotion(ds: EvalDataset, seconds: number): unknown {
  const frames = Math.min(ds.trainIdx.length, Math.round(seconds * ds.fps));
  if (frames < 2 * ds.fps) throw new Error(`${ds.dir}: only ${frames} usable training frames (at least 2 s are needed)`);
  const first = ds.trainIdx[0] as number;
  const stride = 8 + BLENDSHAPE_COUNT;
  const pose = new Float32Array(frames * POSE_SIZE);
  const gaze = new Float32Array(frames * GAZE_SIZE);
  const blendshapes = new Float32Array(frames * BLENDSHAPE_COUNT);
  let src = first;
  for (let f = 0; f < frames; f++) {
    const i = first + f;
    if (i < ds.n && ds.valid[i] === 1) src = i;
    const c = ds.cond.subarray(src * stride, (src + 1) * stride);
    pose.set(c.subarray(0, POSE_SIZE), f * POSE_SIZE);
    gaze.set(c.subarray(POSE_SIZE, 8), f * GAZE_SIZE);
    blendshapes.set(c.subarray(8), f * BLENDSHAPE_COUNT);
  }
  const smooth = pose.slice();
  for (let f = 1; f + 1 < frames; f++) {
    for (let k = 0; k < POSE_SIZE; k++) smooth[f * POSE_SIZE + k] = ((pose[(f - 1) * POSE_SIZE + k] as number) + (pose[f * POSE_SIZE + k] as number) + (pose[(f + 1) * POSE_SIZE + k] as number)) / 3;
  }
  const mean = [0, 1, 2].map((k) => {
    let s = 0;
    for (let f = 0; f < frames; f++) s += smooth[f * POSE_SIZE + 3 + k] as number;
    return s / frames;
  }) as [number, number, number];
  for (let f = 0; f < frames; f++) for (let k = 0; k < 3; k++) smooth[f * POSE_SIZE + 3 + k] = (smooth[f * POSE_SIZE + 3 + k] as number) - (mean[k] as number);
  const note = `idle motion of ${ds.dir.split('/').filter(Boolean).pop() ?? ds.dir}: ${frames} training frames at ${ds.fps} fps (head pose, gaze, eye blendshapes are used)`;
  return encodeMotionLibrary([{ name: 'idle', fps: ds.fps, frames, pose: smooth, gaze, blendshapes, meanTranslation: mean }], note);
}
