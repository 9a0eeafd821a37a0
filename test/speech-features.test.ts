// The speech-feature front end (server/src/audio/speech-features): known signals, pocketsphinx's own
// sphinx_fe on real speech, and streaming in any chunk size = offline.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAudio16k } from '../server/src/audio/decode-audio.js';
import { CepstralFrame } from '../server/src/audio/speech-features/cepstra.js';
import { FRAME_SHIFT, FRAME_SIZE, PCM_SCALE, PRE_EMPHASIS } from '../server/src/audio/speech-features/front-end-params.js';
import { buildMelFilterbank } from '../server/src/audio/speech-features/mel-filterbank.js';
import { SPEECH_FEATURE_DIM, SPEECH_FEATURE_HOP_MS, SPEECH_FEATURE_NAMES, SpeechFeatureStream, extractSpeechFeatures } from '../server/src/audio/speech-features/index.js';
import { sphinxFeCepstra, toInt16, writeTestWav } from './support/sphinx-reference.js';
import { sameBytes, streamInChunks } from './support/speech-stream.js';

const SPEECH = join(import.meta.dirname, '..', '..', 'shared', 'data', 'speech-english-16k.wav');
const SECONDS = 4;

let dir = '';
let speech = new Float32Array(0);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'speech-features-'));
  const all = await decodeAudio16k(SPEECH);
  expect(all.length).toBeGreaterThan(59 * 16_000);
  // Round to 16-bit values so that sphinx_fe (which reads the 16-bit WAV) sees exactly our input.
  const s16 = toInt16(all.subarray(0, SECONDS * 16_000));
  speech = Float32Array.from(s16, (v) => v / PCM_SCALE);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function tone(hz: number, seconds: number, amplitude = 0.3): Float32Array {
  return Float32Array.from({ length: Math.round(seconds * 16_000) }, (_, i) => amplitude * Math.sin((2 * Math.PI * hz * i) / 16_000));
}

function row(data: Float32Array, t: number): Float32Array {
  return data.subarray(t * SPEECH_FEATURE_DIM, (t + 1) * SPEECH_FEATURE_DIM);
}

describe('speech features: constants', () => {
  it('exports a 10 ms hop, 81 dimensions (39 cepstral, 42 phones) and one name per dimension', () => {
    expect(SPEECH_FEATURE_HOP_MS).toBe(10);
    expect(SPEECH_FEATURE_DIM).toBe(81);
    expect(SPEECH_FEATURE_NAMES[38]).toBe('dd_c12');
    expect(SPEECH_FEATURE_NAMES[39 + 32]).toBe('p_SIL');
    expect(SPEECH_FEATURE_NAMES).toHaveLength(SPEECH_FEATURE_DIM);
    expect(new Set(SPEECH_FEATURE_NAMES).size).toBe(SPEECH_FEATURE_DIM);
  });

  it('gives one frame per 10 ms once a 25.6 ms window is full', () => {
    expect(extractSpeechFeatures(new Float32Array(FRAME_SIZE - 1)).frames).toBe(0);
    expect(extractSpeechFeatures(new Float32Array(FRAME_SIZE)).frames).toBe(1);
    expect(extractSpeechFeatures(new Float32Array(16_000)).frames).toBe(Math.floor((16_000 - FRAME_SIZE) / FRAME_SHIFT) + 1);
  });
});

describe('speech features: known signals', () => {
  it('silence gives the same vector in every frame, with zero deltas', () => {
    const { frames, data } = extractSpeechFeatures(new Float32Array(16_000));
    expect(frames).toBe(98);
    const first = row(data, 0);
    for (let t = 1; t < frames; t++) expect(Array.from(row(data, t))).toEqual(Array.from(first));
    for (let i = 13; i < 39; i++) expect(first[i]).toBe(0);
  });

  it('a pure tone puts its energy in the mel filter that spans its frequency', () => {
    const filters = buildMelFilterbank({ sampleRate: 16_000, fftSize: 512, count: 25, lowerHz: 130, upperHz: 6800 });
    for (const hz of [300, 1000, 3000]) {
      // The filter whose peak is nearest the tone, found from the filter weights themselves.
      const bin = Math.round((hz / 16_000) * 512);
      let expected = -1;
      let best = -1;
      filters.forEach((f, k) => {
        const w = bin >= f.start && bin < f.start + f.weights.length ? (f.weights[bin - f.start] as number) * (f.weights.length) : -1;
        if (w > best) {
          best = w;
          expected = k;
        }
      });
      const x = tone(hz, 0.2);
      const e = new Float64Array(FRAME_SIZE);
      for (let i = 0; i < FRAME_SIZE; i++) e[i] = (x[800 + i] as number) * PCM_SCALE - PRE_EMPHASIS * (x[799 + i] as number) * PCM_SCALE;
      const cf = new CepstralFrame();
      cf.compute(e, new Float32Array(13));
      const mel = Array.from(cf.logMel);
      expect(mel.indexOf(Math.max(...mel)), `${hz} Hz`).toBe(expected);
    }
  });

  it('a steady tone gives steady cepstra: its deltas are a small fraction of those of speech', () => {
    const meanAbsDelta = (data: Float32Array, from: number, to: number): number => {
      let s = 0;
      for (let t = from; t < to; t++) for (let i = 13; i < 26; i++) s += Math.abs(row(data, t)[i] as number);
      return s / ((to - from) * 13);
    };
    const t = extractSpeechFeatures(tone(1000, 1));
    const s = extractSpeechFeatures(speech);
    // Only the cepstral mean's slow drift (it adapts to the tone) is left in the tone's deltas.
    expect(meanAbsDelta(t.data, 10, t.frames - 10)).toBeLessThan(0.1 * meanAbsDelta(s.data, 10, s.frames - 10));
  });

  it('cepstral mean normalisation removes a gain change (c1..c12 unchanged, c0 converges)', () => {
    const loud = speech.map((v) => v * 4);
    const a = extractSpeechFeatures(speech).data;
    const b = extractSpeechFeatures(loud).data;
    const T = a.length / SPEECH_FEATURE_DIM;
    let maxOther = 0;
    for (let t = 0; t < T; t++) for (let i = 1; i < 39; i++) if (i !== 13 && i !== 26) maxOther = Math.max(maxOther, Math.abs((row(a, t)[i] as number) - (row(b, t)[i] as number)));
    // Only c0 (log energy) moves with gain; the rest is unchanged up to the 1e-4 log floor.
    expect(maxOther).toBeLessThan(0.05);
    const lastGap = Math.abs((row(a, T - 1)[0] as number) - (row(b, T - 1)[0] as number));
    const firstGap = Math.abs((row(a, 5)[0] as number) - (row(b, 5)[0] as number));
    expect(lastGap).toBeLessThan(firstGap);
  });
});

describe('speech features: against pocketsphinx', () => {
  it("raw cepstra match sphinx_fe's on 4 s of real speech within 1e-3", () => {
    const wav = writeTestWav(dir, 'speech.wav', speech);
    const ref = sphinxFeCepstra(wav, join(dir, 'speech.mfc'));
    const T = Math.floor((speech.length - FRAME_SIZE) / FRAME_SHIFT) + 1;
    // sphinx_fe also writes one last zero-padded partial frame; we keep only full windows.
    expect(ref.length).toBeGreaterThanOrEqual(T);
    const cf = new CepstralFrame();
    const e = new Float64Array(speech.length);
    for (let i = 0; i < speech.length; i++) e[i] = (speech[i] as number) * PCM_SCALE - PRE_EMPHASIS * (i > 0 ? (speech[i - 1] as number) * PCM_SCALE : 0);
    const out = new Float32Array(13);
    let maxDiff = 0;
    let range = 0;
    for (let t = 0; t < T; t++) {
      cf.compute(e.subarray(t * FRAME_SHIFT, t * FRAME_SHIFT + FRAME_SIZE), out);
      const r = ref[t] as Float32Array;
      for (let i = 0; i < 13; i++) {
        maxDiff = Math.max(maxDiff, Math.abs((out[i] as number) - (r[i] as number)));
        range = Math.max(range, Math.abs(r[i] as number));
      }
    }
    expect(range).toBeGreaterThan(10);
    expect(maxDiff).toBeLessThan(1e-3);
  });
});

describe('speech features: streaming = offline', () => {
  it('20 ms chunks, odd chunks and one push all give identical numbers', () => {
    const offline = extractSpeechFeatures(speech);
    for (const sizes of [[320], [1, 7, 160, 409, 411, 2000], [speech.length]]) {
      const streamed = streamInChunks(speech, sizes, 3);
      expect(streamed.length).toBe(offline.data.length);
      expect(sameBytes(streamed, offline.data), `chunks ${sizes.join(',')}`).toBe(true);
    }
  });

  it('frames arrive with bounded look-ahead, and reset() starts over', () => {
    const s = new SpeechFeatureStream();
    // Frame t needs samples up to 160(t + 3) + 410.
    s.push(speech.subarray(0, FRAME_SHIFT * 3 + FRAME_SIZE - 1));
    expect(s.available).toBe(0);
    s.push(speech.subarray(FRAME_SHIFT * 3 + FRAME_SIZE - 1, FRAME_SHIFT * 3 + FRAME_SIZE));
    expect(s.available).toBe(1);
    expect(s.nextFrameIndex).toBe(0);
    const first = s.read();
    expect(s.nextFrameIndex).toBe(1);
    s.reset();
    s.push(speech.subarray(0, FRAME_SHIFT * 3 + FRAME_SIZE));
    expect(Array.from(s.read())).toEqual(Array.from(first));
    expect(() => {
      s.flush();
      s.push(speech.subarray(0, 10));
    }).toThrow(/after flush/);
  });
});
