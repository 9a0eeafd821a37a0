/**
 * The presenter's controls, read from one driving vector: pose [pitch, yaw, roll, tx, ty, tz] (rad, cm),
 * gaze [yaw, pitch] (rad), 52 blendshapes in MediaPipe order (shared/src/blendshapes.ts, shared/src/pose.ts).
 * "Left" blendshapes are the subject's left, which is image right (+x in the presenter's space).
 */
import { BLENDSHAPE_COUNT, blendshapeIndex, type BlendshapeName } from '../../../shared/src/blendshapes.js';

/** Values per frame of a driving vector: pose 6 + gaze 2 + blendshapes 52. */
export const VECTOR_SIZE = 6 + 2 + BLENDSHAPE_COUNT;

export interface FaceControls {
  pitch: number; yaw: number; roll: number;
  tx: number; ty: number; tz: number;
  gazeYaw: number; gazePitch: number;
  /** Blendshape values in [0, 1] by name. */
  bs: (name: BlendshapeName) => number;
}

export function controlsFromVector(v: ArrayLike<number>, offset = 0): FaceControls {
  const at = (k: number): number => {
    const x = v[offset + k];
    return typeof x === 'number' && Number.isFinite(x) ? x : 0;
  };
  return {
    pitch: at(0), yaw: at(1), roll: at(2), tx: at(3), ty: at(4), tz: at(5),
    gazeYaw: at(6), gazePitch: at(7),
    bs: (name) => Math.min(1, Math.max(0, at(8 + blendshapeIndex(name)))),
  };
}
