/** Choosing frames for pictures, and laying per-frame values out over frame numbers for plots. */
import { blendshapeIndex } from '../../../shared/src/blendshapes.js';
import { CONDITIONING_SIZE } from '../../../shared/src/driving-values.js';
import { GAZE_SIZE, POSE_SIZE } from '../../../shared/src/pose.js';

/** Index of jawOpen in a 60-value driving vector. */
export const JAW_OPEN = POSE_SIZE + GAZE_SIZE + blendshapeIndex('jawOpen');

/** `count` indices spread evenly over 0 … n−1, first and last included (all of them when count >= n). */
export function spread(n: number, count: number): number[] {
  if (count >= n) return Array.from({ length: n }, (_, i) => i);
  if (count <= 0) return [];
  if (count === 1) return [Math.floor((n - 1) / 2)];
  const out = new Set<number>();
  for (let k = 0; k < count; k++) out.add(Math.round((k * (n - 1)) / (count - 1)));
  return [...out];
}

/**
 * One value per frame number from frames[0] to the last frame: value `index` of row k of `cond` (flat
 * rows of 60) at frame frames[k]; NaN where found[k] is 0 and for frame numbers not evaluated (gaps).
 */
export function seriesAt(frames: readonly number[], cond: Float32Array, found: Uint8Array | null, index = JAW_OPEN): number[] {
  const first = frames[0] ?? 0;
  const last = frames[frames.length - 1] ?? 0;
  const out: number[] = new Array<number>(last - first + 1).fill(NaN);
  frames.forEach((i, k) => {
    if (!found || found[k] === 1) out[i - first] = cond[k * CONDITIONING_SIZE + index] as number;
  });
  return out;
}
