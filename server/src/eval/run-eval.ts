/**
 * `dnp eval`: the whole evaluation of one avatar on its dataset (see docs/evaluation.md). Reads, renders,
 * scores, re-tracks, draws and writes REPORT_DIR/report.json (validated before it is written), report.md,
 * strips/*.png and the jawOpen plot. Owns the AvatarModel and every tracking session it opens.
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CONDITIONING_SIZE } from '../../../shared/src/driving-values.js';
import { PROJECT_ROOT } from '../project-paths.js';
import { encodePngRgb } from '../prepare/png.js';
import { Progress } from '../prepare/progress.js';
import { AvatarModel, readAvatarManifest } from './avatar-model.js';
import { meanTrainingFrame, nearestTrainingFrames } from './baselines.js';
import { controlStats } from './controllability.js';
import { crossReenact, type CrossResult } from './cross-reenactment.js';
import { drivingVector, loadDataset, type EvalDataset } from './dataset-reader.js';
import { EvalInputError } from './errors.js';
import { errorMap, hstack, strokeRect, type RgbImage } from './image.js';
import { checkTrackerModel, type EvalOptions } from './options.js';
import { framePlotSvg, writeSvgPngs } from './plot.js';
import { seriesAt, spread } from './frame-picks.js';
import { ssimStats } from './image-metrics.js';
import { MethodAccumulator } from './reconstruction.js';
import { REGION_PAD, frameRegions } from './regions.js';
import { renderMarkdown } from './report-markdown.js';
import { parseEvalReport, reportJson, type EvalReport, type PerFrame } from './report-schema.js';
import { retrack, type Retracked, type TrackerSetup } from './retrack.js';

function readJsonVersion(path: string): string {
  try {
    const v = (JSON.parse(readFileSync(path, 'utf8')) as { version?: unknown }).version;
    return typeof v === 'string' ? v : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The recording avatar.json says the avatar was trained on (training.dataset), compared with this dataset's. */
export function trainedOn(t: Record<string, unknown>, ds: EvalDataset): EvalReport['avatar']['trainedOn'] {
  const d = t.dataset;
  if (typeof d !== 'object' || d === null) return null;
  const o = d as Record<string, unknown>;
  if (typeof o.sourceSha256 !== 'string' || typeof o.sourceFile !== 'string') return null;
  return { sourceFile: o.sourceFile, sourceSha256: o.sourceSha256, sameSource: o.sourceSha256 === ds.manifest.source.sha256 };
}

function trainingInfo(t: Record<string, unknown>): EvalReport['avatar']['training'] {
  const s = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const it = t.iterations ?? t.iteration;
  return { preset: s(t.preset), variant: s(t.variant), iterations: typeof it === 'number' && Number.isInteger(it) && it >= 0 ? it : null };
}

/** Checks everything that can be checked before any work: files, sizes, the number of driving values. */
export function checkInputs(opts: EvalOptions): { ds: EvalDataset; driver: EvalDataset | null } {
  const manifest = readAvatarManifest(opts.avatar);
  const ds = loadDataset(opts.data, '--data');
  if (manifest.width !== ds.size || manifest.height !== ds.size) {
    throw new EvalInputError(`the avatar renders ${manifest.width}x${manifest.height} but the dataset's frames are ${ds.size}x${ds.size}: evaluate it on the dataset it was trained on (or one prepared with --size ${manifest.width})`);
  }
  if (ds.testIdx.length === 0) throw new EvalInputError(`${opts.data}: no valid frames in the test split ${JSON.stringify(ds.manifest.split.test)}`);
  if (ds.trainIdx.length === 0) throw new EvalInputError(`${opts.data}: no valid frames in the training split (the baselines need them)`);
  const driver = opts.driver ? loadDataset(opts.driver, '--driver') : null;
  if (driver && driver.trainIdx.length + driver.testIdx.length === 0) throw new EvalInputError(`--driver ${opts.driver}: no valid frames`);
  if (opts.retrack || !ds.landmarks || driver) checkTrackerModel(opts.trackerModel);
  return { ds, driver };
}

export async function runEval(opts: EvalOptions, log: Logger): Promise<EvalReport> {
  const t0 = performance.now();
  const { ds, driver } = checkInputs(opts);
  const tracker: TrackerSetup = {
    model: opts.retrack || !ds.landmarks || driver ? readFileSync(opts.trackerModel) : Buffer.alloc(0),
    clientDist: join(PROJECT_ROOT, 'client', 'dist'),
    ...(opts.chromium ? { chromiumPath: opts.chromium } : {}),
    onPageLog: (t) => log.debug({ page: t }, 'tracking page'),
  };
  await mkdir(join(opts.out, 'strips'), { recursive: true });
  const model = await AvatarModel.load(opts.avatar, { threads: opts.threads, batch: opts.batch });
  try {
    const m = model.manifest;
    const origin = trainedOn(m.training, ds);
    if (origin && !origin.sameSource) {
      log.warn({ trainedOn: origin.sourceFile, dataset: ds.manifest.source.file }, 'the avatar was trained on another recording: these test frames were not held out from it, or are of someone else');
    }
    const frames = opts.maxFrames ? spread(ds.testIdx.length, opts.maxFrames).map((k) => ds.testIdx[k] as number) : ds.testIdx;
    log.info({ avatar: opts.avatar, dataset: opts.data, testFrames: frames.length, trainFrames: ds.trainIdx.length, datasetVersion: ds.manifest.version }, 'evaluating');

    // ---- driving vectors, baselines ---------------------------------------------------------------------
    const driving = new Float32Array(frames.length * CONDITIONING_SIZE);
    frames.forEach((i, k) => driving.set(drivingVector(ds, i), k * CONDITIONING_SIZE));
    const meanFrame = meanTrainingFrame(ds);
    const nn = nearestTrainingFrames(ds, driving, m.conditioning.mean, m.conditioning.std);

    // ---- render ------------------------------------------------------------------------------------------
    const renders: RgbImage[] = [];
    const bar = new Progress('render', frames.length);
    await model.render(driving, (k, img) => {
      renders.push(img);
      bar.update(k + 1);
    });
    bar.finish();
    const truths = frames.map((i) => ds.readFrame(i));

    // ---- ground-truth tracking (regions of a v1 dataset; the tracker's noise floor) -------------------------
    let gtTracked: Retracked | null = null;
    if (opts.retrack || !ds.landmarks) gtTracked = await retrack(tracker, frames.length, (k) => truths[k] as RgbImage, ds.fps, 'truth');
    const landmarks = ds.landmarks
      ? (() => {
          const per = ds.landmarks.length / ds.n;
          const out = new Float32Array(frames.length * per);
          frames.forEach((i, k) => out.set((ds.landmarks as Float32Array).subarray(i * per, (i + 1) * per), k * per));
          return out;
        })()
      : (gtTracked as Retracked).landmarks;
    const regions = frames.map((_, k) => frameRegions(landmarks, k, ds.size, ds.size));

    // ---- reconstruction ----------------------------------------------------------------------------------
    const acc = { avatar: new MethodAccumulator(), meanFrame: new MethodAccumulator(), nearestNeighbour: new MethodAccumulator() };
    const perFrame: PerFrame[] = [];
    const sbar = new Progress('scores', frames.length);
    for (let k = 0; k < frames.length; k++) {
      const i = frames[k] as number;
      const truth = ssimStats(truths[k] as RgbImage);
      const rg = regions[k] as ReturnType<typeof frameRegions>;
      const a = acc.avatar.add(i, renders[k] as RgbImage, truth, rg);
      acc.meanFrame.add(i, meanFrame, truth, rg);
      const b = acc.nearestNeighbour.add(i, ds.readFrame(nn[k] as number), truth, rg);
      perFrame.push({ frame: i, psnr: a.whole.psnr, ssim: a.whole.ssim, l1: a.whole.l1, mouthPsnr: a.mouth?.psnr ?? null, nnPsnr: b.whole.psnr, nnFrame: nn[k] as number });
      sbar.update(k + 1);
    }
    sbar.finish();

    // ---- strips: truth | render | error map (region boxes) | nearest neighbour -------------------------------
    const stripFiles: string[] = [];
    for (const k of spread(frames.length, opts.strips)) {
      const truth = truths[k] as RgbImage;
      const render = renders[k] as RgbImage;
      const err = errorMap(render, truth);
      const rg = regions[k] as ReturnType<typeof frameRegions>;
      for (const b of rg.mouth) strokeRect(err, b, [0, 255, 0]);
      for (const b of rg.eyes) strokeRect(err, b, [0, 200, 255]);
      for (const b of rg.face) strokeRect(err, b, [160, 160, 160]);
      const name = `strips/frame-${String(frames[k]).padStart(6, '0')}.png`;
      const img = hstack([truth, render, err, ds.readFrame(nn[k] as number)]);
      await writeFile(join(opts.out, name), await encodePngRgb(img.data, img.width, img.height));
      stripFiles.push(name);
    }

    // ---- controllability: re-track the renders ---------------------------------------------------------------
    let controllability: EvalReport['controllability'] = null;
    let plot: string | null = null;
    const plots: Array<{ path: string; svg: string }> = [];
    if (opts.retrack && gtTracked) {
      const rt = await retrack(tracker, frames.length, (k) => renders[k] as RgbImage, ds.fps, 'retrack');
      controllability = { render: controlStats(driving, rt.cond, rt.found), groundTruth: controlStats(driving, gtTracked.cond, gtTracked.found) };
      plot = 'jaw-open.png';
      plots.push({ path: join(opts.out, plot), svg: framePlotSvg(frames, [
        { label: 'driving (dataset)', colour: '#1f77b4', values: seriesAt(frames, driving, null) },
        { label: 'render, re-tracked', colour: '#d62728', values: seriesAt(frames, rt.cond, rt.found) },
        { label: 'ground truth, re-tracked', colour: '#7f7f7f', values: seriesAt(frames, gtTracked.cond, gtTracked.found), dashed: true },
      ], `jawOpen over the test frames: ${m.name}`) });
    }

    // ---- cross-reenactment -----------------------------------------------------------------------------------
    let cross: CrossResult | null = null;
    if (driver) cross = await crossReenact(model, driver, opts, tracker, log);
    if (cross?.plot && cross.plotSvg) plots.push({ path: join(opts.out, cross.plot), svg: cross.plotSvg });
    await writeSvgPngs(plots, opts.chromium ?? undefined);

    const files: EvalReport['files'] = { markdown: 'report.md', strips: stripFiles, plot, crossStrips: cross?.strips ?? [], crossPlot: cross?.plot ?? null };
    const report: EvalReport = {
      format: 'dnp-eval-report',
      version: 1,
      created: new Date().toISOString(),
      tool: `dnp-live ${readJsonVersion(join(PROJECT_ROOT, 'package.json'))}`,
      avatar: { dir: opts.avatar, name: m.name, width: m.width, height: m.height, training: trainingInfo(m.training), trainedOn: origin },
      dataset: {
        dir: opts.data,
        version: ds.manifest.version,
        source: ds.manifest.source.file,
        frameCount: ds.n,
        size: ds.size,
        fps: ds.fps,
        trainFrames: ds.trainIdx.length,
        testFrames: ds.testIdx.length,
      },
      options: { retrack: opts.retrack, driver: opts.driver, frames },
      regions: { source: ds.landmarks ? 'dataset' : 'tracked-ground-truth', framesWithFace: regions.filter((r) => r.mouth.length > 0).length, pad: { ...REGION_PAD } },
      reconstruction: { avatar: acc.avatar.result(), meanFrame: acc.meanFrame.result(), nearestNeighbour: acc.nearestNeighbour.result() },
      perFrame,
      controllability,
      crossReenactment: cross?.report ?? null,
      files,
      seconds: (performance.now() - t0) / 1000,
    };
    const text = reportJson(report);
    const checked = parseEvalReport(JSON.parse(text) as unknown);
    await writeFile(join(opts.out, 'report.json'), text);
    await writeFile(join(opts.out, 'report.md'), renderMarkdown(checked));
    log.info({ out: opts.out, psnr: report.reconstruction.avatar.whole.psnr, seconds: report.seconds }, 'report written');
    return checked;
  } finally {
    await model.close();
  }
}
