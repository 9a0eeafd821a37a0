/**
 * Controllability: how well the driving values survive the round trip driving vector → render → tracker.
 * Compares re-tracked values with the driving ones on the frames where the tracker found a face: head
 * rotation error (the angle of the relative rotation, degrees; translations are not compared, the crop
 * changes their scale), gaze direction error (degrees) and, per blendshape, mean absolute error and Pearson r.
 */
import { BLENDSHAPE_COUNT, BLENDSHAPE_NAMES } from '../../../shared/src/blendshapes.js';
import { CONDITIONING_SIZE } from '../../../shared/src/driving-values.js';
import { GAZE_SIZE, POSE_SIZE } from '../../../shared/src/pose.js';
import { pearson } from './image-metrics.js';

/** The blendshapes the Markdown report shows (all 52 are in report.json). */
export const KEY_BLENDSHAPES = [
  'jawOpen',
  'mouthClose',
  'mouthFunnel',
  'mouthPucker',
  'mouthSmileLeft',
  'mouthSmileRight',
  'eyeBlinkLeft',
  'eyeBlinkRight',
  'browInnerUp',
] as const;

export interface BlendshapeAgreement {
  mae: number;
  /** Pearson r over the frames; null when either series is constant. */
  r: number | null;
  /** Standard deviation of the driving value (a small one makes r meaningless). */
  drivingStd: number;
}

export interface ControlStats {
  frames: number;
  /** Frames where the tracker found a face (the statistics use only those). */
  tracked: number;
  pose: {
    meanDeg: number;
    medianDeg: number;
    pitchMaeDeg: number;
    yawMaeDeg: number;
    rollMaeDeg: number;
    /**
     * Per axis, the slope of the re-tracked angle against the driving one (least squares): 1 = the head turns as
     * far as it is asked, below 1 = less (a render that regresses to the reference's pose). Null where the driving
     * angle hardly moves (standard deviation under 0.5°). Absent in reports written before it existed.
     */
    gain?: { pitch: number | null; yaw: number | null; roll: number | null };
  } | null;
  gaze: { meanDeg: number; medianDeg: number } | null;
  blendshapes: Record<string, BlendshapeAgreement>;
}

const DEG = 180 / Math.PI;
/** Below this standard deviation of a driving angle (degrees) its gain is not computed. */
const MIN_GAIN_STD_DEG = 0.5;

/** Rotation matrix of [pitch, yaw, roll] (R = Rz(roll) · Ry(yaw) · Rx(pitch), the inverse of pose.ts). */
function rotationMatrix(pitch: number, yaw: number, roll: number): number[] {
  const [cx, sx, cy, sy, cz, sz] = [Math.cos(pitch), Math.sin(pitch), Math.cos(yaw), Math.sin(yaw), Math.cos(roll), Math.sin(roll)];
  return [
    cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx,
    sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx,
    -sy, cy * sx, cy * cx,
  ];
}

/** Angle (degrees) of the rotation between two head poses given as [pitch, yaw, roll] radians. */
export function rotationErrorDeg(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const ra = rotationMatrix(a[0] as number, a[1] as number, a[2] as number);
  const rb = rotationMatrix(b[0] as number, b[1] as number, b[2] as number);
  let trace = 0; // trace(Raᵀ Rb)
  for (let i = 0; i < 9; i++) trace += (ra[i] as number) * (rb[i] as number);
  return Math.acos(Math.max(-1, Math.min(1, (trace - 1) / 2))) * DEG;
}

/** Angle (degrees) between two gaze directions given as [yaw, pitch] radians. */
export function gazeErrorDeg(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const dir = (yaw: number, pitch: number): [number, number, number] => [Math.sin(yaw) * Math.cos(pitch), Math.sin(pitch), Math.cos(yaw) * Math.cos(pitch)];
  const u = dir(a[0] as number, a[1] as number);
  const v = dir(b[0] as number, b[1] as number);
  return Math.acos(Math.max(-1, Math.min(1, u[0] * v[0] + u[1] * v[1] + u[2] * v[2]))) * DEG;
}

function mean(a: readonly number[]): number {
  return a.length ? a.reduce((s, x) => s + x, 0) / a.length : NaN;
}

function median(a: readonly number[]): number {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/**
 * Agreement of `tracked` (re-tracked values, flat count × 60, with `found` flags) with `driving` (flat count × 60).
 */
export function controlStats(driving: Float32Array, tracked: Float32Array, found: Uint8Array): ControlStats {
  const count = found.length;
  const rows: number[] = [];
  for (let k = 0; k < count; k++) if (found[k] === 1) rows.push(k);
  const at = (a: Float32Array, k: number, j: number): number => a[k * CONDITIONING_SIZE + j] as number;
  const slice = (a: Float32Array, k: number, j: number, n: number): Float32Array => a.subarray(k * CONDITIONING_SIZE + j, k * CONDITIONING_SIZE + j + n);
  const blendshapes: Record<string, BlendshapeAgreement> = {};
  for (let b = 0; b < BLENDSHAPE_COUNT; b++) {
    const j = POSE_SIZE + GAZE_SIZE + b;
    const d = rows.map((k) => at(driving, k, j));
    const t = rows.map((k) => at(tracked, k, j));
    const md = mean(d);
    blendshapes[BLENDSHAPE_NAMES[b] as string] = {
      mae: mean(d.map((x, i) => Math.abs(x - (t[i] as number)))),
      r: pearson(d, t),
      drivingStd: Math.sqrt(mean(d.map((x) => (x - md) ** 2))),
    };
  }
  if (rows.length === 0) return { frames: count, tracked: 0, pose: null, gaze: null, blendshapes };
  const rot = rows.map((k) => rotationErrorDeg(slice(driving, k, 0, 3), slice(tracked, k, 0, 3)));
  const axis = (j: number): number => mean(rows.map((k) => Math.abs(at(driving, k, j) - at(tracked, k, j)) * DEG));
  const gain = (j: number): number | null => {
    const d = rows.map((k) => at(driving, k, j));
    const t = rows.map((k) => at(tracked, k, j));
    const md = mean(d);
    const mt = mean(t);
    const vd = mean(d.map((x) => (x - md) ** 2));
    if (Math.sqrt(vd) * DEG < MIN_GAIN_STD_DEG) return null;
    return mean(d.map((x, i) => (x - md) * ((t[i] as number) - mt))) / vd;
  };
  const gz = rows.map((k) => gazeErrorDeg(slice(driving, k, POSE_SIZE, 2), slice(tracked, k, POSE_SIZE, 2)));
  return {
    frames: count,
    tracked: rows.length,
    pose: {
      meanDeg: mean(rot),
      medianDeg: median(rot),
      pitchMaeDeg: axis(0),
      yawMaeDeg: axis(1),
      rollMaeDeg: axis(2),
      gain: { pitch: gain(0), yaw: gain(1), roll: gain(2) },
    },
    gaze: { meanDeg: mean(gz), medianDeg: median(gz) },
    blendshapes,
  };
}
