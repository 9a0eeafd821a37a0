// Speech features as training data: `dnp prepare`'s speech_features.npy (through the dataset's own 16-bit
// audio.wav) and `dnp speech-features` give exactly the numbers the live stream computes; the dataset
// manifest's optional speechFeatures entry (minor version 1) and the old versions still read.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDatasetManifest } from '../shared/src/dataset-schema.js';
import { decodeAudio16k } from '../server/src/audio/decode-audio.js';
import { SPEECH_FEATURE_DIM, SPEECH_FEATURE_NAMES, extractSpeechFeatures } from '../server/src/audio/speech-features/index.js';
import { parseNpy, readNpyFile } from '../server/src/prepare/npy.js';
import { speechFeaturesFile } from '../server/src/prepare/speech-features-file.js';
import { encodeWav16 } from '../server/src/prepare/wav.js';
import { toInt16 } from './support/sphinx-reference.js';
import { sameBytes, streamInChunks } from './support/speech-stream.js';

const execFileP = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const CLIP = join(ROOT, '..', 'shared', 'data', 'talking', 'vr-5.mp4');

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'speech-dataset-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('prepare-time = live-time speech features', () => {
  it("speech_features.npy equals streaming the dataset's audio.wav in 20 ms chunks", async () => {
    const audio = toInt16((await decodeAudio16k(CLIP)).subarray(0, 3 * 16_000));
    const { npy, spec } = speechFeaturesFile(audio);
    const arr = parseNpy(npy, 'speech_features.npy');
    expect(arr.shape).toEqual(spec.shape);
    expect(spec.shape).toEqual([Math.floor((audio.length - 410) / 160) + 1, SPEECH_FEATURE_DIM]);
    expect(spec).toMatchObject({ file: 'speech_features.npy', dtype: 'float32', rate: 100 });
    expect(spec.offsetSeconds).toBeCloseTo(0.0128125, 9);
    const wav = join(dir, 'audio.wav');
    writeFileSync(wav, encodeWav16(audio, 16_000, 1));
    const live = streamInChunks(await decodeAudio16k(wav), [320]);
    expect(sameBytes(arr.data as Float32Array, live)).toBe(true);
  });
});

describe('dnp speech-features', () => {
  it("writes a video's features as .npy: the same numbers as the extractor", async () => {
    const out = join(dir, 'vr5.npy');
    const { stderr } = await execFileP(process.execPath, [join(ROOT, 'bin', 'dnp.js'), 'speech-features', CLIP, '--out', out], { cwd: ROOT });
    expect(stderr).toMatch(/frames × 81/);
    const arr = readNpyFile(out);
    const ref = extractSpeechFeatures(await decodeAudio16k(CLIP));
    expect(arr.shape).toEqual([ref.frames, SPEECH_FEATURE_DIM]);
    expect(ref.frames).toBeGreaterThan(400);
    expect(sameBytes(arr.data as Float32Array, ref.data)).toBe(true);
  });

  it('has --help and refuses bad arguments with status 2', async () => {
    const dnp = (...args: string[]) => execFileP(process.execPath, [join(ROOT, 'bin', 'dnp.js'), 'speech-features', ...args], { cwd: ROOT }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect((await dnp('--help')).stdout).toMatch(/Usage: dnp speech-features INPUT --out FILE\.npy/);
    const noOut = await dnp(CLIP);
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toMatch(/--out FILE\.npy is required/);
    expect((await dnp(join(dir, 'missing.wav'), '--out', join(dir, 'x.npy'))).stderr).toMatch(/no such file/);
    expect((await dnp(CLIP, '--out', join(dir, 'no-such-dir', 'x.npy'))).stderr).toMatch(/does not exist/);
  });
});

describe('dataset manifest: speech features (minor version 1)', () => {
  const manifest = (extra: Record<string, unknown>, version = 2): Record<string, unknown> => {
    const n = 10;
    const a = (file: string, dtype: string, ...inner: number[]) => ({ file, dtype, shape: [n, ...inner] });
    const arrays: Record<string, unknown> = {
      pose: a('pose.npy', 'float32', 6), gaze: a('gaze.npy', 'float32', 2), blendshapes: a('blendshapes.npy', 'float32', 52),
      faceFound: a('face_found.npy', 'uint8'), interpolated: a('interpolated.npy', 'uint8'), valid: a('valid.npy', 'uint8'),
      ...(version === 2 ? { landmarks: a('landmarks.npy', 'float32', 478, 2) } : {}),
    };
    return {
      format: 'dnp-dataset', version, fps: 25, frameCount: n, size: 64, crop: { x: 0, y: 0, size: 64 },
      source: { file: 'a.mp4', sha256: 'x', width: 64, height: 64, rotation: 0, fps: 25, variableFrameRate: false, startSeconds: 0, durationSeconds: 0.4 },
      tracker: { name: 't', version: '1', modelSha256: 'x' }, frames: { dir: 'frames', pattern: '%06d.png' }, arrays,
      audio: { file: 'audio.wav', sampleRate: 16000, channels: 1, samples: 6400 },
      split: { train: [0, 8], test: [8, 10] }, created: 'now', tool: 'test', ...extra,
    };
  };
  const sf = { file: 'speech_features.npy', dtype: 'float32', shape: [38, SPEECH_FEATURE_DIM], rate: 100, offsetSeconds: 0.0128125, lookaheadSeconds: 0.0428125, names: [...SPEECH_FEATURE_NAMES] };

  it('reads it when present, and datasets without it (v1, v2, minor 0) as before', () => {
    const m = parseDatasetManifest(manifest({ minorVersion: 1, speechFeatures: sf }));
    expect(m.minorVersion).toBe(1);
    expect(m.speechFeatures?.shape).toEqual([38, SPEECH_FEATURE_DIM]);
    expect(m.speechFeatures?.names[39]).toBe('p_+NSN+');
    for (const v of [1, 2]) {
      const old = parseDatasetManifest(manifest({}, v));
      expect(old.speechFeatures).toBeUndefined();
      expect(old.minorVersion).toBeUndefined();
    }
  });

  it('refuses a bad entry, naming the field', () => {
    expect(() => parseDatasetManifest(manifest({ speechFeatures: sf, audio: null }))).toThrow(/speechFeatures: only a dataset with audio/);
    expect(() => parseDatasetManifest(manifest({ speechFeatures: { ...sf, names: ['a'] } }))).toThrow(/speechFeatures\.names: expected 81 items/);
    expect(() => parseDatasetManifest(manifest({ speechFeatures: { ...sf, file: '../x.npy' } }))).toThrow(/speechFeatures\.file/);
    expect(() => parseDatasetManifest(manifest({ speechFeatures: { ...sf, dtype: 'uint8' } }))).toThrow(/speechFeatures\.dtype/);
    expect(() => parseDatasetManifest(manifest({ minorVersion: -1 }))).toThrow(/minorVersion/);
  });
});
