/**
 * Reads the arrays `dnp prepare` writes (the parser is server/src/prepare/npy.ts) and checks them against what the
 * caller expects; any problem throws an EvalInputError naming the file.
 */
import { readNpyFile } from '../prepare/npy.js';
import { EvalInputError } from './errors.js';

/** Reads a .npy file and checks its dtype and shape. */
export function readNpyChecked(path: string, dtype: 'float32', shape: readonly number[]): Float32Array;
export function readNpyChecked(path: string, dtype: 'uint8', shape: readonly number[]): Uint8Array;
export function readNpyChecked(path: string, dtype: 'float32' | 'uint8', shape: readonly number[]): Float32Array | Uint8Array {
  let a;
  try {
    a = readNpyFile(path);
  } catch (err) {
    throw new EvalInputError(err instanceof Error ? err.message : String(err));
  }
  if (a.dtype !== dtype || a.shape.join(',') !== shape.join(',')) {
    throw new EvalInputError(`${path}: expected ${dtype} [${shape.join(', ')}], found ${a.dtype} [${a.shape.join(', ')}]`);
  }
  return a.data;
}
