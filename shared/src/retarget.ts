/**
 * Neutral calibration and retargeting: a caller's expression relative to their own neutral face,
 * transferred onto the avatar's neutral (from its manifest), so that a different person can drive it.
 *
 *   out = avatarNeutral + (caller − callerNeutral)     for pose, gaze and blendshapes;
 * blendshapes are clamped to [0, 1], angles to the wire range. Pure; no I/O.
 */
import type { DrivingValues } from './driving-values.js';

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

export function retarget(
  caller: DrivingValues,
  callerNeutral: DrivingValues,
  avatarNeutral: DrivingValues,
  out: DrivingValues,
): DrivingValues {
  for (let i = 0; i < 6; i++) {
    const x = (avatarNeutral.pose[i] as number) + (caller.pose[i] as number) - (callerNeutral.pose[i] as number);
    out.pose[i] = i < 3 ? clamp(x, -Math.PI, Math.PI) : clamp(x, -327, 327);
  }
  for (let i = 0; i < 2; i++) {
    const x = (avatarNeutral.gaze[i] as number) + (caller.gaze[i] as number) - (callerNeutral.gaze[i] as number);
    out.gaze[i] = clamp(x, -Math.PI / 2, Math.PI / 2);
  }
  for (let i = 0; i < caller.blendshapes.length; i++) {
    const x = (avatarNeutral.blendshapes[i] as number) + (caller.blendshapes[i] as number) - (callerNeutral.blendshapes[i] as number);
    out.blendshapes[i] = clamp(x, 0, 1);
  }
  return out;
}

/** Mean of several frames' values (e.g. the ~1 s a caller holds a neutral face). Throws on an empty list. */
export function meanDrivingValues(frames: readonly DrivingValues[]): DrivingValues {
  const first = frames[0];
  if (!first) throw new Error('cannot average zero frames');
  const acc = { pose: new Float32Array(6), gaze: new Float32Array(2), blendshapes: new Float32Array(first.blendshapes.length) };
  for (const f of frames) {
    for (let i = 0; i < 6; i++) acc.pose[i] = (acc.pose[i] as number) + (f.pose[i] as number) / frames.length;
    for (let i = 0; i < 2; i++) acc.gaze[i] = (acc.gaze[i] as number) + (f.gaze[i] as number) / frames.length;
    for (let i = 0; i < acc.blendshapes.length; i++) acc.blendshapes[i] = (acc.blendshapes[i] as number) + (f.blendshapes[i] as number) / frames.length;
  }
  return acc;
}
