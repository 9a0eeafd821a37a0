// `dnp eval` building blocks against hand-computed values: image metrics, regions, controllability maths,
// PNG/NPY readers, the dataset v1/v2 validator, prepare's landmark conversion, option parsing.
import { describe, expect, it } from 'vitest';
import { parseDatasetManifest } from '../shared/src/dataset-schema.js';
import { LANDMARK_COUNT, MOUTH_OUTER_LIPS, landmarkRegion } from '../shared/src/face-landmarks.js';
import { parseTrainArgs, pythonArgs } from '../server/src/cli/train.js';
import { ablationMarkdown, parseAblationArgs } from '../server/src/eval/ablation.js';
import { controlStats, gazeErrorDeg, rotationErrorDeg } from '../server/src/eval/controllability.js';
import { EvalInputError } from '../server/src/eval/errors.js';
import { JAW_OPEN, seriesAt, spread } from '../server/src/eval/frame-picks.js';
import { errorMap, hstack, resize, type RgbImage } from '../server/src/eval/image.js';
import { PSNR_CAP, frameDifference, l1AndMse, meanGradient, pearson, psnrFromMse, regionScores, ssim, ssimMap } from '../server/src/eval/image-metrics.js';
import { UsageError } from '../server/src/cli/args.js';
import { parseEvalArgs } from '../server/src/eval/options.js';
import { svgLinePlot } from '../server/src/eval/plot.js';
import { trainedOn } from '../server/src/eval/run-eval.js';
import type { EvalDataset } from '../server/src/eval/dataset-reader.js';
import { decodePng } from '../server/src/eval/png-decode.js';
import { frameRegions } from '../server/src/eval/regions.js';
import { encodeNpy, parseNpy } from '../server/src/prepare/npy.js';
import { cropLandmarks } from '../server/src/prepare/pipeline.js';
import { encodePngRgb } from '../server/src/prepare/png.js';
import { parsePageResults, type TrackedFrame } from '../server/src/prepare/tracking-server.js';

function image(w: number, h: number, f: (x: number, y: number, c: number) => number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = f(x, y, c);
  return { width: w, height: h, data };
}

const textured = image(48, 40, (x, y, c) => (x * 37 + y * 91 + c * 53 + ((x * y) % 17) * 7) % 200 + 20);

describe('image metrics', () => {
  it('identical images: L1 0, PSNR capped, SSIM 1', () => {
    const { l1, mse } = l1AndMse(textured, textured);
    expect(l1).toBe(0);
    expect(psnrFromMse(mse)).toBe(PSNR_CAP);
    expect(ssim(textured, textured)).toBeCloseTo(1, 10);
    expect(frameDifference(textured, textured)).toBe(0);
  });

  it('a constant offset of 10: L1 10, PSNR 10·log10(255²/100), SSIM from the luminance term alone', () => {
    const a = image(32, 32, () => 100);
    const b = image(32, 32, () => 110);
    const { l1, mse } = l1AndMse(a, b);
    expect(l1).toBe(10);
    expect(mse).toBe(100);
    expect(psnrFromMse(mse)).toBeCloseTo(28.1308, 4);
    // flat images: no variance, so SSIM = (2·100·110 + C1) / (100² + 110² + C1), C1 = (0.01·255)²
    const c1 = 2.55 ** 2;
    expect(ssim(a, b)).toBeCloseTo((22000 + c1) / (22100 + c1), 6); // the SSIM map is float32
    // the offset on a textured picture keeps the structure: SSIM stays high, but below 1
    const t2 = image(48, 40, (x, y, c) => (textured.data[(y * 48 + x) * 3 + c] as number) + 10);
    expect(l1AndMse(textured, t2).l1).toBe(10);
    const s = ssim(textured, t2);
    expect(s).toBeLessThan(1);
    expect(s).toBeGreaterThan(0.97);
  });

  it('a ramp shifted by one pixel: every column but the first is off by the ramp step', () => {
    const a = image(64, 8, (x) => 4 * x);
    const b = image(64, 8, (x) => 4 * Math.max(0, x - 1));
    const { l1, mse } = l1AndMse(a, b);
    expect(l1).toBeCloseTo((4 * 63) / 64, 12);
    expect(mse).toBeCloseTo((16 * 63) / 64, 12);
    expect(psnrFromMse(mse)).toBeCloseTo(10 * Math.log10((255 * 255 * 64) / (16 * 63)), 10);
    // stripes shifted by one pixel are their own negative: SSIM close to −1
    const s1 = image(32, 32, (x) => (x % 2 ? 255 : 0));
    const s2 = image(32, 32, (x) => (x % 2 ? 0 : 255));
    expect(ssim(s1, s2)).toBeLessThan(-0.9);
    expect(psnrFromMse(l1AndMse(s1, s2).mse)).toBe(0);
  });

  it('regions: a box restricts the metric; several boxes count together', () => {
    const a = image(20, 20, () => 50);
    const b = image(20, 20, (x, y) => (x < 10 && y < 10 ? 60 : 50));
    const map = ssimMap(a, b);
    expect(regionScores(a, b, map, [{ x0: 0, y0: 0, x1: 10, y1: 10 }])?.l1).toBe(10);
    expect(regionScores(a, b, map, [{ x0: 10, y0: 10, x1: 20, y1: 20 }])?.psnr).toBe(PSNR_CAP);
    expect(regionScores(a, b, map, [{ x0: 0, y0: 0, x1: 10, y1: 10 }, { x0: 10, y0: 0, x1: 20, y1: 10 }])?.l1).toBe(5);
    expect(regionScores(a, b, map, [])).toBeNull();
    expect(regionScores(a, b, map)?.l1).toBe(2.5);
  });

  it('sharpness: the mean gradient of a ramp is its step; flat is 0; blur lowers it', () => {
    expect(meanGradient(image(16, 16, (x) => 3 * x))).toBeCloseTo(3, 10);
    expect(meanGradient(image(16, 16, () => 77))).toBe(0);
    const sharp = image(32, 32, (x) => (x < 16 ? 0 : 200));
    const soft = image(32, 32, (x) => Math.max(0, Math.min(200, (x - 12) * 25)));
    expect(meanGradient(soft)).toBeLessThanOrEqual(meanGradient(sharp) + 1e-9);
    expect(meanGradient(sharp, { x0: 0, y0: 0, x1: 8, y1: 8 })).toBe(0);
  });

  it('pearson: ±1 for (anti)linear series, null for a constant one', () => {
    expect(pearson([1, 2, 3, 4], [2, 4, 6, 8])).toBeCloseTo(1, 12);
    expect(pearson([1, 2, 3, 4], [8, 6, 4, 2])).toBeCloseTo(-1, 12);
    expect(pearson([1, 2, 3], [5, 5, 5])).toBeNull();
    expect(pearson([1], [1])).toBeNull();
  });
});

describe('controllability maths', () => {
  it('rotation and gaze errors in degrees', () => {
    expect(rotationErrorDeg([0.1, -0.2, 0.05], [0.1, -0.2, 0.05])).toBeCloseTo(0, 5);
    expect(rotationErrorDeg([0, 0, 0], [0, (10 * Math.PI) / 180, 0])).toBeCloseTo(10, 8);
    expect(rotationErrorDeg([(5 * Math.PI) / 180, 0, 0], [0, 0, 0])).toBeCloseTo(5, 8);
    expect(gazeErrorDeg([0.1, 0], [0, 0])).toBeCloseTo((0.1 * 180) / Math.PI, 8);
  });

  it('controlStats compares only frames with a face', () => {
    const n = 4;
    const driving = new Float32Array(n * 60);
    const tracked = new Float32Array(n * 60);
    for (let k = 0; k < n; k++) {
      driving[k * 60 + JAW_OPEN] = k / 4;
      tracked[k * 60 + JAW_OPEN] = k / 4 + 0.1;
      tracked[k * 60 + 1] = (2 * Math.PI) / 180; // yaw off by 2°
    }
    tracked[3 * 60 + JAW_OPEN] = 0.9; // frame 3 not found: ignored
    const s = controlStats(driving, tracked, Uint8Array.from([1, 1, 1, 0]));
    expect(s.tracked).toBe(3);
    expect(s.blendshapes.jawOpen?.mae).toBeCloseTo(0.1, 6);
    expect(s.blendshapes.jawOpen?.r).toBeCloseTo(1, 6);
    expect(s.blendshapes.mouthClose?.r).toBeNull();
    expect(s.pose?.meanDeg).toBeCloseTo(2, 4);
    expect(s.pose?.yawMaeDeg).toBeCloseTo(2, 4);
    expect(controlStats(driving, tracked, new Uint8Array(n)).pose).toBeNull();
  });

  it('controlStats measures how far the head turns against how far it is driven (gain per axis)', () => {
    const n = 20;
    const driving = new Float32Array(n * 60);
    const tracked = new Float32Array(n * 60);
    const rad = Math.PI / 180;
    for (let k = 0; k < n; k++) {
      const roll = (k - 10) * rad; // -10..9°
      driving[k * 60 + 2] = roll;
      tracked[k * 60 + 2] = 0.5 * roll + 1 * rad; // half the roll, and 1° off
      driving[k * 60 + 1] = (k % 2 ? 3 : -3) * rad; // yaw turned exactly
      tracked[k * 60 + 1] = driving[k * 60 + 1] as number;
      driving[k * 60 + 0] = 0.1 * rad * (k % 2); // pitch hardly moves: no gain
      tracked[k * 60 + 0] = 2 * rad;
    }
    const g = controlStats(driving, tracked, new Uint8Array(n).fill(1)).pose?.gain;
    expect(g?.roll).toBeCloseTo(0.5, 5);
    expect(g?.yaw).toBeCloseTo(1, 5);
    expect(g?.pitch).toBeNull();
  });
});

describe('landmark regions', () => {
  it('pads the box of the points and clips it to the frame; NaN means no face', () => {
    const pts = new Float32Array(LANDMARK_COUNT * 2).fill(50);
    for (const k of MOUTH_OUTER_LIPS) {
      pts[2 * k] = 40 + (k % 2) * 20; // x in {40, 60}
      pts[2 * k + 1] = 70 + (k % 3 === 0 ? 10 : 0); // y in {70, 80}
    }
    expect(landmarkRegion(pts, MOUTH_OUTER_LIPS, 100, 100, 0.25)).toEqual({ x0: 35, y0: 65, x1: 65, y1: 85 });
    expect(landmarkRegion(pts, MOUTH_OUTER_LIPS, 62, 100, 0.25)).toEqual({ x0: 35, y0: 65, x1: 62, y1: 85 });
    const none = new Float32Array(LANDMARK_COUNT * 2).fill(NaN);
    expect(landmarkRegion(none, MOUTH_OUTER_LIPS, 100, 100)).toBeNull();
    expect(frameRegions(none, 0, 100, 100)).toEqual({ mouth: [], eyes: [], face: [] });
    expect(frameRegions(null, 0, 100, 100).mouth).toEqual([]);
    const r = frameRegions(pts, 0, 100, 100);
    expect(r.mouth).toHaveLength(1);
    expect(r.eyes).toHaveLength(2);
  });

  it('prepare maps normalised landmarks into output pixels of the crop, NaN without a face', () => {
    const lm = new Float32Array(LANDMARK_COUNT * 2);
    lm[0] = 0.5; // x → 0.5 × 640 = 320 px in the source; crop x 200, 400 px → 256 px: (320 − 200) × 0.64
    lm[1] = 0.25; // y → 0.25 × 480 = 120 px; crop y 40: (120 − 40) × 0.64
    const frame = (found: boolean): TrackedFrame => ({ found, pose: null, gaze: null, blendshapes: null, box: null, landmarks: found ? lm : null, ms: 0 });
    const out = cropLandmarks([frame(true), frame(false)], 640, 480, { x: 200, y: 40, size: 400 }, 256);
    expect(out).toHaveLength(2 * LANDMARK_COUNT * 2);
    expect(out[0]).toBeCloseTo(76.8, 4);
    expect(out[1]).toBeCloseTo(51.2, 4);
    expect(Number.isNaN(out[LANDMARK_COUNT * 2] as number)).toBe(true);
  });

  it('the tracking page results carry 478 landmarks (checked)', () => {
    const base = { i: 0, found: true, pose: [0, 0, 0, 0, 0, -50], gaze: [0, 0], blendshapes: new Array(52).fill(0), box: [0, 0, 1, 1], ms: 1 };
    const ok = parsePageResults([{ ...base, landmarks: new Array(LANDMARK_COUNT * 2).fill(0.5) }], 0);
    expect(ok[0]?.r.landmarks).toHaveLength(LANDMARK_COUNT * 2);
    expect(parsePageResults([{ ...base, landmarks: null }], 0)[0]?.r.landmarks).toBeNull();
    expect(() => parsePageResults([{ ...base, landmarks: [0.5, 0.5] }], 0)).toThrow(/landmarks/);
  });
});

describe('readers', () => {
  it('decodes PNGs (RGB written by prepare, greyscale) back to the same pixels', async () => {
    const png = await encodePngRgb(textured.data, textured.width, textured.height);
    const back = decodePng(png);
    expect(back.width).toBe(48);
    expect(Buffer.from(back.data).equals(Buffer.from(textured.data))).toBe(true);
    expect(() => decodePng(Buffer.from('not a png at all, clearly not one'))).toThrow(EvalInputError);
  });

  it('reads NPY arrays and refuses the wrong dtype', () => {
    const a = parseNpy(encodeNpy(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]), 'x.npy');
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(parseNpy(encodeNpy(Uint8Array.from([7]), [1]), 'y.npy').dtype).toBe('uint8');
    expect(() => parseNpy(Buffer.from('nope'), 'z.npy')).toThrow(/z\.npy: not a \.npy file/);
  });
});

describe('dataset schema v1 and v2', () => {
  const manifest = (version: number, landmarks: boolean): Record<string, unknown> => {
    const n = 10;
    const arrays: Record<string, unknown> = {
      pose: { file: 'pose.npy', dtype: 'float32', shape: [n, 6] },
      gaze: { file: 'gaze.npy', dtype: 'float32', shape: [n, 2] },
      blendshapes: { file: 'blendshapes.npy', dtype: 'float32', shape: [n, 52] },
      faceFound: { file: 'face_found.npy', dtype: 'uint8', shape: [n] },
      interpolated: { file: 'interpolated.npy', dtype: 'uint8', shape: [n] },
      valid: { file: 'valid.npy', dtype: 'uint8', shape: [n] },
    };
    if (landmarks) arrays.landmarks = { file: 'landmarks.npy', dtype: 'float32', shape: [n, LANDMARK_COUNT, 2] };
    return {
      format: 'dnp-dataset', version,
      source: { file: 'a.mp4', sha256: 'x', width: 64, height: 64, rotation: 0, fps: 25, variableFrameRate: false, startSeconds: 0, durationSeconds: 1 },
      fps: 25, frameCount: n, size: 64, crop: { x: 0, y: 0, size: 64 },
      tracker: { name: 't', version: '1', modelSha256: 'x' }, frames: { dir: 'frames', pattern: '%06d.png' }, arrays, audio: null,
      split: { train: [0, 8], test: [8, 10] }, created: 'now', tool: 'test',
    };
  };

  it('reads v1 without landmarks and v2 with them; refuses the other combinations', () => {
    expect(parseDatasetManifest(manifest(1, false)).arrays.landmarks).toBeUndefined();
    expect(parseDatasetManifest(manifest(2, true)).arrays.landmarks?.shape).toEqual([10, LANDMARK_COUNT, 2]);
    expect(() => parseDatasetManifest(manifest(2, false))).toThrow(/arrays\.landmarks: expected an object/);
    expect(() => parseDatasetManifest(manifest(1, true))).toThrow(/only version 2 datasets have landmarks/);
    expect(() => parseDatasetManifest(manifest(3, true))).toThrow(/unsupported version 3/);
  });
});

describe('pictures and plots', () => {
  it('strips, error maps, resizing, frame picks and the SVG plot', () => {
    const a = image(8, 8, () => 0);
    const b = image(8, 8, (x) => (x < 4 ? 0 : 255));
    const e = errorMap(a, b);
    expect(e.data[0]).toBe(0);
    expect(Array.from(e.data.subarray((0 * 8 + 5) * 3, (0 * 8 + 5) * 3 + 3))).toEqual([255, 255, 255]);
    expect(hstack([a, b], 4).width).toBe(20);
    expect(resize(b, 4, 4).width).toBe(4);
    expect(spread(117, 6)).toEqual([0, 23, 46, 70, 93, 116]);
    expect(spread(3, 6)).toEqual([0, 1, 2]);
    const cond = new Float32Array(3 * 60);
    cond[JAW_OPEN] = 0.1;
    cond[60 + JAW_OPEN] = 0.2;
    cond[120 + JAW_OPEN] = 0.3;
    const s = seriesAt([10, 11, 13], cond, Uint8Array.from([1, 0, 1]));
    expect(s.map((v) => (Number.isNaN(v) ? null : +v.toFixed(3)))).toEqual([0.1, null, null, 0.3]);
    const svg = svgLinePlot([{ label: 'driving <jaw>', colour: '#00f', values: s }], { title: 't', xLabel: 'frame', yLabel: 'jawOpen', x0: 10 });
    expect(svg).toContain('<svg');
    expect(svg).toContain('driving &lt;jaw&gt;');
    expect((svg.match(/M/g) ?? []).length).toBeGreaterThanOrEqual(2); // the NaN gap starts a new sub-path
  });
});

describe('provenance', () => {
  it('says whether the avatar was trained on this dataset\'s recording', () => {
    const ds = { manifest: { source: { sha256: 'abc' } } } as unknown as EvalDataset;
    expect(trainedOn({ dataset: { sourceFile: 'a.mp4', sourceSha256: 'abc' } }, ds)).toEqual({ sourceFile: 'a.mp4', sourceSha256: 'abc', sameSource: true });
    expect(trainedOn({ dataset: { sourceFile: 'b.mp4', sourceSha256: 'def' } }, ds)?.sameSource).toBe(false);
    expect(trainedOn({ provenance: 'untrained' }, ds)).toBeNull();
  });
});

describe('options', () => {
  it('dnp eval: required flags and numbers are checked', () => {
    const o = parseEvalArgs(['--avatar', 'a', '--data', 'd', '--out', 'o', '--no-retrack', '--max-frames', '5']);
    expect(o.retrack).toBe(false);
    expect(o.maxFrames).toBe(5);
    expect(o.driver).toBeNull();
    expect(() => parseEvalArgs(['--data', 'd', '--out', 'o'])).toThrow(UsageError);
    expect(() => parseEvalArgs(['--avatar', 'a', '--data', 'd', '--out', 'o', '--threads', 'x'])).toThrow(/--threads/);
    expect(() => parseEvalArgs(['--avatar', 'a', '--data', 'd', '--out', 'o', '--bogus'])).toThrow(UsageError);
  });

  it('dnp train --max-minutes reaches the Python trainer', () => {
    const o = parseTrainArgs(['--data', 'd', '--out', 'o', '--max-minutes', '0.2']);
    expect(o.maxMinutes).toBe(0.2);
    const a = pythonArgs(o);
    expect(a.slice(a.indexOf('--max-minutes'), a.indexOf('--max-minutes') + 2)).toEqual(['--max-minutes', '0.2']);
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'o', '--max-minutes', '-1'])).toThrow(/--max-minutes/);
  });

  it('eval:ablation: options and the table', () => {
    const o = parseAblationArgs(['--data', 'd', '--budget', '0.2', '--variants', 'A,F']);
    expect(o.variants).toEqual(['A', 'F']);
    expect(parseAblationArgs(['--data', 'd', '--budget', '1']).variants).toEqual(['A', 'B', 'C', 'F']);
    expect(() => parseAblationArgs(['--data', 'd'])).toThrow(UsageError);
    expect(() => parseAblationArgs(['--data', 'd', '--budget', '1', '--variants', 'A,A'])).toThrow(/twice/);
    expect(() => parseAblationArgs(['--data', 'd', '--budget', 'soon'])).toThrow(/--budget/);
    expect(ablationMarkdown([], { data: 'd', budget: 1 })).toContain('| variant | iterations | PSNR | SSIM | L1 | mouth PSNR | jawOpen r |');
  });
});
