/** Reads .npy v1/v2 files holding little-endian float32 ('<f4') or uint8 ('|u1') in C order (validated). */
import { readFileSync } from 'node:fs';

export interface NpyArray {
  shape: number[];
  data: Float32Array | Uint8Array;
}

export function parseNpy(buf: Buffer, what = 'npy'): NpyArray {
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${what}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : major === 2 || major === 3 ? buf.readUInt32LE(8) : -1;
  if (headerLen < 0) throw new Error(`${what}: unsupported .npy version ${major}`);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`${what}: bad .npy header`);
  if (fortran === 'True') throw new Error(`${what}: Fortran-order arrays are not supported`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const d = Number(s);
      if (!Number.isInteger(d) || d < 0) throw new Error(`${what}: bad dimension '${s}'`);
      return d;
    });
  const count = shape.reduce((a, b) => a * b, 1);
  const body = buf.subarray(start + headerLen);
  if (descr === '<f4') {
    if (body.length !== count * 4) throw new Error(`${what}: expected ${count * 4} data bytes, got ${body.length}`);
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = body.readFloatLE(i * 4);
    return { shape, data };
  }
  if (descr === '|u1' || descr === '<u1') {
    if (body.length !== count) throw new Error(`${what}: expected ${count} data bytes, got ${body.length}`);
    return { shape, data: new Uint8Array(body) };
  }
  throw new Error(`${what}: dtype ${descr} is not supported (float32 '<f4' or uint8 '|u1')`);
}

export function readNpyFile(path: string): NpyArray {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new Error(`${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseNpy(buf, path);
}
