/**
 * NPY format version 1.0 writer (numpy's .npy): magic "\x93NUMPY", version 1.0, a little-endian uint16
 * header length, and an ASCII dict header padded with spaces to a multiple of 64 bytes and ended by "\n",
 * followed by the raw C-order data. Pure: returns the bytes.
 */
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
