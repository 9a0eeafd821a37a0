// `dnp prepare` end to end on real recordings (../shared/data), with the real decoder, headless Chromium
// and FaceLandmarker: the first 3 s of two talking-head videos → datasets, checked for shapes, plausible
// values, one crop, determinism across runs, and agreement with the reference tracker output.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLENDSHAPE_COUNT, blendshapeIndex } from '../shared/src/blendshapes.js';
import { parseDatasetManifest, type DatasetManifest } from '../shared/src/dataset-schema.js';
import { LANDMARK_COUNT, LEFT_EYE, MOUTH_OUTER_LIPS, landmarkRegion, type PixelBox } from '../shared/src/face-landmarks.js';
import { mapTrackerFace } from '../shared/src/tracker-mapping.js';
import { decodeAudio16k } from '../server/src/audio/decode-audio.js';
import { SPEECH_FEATURE_DIM, extractSpeechFeatures } from '../server/src/audio/speech-features/index.js';
import { createLogger } from '../server/src/log.js';
import { parsePrepareArgs } from '../server/src/prepare/options.js';
import { prepareDataset } from '../server/src/prepare/pipeline.js';
import { pngSize } from '../server/src/prepare/png.js';
import { decodeVideo, probeVideo } from '../server/src/prepare/video.js';
import { DATA, MODEL, ensureClientBuilt, readNpy, runPrepareCli, writeTestVideo } from './support/prepare-helpers.js';

const MAN = join(DATA, 'portrait-man-talking.mp4');
const WOMAN = join(DATA, 'driver-woman-talking.mp4');
const SECONDS = 3;

let tmp: string;
beforeAll(() => {
  ensureClientBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'dnp-prepare-test-'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function manifestOf(dir: string): DatasetManifest {
  return parseDatasetManifest(JSON.parse(readFileSync(join(dir, 'dataset.json'), 'utf8')) as unknown);
}

function checkDataset(dir: string, size: number): DatasetManifest {
  const m = manifestOf(dir);
  const n = Math.floor(SECONDS * 30);
  expect(m.frameCount).toBe(n);
  expect(m.fps).toBe(30);
  expect(m.size).toBe(size);
  // every frame: one PNG of the dataset size (the one crop, resized)
  const frames = readdirSync(join(dir, m.frames.dir)).sort();
  expect(frames).toHaveLength(n);
  expect(frames[0]).toBe('000000.png');
  expect(frames[n - 1]).toBe(`${String(n - 1).padStart(6, '0')}.png`);
  for (const f of [frames[0], frames[n >> 1], frames[n - 1]]) expect(pngSize(readFileSync(join(dir, 'frames', f as string)))).toEqual({ width: size, height: size });
  expect(m.crop.x).toBeGreaterThanOrEqual(0);
  expect(m.crop.y).toBeGreaterThanOrEqual(0);
  expect(m.crop.x + m.crop.size).toBeLessThanOrEqual(m.source.width);
  expect(m.crop.y + m.crop.size).toBeLessThanOrEqual(m.source.height);
  // arrays
  const pose = readNpy(join(dir, m.arrays.pose.file));
  const gaze = readNpy(join(dir, m.arrays.gaze.file));
  const bs = readNpy(join(dir, m.arrays.blendshapes.file));
  const found = readNpy(join(dir, m.arrays.faceFound.file));
  const valid = readNpy(join(dir, m.arrays.valid.file));
  const interp = readNpy(join(dir, m.arrays.interpolated.file));
  expect(pose.shape).toEqual([n, 6]);
  expect(gaze.shape).toEqual([n, 2]);
  expect(bs.shape).toEqual([n, BLENDSHAPE_COUNT]);
  for (const a of [found, valid, interp]) {
    expect(a.descr).toBe('|u1');
    expect(a.shape).toEqual([n]);
  }
  expect(Array.from(found.data).every((v) => v === 1)).toBe(true); // every frame tracked
  expect(Array.from(valid.data).every((v) => v === 1)).toBe(true);
  expect(Array.from(interp.data).every((v) => v === 0)).toBe(true);
  for (let i = 0; i < n; i++) {
    const [pitch, yaw, roll, , , tz] = Array.from(pose.data.subarray(i * 6, i * 6 + 6));
    for (const a of [pitch, yaw, roll]) expect(Math.abs(a as number)).toBeLessThan(0.6); // within ~35° of frontal
    expect(tz).toBeLessThan(-10);
    expect(tz).toBeGreaterThan(-200);
  }
  for (const v of bs.data) expect(v >= 0 && v <= 1).toBe(true);
  for (const v of gaze.data) expect(Math.abs(v)).toBeLessThan(0.6);
  // dataset v2: every frame's 478 landmarks in output pixels of the crop; the mouth below the eyes
  expect(m.version).toBe(2);
  expect(m.arrays.landmarks).toEqual({ file: 'landmarks.npy', dtype: 'float32', shape: [n, LANDMARK_COUNT, 2] });
  const lm = readNpy(join(dir, 'landmarks.npy'));
  expect(lm.descr).toBe('<f4');
  expect(lm.shape).toEqual([n, LANDMARK_COUNT, 2]);
  expect(lm.data.filter((v) => !(v > -0.1 * size && v < 1.1 * size)).length).toBe(0); // finite, in or near the crop
  for (const i of [0, n - 1]) {
    const pts = lm.data.subarray(i * LANDMARK_COUNT * 2, (i + 1) * LANDMARK_COUNT * 2);
    const mouth = landmarkRegion(pts, MOUTH_OUTER_LIPS, size, size);
    const eye = landmarkRegion(pts, LEFT_EYE, size, size);
    expect(mouth && eye).toBeTruthy();
    expect((mouth as PixelBox).y0).toBeGreaterThan((eye as PixelBox).y1 - 2);
    expect((mouth as PixelBox).x1 - (mouth as PixelBox).x0).toBeGreaterThan(size / 20);
  }
  // split: the last 20 % is the test part
  expect(m.split).toEqual({ train: [0, n - Math.round(n * 0.2)], test: [n - Math.round(n * 0.2), n] });
  expect(m.tracker.name).toBe('mediapipe-face-landmarker');
  expect(m.tracker.modelSha256).toBe(createHash('sha256').update(readFileSync(MODEL)).digest('hex'));
  expect(m.source.variableFrameRate).toBe(false);
  return m;
}

function jawOpenMax(dir: string): number {
  const bs = readNpy(join(dir, 'blendshapes.npy'));
  const j = blendshapeIndex('jawOpen');
  let max = 0;
  for (let i = 0; i < bs.shape[0]!; i++) max = Math.max(max, bs.data[i * BLENDSHAPE_COUNT + j] as number);
  return max;
}

describe('decoding', () => {
  it('aligns audio sample 0 and frame 0 with --start', async () => {
    const info = await probeVideo(MAN);
    const grab = async (start: number, frames: number): Promise<{ audio: Int16Array; first: Buffer }> => {
      let first: Buffer | null = null;
      const r = await decodeVideo(MAN, { info, fps: 30, startSeconds: start, maxFrames: frames, filters: ['format=gray'], audio: true, onFrame: (i, px) => void (i === 0 ? (first = Buffer.from(px)) : 0) });
      if (!r.audio || !first) throw new Error('no audio or no frame');
      expect(r.frameCount).toBe(frames);
      expect(r.audio.length).toBe((frames / 30) * 16000);
      return { audio: r.audio, first };
    };
    const whole = await grab(0, 90);
    const later = await grab(1, 30);
    let frame30: Buffer | null = null;
    await decodeVideo(MAN, { info, fps: 30, startSeconds: 0, maxFrames: 31, filters: ['format=gray'], onFrame: (i, px) => void (i === 30 ? (frame30 = Buffer.from(px)) : 0) });
    expect(frame30 && later.first.equals(frame30)).toBe(true); // frame 0 after --start 1 is frame 30
    // audio sample k after --start 1 is sample 16000 + k of the whole clip (away from the resampler's start-up)
    let dot = 0, na = 0, nb = 0;
    for (let k = 2000; k < 14000; k++) {
      const a = later.audio[k] as number;
      const b = whole.audio[16000 + k] as number;
      dot += a * b;
      na += a * a;
      nb += b * b;
    }
    expect(dot / Math.sqrt(na * nb)).toBeGreaterThan(0.95);
  });
});

describe('dnp prepare on real videos', () => {
  const manCli = () => join(tmp, 'man-cli');
  const manApi = () => join(tmp, 'man-api');

  it('prepares the man (CLI): every frame tracked, one crop, plausible values, audio aligned', async () => {
    const r = await runPrepareCli([MAN, '--out', manCli(), '--max-seconds', String(SECONDS), '--tracker-model', MODEL]);
    expect(r.stderr).toContain('frames/s');
    expect(r.code, r.stderr).toBe(0);
    const m = checkDataset(manCli(), 256);
    expect(jawOpenMax(manCli())).toBeGreaterThan(0.3);
    expect(m.source).toMatchObject({ file: 'portrait-man-talking.mp4', width: 512, height: 480, rotation: 0, fps: 30, startSeconds: 0 });
    expect(m.audio).toEqual({ file: 'audio.wav', sampleRate: 16000, channels: 1, samples: SECONDS * 16000 });
    const wav = readFileSync(join(manCli(), 'audio.wav'));
    expect(wav.readUInt32LE(40)).toBe(SECONDS * 16000 * 2);
    // this recording's audio track is very quiet (peaks ~ -50 dBFS) but not digital silence
    let energy = 0;
    for (let k = 44; k < wav.length; k += 2) energy += Math.abs(wav.readInt16LE(k));
    expect(energy / (SECONDS * 16000)).toBeGreaterThan(2);
    // speech features of that audio.wav: the live extractor's numbers (test/speech-features-dataset.test.ts)
    expect(m.minorVersion).toBe(1);
    expect(m.speechFeatures?.shape).toEqual([Math.floor((SECONDS * 16000 - 410) / 160) + 1, SPEECH_FEATURE_DIM]);
    const sf = readNpy(join(manCli(), 'speech_features.npy'));
    const live = extractSpeechFeatures(await decodeAudio16k(join(manCli(), 'audio.wav')));
    expect(Buffer.from(sf.data.buffer, sf.data.byteOffset, sf.data.byteLength).equals(Buffer.from(live.data.buffer))).toBe(true);
    // nothing else left next to the dataset
    expect(readdirSync(tmp)).toEqual(['man-cli']);
  });

  it('gives identical arrays and frames on a second run (in-process)', async () => {
    const opts = parsePrepareArgs([MAN, '--out', manApi(), '--max-seconds', String(SECONDS), '--tracker-model', MODEL]);
    const r = await prepareDataset(opts, createLogger('warn', process.stderr));
    expect(r.manifest.frameCount).toBe(SECONDS * 30);
    for (const f of ['pose.npy', 'gaze.npy', 'blendshapes.npy', 'face_found.npy', 'valid.npy', 'interpolated.npy', 'landmarks.npy', 'audio.wav', 'frames/000000.png', 'frames/000045.png']) {
      expect(readFileSync(join(manApi(), f)).equals(readFileSync(join(manCli(), f))), f).toBe(true);
    }
    expect(manifestOf(manApi()).crop).toEqual(manifestOf(manCli()).crop);
  });

  it('stores frames losslessly: PNG pixels = the source frame, cropped and resized', async () => {
    const m = manifestOf(manCli());
    const info = await probeVideo(MAN);
    const want: Buffer[] = [];
    const filters = [`crop=${m.crop.size}:${m.crop.size}:${m.crop.x}:${m.crop.y}`, `scale=${m.size}:${m.size}:flags=area`, 'format=rgb24'];
    await decodeVideo(MAN, { info, fps: 30, startSeconds: 0, maxFrames: 46, filters, onFrame: (i, px) => void (i === 0 || i === 45 ? want.push(Buffer.from(px)) : 0) });
    for (const [k, i] of [0, 45].entries()) {
      const file = join(manCli(), 'frames', `${String(i).padStart(6, '0')}.png`);
      const pinfo = await probeVideo(file);
      let got: Buffer | null = null;
      await decodeVideo(file, { info: pinfo, fps: 1, startSeconds: 0, maxFrames: 1, filters: ['format=rgb24'], onFrame: (_i, px) => void (got = Buffer.from(px)) });
      expect(got).not.toBeNull();
      expect((got as unknown as Buffer).equals(want[k] as Buffer), `frame ${i}`).toBe(true);
    }
  });

  it('matches the reference tracker output on the uncropped frames within a tolerance', () => {
    const ref = JSON.parse(readFileSync(join(DATA, 'portrait-man-talking.tracker-reference.json'), 'utf8')) as {
      frames: Array<{ i: number; blendshapes: number[]; matrix: number[] }>;
    };
    const pose = readNpy(join(manCli(), 'pose.npy')).data;
    const gaze = readNpy(join(manCli(), 'gaze.npy')).data;
    const bs = readNpy(join(manCli(), 'blendshapes.npy')).data;
    const n = SECONDS * 30;
    let bsSum = 0;
    let bsMax = 0;
    let angMax = 0;
    let transMax = 0;
    let gazeMax = 0;
    for (let i = 0; i < n; i++) {
      const rf = ref.frames[i];
      if (!rf) throw new Error(`reference lacks frame ${i}`);
      const want = mapTrackerFace({ blendshapes: rf.blendshapes, matrix: rf.matrix });
      for (let k = 0; k < BLENDSHAPE_COUNT; k++) {
        const d = Math.abs((bs[i * BLENDSHAPE_COUNT + k] as number) - (want.blendshapes[k] as number));
        bsSum += d;
        bsMax = Math.max(bsMax, d);
      }
      for (let k = 0; k < 3; k++) angMax = Math.max(angMax, Math.abs((pose[i * 6 + k] as number) - (want.pose[k] as number)));
      for (let k = 3; k < 6; k++) transMax = Math.max(transMax, Math.abs((pose[i * 6 + k] as number) - (want.pose[k] as number)));
      for (let k = 0; k < 2; k++) gazeMax = Math.max(gazeMax, Math.abs((gaze[i * 2 + k] as number) - (want.gaze[k] as number)));
    }
    const bsMean = bsSum / (n * BLENDSHAPE_COUNT);
    expect(bsMean).toBeLessThan(0.01);
    expect(bsMax).toBeLessThan(0.1);
    expect(angMax).toBeLessThan(0.02); // rad (~1.1°)
    expect(transMax).toBeLessThan(0.5); // cm
    expect(gazeMax).toBeLessThan(0.05); // rad
  });

  it('turns a phone recording upright (display matrix) and resamples its variable frame rate', async () => {
    const phone = join(tmp, 'phone.mp4');
    const { keptFrames } = await writeTestVideo(MAN, phone, { seconds: SECONDS, rotate: true, dropEveryThird: true });
    expect(keptFrames).toBe(60); // every third frame dropped
    const out = join(tmp, 'phone');
    const opts = parsePrepareArgs([phone, '--out', out, '--fps', '30', '--tracker-model', MODEL]);
    const r = await prepareDataset(opts, createLogger('warn', process.stderr));
    const m = r.manifest;
    expect(m.source).toMatchObject({ width: 512, height: 480, rotation: 90, variableFrameRate: true });
    expect(m.audio).toBeNull();
    expect(existsSync(join(out, 'audio.wav'))).toBe(false);
    expect(m.fps).toBe(30);
    expect(m.frameCount).toBeGreaterThanOrEqual(88);
    expect(m.frameCount).toBeLessThanOrEqual(90);
    expect(Array.from(readNpy(join(out, 'face_found.npy')).data).every((v) => v === 1)).toBe(true);
    // Output frame i shows source frame i, or i - 1 where i was dropped (i % 3 == 2): compare the head
    // pose with the unrotated dataset. A wrong rotation would find no face or a roll of ±90°.
    const pose = readNpy(join(out, 'pose.npy')).data;
    const ref = readNpy(join(manCli(), 'pose.npy')).data;
    for (let i = 0; i < m.frameCount; i++) {
      const j = i % 3 === 2 ? i - 1 : i;
      for (let k = 0; k < 3; k++) expect(Math.abs((pose[i * 6 + k] as number) - (ref[j * 6 + k] as number)), `frame ${i} angle ${k}`).toBeLessThan(0.06);
    }
  });

  it('interpolates short gaps without a face and excludes long ones', async () => {
    const video = join(tmp, 'gaps.mp4');
    // frames 20-24 (0.17 s) and 50-69 (0.67 s, longer than --max-gap 0.5) show no face
    await writeTestVideo(MAN, video, { seconds: SECONDS, blank: (i) => (i >= 20 && i <= 24) || (i >= 50 && i <= 69) });
    const out = join(tmp, 'gaps');
    const r = await prepareDataset(parsePrepareArgs([video, '--out', out, '--tracker-model', MODEL]), createLogger('warn', process.stderr));
    expect(r.manifest.frameCount).toBe(90);
    const found = Array.from(readNpy(join(out, 'face_found.npy')).data);
    const interp = Array.from(readNpy(join(out, 'interpolated.npy')).data);
    const valid = Array.from(readNpy(join(out, 'valid.npy')).data);
    const blank = (i: number): boolean => (i >= 20 && i <= 24) || (i >= 50 && i <= 69);
    for (let i = 0; i < 90; i++) {
      expect(found[i], `found ${i}`).toBe(blank(i) ? 0 : 1);
      expect(interp[i], `interpolated ${i}`).toBe(i >= 20 && i <= 24 ? 1 : 0);
      expect(valid[i], `valid ${i}`).toBe(i >= 50 && i <= 69 ? 0 : 1);
    }
    expect(r.validFrames).toBe(70);
    // landmarks: NaN exactly where the tracker found no face (interpolated frames too)
    const lm = readNpy(join(out, 'landmarks.npy')).data;
    for (let i = 0; i < 90; i++) {
      const x = lm[i * LANDMARK_COUNT * 2] as number;
      expect(Number.isNaN(x), `landmarks ${i}`).toBe(blank(i));
    }
    // interpolated values lie between their neighbours; excluded ones are zero
    const bs = readNpy(join(out, 'blendshapes.npy')).data;
    const pose = readNpy(join(out, 'pose.npy')).data;
    for (let k = 0; k < 6; k++) {
      const a = pose[19 * 6 + k] as number;
      const b = pose[25 * 6 + k] as number;
      const v = pose[22 * 6 + k] as number;
      expect(v).toBeGreaterThanOrEqual(Math.min(a, b) - 1e-6);
      expect(v).toBeLessThanOrEqual(Math.max(a, b) + 1e-6);
      expect(pose[60 * 6 + k]).toBe(0);
    }
    expect(bs[60 * BLENDSHAPE_COUNT + blendshapeIndex('jawOpen')]).toBe(0);
  });

  it('prepares the woman at 512 from --start 8.5 (where she opens her mouth)', async () => {
    const out = join(tmp, 'woman');
    const r = await runPrepareCli([WOMAN, '--out', out, '--max-seconds', String(SECONDS), '--start', '8.5', '--size', '512', '--tracker-model', MODEL]);
    expect(r.code, r.stderr).toBe(0);
    const m = checkDataset(out, 512);
    expect(m.source).toMatchObject({ file: 'driver-woman-talking.mp4', width: 512, height: 512, startSeconds: 8.5 });
    expect(jawOpenMax(out)).toBeGreaterThan(0.3);
    // refuses to overwrite without --force, keeps the old dataset
    const again = await runPrepareCli([WOMAN, '--out', out, '--max-seconds', '1', '--tracker-model', MODEL]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists.*--force/);
    expect(manifestOf(out).frameCount).toBe(SECONDS * 30);
    // --force replaces it (here with 2.5 s at 25 fps: the frame rate is resampled)
    const forced = await runPrepareCli([WOMAN, '--out', out, '--start', '8.5', '--max-seconds', '2.5', '--fps', '25', '--force', '--tracker-model', MODEL]);
    expect(forced.code, forced.stderr).toBe(0);
    const m2 = manifestOf(out);
    expect(m2.frameCount).toBe(62);
    expect(m2.fps).toBe(25);
    expect(readdirSync(join(out, 'frames'))).toHaveLength(62);
    expect(readNpy(join(out, 'pose.npy')).shape).toEqual([62, 6]);
    expect(m2.audio?.samples).toBe(Math.round((62 / 25) * 16000));
    expect(readdirSync(tmp).filter((d) => d.includes('partial'))).toEqual([]);
  }, 300_000); // three prepares at 512²: ~15 s idle, over 2 min beside training jobs on 2 cores
});
