/**
 * The 52 ARKit-style blendshape names, in the exact order MediaPipe FaceLandmarker
 * (`outputFaceBlendshapes: true`) reports them. The wire format, the dataset arrays
 * and the avatar's conditioning vector all use this order.
 */
export const BLENDSHAPE_NAMES = [
  '_neutral', 'browDownLeft', 'browDownRight', 'browInnerUp', 'browOuterUpLeft', 'browOuterUpRight',
  'cheekPuff', 'cheekSquintLeft', 'cheekSquintRight', 'eyeBlinkLeft', 'eyeBlinkRight', 'eyeLookDownLeft',
  'eyeLookDownRight', 'eyeLookInLeft', 'eyeLookInRight', 'eyeLookOutLeft', 'eyeLookOutRight', 'eyeLookUpLeft',
  'eyeLookUpRight', 'eyeSquintLeft', 'eyeSquintRight', 'eyeWideLeft', 'eyeWideRight', 'jawForward', 'jawLeft',
  'jawOpen', 'jawRight', 'mouthClose', 'mouthDimpleLeft', 'mouthDimpleRight', 'mouthFrownLeft', 'mouthFrownRight',
  'mouthFunnel', 'mouthLeft', 'mouthLowerDownLeft', 'mouthLowerDownRight', 'mouthPressLeft', 'mouthPressRight',
  'mouthPucker', 'mouthRight', 'mouthRollLower', 'mouthRollUpper', 'mouthShrugLower', 'mouthShrugUpper',
  'mouthSmileLeft', 'mouthSmileRight', 'mouthStretchLeft', 'mouthStretchRight', 'mouthUpperUpLeft',
  'mouthUpperUpRight', 'noseSneerLeft', 'noseSneerRight',
] as const;

export type BlendshapeName = (typeof BLENDSHAPE_NAMES)[number];

/** Number of blendshapes (52). */
export const BLENDSHAPE_COUNT = BLENDSHAPE_NAMES.length;

const INDEX = new Map<string, number>(BLENDSHAPE_NAMES.map((n, i) => [n, i]));

/** Index of a blendshape in the canonical order. Throws on an unknown name. */
export function blendshapeIndex(name: BlendshapeName): number {
  const i = INDEX.get(name);
  if (i === undefined) throw new Error(`unknown blendshape ${name}`);
  return i;
}
