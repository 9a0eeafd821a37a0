// The phonetic half of the speech features: the en-us acoustic model read from Debian's files, senone scores
// checked against pocketsphinx_batch's own dump (-senlogdir) on the same cepstra, phone posteriors.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAudio16k } from '../server/src/audio/decode-audio.js';
import { DEFAULT_SPEECH_MODEL_DIR, SpeechModelMissingError, loadAcousticModel } from '../server/src/audio/speech-features/acoustic-model.js';
import { dynamicFeatures } from '../server/src/audio/speech-features/deltas.js';
import { PCM_SCALE } from '../server/src/audio/speech-features/front-end-params.js';
import { EN_US_PHONES } from '../server/src/audio/speech-features/phone-posteriors.js';
import { SPHINX_SCORE_UNIT, SenoneScorer } from '../server/src/audio/speech-features/senone-scorer.js';
import { SPEECH_FEATURE_DIM, extractSpeechFeatures } from '../server/src/audio/speech-features/index.js';
import { pocketsphinxSenoneScores, sphinxFeCepstra, toInt16, writeSphinxMfc, writeTestWav } from './support/sphinx-reference.js';

const SPEECH = join(import.meta.dirname, '..', '..', 'shared', 'data', 'speech-english-16k.wav');
const SECONDS = 2;

let dir = '';
let speech = new Float32Array(0);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'speech-phones-'));
  const s16 = toInt16((await decodeAudio16k(SPEECH)).subarray(16_000, (1 + SECONDS) * 16_000));
  speech = Float32Array.from(s16, (v) => v / PCM_SCALE);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('acoustic model files', () => {
  it("reads pocketsphinx-en-us: 42 phones, 5126 senones, 42 codebooks × 3 streams × 128 Gaussians", () => {
    const m = loadAcousticModel(DEFAULT_SPEECH_MODEL_DIR);
    expect(m.mdef.ciPhones).toEqual(EN_US_PHONES);
    expect(m.mdef.nSen).toBe(5126);
    expect([m.nCb, m.nFeat, m.nDensity]).toEqual([42, 3, 128]);
    expect(m.veclen).toEqual([13, 13, 13]);
    // CI phone p's states are senones 3p..3p+2, and every senone belongs to a phone.
    expect(Array.from(m.mdef.ciSenones.subarray(0, 6))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(m.mdef.sen2ci.every((c) => c >= 0 && c < 42)).toBe(true);
  });

  it('a missing model names the Debian package and the variable', () => {
    const empty = join(dir, 'no-model');
    mkdirSync(empty, { recursive: true });
    expect(() => loadAcousticModel(empty)).toThrow(SpeechModelMissingError);
    expect(() => loadAcousticModel(empty)).toThrow(/apt-get install pocketsphinx-en-us.*DNP_SPEECH_MODEL_DIR/);
    expect(() => extractSpeechFeatures(speech, { model: empty })).toThrow(/pocketsphinx-en-us/);
  });

  it('a damaged file is refused, naming it', () => {
    const bad = join(dir, 'bad-model');
    mkdirSync(bad, { recursive: true });
    for (const f of ['mdef', 'means', 'variances']) copyFileSync(join(DEFAULT_SPEECH_MODEL_DIR, f), join(bad, f));
    writeFileSync(join(bad, 'sendump'), readFileSync(join(DEFAULT_SPEECH_MODEL_DIR, 'sendump')).subarray(0, 100_000));
    expect(() => loadAcousticModel(bad)).toThrow(/bad-model\/sendump/);
  });
});

describe('senone scores against pocketsphinx_batch -senlogdir', () => {
  it('agree on the same cepstra within a few 8-bit log units', () => {
    // sphinx_fe's cepstra go to both: pocketsphinx applies batch CMN itself; we apply the same mean here.
    const wav = writeTestWav(dir, 'utt.wav', speech);
    const cep = sphinxFeCepstra(wav, join(dir, 'utt.mfc'));
    writeSphinxMfc(join(dir, 'utt.mfc'), cep);
    const ref = pocketsphinxSenoneScores(dir, 'utt');
    expect(ref.length).toBe(cep.length);
    const mean = new Float64Array(13);
    let n = 0;
    for (const c of cep) {
      if ((c[0] as number) < 0) continue;
      n++;
      for (let i = 0; i < 13; i++) mean[i] = (mean[i] as number) + (c[i] as number);
    }
    const norm = cep.map((c) => Float32Array.from(c, (v, i) => v - (mean[i] as number) / n));
    const model = loadAcousticModel();
    const scorer = new SenoneScorer(model);
    const feat = new Float32Array(39);
    const ours = new Float64Array(model.mdef.nSen);
    const diffs: number[] = [];
    let bestAgree = 0;
    let ciBestAgree = 0;
    norm.forEach((_, t) => {
      dynamicFeatures([-3, -2, -1, 0, 1, 2, 3].map((k) => norm[Math.min(Math.max(t + k, 0), norm.length - 1)] as Float32Array), feat);
      scorer.evaluate(feat);
      scorer.senoneScores(ours);
      const r = ref[t] as Int16Array;
      expect(r.length).toBe(model.mdef.nSen);
      let bo = 0;
      let br = 0;
      let co = 0;
      let cr = 0;
      for (let s = 0; s < r.length; s++) {
        diffs.push(Math.abs(-(ours[s] as number) / SPHINX_SCORE_UNIT - (r[s] as number)));
        if ((ours[s] as number) > (ours[bo] as number)) bo = s;
        if ((r[s] as number) < (r[br] as number)) br = s;
        if (s < model.mdef.nCiSen && (ours[s] as number) > (ours[co] as number)) co = s;
        if (s < model.mdef.nCiSen && (r[s] as number) < (r[cr] as number)) cr = s;
      }
      if (bo === br) bestAgree++;
      if (Math.floor(co / 3) === Math.floor(cr / 3)) ciBestAgree++;
    });
    diffs.sort((a, b) => a - b);
    const q = (p: number): number => diffs[Math.floor(p * (diffs.length - 1))] as number;
    // Measured (2 s of speech-english-16k.wav, 199 frames): median 0.85, 95th percentile 2.6, 99th 6.5 units
    // (1 unit = 0.1024 nats); best senone the same in 92 % of frames, best CI phone in 95 %.
    // The rest are codebooks whose 4th and 5th best Gaussians nearly tie, so float and integer arithmetic
    // keep different top 4s.
    expect(q(0.5)).toBeLessThan(1.5);
    expect(q(0.95)).toBeLessThan(4);
    expect(bestAgree / norm.length).toBeGreaterThan(0.8);
    expect(ciBestAgree / norm.length).toBeGreaterThan(0.85);
  });
});

describe('phone posteriors', () => {
  it('sum to one in every frame, and silence is silence', () => {
    const quiet = Float32Array.from({ length: 16_000 }, (_, i) => 1e-4 * Math.sin(i * 0.37 + Math.sin(i * 0.011) * 9));
    for (const pcm of [speech, quiet]) {
      const { frames, data } = extractSpeechFeatures(pcm);
      for (let t = 0; t < frames; t++) {
        let s = 0;
        for (let p = 39; p < SPEECH_FEATURE_DIM; p++) {
          expect(data[t * SPEECH_FEATURE_DIM + p]).toBeGreaterThanOrEqual(0);
          s += data[t * SPEECH_FEATURE_DIM + p] as number;
        }
        expect(s).toBeCloseTo(1, 4);
      }
    }
    const silence = extractSpeechFeatures(new Float32Array(16_000));
    const sil = 39 + EN_US_PHONES.indexOf('SIL');
    const nonSpeech = [sil, 39, 40]; // SIL, +NSN+, +SPN+
    const mass = (d: Float32Array, t: number): number => nonSpeech.reduce((a, i) => a + (d[t * SPEECH_FEATURE_DIM + i] as number), 0);
    for (let t = 0; t < silence.frames; t++) expect(mass(silence.data, t)).toBeGreaterThan(0.9);
  });
});
