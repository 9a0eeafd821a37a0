/**
 * Cross-reenactment (`dnp eval --driver DIR`): another person's tracked clip drives the avatar through the
 * same neutral calibration the live server uses (shared/src/retarget.ts): the driver's neutral is the
 * per-value median of the driver dataset's valid frames, the avatar's neutral comes from avatar.json.
 * The renders are re-tracked and compared with the retargeted vectors; strips show driver frame | render.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CONDITIONING_SIZE, emptyDrivingValues, flattenDrivingValues, type DrivingValues } from '../../../shared/src/driving-values.js';
import { GAZE_SIZE, POSE_SIZE } from '../../../shared/src/pose.js';
import { retarget } from '../../../shared/src/retarget.js';
import { encodePngRgb } from '../prepare/png.js';
import { Progress } from '../prepare/progress.js';
import type { AvatarModel } from './avatar-model.js';
import { controlStats } from './controllability.js';
import { drivingVector, type EvalDataset } from './dataset-reader.js';
import { hstack, resize, type RgbImage } from './image.js';
import type { EvalOptions } from './options.js';
import type { EvalReport } from './report-schema.js';
import { retrack, type TrackerSetup } from './retrack.js';
import { seriesAt, spread } from './frame-picks.js';
import { framePlotSvg } from './plot.js';

export interface CrossResult {
  report: NonNullable<EvalReport['crossReenactment']>;
  strips: string[];
  plot: string | null;
  /** The plot's SVG, for the caller to turn into `plot` (one browser for all plots). */
  plotSvg: string | null;
}

function valuesOf(flat: ArrayLike<number>): DrivingValues {
  const v = emptyDrivingValues();
  for (let j = 0; j < CONDITIONING_SIZE; j++) {
    const x = flat[j] as number;
    if (j < POSE_SIZE) v.pose[j] = x;
    else if (j < POSE_SIZE + GAZE_SIZE) v.gaze[j - POSE_SIZE] = x;
    else v.blendshapes[j - POSE_SIZE - GAZE_SIZE] = x;
  }
  return v;
}

/** Per-value median of the given frames' driving vectors. */
function medianVector(ds: EvalDataset, idx: readonly number[]): Float32Array {
  const out = new Float32Array(CONDITIONING_SIZE);
  const col = new Float64Array(idx.length);
  for (let j = 0; j < CONDITIONING_SIZE; j++) {
    idx.forEach((i, k) => (col[k] = ds.cond[i * CONDITIONING_SIZE + j] as number));
    col.sort();
    const m = col.length >> 1;
    out[j] = col.length % 2 ? (col[m] as number) : ((col[m - 1] as number) + (col[m] as number)) / 2;
  }
  return out;
}

export async function crossReenact(model: AvatarModel, driver: EvalDataset, opts: EvalOptions, tracker: TrackerSetup, log: Logger): Promise<CrossResult> {
  const m = model.manifest;
  const valid: number[] = [];
  for (let i = 0; i < driver.n; i++) if (driver.valid[i] === 1) valid.push(i);
  const frames = valid.slice(0, opts.driverFrames);
  const driverNeutral = medianVector(driver, valid);
  const avatarNeutral = new Float32Array(CONDITIONING_SIZE);
  flattenDrivingValues({ pose: Float32Array.from(m.neutral.pose), gaze: Float32Array.from(m.neutral.gaze), blendshapes: Float32Array.from(m.neutral.blendshapes) }, avatarNeutral);
  const callerNeutral = valuesOf(driverNeutral);
  const target = valuesOf(avatarNeutral);
  const driving = new Float32Array(frames.length * CONDITIONING_SIZE);
  const out = emptyDrivingValues();
  frames.forEach((i, k) => {
    retarget(valuesOf(drivingVector(driver, i)), callerNeutral, target, out);
    flattenDrivingValues(out, driving, k * CONDITIONING_SIZE);
  });
  log.info({ driver: driver.dir, frames: frames.length }, 'cross-reenactment');
  const renders: RgbImage[] = [];
  const bar = new Progress('cross', frames.length);
  await model.render(driving, (k, img) => {
    renders.push(img);
    bar.update(k + 1);
  });
  bar.finish();

  await mkdir(join(opts.out, 'cross'), { recursive: true });
  const strips: string[] = [];
  for (const k of spread(frames.length, opts.strips)) {
    const name = `cross/frame-${String(frames[k]).padStart(6, '0')}.png`;
    const img = hstack([resize(driver.readFrame(frames[k] as number), m.width, m.height), renders[k] as RgbImage]);
    await writeFile(join(opts.out, name), await encodePngRgb(img.data, img.width, img.height));
    strips.push(name);
  }

  let render: ReturnType<typeof controlStats> | null = null;
  let plot: string | null = null;
  let plotSvg: string | null = null;
  if (opts.retrack) {
    const rt = await retrack(tracker, frames.length, (k) => renders[k] as RgbImage, driver.fps, 'retrack');
    render = controlStats(driving, rt.cond, rt.found);
    plot = 'jaw-open-cross.png';
    const own = new Float32Array(frames.length * CONDITIONING_SIZE);
    frames.forEach((i, k) => own.set(drivingVector(driver, i), k * CONDITIONING_SIZE));
    plotSvg = framePlotSvg(frames, [
      { label: 'driving (retargeted)', colour: '#1f77b4', values: seriesAt(frames, driving, null) },
      { label: 'render, re-tracked', colour: '#d62728', values: seriesAt(frames, rt.cond, rt.found) },
      { label: 'driver, as tracked', colour: '#7f7f7f', values: seriesAt(frames, own, null), dashed: true },
    ], `jawOpen, ${driver.manifest.source.file} driving ${m.name}`);
  }
  return {
    report: { driver: { dir: driver.dir, source: driver.manifest.source.file, frames: frames.length }, driverNeutral: Array.from(driverNeutral), avatarNeutral: Array.from(avatarNeutral), render },
    strips,
    plot,
    plotSvg,
  };
}
