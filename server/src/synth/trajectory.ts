/**
 * Driving trajectories for `dnp synth` (recipe in docs/synth.md). Human motion from the motion library,
 * re-timed and recombined, plus excursions that push every control through its range:
 *  1. Three independent streams (head pose; eyes and brows; mouth, jaw and cheeks), each a chain of segments
 *     of 2-6 s cut from random clips at random starts, time-warped (speed 0.75-1.35 with a smooth wobble),
 *     mirrored half the time (left/right blendshapes swapped, yaw, roll and tx negated), and cross-faded
 *     over 0.3 s. The three streams are combined frame by frame, which mixes sequences.
 *  2. Excursions: at random times (about 1.4 a second) one control is driven smoothly (attack, hold, release,
 *     0.25-3 s depending on the control) to a random target: head yaw/pitch/roll/translation, gaze, blinks, eyeWide, the brows,
 *     jawOpen, mouthClose, smile, frown, stretch, pucker, funnel, cheekPuff, upper/lower lip.
 *  3. A slow drift of the head angles; gaze is recomputed from the final eyeLook* blendshapes with the
 *     live mapping (shared/src/tracker-mapping.ts), everything clamped to its valid range.
 * Deterministic for a given seed and library.
 */
import { BLENDSHAPE_COUNT, BLENDSHAPE_NAMES, blendshapeIndex, type BlendshapeName } from '../../../shared/src/blendshapes.js';
import { GAZE_MAX_PITCH, GAZE_MAX_YAW, GAZE_SIZE, POSE_SIZE } from '../../../shared/src/pose.js';
import { gazeFromBlendshapes } from '../../../shared/src/tracker-mapping.js';
import { DEFAULT_FRAMING, type Framing } from '../../../client/src/synth/presenter.js';
import type { MotionClip, MotionLibrary } from './motion-library.js';
import { Rng } from './rng.js';

export const VECTOR_SIZE = POSE_SIZE + GAZE_SIZE + BLENDSHAPE_COUNT;
const BS0 = POSE_SIZE + GAZE_SIZE;

export interface TrajectoryOptions {
  frames: number;
  fps: number;
  seed: number;
  framing?: Framing;
  /** Excursions per second (default 1.4). */
  excursionRate?: number;
}

/** Blendshape index permutation that swaps every Left/Right pair. */
export const MIRROR_BLENDSHAPES: readonly number[] = BLENDSHAPE_NAMES.map((n) => {
  const m = n.includes('Left') ? n.replace('Left', 'Right') : n.includes('Right') ? n.replace('Right', 'Left') : n;
  return blendshapeIndex(m as BlendshapeName);
});

const EYE_GROUP = new Set(BLENDSHAPE_NAMES.filter((n) => n.startsWith('eye') || n.startsWith('brow')).map((n) => blendshapeIndex(n)));

/** Mirrors one driving vector in place: the subject's left and right swap. */
export function mirrorVector(v: Float32Array, o = 0): void {
  v[o + 1] = -(v[o + 1] as number); // yaw
  v[o + 2] = -(v[o + 2] as number); // roll
  v[o + 3] = -(v[o + 3] as number); // tx (relative)
  v[o + POSE_SIZE] = -(v[o + POSE_SIZE] as number); // gaze yaw
  const b = v.slice(o + BS0, o + BS0 + BLENDSHAPE_COUNT);
  for (let i = 0; i < BLENDSHAPE_COUNT; i++) v[o + BS0 + i] = b[MIRROR_BLENDSHAPES[i] as number] as number;
}

function sampleClip(c: MotionClip, t: number, out: Float32Array): void {
  const f = Math.max(0, Math.min(c.frames - 1, t));
  const i0 = Math.floor(f), i1 = Math.min(c.frames - 1, i0 + 1), w = f - i0;
  const mix = (a: Float32Array, n: number, off: number): void => {
    for (let k = 0; k < n; k++) out[off + k] = (a[i0 * n + k] as number) * (1 - w) + (a[i1 * n + k] as number) * w;
  };
  mix(c.pose, POSE_SIZE, 0);
  mix(c.gaze, GAZE_SIZE, POSE_SIZE);
  mix(c.blendshapes, BLENDSHAPE_COUNT, BS0);
}

/** One stream: a chain of re-timed, maybe mirrored clip segments, cross-faded; [frames × 60], translation relative. */
function stream(lib: MotionLibrary, rng: Rng, frames: number, fps: number): Float32Array {
  const out = new Float32Array(frames * VECTOR_SIZE);
  const total = lib.clips.reduce((a, c) => a + c.frames, 0);
  const fade = Math.max(1, Math.round(0.3 * fps));
  const a = new Float32Array(VECTOR_SIZE), b = new Float32Array(VECTOR_SIZE);
  interface Seg { clip: MotionClip; start: number; from: number; speed: number; wobble: number; phase: number; mirror: boolean }
  const segs: Seg[] = [];
  for (let s = 0; s < frames; ) {
    let r = rng.next() * total;
    let clip = lib.clips[0] as MotionClip;
    for (const c of lib.clips) {
      clip = c;
      if ((r -= c.frames) < 0) break;
    }
    const dur = Math.round(rng.uniform(2, 6) * fps);
    const speed = rng.uniform(0.75, 1.35);
    const span = ((dur + fade) / fps) * speed * clip.fps;
    segs.push({ clip, start: s, from: rng.uniform(0, Math.max(0, clip.frames - 1 - span)), speed, wobble: rng.uniform(0, 0.07), phase: rng.uniform(0, 2 * Math.PI), mirror: rng.chance(0.5) });
    s += dur;
  }
  const at = (g: Seg, f: number, v: Float32Array): void => {
    const tau = (f - g.start) / fps;
    const d = Math.max(tau, 0.5);
    sampleClip(g.clip, g.from + g.clip.fps * g.speed * (tau + g.wobble * d * Math.sin((2 * Math.PI * tau) / d + g.phase) - g.wobble * d * Math.sin(g.phase)), v);
    if (g.mirror) mirrorVector(v);
  };
  let k = 0;
  for (let f = 0; f < frames; f++) {
    while (k + 1 < segs.length && (segs[k + 1] as Seg).start <= f) k++;
    const g = segs[k] as Seg;
    at(g, f, a);
    const prev = k > 0 ? (segs[k - 1] as Seg) : null;
    if (prev && f - g.start < fade) {
      at(prev, f, b);
      const w = (f - g.start + 1) / (fade + 1);
      for (let i = 0; i < VECTOR_SIZE; i++) a[i] = (b[i] as number) * (1 - w) + (a[i] as number) * w;
    }
    out.set(a, f * VECTOR_SIZE);
  }
  return out;
}

/** Attack-hold-release envelope on [0, 1] (0 outside). */
function envelope(x: number): number {
  if (x <= 0 || x >= 1) return 0;
  const s = (t: number): number => t * t * (3 - 2 * t);
  return x < 0.3 ? s(x / 0.3) : x > 0.7 ? s((1 - x) / 0.3) : 1;
}

const bi = (n: BlendshapeName): number => BS0 + blendshapeIndex(n);
type Apply = (v: Float32Array, o: number, e: number) => void;
type Kind = (rng: Rng) => Apply;

const raise = (names: BlendshapeName[], amount: number): Apply => (v, o, e) => {
  for (const n of names) v[o + bi(n)] = Math.max(v[o + bi(n)] as number, amount * e);
};
const sided = (left: BlendshapeName, right: BlendshapeName, lo: number, hi: number): Kind => (rng) => {
  const r = rng.next();
  return raise(r < 0.5 ? [left, right] : r < 0.75 ? [left] : [right], rng.uniform(lo, hi));
};
const single = (name: BlendshapeName, lo: number, hi: number): Kind => (rng) => raise([name], rng.uniform(lo, hi));
const pose = (k: number, lo: number, hi: number): Kind => (rng) => {
  const d = rng.uniform(lo, hi) * (rng.chance(0.5) ? 1 : -1);
  return (v, o, e) => {
    v[o + k] = (v[o + k] as number) + d * e;
  };
};
const LOOK = {
  outL: bi('eyeLookOutLeft'), inL: bi('eyeLookInLeft'), outR: bi('eyeLookOutRight'), inR: bi('eyeLookInRight'),
  upL: bi('eyeLookUpLeft'), upR: bi('eyeLookUpRight'), downL: bi('eyeLookDownLeft'), downR: bi('eyeLookDownRight'),
};
/** The eyeLook* blendshapes of a gaze direction, as [index in the driving vector, value] pairs (the inverse of
 * gazeFromBlendshapes for one-sided values): in the dataset, as from the tracker, gaze and eyeLook* agree. */
export function lookTargets(yaw: number, pitch: number): Array<[number, number]> {
  const h = Math.max(-1, Math.min(1, yaw / GAZE_MAX_YAW)), p = Math.max(-1, Math.min(1, pitch / GAZE_MAX_PITCH));
  return [
    [LOOK.outL, Math.max(0, h)], [LOOK.inR, Math.max(0, h)], [LOOK.inL, Math.max(0, -h)], [LOOK.outR, Math.max(0, -h)],
    [LOOK.upL, Math.max(0, p)], [LOOK.upR, Math.max(0, p)], [LOOK.downL, Math.max(0, -p)], [LOOK.downR, Math.max(0, -p)],
  ];
}
const gazeKind: Kind = (rng) => {
  const t = lookTargets(rng.uniform(-0.5, 0.5), rng.uniform(-0.3, 0.3));
  return (v, o, e) => {
    for (const [i, x] of t) v[o + i] = (v[o + i] as number) * (1 - e) + x * e;
  };
};

/** The excursion kinds: name, maker, weight, and the duration range in seconds (default 0.5-1.6). */
const EXCURSIONS: ReadonlyArray<[string, Kind, number, number?, number?]> = [
  ['yaw', pose(1, 0.15, 0.55), 2, 1.4, 3.2],
  ['pitch', pose(0, 0.08, 0.3), 1.5, 1.2, 2.8],
  ['roll', pose(2, 0.06, 0.25), 1, 1.2, 2.8],
  ['tx', pose(3, 1, 3), 0.7, 1.2, 3],
  ['ty', pose(4, 0.8, 2.5), 0.7, 1.2, 3],
  ['tz', pose(5, 1, 3), 0.7, 1.2, 3],
  ['gaze', gazeKind, 2, 0.4, 1.6],
  ['blink', sided('eyeBlinkLeft', 'eyeBlinkRight', 0.7, 1), 1.5, 0.25, 0.6],
  ['eyeWide', sided('eyeWideLeft', 'eyeWideRight', 0.4, 1), 1],
  ['browInnerUp', single('browInnerUp', 0.4, 1), 1],
  ['browDown', sided('browDownLeft', 'browDownRight', 0.4, 1), 1],
  ['browOuterUp', sided('browOuterUpLeft', 'browOuterUpRight', 0.4, 1), 1],
  ['jawOpen', single('jawOpen', 0.3, 1), 2],
  ['mouthClose', (rng) => {
    const a = rng.uniform(0.2, 0.6);
    return (v, o, e) => {
      raise(['jawOpen'], a)(v, o, e);
      raise(['mouthClose'], a * 0.9)(v, o, e);
    };
  }, 1],
  ['smile', sided('mouthSmileLeft', 'mouthSmileRight', 0.4, 1), 2],
  ['frown', sided('mouthFrownLeft', 'mouthFrownRight', 0.4, 1), 1],
  ['stretch', sided('mouthStretchLeft', 'mouthStretchRight', 0.4, 1), 1],
  ['pucker', single('mouthPucker', 0.5, 1), 1.5],
  ['funnel', single('mouthFunnel', 0.4, 1), 1.5],
  ['cheekPuff', single('cheekPuff', 0.4, 1), 1],
  ['upperUp', sided('mouthUpperUpLeft', 'mouthUpperUpRight', 0.3, 0.9), 0.5],
  ['lowerDown', sided('mouthLowerDownLeft', 'mouthLowerDownRight', 0.3, 0.9), 0.5],
];

/** Driving vectors [frames × 60] (pose, gaze, blendshapes) for `dnp synth`. */
export function generateTrajectory(lib: MotionLibrary, opts: TrajectoryOptions): Float32Array {
  const { frames, fps } = opts;
  if (!Number.isInteger(frames) || frames < 1) throw new RangeError(`bad frame count ${frames}`);
  const framing = opts.framing ?? DEFAULT_FRAMING;
  const rng = new Rng(opts.seed);
  const head = stream(lib, rng.fork(), frames, fps);
  const eyes = stream(lib, rng.fork(), frames, fps);
  const mouth = stream(lib, rng.fork(), frames, fps);
  const out = new Float32Array(frames * VECTOR_SIZE);
  for (let f = 0; f < frames; f++) {
    const o = f * VECTOR_SIZE;
    out.set(head.subarray(o, o + POSE_SIZE), o);
    for (let i = 0; i < BLENDSHAPE_COUNT; i++) out[o + BS0 + i] = ((EYE_GROUP.has(i) ? eyes : mouth)[o + BS0 + i] as number);
  }
  // excursions
  const exRng = rng.fork();
  const totalW = EXCURSIONS.reduce((a, e) => a + e[2], 0);
  const rate = opts.excursionRate ?? 1.4;
  for (let t = exRng.uniform(0, 1 / rate); t * fps < frames; t += -Math.log(1 - exRng.next()) / rate) {
    let r = exRng.next() * totalW;
    let chosen = EXCURSIONS[0] as (typeof EXCURSIONS)[number];
    for (const e of EXCURSIONS) {
      chosen = e;
      if ((r -= e[2]) < 0) break;
    }
    const apply = chosen[1](exRng);
    const dur = exRng.uniform(chosen[3] ?? 0.5, chosen[4] ?? 1.6) * fps;
    const f0 = Math.round(t * fps);
    for (let f = Math.max(0, f0); f < Math.min(frames, f0 + dur); f++) apply(out, f * VECTOR_SIZE, envelope((f - f0) / dur));
  }
  // drift, framing, gaze, clamps
  const ph = [exRng.uniform(0, 6.3), exRng.uniform(0, 6.3), exRng.uniform(0, 6.3)];
  for (let f = 0; f < frames; f++) {
    const o = f * VECTOR_SIZE, s = f / fps;
    out[o] = Math.max(-0.6, Math.min(0.6, (out[o] as number) + 0.05 * Math.sin(0.37 * s + (ph[0] as number))));
    out[o + 1] = Math.max(-0.8, Math.min(0.8, (out[o + 1] as number) + 0.08 * Math.sin(0.23 * s + (ph[1] as number))));
    out[o + 2] = Math.max(-0.6, Math.min(0.6, (out[o + 2] as number) + 0.03 * Math.sin(0.29 * s + (ph[2] as number))));
    out[o + 3] = (out[o + 3] as number) + framing.tx;
    out[o + 4] = (out[o + 4] as number) + framing.ty;
    out[o + 5] = (out[o + 5] as number) + framing.tz;
    for (let i = 0; i < BLENDSHAPE_COUNT; i++) out[o + BS0 + i] = Math.max(0, Math.min(1, out[o + BS0 + i] as number));
    out.set(gazeFromBlendshapes(out.subarray(o + BS0, o + BS0 + BLENDSHAPE_COUNT)), o + POSE_SIZE);
  }
  return out;
}
