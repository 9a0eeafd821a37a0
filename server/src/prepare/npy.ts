/**
 * NPY format version 1.0 writer (numpy's .npy): magic "\x93NUMPY", version 1.0, a little-endian uint16
 * header length, and an ASCII dict header padded with spaces to a multiple of 64 bytes and ended by "\n",
 * followed by the raw C-order data. Pure: returns the bytes. Also the reader (`parseNpy`, `readNpyFile`) for
 * the arrays of a dataset.
 */
import { readFileSync } from 'node:fs';
import type { ArrayDType } from '../../../shared/src/dataset-schema.js';

const DESCR: Record<ArrayDType, string> = { float32: '<f4', uint8: '|u1' };

export function npyHeader(dtype: ArrayDType, shape: readonly number[]): Buffer {
  for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new RangeError(`bad npy dimension ${d}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const unpadded = 10 + dict.length + 1; // magic(6) + version(2) + length(2) + dict + '\n'
  const total = Math.ceil(unpadded / 64) * 64;
  const headerLen = total - 10;
  if (headerLen > 0xffff) throw new RangeError('npy header too long');
  const out = Buffer.alloc(total, 0x20);
  out.write('\x93NUMPY', 0, 'latin1');
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(headerLen, 8);
  out.write(dict, 10, 'latin1');
  out[total - 1] = 0x0a;
  return out;
}

/** Encodes a float32 or uint8 array of the given shape (C order) as .npy bytes. */
export function encodeNpy(data: Float32Array | Uint8Array, shape: readonly number[]): Buffer {
  const dtype: ArrayDType = data instanceof Float32Array ? 'float32' : 'uint8';
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`npy shape [${shape.join(', ')}] holds ${count} values, data has ${data.length}`);
  const header = npyHeader(dtype, shape);
  const body = Buffer.alloc(data.byteLength);
  if (data instanceof Float32Array) {
    for (let i = 0; i < data.length; i++) body.writeFloatLE(data[i] as number, i * 4);
  } else {
    body.set(data);
  }
  return Buffer.concat([header, body]);
}

/** Parses NPY v1-v3 holding little-endian float32 ('<f4') or uint8 ('|u1') in C order; every header field is
 * checked and an error names `where`. */
export interface NpyArray {
  dtype: 'float32' | 'uint8';
  shape: number[];
  data: Float32Array | Uint8Array;
}

export function parseNpy(b: Buffer, where: string): NpyArray {
  if (b.length < 12 || b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${where}: not a .npy file`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : major === 2 || major === 3 ? b.readUInt32LE(8) : -1;
  if (hlen < 0) throw new Error(`${where}: unsupported .npy version ${String(major)}`);
  const start = (major === 1 ? 10 : 12) + hlen;
  if (start > b.length) throw new Error(`${where}: truncated .npy header`);
  const header = b.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new Error(`${where}: bad .npy header`);
  if (!/'fortran_order':\s*False/.test(header)) throw new Error(`${where}: Fortran-order arrays are not supported`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${where}: bad .npy shape (${shapeText})`);
      return n;
    });
  const count = shape.reduce((a, c) => a * c, 1);
  const body = b.subarray(start);
  if (descr === '<f4') {
    if (body.length !== count * 4) throw new Error(`${where}: ${body.length} data bytes for float32 [${shape.join(', ')}]`);
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = body.readFloatLE(i * 4);
    return { dtype: 'float32', shape, data };
  }
  if (descr === '|u1' || descr === '<u1') {
    if (body.length !== count) throw new Error(`${where}: ${body.length} data bytes for uint8 [${shape.join(', ')}]`);
    return { dtype: 'uint8', shape, data: new Uint8Array(body) };
  }
  throw new Error(`${where}: unsupported dtype '${descr}' (expected float32 or uint8)`);
}

/** Reads and parses a .npy file (errors name the path). */
export function readNpyFile(path: string): NpyArray {
  let b: Buffer;
  try {
    b = readFileSync(path);
  } catch {
    throw new Error(`${path}: cannot read (missing file?)`);
  }
  return parseNpy(b, path);
}
