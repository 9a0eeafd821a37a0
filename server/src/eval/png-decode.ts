/**
 * Minimal PNG decoder for the frames `dnp prepare` writes: 8-bit greyscale, RGB or RGBA, not interlaced,
 * any of the five row filters. Returns RGB. Inflate is node:zlib's.
 */
import { inflateSync } from 'node:zlib';
import { EvalInputError } from './errors.js';
import type { RgbImage } from './image.js';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

export function decodePng(buf: Buffer, where = 'PNG'): RgbImage {
  if (buf.length < 33 || !buf.subarray(0, 8).equals(SIGNATURE)) throw new EvalInputError(`${where}: not a PNG file`);
  let pos = 8;
  let width = 0, height = 0, colourType = -1;
  const idat: Buffer[] = [];
  while (pos + 8 <= buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (data.length !== len) throw new EvalInputError(`${where}: truncated PNG chunk ${type}`);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8];
      colourType = data[9] ?? -1;
      if (depth !== 8 || ![0, 2, 6].includes(colourType) || data[12] !== 0) {
        throw new EvalInputError(`${where}: unsupported PNG (bit depth ${String(depth)}, colour type ${colourType}, interlace ${String(data[12])}); 8-bit grey/RGB/RGBA only`);
      }
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    pos += 12 + len;
  }
  if (width < 1 || height < 1 || idat.length === 0) throw new EvalInputError(`${where}: PNG without IHDR or IDAT`);
  const channels = colourType === 0 ? 1 : colourType === 2 ? 3 : 4;
  const stride = width * channels;
  let raw: Buffer;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch (err) {
    throw new EvalInputError(`${where}: corrupt PNG data (${err instanceof Error ? err.message : String(err)})`);
  }
  if (raw.length < (stride + 1) * height) throw new EvalInputError(`${where}: PNG data too short`);
  const px = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const o = y * stride;
    const up = o - stride;
    for (let x = 0; x < stride; x++) {
      const r = raw[src + x] as number;
      const a = x >= channels ? (px[o + x - channels] as number) : 0;
      const b = y > 0 ? (px[up + x] as number) : 0;
      const c = x >= channels && y > 0 ? (px[up + x - channels] as number) : 0;
      let v: number;
      switch (f) {
        case 0: v = r; break;
        case 1: v = r + a; break;
        case 2: v = r + b; break;
        case 3: v = r + ((a + b) >> 1); break;
        case 4: v = r + paeth(a, b, c); break;
        default: throw new EvalInputError(`${where}: bad PNG row filter ${String(f)}`);
      }
      px[o + x] = v & 0xff;
    }
  }
  if (channels === 3) return { width, height, data: px };
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    if (channels === 1) {
      const g = px[i] as number;
      rgb[3 * i] = g;
      rgb[3 * i + 1] = g;
      rgb[3 * i + 2] = g;
    } else {
      rgb[3 * i] = px[4 * i] as number;
      rgb[3 * i + 1] = px[4 * i + 1] as number;
      rgb[3 * i + 2] = px[4 * i + 2] as number;
    }
  }
  return { width, height, data: rgb };
}
