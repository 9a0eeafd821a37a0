/** The fixed camera of the synthetic presenter: on the z axis looking down −z, framing the head like a `dnp prepare` crop. */
import { chain, perspective, transformPoint, translation, type Mat4, type Vec3 } from './mat4.js';

/** Camera position (cm) and the height of the view (cm) at the head's depth (z = 0). */
export const CAMERA = { eye: [0, -1.0, 62] as Vec3, viewHeight: 29.5 } as const;

export function viewProjection(): Mat4 {
  const fov = 2 * Math.atan(CAMERA.viewHeight / 2 / CAMERA.eye[2]);
  return chain(perspective(fov, 1, 20, 120), translation(-CAMERA.eye[0], -CAMERA.eye[1], -CAMERA.eye[2]));
}

/** World point → pixel (x right, y down) in a size × size image. */
export function projectToPixel(p: Vec3, size: number): [number, number] {
  const c = transformPoint(viewProjection(), p);
  return [((c[0] + 1) / 2) * size, ((1 - c[1]) / 2) * size];
}
