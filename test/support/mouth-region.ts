/**
 * How much the default avatar's mouth changed between two decoded pictures: the mean absolute luma difference in
 * a fixed box around the mouth at the avatar's neutral pose (256², placed from the landmarks of its training
 * dataset: inner lips at about (126, 152-162), corners at x 102 and 149).
 */
export const DEFAULT_MOUTH_BOX = { x: 98, y: 138, w: 56, h: 44 };

export interface LumaPicture {
  width: number;
  /** Packed yuv420p or any layout whose first width × height bytes are the luma. */
  yuv: Uint8Array;
}

export function mouthChange(a: LumaPicture, b: LumaPicture, box = DEFAULT_MOUTH_BOX): number {
  let s = 0;
  for (let y = box.y; y < box.y + box.h; y++) {
    for (let x = box.x; x < box.x + box.w; x++) s += Math.abs((a.yuv[y * a.width + x] as number) - (b.yuv[y * b.width + x] as number));
  }
  return s / (box.w * box.h);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}
