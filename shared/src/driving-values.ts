import { BLENDSHAPE_COUNT } from './blendshapes.js';
import { GAZE_SIZE, POSE_SIZE } from './pose.js';

/**
 * What drives an expression avatar for one video frame, in physical units (see pose.ts):
 * pose [pitch, yaw, roll (rad), tx, ty, tz (cm)], gaze [yaw, pitch (rad)], 52 blendshapes in [0, 1].
 */
export interface DrivingValues {
  pose: Float32Array; // length 6
  gaze: Float32Array; // length 2
  blendshapes: Float32Array; // length 52, MediaPipe order
}

/** Length of the flat conditioning vector [pose(6), gaze(2), blendshapes(52)] = 60. */
export const CONDITIONING_SIZE = POSE_SIZE + GAZE_SIZE + BLENDSHAPE_COUNT;

export function emptyDrivingValues(): DrivingValues {
  return {
    pose: new Float32Array(POSE_SIZE),
    gaze: new Float32Array(GAZE_SIZE),
    blendshapes: new Float32Array(BLENDSHAPE_COUNT),
  };
}

/** Flattens values into `out` (length >= offset + 60) as [pose, gaze, blendshapes]. */
export function flattenDrivingValues(v: DrivingValues, out: Float32Array, offset = 0): Float32Array {
  out.set(v.pose, offset);
  out.set(v.gaze, offset + POSE_SIZE);
  out.set(v.blendshapes, offset + POSE_SIZE + GAZE_SIZE);
  return out;
}

export function cloneDrivingValues(v: DrivingValues): DrivingValues {
  return { pose: v.pose.slice(), gaze: v.gaze.slice(), blendshapes: v.blendshapes.slice() };
}
