/**
 * The presenter's rest head surface (centimetres; x = image right = subject's left, y = up, z = toward the
 * camera; origin near the head's centre at ear level). An egg-shaped ellipsoid whose width and front depth
 * vary with height, plus smooth feature bumps displaced along z on the face: eye sockets, brow ridge,
 * nose, cheekbones, muzzle, chin. Pure functions, shared by the skin mesh and by the parts that sit on the
 * skin (lips, brows, eyes).
 */
import { gauss, smoothstep } from './mat4.js';

export const HEAD_CENTRE_Y = 0.8;
const B_TOP = 10.7;
const B_BOTTOM = 10.6;
const C_BACK = 10.0;

/** Half width of the head at height y. */
export function halfWidth(y: number): number {
  return 7.45 - 0.25 * smoothstep(HEAD_CENTRE_Y, -8.0, y);
}

/** Front half depth at height y (the lower face is pushed forward so that mouth and chin do not recede). */
export function frontDepth(y: number): number {
  return 9.3 + 2.0 * smoothstep(-0.8, -7.2, y);
}

export function halfHeight(sy: number): number {
  return sy >= 0 ? B_TOP : B_BOTTOM;
}

/** Eye centres' height and distance from the middle, shared by sockets, eyes and lids. */
export const EYE = { x: 3.15, y: 1.3, radius: 1.22 } as const;
/** Rest mouth: corner half width and the lip seam height at the middle. */
export const MOUTH = { halfWidth: 2.25, seamY: -5.0, curve: 0.05 } as const;

/** Rest lip seam (where the lips meet), a gentle upward curve toward the corners. */
export function restSeamY(x: number): number {
  return MOUTH.seamY + MOUTH.curve * x * x;
}

/** Face feature relief (cm, along +z) at (x, y); multiplied by the front weight on the surface. */
function featureRelief(x: number, y: number): number {
  const ax = Math.abs(x);
  let d = 0;
  d -= 0.62 * gauss(ax - EYE.x, y - EYE.y + 0.05, 1.45, 1.0); // eye sockets
  d += 0.4 * gauss(ax - 2.7, y - 2.75, 2.1, 0.55); // brow ridge
  d += 0.25 * gauss(x, y - 2.0, 1.2, 0.9); // glabella
  // nose: a ridge growing toward the tip, a rounded tip, and the wings
  const ridgeH = 0.35 + 2.0 * smoothstep(1.9, -2.4, y);
  const ridgeW = 0.45 + 0.35 * smoothstep(1.0, -2.4, y);
  d += ridgeH * Math.exp((-0.5 * x * x) / (ridgeW * ridgeW)) * smoothstep(-3.45, -2.55, y) * smoothstep(2.6, 1.3, y);
  d += 0.55 * gauss(x, y + 2.45, 0.6, 0.55);
  d += 0.6 * gauss(ax - 1.05, y + 2.8, 0.45, 0.42);
  d += 0.3 * gauss(ax - 3.8, y + 0.9, 1.4, 1.2); // cheekbones
  d += 0.45 * gauss(x, y + 5.15, 2.3, 1.7); // muzzle
  d -= 0.1 * gauss(x, y + 3.75, 0.28, 0.45); // philtrum groove
  d += 0.08 * gauss(ax - 0.35, y + 3.75, 0.18, 0.5); // philtrum ridges
  d -= 0.32 * gauss(x, y + 6.3, 1.3, 0.4); // under the lower lip
  d += 0.5 * gauss(x, y + 8.0, 1.5, 1.0); // chin
  d -= 0.25 * gauss(ax - 3.0, y + 4.9, 1.0, 1.7); // beside the mouth
  return d;
}

function frontWeight(sz: number): number {
  return smoothstep(0.15, 0.55, sz);
}

/** Surface point of the rest head for a unit-sphere direction (sx, sy, sz). */
export function headPoint(sx: number, sy: number, sz: number): [number, number, number] {
  const y = HEAD_CENTRE_Y + halfHeight(sy) * sy;
  const x = halfWidth(y) * sx;
  let z = (sz >= 0 ? frontDepth(y) : C_BACK) * sz;
  if (sz > 0) z += featureRelief(x, y) * frontWeight(sz);
  return [x, y, z];
}

/** z of the front of the rest head at (x, y), or 0 where (x, y) is outside the silhouette. */
export function skinZ(x: number, y: number): number {
  const sy = (y - HEAD_CENTRE_Y) / halfHeight(y >= HEAD_CENTRE_Y ? 1 : -1);
  const sx = x / halfWidth(y);
  const q = 1 - sx * sx - sy * sy;
  if (q <= 0) return 0;
  const sz = Math.sqrt(q);
  return frontDepth(y) * sz + featureRelief(x, y) * frontWeight(sz);
}
