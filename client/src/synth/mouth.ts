/**
 * The mouth rig: corners, lip seams, opening, protrusion and the jaw, computed from the controls. The same
 * state shapes the lips, teeth, tongue, mouth interior and the skin around them (presenter.ts), so they stay
 * together.
 */
import type { FaceControls } from './controls.js';
import type { Vec3 } from './mat4.js';
import { MOUTH, restSeamY, skinZ } from './head-shape.js';

export const JAW_PIVOT: Vec3 = [0, -1.3, -1.0];
/** Jaw rotation (rad) at jawOpen = 1. */
const JAW_MAX = 0.24;

export interface MouthState {
  /** Corner positions (x, y) and their forward shift (cm): index 0 = subject's right (−x), 1 = left (+x). */
  corners: [[number, number, number], [number, number, number]];
  /** Corner displacement from rest. */
  cornerDelta: [Vec3, Vec3];
  upRaise: number;
  lowDrop: number;
  /** Forward push of the lips' middle (pucker, funnel). */
  protrusion: number;
  /** Fraction the mouth narrows toward its middle. */
  narrow: number;
  jawAngle: number;
  lipJawAngle: number;
  jawShift: number;
  upperThick: number;
  lowerThick: number;
  /** Gap between the lips at the middle (cm), after the jaw. */
  gapMid: number;
  /** Height of the lip seam's middle. */
  midY: number;
}

export function mouthState(c: FaceControls): MouthState {
  const b = c.bs;
  const pucker = b('mouthPucker'), funnel = b('mouthFunnel');
  const narrow = 0.34 * pucker + 0.27 * funnel;
  const shift = 0.55 * (b('mouthLeft') - b('mouthRight'));
  const side = (s: 'Left' | 'Right', sign: 1 | -1): [number, number, number] => {
    const smile = b(`mouthSmile${s}`), frown = b(`mouthFrown${s}`), stretch = b(`mouthStretch${s}`), dimple = b(`mouthDimple${s}`);
    const press = b(`mouthPress${s}`);
    const x = sign * (MOUTH.halfWidth * (1 - narrow) + 0.6 * smile + 0.65 * stretch + 0.15 * dimple + 0.1 * press) + shift;
    const y = restSeamY(MOUTH.halfWidth) + 0.9 * smile - 0.6 * frown - 0.2 * stretch;
    const dz = -0.25 * smile - 0.05 * stretch - 0.15 * dimple + 0.25 * pucker;
    return [x, y, dz];
  };
  const right = side('Right', -1), left = side('Left', 1);
  const rest = restSeamY(MOUTH.halfWidth);
  const jaw = b('jawOpen');
  const close = b('mouthClose');
  const upRaise = 0.32 * funnel + 0.1 * (b('mouthSmileLeft') + b('mouthSmileRight')) / 2 + 0.35 * (b('mouthUpperUpLeft') + b('mouthUpperUpRight')) / 2 + 0.06 * jaw - 0.08 * b('mouthRollUpper');
  const lowDrop = 0.42 * funnel + 0.4 * (b('mouthLowerDownLeft') + b('mouthLowerDownRight')) / 2 - 0.08 * b('mouthRollLower');
  const jawAngle = JAW_MAX * jaw;
  const lipJawAngle = JAW_MAX * Math.max(0, jaw - close);
  const smileAvg = (b('mouthSmileLeft') + b('mouthSmileRight')) / 2;
  const stretchAvg = (b('mouthStretchLeft') + b('mouthStretchRight')) / 2;
  const pressAvg = (b('mouthPressLeft') + b('mouthPressRight')) / 2;
  const thin = 1 - 0.15 * smileAvg - 0.12 * stretchAvg - 0.3 * pressAvg;
  const upperThick = 0.3 * thin * (1 + 0.35 * pucker + 0.2 * funnel - 0.4 * b('mouthRollUpper'));
  const lowerThick = 0.38 * thin * (1 + 0.3 * pucker + 0.2 * funnel - 0.4 * b('mouthRollLower'));
  // distance the lower lip seam travels with the jaw at the middle (the pivot is ~11.5 cm away)
  const lipZ = skinZ(0, MOUTH.seamY);
  const arm = Math.hypot(MOUTH.seamY - JAW_PIVOT[1], lipZ - JAW_PIVOT[2]);
  const gapMid = Math.max(0, upRaise + lowDrop + arm * Math.sin(lipJawAngle));
  return {
    corners: [right, left],
    cornerDelta: [
      [right[0] + MOUTH.halfWidth, right[1] - rest, right[2]],
      [left[0] - MOUTH.halfWidth, left[1] - rest, left[2]],
    ],
    upRaise,
    lowDrop,
    protrusion: 0.9 * pucker + 0.65 * funnel,
    narrow,
    jawAngle,
    lipJawAngle,
    jawShift: 0.7 * (b('jawLeft') - b('jawRight')),
    upperThick,
    lowerThick,
    gapMid,
    midY: MOUTH.seamY + 0.05 * (b('mouthSmileLeft') + b('mouthSmileRight')) - 0.06 * (b('mouthFrownLeft') + b('mouthFrownRight')) + 0.1 * (b('mouthShrugUpper') - b('mouthShrugLower')) / 2,
  };
}

/** Rotates a head-space point about the jaw pivot by `angle` (opening) and shifts it sideways. */
export function jawMove(p: Vec3, angle: number, shift: number): Vec3 {
  const y = p[1] - JAW_PIVOT[1], z = p[2] - JAW_PIVOT[2];
  const c = Math.cos(angle), s = Math.sin(angle);
  return [p[0] + shift, JAW_PIVOT[1] + y * c - z * s, JAW_PIVOT[2] + y * s + z * c];
}

/** Across-the-mouth position u ∈ [−1, 1] → x and the seam height before any opening. */
export function seamAt(m: MouthState, u: number): { x: number; y: number; dz: number } {
  const t = (u + 1) / 2;
  const [r, l] = m.corners;
  const x = r[0] + (l[0] - r[0]) * t;
  const cornerY = r[1] + (l[1] - r[1]) * t;
  const dz = r[2] + (l[2] - r[2]) * t;
  // the middle of the seam stays put; the corners pull the ends up or down
  return { x, y: m.midY + (cornerY - m.midY) * u * u, dz };
}
