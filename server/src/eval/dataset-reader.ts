/**
 * Reads a `dnp prepare` dataset folder (dataset v1 or v2, shared/src/dataset-schema.ts) for evaluation:
 * the manifest (validated), the driving values as flat [N × 60] (pose, gaze, blendshapes), the valid mask,
 * the landmarks (v2; null for v1), the train/test frame lists (valid frames only) and the PNG frames.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BLENDSHAPE_COUNT } from '../../../shared/src/blendshapes.js';
import { parseDatasetManifest, type DatasetManifest } from '../../../shared/src/dataset-schema.js';
import { CONDITIONING_SIZE } from '../../../shared/src/driving-values.js';
import { LANDMARK_COUNT } from '../../../shared/src/face-landmarks.js';
import { SchemaError } from '../../../shared/src/json-check.js';
import { GAZE_SIZE, POSE_SIZE } from '../../../shared/src/pose.js';
import { EvalInputError } from './errors.js';
import type { RgbImage } from './image.js';
import { readNpyChecked } from './npy-read.js';
import { decodePng } from './png-decode.js';

export interface EvalDataset {
  dir: string;
  manifest: DatasetManifest;
  n: number;
  size: number;
  fps: number;
  /** Driving values, [n × 60]: pose 6, gaze 2, blendshapes 52 (physical units, not normalised). */
  cond: Float32Array;
  valid: Uint8Array;
  /** [n × 478 × 2] output pixels of the crop, NaN where no face; null for a v1 dataset. */
  landmarks: Float32Array | null;
  trainIdx: number[];
  testIdx: number[];
  readFrame(i: number): RgbImage;
}

function framePattern(pattern: string, where: string): (i: number) => string {
  const m = /^([A-Za-z0-9_-]*)%(0?)(\d*)d\.png$/.exec(pattern);
  if (!m) throw new EvalInputError(`${where}: frames.pattern ${JSON.stringify(pattern)} is not like %06d.png`);
  const [, prefix = '', zero = '', width = ''] = m;
  const w = width === '' ? 0 : Number(width);
  return (i) => `${prefix}${zero === '0' ? String(i).padStart(w, '0') : String(i).padStart(w, ' ')}.png`;
}

/** Loads DIR; every problem (missing folder, bad manifest, array of the wrong shape) is an EvalInputError. */
export function loadDataset(dir: string, flag = '--data'): EvalDataset {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new EvalInputError(`${flag} ${dir}: no such folder`);
  const mpath = join(dir, 'dataset.json');
  if (!existsSync(mpath)) throw new EvalInputError(`${flag} ${dir}: no dataset.json (is it a folder written by 'dnp prepare'?)`);
  let manifest: DatasetManifest;
  try {
    manifest = parseDatasetManifest(JSON.parse(readFileSync(mpath, 'utf8')) as unknown, mpath);
  } catch (err) {
    if (err instanceof SchemaError || err instanceof SyntaxError) throw new EvalInputError(`${mpath}: ${err.message}`);
    throw err;
  }
  const n = manifest.frameCount;
  const a = manifest.arrays;
  const pose = readNpyChecked(join(dir, a.pose.file), 'float32', [n, POSE_SIZE]);
  const gaze = readNpyChecked(join(dir, a.gaze.file), 'float32', [n, GAZE_SIZE]);
  const blend = readNpyChecked(join(dir, a.blendshapes.file), 'float32', [n, BLENDSHAPE_COUNT]);
  const valid = readNpyChecked(join(dir, a.valid.file), 'uint8', [n]);
  const landmarks = a.landmarks ? readNpyChecked(join(dir, a.landmarks.file), 'float32', [n, LANDMARK_COUNT, 2]) : null;
  const cond = new Float32Array(n * CONDITIONING_SIZE);
  for (let i = 0; i < n; i++) {
    cond.set(pose.subarray(i * POSE_SIZE, (i + 1) * POSE_SIZE), i * CONDITIONING_SIZE);
    cond.set(gaze.subarray(i * GAZE_SIZE, (i + 1) * GAZE_SIZE), i * CONDITIONING_SIZE + POSE_SIZE);
    cond.set(blend.subarray(i * BLENDSHAPE_COUNT, (i + 1) * BLENDSHAPE_COUNT), i * CONDITIONING_SIZE + POSE_SIZE + GAZE_SIZE);
  }
  for (let i = 0; i < n; i++) {
    if (valid[i] !== 1) continue;
    for (let k = 0; k < CONDITIONING_SIZE; k++) {
      if (!Number.isFinite(cond[i * CONDITIONING_SIZE + k] as number)) throw new EvalInputError(`${dir}: frame ${i} has a non-finite driving value`);
    }
  }
  const range = (r: [number, number]): number[] => {
    const out: number[] = [];
    for (let i = r[0]; i < r[1]; i++) if (valid[i] === 1) out.push(i);
    return out;
  };
  const name = framePattern(manifest.frames.pattern, mpath);
  const framesDir = join(dir, manifest.frames.dir);
  const size = manifest.size;
  return {
    dir,
    manifest,
    n,
    size,
    fps: manifest.fps,
    cond,
    valid,
    landmarks,
    trainIdx: range(manifest.split.train),
    testIdx: range(manifest.split.test),
    readFrame(i: number): RgbImage {
      const path = join(framesDir, name(i));
      let buf: Buffer;
      try {
        buf = readFileSync(path);
      } catch {
        throw new EvalInputError(`${path}: frame ${i} is missing`);
      }
      const img = decodePng(buf, path);
      if (img.width !== size || img.height !== size) throw new EvalInputError(`${path}: is ${img.width}x${img.height}, dataset.json says ${size}x${size}`);
      return img;
    },
  };
}

/** One frame's driving vector (a view into `cond`). */
export function drivingVector(ds: EvalDataset, i: number): Float32Array {
  return ds.cond.subarray(i * CONDITIONING_SIZE, (i + 1) * CONDITIONING_SIZE);
}
