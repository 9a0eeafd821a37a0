/**
 * Planar float RGB (NCHW, one image, values in [0, 1]) → packed yuv420p (Y plane, then U, then V),
 * BT.601 limited range ("TV" range: Y 16..235, UV 16..240), which is what WebRTC decoders assume when the
 * bitstream says nothing else. Chroma is the mean of each 2x2 block. Pure; writes into `out`.
 */
export function yuv420pBytes(width: number, height: number): number {
  return width * height + 2 * (width >> 1) * (height >> 1);
}

export function rgbPlanarToYuv420p(rgb: Float32Array, width: number, height: number, out: Uint8Array, offset = 0): Uint8Array {
  const n = width * height;
  if (width % 2 || height % 2) throw new RangeError('width and height must be even');
  if (rgb.length - offset < 3 * n) throw new RangeError(`rgb has ${rgb.length - offset} values, expected ${3 * n}`);
  if (out.length < yuv420pBytes(width, height)) throw new RangeError('output buffer too small');
  const cw = width >> 1;
  const uOff = n;
  const vOff = n + cw * (height >> 1);
  const gOff = offset + n;
  const bOff = offset + 2 * n;
  for (let y = 0; y < height; y += 2) {
    for (let x = 0; x < width; x += 2) {
      let rs = 0;
      let gs = 0;
      let bs = 0;
      for (let dy = 0; dy < 2; dy++) {
        const row = (y + dy) * width + x;
        for (let dx = 0; dx < 2; dx++) {
          const i = row + dx;
          let r = rgb[offset + i] as number;
          let g = rgb[gOff + i] as number;
          let b = rgb[bOff + i] as number;
          r = r < 0 ? 0 : r > 1 ? 1 : r;
          g = g < 0 ? 0 : g > 1 ? 1 : g;
          b = b < 0 ? 0 : b > 1 ? 1 : b;
          // Y = 16 + 219 * (0.299 R + 0.587 G + 0.114 B)
          out[i] = (16.5 + 65.481 * r + 128.553 * g + 24.966 * b) | 0;
          rs += r;
          gs += g;
          bs += b;
        }
      }
      rs *= 0.25;
      gs *= 0.25;
      bs *= 0.25;
      const c = (y >> 1) * cw + (x >> 1);
      // U = 128 + 224 * (-0.168736 R - 0.331264 G + 0.5 B), V = 128 + 224 * (0.5 R - 0.418688 G - 0.081312 B)
      out[uOff + c] = (128.5 - 37.797 * rs - 74.203 * gs + 112.0 * bs) | 0;
      out[vOff + c] = (128.5 + 112.0 * rs - 93.786 * gs - 18.214 * bs) | 0;
    }
  }
  return out;
}
