/**
 * Per-frame evaluation regions from face landmarks (output pixels): the mouth (outer lips), the eyes (each
 * eye's lid contour, without the brows; the two boxes count as one region) and the face (all 478 points).
 * Boxes are padded (REGION_PAD × the box's larger side, at least 2 px) and clipped to the frame.
 */
import { ALL_LANDMARKS, LANDMARK_COUNT, LEFT_EYE, MOUTH_OUTER_LIPS, RIGHT_EYE, landmarkRegion, type PixelBox } from '../../../shared/src/face-landmarks.js';

export const REGION_PAD = { mouth: 0.25, eye: 0.25, face: 0.05 } as const;

export interface FrameRegions {
  mouth: PixelBox[];
  eyes: PixelBox[];
  face: PixelBox[];
}

/** Regions of frame `k` of a flat [count × 478 × 2] landmark array; empty lists where there is no face. */
export function frameRegions(landmarks: Float32Array | null, k: number, width: number, height: number): FrameRegions {
  if (!landmarks) return { mouth: [], eyes: [], face: [] };
  const pts = landmarks.subarray(k * LANDMARK_COUNT * 2, (k + 1) * LANDMARK_COUNT * 2);
  const mouth = landmarkRegion(pts, MOUTH_OUTER_LIPS, width, height, REGION_PAD.mouth);
  const left = landmarkRegion(pts, LEFT_EYE, width, height, REGION_PAD.eye);
  const right = landmarkRegion(pts, RIGHT_EYE, width, height, REGION_PAD.eye);
  const face = landmarkRegion(pts, ALL_LANDMARKS, width, height, REGION_PAD.face);
  return {
    mouth: mouth ? [mouth] : [],
    eyes: left && right ? [left, right] : [],
    face: face ? [face] : [],
  };
}
