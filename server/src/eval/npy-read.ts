/**
 * NPY v1.0/v2.0 reader for the arrays `dnp prepare` writes ('<f4' float32, '|u1' uint8, C order). Every
 * header field is checked; a file that does not match what the caller expects throws an EvalInputError
 * naming the file.
 */
import { readFileSync } from 'node:fs';
import { EvalInputError } from './errors.js';

export interface NpyArray {
  dtype: 'float32' | 'uint8';
  shape: number[];
  data: Float32Array | Uint8Array;
}

export function parseNpy(b: Buffer, where: string): NpyArray {
  if (b.length < 12 || b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new EvalInputError(`${where}: not a .npy file`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : major === 2 || major === 3 ? b.readUInt32LE(8) : -1;
  if (hlen < 0) throw new EvalInputError(`${where}: unsupported .npy version ${String(major)}`);
  const start = (major === 1 ? 10 : 12) + hlen;
  if (start > b.length) throw new EvalInputError(`${where}: truncated .npy header`);
  const header = b.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new EvalInputError(`${where}: bad .npy header`);
  if (!/'fortran_order':\s*False/.test(header)) throw new EvalInputError(`${where}: Fortran-order arrays are not supported`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 0) throw new EvalInputError(`${where}: bad .npy shape (${shapeText})`);
      return n;
    });
  const count = shape.reduce((a, c) => a * c, 1);
  const body = b.subarray(start);
  if (descr === '<f4') {
    if (body.length !== count * 4) throw new EvalInputError(`${where}: ${body.length} data bytes for float32 [${shape.join(', ')}]`);
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = body.readFloatLE(i * 4);
    return { dtype: 'float32', shape, data };
  }
  if (descr === '|u1' || descr === '<u1') {
    if (body.length !== count) throw new EvalInputError(`${where}: ${body.length} data bytes for uint8 [${shape.join(', ')}]`);
    return { dtype: 'uint8', shape, data: new Uint8Array(body) };
  }
  throw new EvalInputError(`${where}: unsupported dtype '${descr}' (expected float32 or uint8)`);
}

/** Reads a .npy file and checks its dtype and shape. */
export function readNpyChecked(path: string, dtype: 'float32', shape: readonly number[]): Float32Array;
export function readNpyChecked(path: string, dtype: 'uint8', shape: readonly number[]): Uint8Array;
export function readNpyChecked(path: string, dtype: 'float32' | 'uint8', shape: readonly number[]): Float32Array | Uint8Array {
  let b: Buffer;
  try {
    b = readFileSync(path);
  } catch {
    throw new EvalInputError(`${path}: cannot read (missing file?)`);
  }
  const a = parseNpy(b, path);
  if (a.dtype !== dtype || a.shape.join(',') !== shape.join(',')) {
    throw new EvalInputError(`${path}: expected ${dtype} [${shape.join(', ')}], found ${a.dtype} [${a.shape.join(', ')}]`);
  }
  return a.data;
}
