/**
 * MediaPipe FaceLandmarker's 478-point face mesh (468 mesh points + 10 iris points): the count, and the
 * index sets that name facial regions. `dnp prepare` stores every frame's points (dataset v2,
 * `landmarks.npy`), and `dnp eval` places its mouth / eye / face boxes with these sets.
 * Index sets follow MediaPipe's FACEMESH_LIPS / FACEMESH_LEFT_EYE / FACEMESH_RIGHT_EYE connections.
 */
export const LANDMARK_COUNT = 478;

/** Outer lip contour. */
export const MOUTH_OUTER_LIPS: readonly number[] = [
  61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
];
/** The subject's left eye (image right when facing the camera): eyelid contour, without the brow. */
export const LEFT_EYE: readonly number[] = [263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398];
/** The subject's right eye (image left): eyelid contour, without the brow. */
export const RIGHT_EYE: readonly number[] = [33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173];

export interface PixelBox {
  /** Inclusive start and exclusive end, in whole pixels, clipped to the image. */
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * The box around the points `indices` of one frame's landmarks (flat [x0, y0, x1, y1, …] in pixels),
 * grown by `pad` × its larger side on every side (at least `minPad` px), clipped to a width × height image.
 * Null when any of the points is not finite (no face) or the box is empty after clipping.
 */
export function landmarkRegion(
  points: ArrayLike<number>,
  indices: readonly number[],
  width: number,
  height: number,
  pad = 0.25,
  minPad = 2,
): PixelBox | null {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const k of indices) {
    const x = points[2 * k];
    const y = points[2 * k + 1];
    if (x === undefined || y === undefined || !Number.isFinite(x) || !Number.isFinite(y)) return null;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  if (!Number.isFinite(x0)) return null;
  const p = Math.max(minPad, pad * Math.max(x1 - x0, y1 - y0));
  const box = {
    x0: Math.max(0, Math.floor(x0 - p)),
    y0: Math.max(0, Math.floor(y0 - p)),
    x1: Math.min(width, Math.ceil(x1 + p)),
    y1: Math.min(height, Math.ceil(y1 + p)),
  };
  return box.x1 > box.x0 && box.y1 > box.y0 ? box : null;
}

/** All point indices (0 … 477): the face box. */
export const ALL_LANDMARKS: readonly number[] = Array.from({ length: LANDMARK_COUNT }, (_, i) => i);
