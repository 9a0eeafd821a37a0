/**
 * MediaPipe FaceLandmarker result → driving values. The one mapping used by the browser client (live
 * driving) and by `dnp prepare` (training data), so both mean the same numbers.
 *
 * - pose: poseFromMatrix() on the facial transformation matrix (pose.ts).
 * - gaze: from the eyeLook* blendshapes, averaged over both eyes (the iris-landmark ratio breaks during
 *   blinks; the blendshapes do not):
 *     gazeYaw   = GAZE_MAX_YAW   × ((lookOutLeft − lookInLeft) + (lookInRight − lookOutRight)) / 2
 *     gazePitch = GAZE_MAX_PITCH × ((lookUpLeft + lookUpRight) − (lookDownLeft + lookDownRight)) / 2
 *   "Left" is the subject's left eye, which appears on image right in an unmirrored camera image, so
 *   looking "out" with the left eye is looking toward image right: positive gazeYaw.
 * - blendshapes: the 52 scores as reported, in MediaPipe order.
 */
import { BLENDSHAPE_COUNT, BLENDSHAPE_NAMES, blendshapeIndex } from './blendshapes.js';
import type { DrivingValues } from './driving-values.js';
import { GAZE_MAX_PITCH, GAZE_MAX_YAW, poseFromMatrix } from './pose.js';

/** The raw tracker output for one face: 52 blendshape scores (MediaPipe order) and the column-major 4x4 matrix. */
export interface TrackerFace {
  blendshapes: ArrayLike<number>;
  matrix: ArrayLike<number>;
}

/** The subset of @mediapipe/tasks-vision's FaceLandmarkerResult that the mapping reads. */
export interface FaceLandmarkerResultLike {
  faceBlendshapes?: ReadonlyArray<{ categories: ReadonlyArray<{ categoryName: string; score: number }> }>;
  facialTransformationMatrixes?: ReadonlyArray<{ data: ArrayLike<number> }>;
}

const I = {
  lookInL: blendshapeIndex('eyeLookInLeft'),
  lookInR: blendshapeIndex('eyeLookInRight'),
  lookOutL: blendshapeIndex('eyeLookOutLeft'),
  lookOutR: blendshapeIndex('eyeLookOutRight'),
  lookUpL: blendshapeIndex('eyeLookUpLeft'),
  lookUpR: blendshapeIndex('eyeLookUpRight'),
  lookDownL: blendshapeIndex('eyeLookDownLeft'),
  lookDownR: blendshapeIndex('eyeLookDownRight'),
};

/** Gaze [yaw, pitch] in radians from 52 blendshape scores. */
export function gazeFromBlendshapes(b: ArrayLike<number>): [number, number] {
  const g = (i: number): number => b[i] as number;
  const h = (g(I.lookOutL) - g(I.lookInL) + (g(I.lookInR) - g(I.lookOutR))) / 2;
  const v = (g(I.lookUpL) + g(I.lookUpR) - (g(I.lookDownL) + g(I.lookDownR))) / 2;
  return [GAZE_MAX_YAW * h, GAZE_MAX_PITCH * v];
}

/** Maps one tracked face to driving values. Throws on wrongly sized or non-finite input. */
export function mapTrackerFace(face: TrackerFace, out?: DrivingValues): DrivingValues {
  if (face.blendshapes.length !== BLENDSHAPE_COUNT) {
    throw new RangeError(`expected ${BLENDSHAPE_COUNT} blendshapes, got ${face.blendshapes.length}`);
  }
  const v = out ?? { pose: new Float32Array(6), gaze: new Float32Array(2), blendshapes: new Float32Array(BLENDSHAPE_COUNT) };
  v.pose.set(poseFromMatrix(face.matrix));
  v.gaze.set(gazeFromBlendshapes(face.blendshapes));
  for (let i = 0; i < BLENDSHAPE_COUNT; i++) {
    const s = face.blendshapes[i] as number;
    if (!Number.isFinite(s)) throw new RangeError(`blendshape ${i} is not finite`);
    v.blendshapes[i] = Math.min(1, Math.max(0, s));
  }
  for (const x of v.pose) if (!Number.isFinite(x)) throw new RangeError('pose is not finite');
  return v;
}

/**
 * Extracts the first face of a FaceLandmarkerResult (with outputFaceBlendshapes and
 * outputFacialTransformationMatrixes enabled). Returns null when no face was found. Blendshapes are
 * placed by category name, so a reordering in a future tracker version cannot scramble them.
 */
export function trackerFaceFromResult(result: FaceLandmarkerResultLike): TrackerFace | null {
  const cats = result.faceBlendshapes?.[0]?.categories;
  const matrix = result.facialTransformationMatrixes?.[0]?.data;
  if (!cats || !matrix || cats.length === 0) return null;
  const blendshapes = new Float32Array(BLENDSHAPE_COUNT);
  const seen = new Set<string>();
  for (const c of cats) {
    const i = BLENDSHAPE_NAMES.indexOf(c.categoryName as (typeof BLENDSHAPE_NAMES)[number]);
    if (i >= 0) {
      blendshapes[i] = c.score;
      seen.add(c.categoryName);
    }
  }
  if (seen.size !== BLENDSHAPE_COUNT) throw new Error(`tracker reported ${seen.size} of ${BLENDSHAPE_COUNT} known blendshapes`);
  return { blendshapes, matrix: Array.from(matrix) };
}
