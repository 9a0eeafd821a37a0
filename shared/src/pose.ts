/**
 * Pose and gaze conventions shared by the live client, `dnp prepare`, training and the renderer.
 *
 * Head pose (6 numbers, in this order):
 *   [pitch, yaw, roll, tx, ty, tz]
 *   - angles in radians, from MediaPipe's facial transformation matrix (camera at the origin looking down -z):
 *     with R the upper-left 3x3 of the row-major matrix, pitch = atan2(R21, R22), yaw = asin(-R20),
 *     roll = atan2(R10, R00). Positive yaw turns the head toward image right.
 *   - translation in centimetres, the matrix's last column (tz is negative: the face is in front of the camera).
 *
 * Eye gaze (2 numbers): [gazeYaw, gazePitch] in radians, derived from the eyeLook* blendshapes (see
 * tracker-mapping.ts). Positive gazeYaw looks toward image right; positive gazePitch looks up.
 */
export const POSE_SIZE = 6;
export const GAZE_SIZE = 2;

/** Largest eye rotation (radians) that a full eyeLookOut/In (=1) blendshape stands for. */
export const GAZE_MAX_YAW = (30 * Math.PI) / 180;
/** Largest eye rotation (radians) that a full eyeLookUp/Down (=1) blendshape stands for. */
export const GAZE_MAX_PITCH = (20 * Math.PI) / 180;

/**
 * Head pose from a MediaPipe 4x4 facial transformation matrix given column-major (as in
 * `facialTransformationMatrixes[0].data`). Returns [pitch, yaw, roll, tx, ty, tz].
 */
export function poseFromMatrix(m: ArrayLike<number>): [number, number, number, number, number, number] {
  if (m.length !== 16) throw new Error(`transformation matrix must have 16 numbers, got ${m.length}`);
  // Column-major: element (row r, col c) is m[c * 4 + r].
  const at = (r: number, c: number): number => m[c * 4 + r] as number;
  const r20 = Math.max(-1, Math.min(1, at(2, 0)));
  const pitch = Math.atan2(at(2, 1), at(2, 2));
  const yaw = Math.asin(-r20);
  const roll = Math.atan2(at(1, 0), at(0, 0));
  return [pitch, yaw, roll, at(0, 3), at(1, 3), at(2, 3)];
}
