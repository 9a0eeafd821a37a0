// The shipped audio-to-expression model (assets/audio-expression): a valid, small model folder whose streaming
// loader reproduces PyTorch's predictions (parity.json, written at export), that reads exactly the features the
// live extractor gives, and whose mouth moves with speech and rests in silence. Bad model.json files are refused.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAudio16k } from '../server/src/audio/decode-audio.js';
import {
  AudioExpressionModel,
  AudioExpressionModelError,
  DEFAULT_AUDIO_EXPRESSION_DIR,
  parseAudioExpressionManifest,
} from '../server/src/audio/expression-model.js';
import { extractSpeechFeatures, SPEECH_FEATURE_DIM, SPEECH_FEATURE_FIRST_CENTRE_MS, SPEECH_FEATURE_HOP_MS } from '../server/src/audio/speech-features/index.js';
import { ExpressionCalibration, readAvatarCalibration, type QuantileCurves } from '../server/src/audio/expression-calibration.js';
import { SchemaError } from '../shared/src/json-check.js';

const DIR = DEFAULT_AUDIO_EXPRESSION_DIR;
const SPEECH = join(import.meta.dirname, '..', '..', 'shared', 'data', 'talking', 'lp-d11.mp4');
const FEATURES = { dim: SPEECH_FEATURE_DIM, hopMs: SPEECH_FEATURE_HOP_MS };

function manifestJson(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(DIR, 'model.json'), 'utf8')) as Record<string, unknown>;
}

async function streamAll(model: AudioExpressionModel, frames: Float32Array[]): Promise<Float32Array[]> {
  const s = model.stream();
  const out: Float32Array[] = [];
  for (const f of frames) {
    const y = await s.push(f);
    if (y) out.push(Float32Array.from(y));
  }
  out.push(...(await s.flush()));
  return out;
}

function rows(data: Float32Array, dim: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i + dim <= data.length; i += dim) out.push(data.subarray(i, i + dim));
  return out;
}

describe('the shipped audio-to-expression model', () => {
  let model: AudioExpressionModel;
  beforeAll(async () => {
    model = await AudioExpressionModel.load(DIR, { features: FEATURES });
  });
  afterAll(async () => {
    await model.close();
    await model.close(); // idempotent
  });

  it('is a valid model folder under 3 MB for the live feature extractor', () => {
    const m = model.manifest;
    expect(statSync(join(DIR, m.model.file)).size).toBeLessThan(3 * 1024 * 1024);
    expect(m.features.dim).toBe(SPEECH_FEATURE_DIM);
    expect(m.features.hopMs).toBe(SPEECH_FEATURE_HOP_MS);
    expect(Math.abs(m.features.frameCentreMs - SPEECH_FEATURE_FIRST_CENTRE_MS)).toBeLessThan(0.1);
    expect(m.lookaheadMs).toBeLessThanOrEqual(60);
    expect(m.outputs).toContain('jawOpen');
    expect(m.outputs).toContain('mouthClose');
    expect(model.outputIndex[m.outputs.indexOf('jawOpen')]).toBe(25);
  });

  it('streams frame by frame to the same values PyTorch computed at export (parity.json)', async () => {
    const doc = JSON.parse(readFileSync(join(DIR, 'parity.json'), 'utf8')) as { features: number[][]; outputs: number[][] };
    const got = await streamAll(model, doc.features.map((r) => Float32Array.from(r)));
    expect(got.length).toBe(doc.outputs.length);
    let worst = 0;
    got.forEach((y, t) => y.forEach((v, k) => (worst = Math.max(worst, Math.abs(v - (doc.outputs[t]?.[k] ?? NaN))))));
    expect(worst).toBeLessThan(1e-4);
  });

  it('opens the jaw during speech and rests in silence (real clip through the live extractor)', async () => {
    const speech = extractSpeechFeatures(await decodeAudio16k(SPEECH));
    const silence = extractSpeechFeatures(new Float32Array(16_000 * 2));
    const jaw = model.manifest.outputs.indexOf('jawOpen');
    const ys = await streamAll(model, rows(speech.data, speech.dim));
    const yq = await streamAll(model, rows(silence.data, silence.dim));
    expect(ys.length).toBe(speech.frames);
    const col = (y: Float32Array[]) => y.map((r) => r[jaw] as number);
    const std = (a: number[]) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length - (a.reduce((s, v) => s + v, 0) / a.length) ** 2);
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    const quiet = col(yq).slice(50); // past the live CMN's start
    expect(std(col(ys))).toBeGreaterThan(3 * std(quiet));
    expect(mean(col(ys))).toBeGreaterThan(mean(quiet));
  });

  it('refuses a wrong frame size, overlapping pushes and a model for other features', async () => {
    const s = model.stream();
    await expect(s.push(new Float32Array(3))).rejects.toThrow(AudioExpressionModelError);
    const f = Float32Array.from(model.manifest.padFeature);
    for (let i = 0; i < model.manifest.lookahead; i++) expect(await s.push(f)).toBeNull(); // nothing to run yet
    const first = s.push(f);
    await expect(s.push(f)).rejects.toThrow(/in flight/);
    expect((await first)?.length).toBe(model.manifest.outputs.length);
    await expect(AudioExpressionModel.load(DIR, { features: { dim: FEATURES.dim + 1, hopMs: 10 } })).rejects.toThrow(/retrain/);
  });
});

describe('per-avatar calibration (quantile matching)', () => {
  let model: AudioExpressionModel;
  beforeAll(async () => {
    model = await AudioExpressionModel.load(DIR);
  });
  afterAll(() => model.close());

  it('maps the model quantiles onto the avatar quantiles, monotone, and leaves other outputs alone', () => {
    const source = model.outputQuantiles;
    expect(source).toBeDefined();
    if (!source) return;
    const jaw = model.manifest.outputs.indexOf('jawOpen');
    const levels = source.levels;
    const avatar: QuantileCurves = { levels, values: new Map([['jawOpen', levels.map((l) => 0.1 + 0.4 * l)]]) };
    const cal = ExpressionCalibration.create(model, avatar);
    expect(cal).not.toBeNull();
    const from = source.values.get('jawOpen') ?? [];
    const median = from[Math.floor(levels.length / 2)] as number;
    const v = new Float32Array(model.manifest.outputs.length).fill(0.33);
    v[jaw] = median;
    cal?.apply(v);
    expect(v[jaw]).toBeCloseTo(0.3, 2); // the avatar's median
    expect(v[(jaw + 1) % v.length]).toBeCloseTo(0.33, 6); // no avatar curve: unchanged
    let prev = -1;
    for (let x = 0; x <= 1; x += 0.01) {
      const w = new Float32Array(v.length);
      w[jaw] = x;
      cal?.apply(w);
      expect(w[jaw] as number).toBeGreaterThanOrEqual(prev);
      prev = w[jaw] as number;
    }
    expect(prev).toBeCloseTo(0.5, 6);
  });

  it('reads the shipped default avatar calibration and refuses bad files', () => {
    const curves = readAvatarCalibration(join(import.meta.dirname, '..', 'avatars', 'default'));
    expect(curves?.values.get('jawOpen')?.length).toBe(curves?.levels.length);
    expect(readAvatarCalibration(tmpdir())).toBeNull();
    const dir = mkdtempSync(join(tmpdir(), 'dnp-cal-'));
    try {
      writeFileSync(join(dir, 'audio-calibration.json'), JSON.stringify({ format: 'dnp-audio-calibration', version: 1, levels: [0, 1], values: { jawOpen: [0.5, 0.1] } }));
      expect(() => readAvatarCalibration(dir)).toThrow(/must not decrease/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('model.json validation', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dnp-ae-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const bad: Array<[string, (m: Record<string, unknown>) => void, RegExp]> = [
    ['window ≠ past + 1 + lookahead', (m) => (m.window = 3), /window/],
    ['an unknown output name', (m) => (m.outputs = ['jawOpen', 'mouthWide']), /outputs\[1\]/],
    ['repeated outputs', (m) => (m.outputs = ['jawOpen', 'jawOpen']), /unique/],
    ['a pad frame of the wrong size', (m) => (m.padFeature = [0, 1]), /padFeature/],
    ['a model file outside the folder', (m) => ((m.model as Record<string, unknown>).file = '../x.onnx'), /model.file/],
    ['another format', (m) => (m.format = 'dnp-avatar'), /format/],
  ];
  for (const [what, edit, msg] of bad) {
    it(`refuses ${what}`, () => {
      const m = manifestJson();
      edit(m);
      expect(() => parseAudioExpressionManifest(m)).toThrow(SchemaError);
      expect(() => parseAudioExpressionManifest(m)).toThrow(msg);
    });
  }

  it('names the folder when model.json or the ONNX file is missing', async () => {
    await expect(AudioExpressionModel.load(dir)).rejects.toThrow(/no model.json/);
    writeFileSync(join(dir, 'model.json'), JSON.stringify(manifestJson()));
    await expect(AudioExpressionModel.load(dir)).rejects.toThrow(/model.onnx is missing/);
    copyFileSync(join(DIR, 'model.onnx'), join(dir, 'model.onnx'));
    const ok = await AudioExpressionModel.load(dir);
    await ok.close();
  });
});
