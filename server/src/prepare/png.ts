/**
 * Minimal lossless PNG encoder (8-bit RGB, no interlace) on node:zlib. Every row uses filter type
 * "Up" except the first ("None"): cheap, and it lets deflate at a low level compress photographic
 * frames well. Deflate runs on libuv's thread pool (async), so several frames encode in parallel with
 * decoding.
 */
import { deflate, constants as zc } from 'node:zlib';
import { promisify } from 'node:util';

const deflateAsync = promisify(deflate);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf: Uint8Array, start = 0, end = buf.length, crc = 0xffffffff): number {
  let c = crc;
  for (let i = start; i < end; i++) c = (CRC_TABLE[(c ^ (buf[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE((crc32(out, 4, 8 + data.length) ^ 0xffffffff) >>> 0, 8 + data.length);
  return out;
}

/** Filtered scanlines (filter byte + row) for RGB data with the given row stride in bytes. */
function pngScanlines(rgb: Uint8Array, width: number, height: number, stride = width * 3): Buffer {
  const row = width * 3;
  if (rgb.length < stride * (height - 1) + row) throw new RangeError(`RGB buffer too small for ${width}x${height}`);
  const out = Buffer.alloc((row + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (row + 1);
    const s = y * stride;
    if (y === 0) {
      out[o] = 0; // None
      out.set(rgb.subarray(s, s + row), o + 1);
    } else {
      out[o] = 2; // Up
      const p = s - stride;
      for (let x = 0; x < row; x++) out[o + 1 + x] = ((rgb[s + x] as number) - (rgb[p + x] as number)) & 0xff;
    }
  }
  return out;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Encodes 8-bit RGB pixels as a PNG file. `level` is the zlib level (1 = fastest). */
export async function encodePngRgb(rgb: Uint8Array, width: number, height: number, opts: { stride?: number; level?: number } = {}): Promise<Buffer> {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  ihdr[10] = 0;
  ihdr[11] = 0;
  ihdr[12] = 0;
  const idat = await deflateAsync(pngScanlines(rgb, width, height, opts.stride), { level: opts.level ?? 1, strategy: zc.Z_DEFAULT_STRATEGY });
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}

/** Reads width and height from a PNG's IHDR (for checks). */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  const b = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (b.length < 24 || !b.subarray(0, 8).equals(PNG_SIGNATURE) || b.toString('latin1', 12, 16) !== 'IHDR') throw new Error('not a PNG file');
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}
