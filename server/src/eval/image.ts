/** 8-bit RGB images (row-major, interleaved) and small helpers to build the report's pictures. */

export interface RgbImage {
  width: number;
  height: number;
  /** width × height × 3 bytes. */
  data: Uint8Array;
}

function blankImage(width: number, height: number, rgb: readonly [number, number, number] = [255, 255, 255]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, 3 * i);
  return { width, height, data };
}

/** NCHW float [0, 1] planes of one batch item → 8-bit RGB (rounded, clamped). */
export function rgbFromPlanes(planes: Float32Array, offset: number, width: number, height: number): RgbImage {
  const n = width * height;
  const data = new Uint8Array(n * 3);
  for (let c = 0; c < 3; c++) {
    const base = offset + c * n;
    for (let i = 0; i < n; i++) {
      const v = Math.round((planes[base + i] as number) * 255);
      data[3 * i + c] = v < 0 ? 0 : v > 255 ? 255 : Number.isNaN(v) ? 0 : v;
    }
  }
  return { width, height, data };
}

/** RGB → RGBA (opaque), for the tracker. */
export function rgbaFromRgb(img: RgbImage): Buffer {
  const out = Buffer.alloc(img.width * img.height * 4, 255);
  for (let i = 0; i < img.width * img.height; i++) {
    out[4 * i] = img.data[3 * i] as number;
    out[4 * i + 1] = img.data[3 * i + 1] as number;
    out[4 * i + 2] = img.data[3 * i + 2] as number;
  }
  return out;
}

/** Copies `src` into `dst` with its top-left corner at (x, y) (clipped). */
function blit(dst: RgbImage, src: RgbImage, x: number, y: number): void {
  for (let r = 0; r < src.height; r++) {
    const dy = y + r;
    if (dy < 0 || dy >= dst.height) continue;
    const x0 = Math.max(0, x);
    const x1 = Math.min(dst.width, x + src.width);
    if (x1 <= x0) continue;
    dst.data.set(src.data.subarray((r * src.width + (x0 - x)) * 3, (r * src.width + (x1 - x)) * 3), (dy * dst.width + x0) * 3);
  }
}

/** Images side by side with a `gap`-pixel white gutter; all must have the same height. */
export function hstack(images: readonly RgbImage[], gap = 4): RgbImage {
  const h = Math.max(...images.map((i) => i.height));
  const w = images.reduce((s, i) => s + i.width, 0) + gap * Math.max(0, images.length - 1);
  const out = blankImage(w, h);
  let x = 0;
  for (const im of images) {
    blit(out, im, x, 0);
    x += im.width + gap;
  }
  return out;
}

/** Images one above the other with a `gap`-pixel white gutter (narrower ones left-aligned). */
export function vstack(images: readonly RgbImage[], gap = 4): RgbImage {
  const w = Math.max(...images.map((i) => i.width));
  const h = images.reduce((s, i) => s + i.height, 0) + gap * Math.max(0, images.length - 1);
  const out = blankImage(w, h);
  let y = 0;
  for (const im of images) {
    blit(out, im, 0, y);
    y += im.height + gap;
  }
  return out;
}

/** Draws an unfilled rectangle (1 px) — region boxes on strips. */
export function strokeRect(img: RgbImage, box: { x0: number; y0: number; x1: number; y1: number }, rgb: readonly [number, number, number]): void {
  const put = (x: number, y: number): void => {
    if (x >= 0 && y >= 0 && x < img.width && y < img.height) img.data.set(rgb, (y * img.width + x) * 3);
  };
  for (let x = box.x0; x < box.x1; x++) {
    put(x, box.y0);
    put(x, box.y1 - 1);
  }
  for (let y = box.y0; y < box.y1; y++) {
    put(box.x0, y);
    put(box.x1 - 1, y);
  }
}

/**
 * Per-pixel error map: mean absolute RGB difference, ×`gain`, through a black → red → yellow → white ramp.
 */
export function errorMap(a: RgbImage, b: RgbImage, gain = 4): RgbImage {
  const out = blankImage(a.width, a.height, [0, 0, 0]);
  for (let i = 0; i < a.width * a.height; i++) {
    let d = 0;
    for (let c = 0; c < 3; c++) d += Math.abs((a.data[3 * i + c] as number) - (b.data[3 * i + c] as number));
    const t = Math.min(1, (d / 3 / 255) * gain) * 3;
    out.data[3 * i] = Math.round(Math.min(1, t) * 255);
    out.data[3 * i + 1] = Math.round(Math.min(1, Math.max(0, t - 1)) * 255);
    out.data[3 * i + 2] = Math.round(Math.min(1, Math.max(0, t - 2)) * 255);
  }
  return out;
}

/** Bilinear resize (for showing a driver frame next to a render of another size). */
export function resize(img: RgbImage, width: number, height: number): RgbImage {
  if (img.width === width && img.height === height) return img;
  const out = blankImage(width, height, [0, 0, 0]);
  for (let y = 0; y < height; y++) {
    const fy = Math.max(0, Math.min(img.height - 1, ((y + 0.5) * img.height) / height - 0.5));
    const y0 = Math.floor(fy), y1 = Math.min(img.height - 1, y0 + 1), wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.max(0, Math.min(img.width - 1, ((x + 0.5) * img.width) / width - 0.5));
      const x0 = Math.floor(fx), x1 = Math.min(img.width - 1, x0 + 1), wx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const p = (xx: number, yy: number): number => img.data[(yy * img.width + xx) * 3 + c] as number;
        const v = (1 - wy) * ((1 - wx) * p(x0, y0) + wx * p(x1, y0)) + wy * ((1 - wx) * p(x0, y1) + wx * p(x1, y1));
        out.data[(y * width + x) * 3 + c] = Math.round(v);
      }
    }
  }
  return out;
}
