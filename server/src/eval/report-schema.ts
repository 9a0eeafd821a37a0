/**
 * `report.json` written by `dnp eval`: format "dnp-eval-report", version 1, and its validator.
 * Numbers that cannot be computed (no face in any frame, a constant series for Pearson r) are null.
 *
 * {
 *   "format": "dnp-eval-report", "version": 1, "created": ISO time, "tool": "dnp-live 0.1.0",
 *   "avatar":  { "dir", "name", "width", "height", "training": { "preset", "variant", "iterations" } (null if unknown),
 *                "trainedOn": { "sourceFile", "sourceSha256", "sameSource" } | null },
 *   "dataset": { "dir", "version", "source", "frameCount", "size", "fps", "trainFrames", "testFrames" },
 *   "options": { "retrack": bool, "driver": dir | null, "frames": evaluated frame indices },
 *   "regions": { "source": "dataset" | "tracked-ground-truth", "framesWithFace", "pad": { mouth, eye, face } },
 *   "reconstruction": { "avatar" | "meanFrame" | "nearestNeighbour": MethodScores },
 *   "perFrame": [ { "frame", "psnr", "ssim", "l1", "mouthPsnr" | null, "nnPsnr", "nnFrame" } ],
 *   "controllability": null | { "render": ControlStats, "groundTruth": ControlStats },
 *   "crossReenactment": null | { "driver": { "dir", "source", "frames" }, "driverNeutral": [60], "avatarNeutral": [60],
 *                                "render": ControlStats | null (null with --no-retrack) },
 *   "files": { "markdown", "strips": [..], "plot": name | null, "crossStrips": [..], "crossPlot": name | null },
 *   "seconds": total run time
 * }
 * MethodScores = { "frames", "whole": Scores, "mouth": Scores | null, "eyes": Scores | null,
 *                  "sharpness": { "frame": Sharp, "face": Sharp | null },
 *                  "temporal": { "pairs", "renderDiff", "truthDiff", "ratio", "meanAbsGap" } | null }
 * Scores = { "l1", "psnr", "ssim", "frames" };  Sharp = { "render", "truth", "ratio" }
 * ControlStats = see controllability.ts (pose/gaze in degrees, per-blendshape { mae, r, drivingStd }).
 */
import { BLENDSHAPE_NAMES } from '../../../shared/src/blendshapes.js';
import { CONDITIONING_SIZE } from '../../../shared/src/driving-values.js';
import { arr, bool, fail, num, numArray, obj, oneOf, str } from '../../../shared/src/json-check.js';
import type { BlendshapeAgreement, ControlStats } from './controllability.js';

const REPORT_FORMAT = 'dnp-eval-report';
const REPORT_VERSION = 1;
export const METHODS = ['avatar', 'meanFrame', 'nearestNeighbour'] as const;
export type Method = (typeof METHODS)[number];

export interface Scores {
  l1: number;
  psnr: number;
  ssim: number;
  /** Frames that had this region. */
  frames: number;
}
export interface Sharpness {
  render: number;
  truth: number;
  ratio: number;
}
export interface MethodScores {
  frames: number;
  whole: Scores;
  mouth: Scores | null;
  eyes: Scores | null;
  sharpness: { frame: Sharpness; face: Sharpness | null };
  temporal: { pairs: number; renderDiff: number; truthDiff: number; ratio: number | null; meanAbsGap: number } | null;
}
export interface PerFrame {
  frame: number;
  psnr: number;
  ssim: number;
  l1: number;
  mouthPsnr: number | null;
  nnPsnr: number;
  nnFrame: number;
}
export interface EvalReport {
  format: typeof REPORT_FORMAT;
  version: typeof REPORT_VERSION;
  created: string;
  tool: string;
  avatar: {
    dir: string;
    name: string;
    width: number;
    height: number;
    training: { preset: string | null; variant: string | null; iterations: number | null };
    /** The recording the avatar was trained on (from avatar.json), and whether it is this dataset's; null if unknown. */
    trainedOn: { sourceFile: string; sourceSha256: string; sameSource: boolean } | null;
  };
  dataset: { dir: string; version: number; source: string; frameCount: number; size: number; fps: number; trainFrames: number; testFrames: number };
  options: { retrack: boolean; driver: string | null; frames: number[] };
  regions: { source: 'dataset' | 'tracked-ground-truth'; framesWithFace: number; pad: { mouth: number; eye: number; face: number } };
  reconstruction: Record<Method, MethodScores>;
  perFrame: PerFrame[];
  controllability: { render: ControlStats; groundTruth: ControlStats } | null;
  crossReenactment: { driver: { dir: string; source: string; frames: number }; driverNeutral: number[]; avatarNeutral: number[]; render: ControlStats | null } | null;
  files: { markdown: string; strips: string[]; plot: string | null; crossStrips: string[]; crossPlot: string | null };
  seconds: number;
}

// ---- validator ---------------------------------------------------------------------------------------------
function numOrNull(v: unknown, path: string, opts: { min?: number; max?: number; int?: boolean } = {}): number | null {
  return v === null ? null : num(v, path, opts);
}
function strOrNull(v: unknown, path: string): string | null {
  return v === null ? null : str(v, path);
}
function fileName(v: unknown, path: string): string {
  const s = str(v, path, { nonEmpty: true });
  if (s.startsWith('/') || s.includes('..') || s.includes('\\')) fail(path, 'must be a path inside the report folder');
  return s;
}
function scores(v: unknown, p: string): Scores {
  const o = obj(v, p);
  return { l1: num(o.l1, `${p}.l1`, { min: 0, max: 255 }), psnr: num(o.psnr, `${p}.psnr`, { min: 0, max: 100 }), ssim: num(o.ssim, `${p}.ssim`, { min: -1, max: 1 }), frames: num(o.frames, `${p}.frames`, { int: true, min: 0 }) };
}
function sharp(v: unknown, p: string): Sharpness {
  const o = obj(v, p);
  return { render: num(o.render, `${p}.render`, { min: 0 }), truth: num(o.truth, `${p}.truth`, { min: 0 }), ratio: num(o.ratio, `${p}.ratio`, { min: 0 }) };
}
function method(v: unknown, p: string): MethodScores {
  const o = obj(v, p);
  const sh = obj(o.sharpness, `${p}.sharpness`);
  let temporal: MethodScores['temporal'] = null;
  if (o.temporal !== null) {
    const t = obj(o.temporal, `${p}.temporal`);
    temporal = {
      pairs: num(t.pairs, `${p}.temporal.pairs`, { int: true, min: 1 }),
      renderDiff: num(t.renderDiff, `${p}.temporal.renderDiff`, { min: 0 }),
      truthDiff: num(t.truthDiff, `${p}.temporal.truthDiff`, { min: 0 }),
      ratio: numOrNull(t.ratio, `${p}.temporal.ratio`, { min: 0 }),
      meanAbsGap: num(t.meanAbsGap, `${p}.temporal.meanAbsGap`, { min: 0 }),
    };
  }
  return {
    frames: num(o.frames, `${p}.frames`, { int: true, min: 1 }),
    whole: scores(o.whole, `${p}.whole`),
    mouth: o.mouth === null ? null : scores(o.mouth, `${p}.mouth`),
    eyes: o.eyes === null ? null : scores(o.eyes, `${p}.eyes`),
    sharpness: { frame: sharp(sh.frame, `${p}.sharpness.frame`), face: sh.face === null ? null : sharp(sh.face, `${p}.sharpness.face`) },
    temporal,
  };
}
function control(v: unknown, p: string): ControlStats {
  const o = obj(v, p);
  const frames = num(o.frames, `${p}.frames`, { int: true, min: 0 });
  const tracked = num(o.tracked, `${p}.tracked`, { int: true, min: 0, max: frames });
  let pose: ControlStats['pose'] = null;
  if (o.pose !== null) {
    const q = obj(o.pose, `${p}.pose`);
    const deg = (k: string): number => num(q[k], `${p}.pose.${k}`, { min: 0, max: 360 });
    pose = { meanDeg: deg('meanDeg'), medianDeg: deg('medianDeg'), pitchMaeDeg: deg('pitchMaeDeg'), yawMaeDeg: deg('yawMaeDeg'), rollMaeDeg: deg('rollMaeDeg') };
    if (q.gain !== undefined) {
      const g = obj(q.gain, `${p}.pose.gain`);
      const slope = (k: string): number | null => numOrNull(g[k], `${p}.pose.gain.${k}`, { min: -100, max: 100 });
      pose.gain = { pitch: slope('pitch'), yaw: slope('yaw'), roll: slope('roll') };
    }
  }
  let gaze: ControlStats['gaze'] = null;
  if (o.gaze !== null) {
    const g = obj(o.gaze, `${p}.gaze`);
    gaze = { meanDeg: num(g.meanDeg, `${p}.gaze.meanDeg`, { min: 0, max: 180 }), medianDeg: num(g.medianDeg, `${p}.gaze.medianDeg`, { min: 0, max: 180 }) };
  }
  if (tracked > 0 && (!pose || !gaze)) fail(p, 'pose and gaze are required when frames were tracked');
  const b = obj(o.blendshapes, `${p}.blendshapes`);
  const blendshapes: Record<string, BlendshapeAgreement> = {};
  for (const name of BLENDSHAPE_NAMES) {
    const e = obj(b[name], `${p}.blendshapes.${name}`);
    blendshapes[name] = {
      mae: tracked > 0 ? num(e.mae, `${p}.blendshapes.${name}.mae`, { min: 0, max: 1 }) : (numOrNull(e.mae, `${p}.blendshapes.${name}.mae`) ?? NaN),
      r: numOrNull(e.r, `${p}.blendshapes.${name}.r`, { min: -1.000001, max: 1.000001 }),
      drivingStd: tracked > 0 ? num(e.drivingStd, `${p}.blendshapes.${name}.drivingStd`, { min: 0 }) : (numOrNull(e.drivingStd, `${p}.blendshapes.${name}.drivingStd`) ?? NaN),
    };
  }
  return { frames, tracked, pose, gaze, blendshapes };
}

/** Validates a parsed report.json. Throws SchemaError naming the field. */
export function parseEvalReport(v: unknown, where = 'report.json'): EvalReport {
  const o = obj(v, where);
  const p = (k: string): string => `${where}: ${k}`;
  if (o.format !== REPORT_FORMAT) fail(p('format'), `expected "${REPORT_FORMAT}"`);
  if (o.version !== REPORT_VERSION) fail(p('version'), `unsupported version ${JSON.stringify(o.version)} (this reads ${REPORT_VERSION})`);
  const av = obj(o.avatar, p('avatar'));
  const tr = obj(av.training, p('avatar.training'));
  const ds = obj(o.dataset, p('dataset'));
  const op = obj(o.options, p('options'));
  const rg = obj(o.regions, p('regions'));
  const pad = obj(rg.pad, p('regions.pad'));
  const rc = obj(o.reconstruction, p('reconstruction'));
  const fl = obj(o.files, p('files'));
  const frameCount = num(ds.frameCount, p('dataset.frameCount'), { int: true, min: 1 });
  const frames = arr(op.frames, p('options.frames'), { min: 1 }).map((x, i) => num(x, p(`options.frames[${i}]`), { int: true, min: 0, max: frameCount - 1 }));
  const reconstruction = {} as Record<Method, MethodScores>;
  for (const m of METHODS) reconstruction[m] = method(rc[m], p(`reconstruction.${m}`));
  const perFrame = arr(o.perFrame, p('perFrame')).map((e, i) => {
    const f = obj(e, p(`perFrame[${i}]`));
    const q = (k: string): string => p(`perFrame[${i}].${k}`);
    return {
      frame: num(f.frame, q('frame'), { int: true, min: 0, max: frameCount - 1 }),
      psnr: num(f.psnr, q('psnr'), { min: 0, max: 100 }),
      ssim: num(f.ssim, q('ssim'), { min: -1, max: 1 }),
      l1: num(f.l1, q('l1'), { min: 0, max: 255 }),
      mouthPsnr: numOrNull(f.mouthPsnr, q('mouthPsnr'), { min: 0, max: 100 }),
      nnPsnr: num(f.nnPsnr, q('nnPsnr'), { min: 0, max: 100 }),
      nnFrame: num(f.nnFrame, q('nnFrame'), { int: true, min: 0, max: frameCount - 1 }),
    };
  });
  if (perFrame.length !== frames.length) fail(p('perFrame'), `expected one entry per evaluated frame (${frames.length})`);
  let controllability: EvalReport['controllability'] = null;
  if (o.controllability !== null) {
    const c = obj(o.controllability, p('controllability'));
    controllability = { render: control(c.render, p('controllability.render')), groundTruth: control(c.groundTruth, p('controllability.groundTruth')) };
  }
  let crossReenactment: EvalReport['crossReenactment'] = null;
  if (o.crossReenactment !== null) {
    const c = obj(o.crossReenactment, p('crossReenactment'));
    const d = obj(c.driver, p('crossReenactment.driver'));
    crossReenactment = {
      driver: { dir: str(d.dir, p('crossReenactment.driver.dir')), source: str(d.source, p('crossReenactment.driver.source')), frames: num(d.frames, p('crossReenactment.driver.frames'), { int: true, min: 1 }) },
      driverNeutral: numArray(c.driverNeutral, p('crossReenactment.driverNeutral'), CONDITIONING_SIZE),
      avatarNeutral: numArray(c.avatarNeutral, p('crossReenactment.avatarNeutral'), CONDITIONING_SIZE),
      render: c.render === null ? null : control(c.render, p('crossReenactment.render')),
    };
  }
  const retrack = bool(op.retrack, p('options.retrack'));
  if (!retrack && controllability) fail(p('controllability'), 'must be null when options.retrack is false');
  return {
    format: REPORT_FORMAT,
    version: REPORT_VERSION,
    created: str(o.created, p('created'), { nonEmpty: true }),
    tool: str(o.tool, p('tool')),
    avatar: {
      dir: str(av.dir, p('avatar.dir')),
      name: str(av.name, p('avatar.name')),
      width: num(av.width, p('avatar.width'), { int: true, min: 1 }),
      height: num(av.height, p('avatar.height'), { int: true, min: 1 }),
      training: { preset: strOrNull(tr.preset, p('avatar.training.preset')), variant: strOrNull(tr.variant, p('avatar.training.variant')), iterations: numOrNull(tr.iterations, p('avatar.training.iterations'), { int: true, min: 0 }) },
      trainedOn:
        av.trainedOn === null
          ? null
          : (() => {
              const t = obj(av.trainedOn, p('avatar.trainedOn'));
              return { sourceFile: str(t.sourceFile, p('avatar.trainedOn.sourceFile')), sourceSha256: str(t.sourceSha256, p('avatar.trainedOn.sourceSha256')), sameSource: bool(t.sameSource, p('avatar.trainedOn.sameSource')) };
            })(),
    },
    dataset: {
      dir: str(ds.dir, p('dataset.dir')),
      version: num(ds.version, p('dataset.version'), { int: true, min: 1 }),
      source: str(ds.source, p('dataset.source')),
      frameCount,
      size: num(ds.size, p('dataset.size'), { int: true, min: 1 }),
      fps: num(ds.fps, p('dataset.fps'), { min: 0 }),
      trainFrames: num(ds.trainFrames, p('dataset.trainFrames'), { int: true, min: 0 }),
      testFrames: num(ds.testFrames, p('dataset.testFrames'), { int: true, min: 0 }),
    },
    options: { retrack, driver: strOrNull(op.driver, p('options.driver')), frames },
    regions: {
      source: oneOf(rg.source, p('regions.source'), ['dataset', 'tracked-ground-truth'] as const),
      framesWithFace: num(rg.framesWithFace, p('regions.framesWithFace'), { int: true, min: 0 }),
      pad: { mouth: num(pad.mouth, p('regions.pad.mouth'), { min: 0 }), eye: num(pad.eye, p('regions.pad.eye'), { min: 0 }), face: num(pad.face, p('regions.pad.face'), { min: 0 }) },
    },
    reconstruction,
    perFrame,
    controllability,
    crossReenactment,
    files: {
      markdown: fileName(fl.markdown, p('files.markdown')),
      strips: arr(fl.strips, p('files.strips')).map((s, i) => fileName(s, p(`files.strips[${i}]`))),
      plot: fl.plot === null ? null : fileName(fl.plot, p('files.plot')),
      crossStrips: arr(fl.crossStrips, p('files.crossStrips')).map((s, i) => fileName(s, p(`files.crossStrips[${i}]`))),
      crossPlot: fl.crossPlot === null ? null : fileName(fl.crossPlot, p('files.crossPlot')),
    },
    seconds: num(o.seconds, p('seconds'), { min: 0 }),
  };
}

/** JSON text for a report: NaN and ±Infinity become null (JSON has neither). */
export function reportJson(r: EvalReport): string {
  return `${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}
