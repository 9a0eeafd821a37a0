/**
 * The two baselines every report carries, on the same test frames as the avatar:
 *  - the mean training frame (per-pixel mean of all valid training frames), one picture for every frame;
 *  - nearest neighbour: the training frame whose normalised driving vector ((v − mean) / std with the
 *    avatar manifest's normalisation) is closest (Euclidean) to the test frame's.
 */
import { CONDITIONING_SIZE } from '../../../shared/src/driving-values.js';
import { Progress } from '../prepare/progress.js';
import type { EvalDataset } from './dataset-reader.js';
import type { RgbImage } from './image.js';

export function meanTrainingFrame(ds: EvalDataset): RgbImage {
  const n = ds.size * ds.size * 3;
  const acc = new Float64Array(n);
  const bar = new Progress('mean', ds.trainIdx.length);
  ds.trainIdx.forEach((i, k) => {
    const img = ds.readFrame(i);
    for (let j = 0; j < n; j++) acc[j] = (acc[j] as number) + (img.data[j] as number);
    bar.update(k + 1);
  });
  bar.finish();
  const data = new Uint8Array(n);
  const count = Math.max(1, ds.trainIdx.length);
  for (let j = 0; j < n; j++) data[j] = Math.round((acc[j] as number) / count);
  return { width: ds.size, height: ds.size, data };
}

/** For each query vector (raw, flat k × 60), the training frame index with the closest normalised vector. */
export function nearestTrainingFrames(ds: EvalDataset, queries: Float32Array, mean: readonly number[], std: readonly number[]): number[] {
  const norm = (src: Float32Array, off: number, out: Float64Array): void => {
    for (let j = 0; j < CONDITIONING_SIZE; j++) out[j] = ((src[off + j] as number) - (mean[j] as number)) / (std[j] as number);
  };
  const train = ds.trainIdx.map((i) => {
    const v = new Float64Array(CONDITIONING_SIZE);
    norm(ds.cond, i * CONDITIONING_SIZE, v);
    return v;
  });
  const q = new Float64Array(CONDITIONING_SIZE);
  const out: number[] = [];
  for (let k = 0; k < queries.length / CONDITIONING_SIZE; k++) {
    norm(queries, k * CONDITIONING_SIZE, q);
    let best = Infinity, bestIdx = -1;
    train.forEach((v, t) => {
      let d = 0;
      for (let j = 0; j < CONDITIONING_SIZE; j++) d += ((v[j] as number) - (q[j] as number)) ** 2;
      if (d < best) {
        best = d;
        bestIdx = t;
      }
    });
    out.push(ds.trainIdx[bestIdx] as number);
  }
  return out;
}
