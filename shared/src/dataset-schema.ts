/**
 * Training dataset folder, format "dnp-dataset" version 2 (version 1 is still read): written by `dnp prepare`,
 * read by `train/` and `dnp eval`. Version 2 adds `landmarks.npy`; otherwise the versions are identical.
 * Minor version 1 of version 2 (`"minorVersion": 1`; absent = 0) adds the optional `speech_features.npy`;
 * readers that do not know it ignore it.
 *
 * DIR/
 *   dataset.json          this manifest
 *   frames/000000.png     one lossless RGB PNG per frame, size × size, numbered from 0 (6 digits)
 *   pose.npy              float32 [N, 6]   pitch, yaw, roll (rad), tx, ty, tz (cm)       (pose.ts)
 *   gaze.npy              float32 [N, 2]   gaze yaw, gaze pitch (rad)                     (pose.ts)
 *   blendshapes.npy       float32 [N, 52]  MediaPipe order, [0, 1]                        (blendshapes.ts)
 *   face_found.npy        uint8   [N]      1 where the tracker found a face in this frame
 *   interpolated.npy      uint8   [N]      1 where values were interpolated over a short gap
 *   valid.npy             uint8   [N]      1 where the frame may be used for training/testing
 *   landmarks.npy         float32 [N, 478, 2]  (v2 only) the tracker's face landmarks as x, y in output pixels
 *                                          of the crop (0..size; may lie slightly outside), NaN where the
 *                                          tracker found no face (also in interpolated frames)
 *   audio.wav             16 kHz mono 16-bit PCM, sample 0 = the time of frame 0 (absent if no audio)
 *   speech_features.npy   float32 [T, D]   (minor 1, only with audio) the speech features of audio.wav
 *                                          (server/src/audio/speech-features, docs/speech-features.md): one
 *                                          row per 10 ms (rate 100), row t centred at offsetSeconds + t/100 s
 *                                          after frame 0; video frame i (at i/fps s) ↔ row round((i/fps −
 *                                          offsetSeconds) × 100)
 *
 * dataset.json:
 * {
 *   "format": "dnp-dataset", "version": 2,
 *   "source": { "file": "my-video.mp4", "sha256": "…", "width": 1920, "height": 1080, "rotation": 0,
 *               "fps": 29.97, "variableFrameRate": false, "startSeconds": 0, "durationSeconds": 61.2 },
 *   "fps": 30, "frameCount": N, "size": 256,
 *   "crop": { "x": 400, "y": 80, "size": 900 },     // square in source pixels (after rotation), same for every frame
 *   "tracker": { "name": "mediapipe-face-landmarker", "version": "0.10.35", "modelSha256": "…" },
 *   "frames": { "dir": "frames", "pattern": "%06d.png" },
 *   "arrays": { "pose": { "file": "pose.npy", "dtype": "float32", "shape": [N, 6] }, … one entry per array above },
 *   "audio": { "file": "audio.wav", "sampleRate": 16000, "channels": 1, "samples": S } | null,
 *   "minorVersion": 1,                              // optional
 *   "speechFeatures": { "file": "speech_features.npy", "dtype": "float32", "shape": [T, D], "rate": 100,
 *                       "offsetSeconds": 0.0128125, "lookaheadSeconds": 0.0428125, "names": [D names] },  // optional
 *   "split": { "train": [0, K], "test": [K, N] },   // half-open frame ranges; the test part is the clip's end
 *   "created": "ISO-8601 time", "tool": "dnp-live 0.1.0"
 * }
 */
import { LANDMARK_COUNT } from './face-landmarks.js';
import { arr, fail, num, obj, oneOf, str } from './json-check.js';

export const DATASET_FORMAT = 'dnp-dataset';
/** The version `dnp prepare` writes. */
export const DATASET_VERSION = 2;
/** The versions readers accept. */
const DATASET_VERSIONS = [1, 2] as const;
/** The minor version `dnp prepare` writes (1: speech features). */
export const DATASET_MINOR_VERSION = 1;
export type DatasetVersion = (typeof DATASET_VERSIONS)[number];

export type ArrayDType = 'float32' | 'uint8';
export interface ArraySpec {
  file: string;
  dtype: ArrayDType;
  shape: number[];
}

/** The arrays every dataset has, with their dtype and per-frame shape (after the leading N). */
export const DATASET_ARRAYS = {
  pose: { file: 'pose.npy', dtype: 'float32', inner: [6] },
  gaze: { file: 'gaze.npy', dtype: 'float32', inner: [2] },
  blendshapes: { file: 'blendshapes.npy', dtype: 'float32', inner: [52] },
  faceFound: { file: 'face_found.npy', dtype: 'uint8', inner: [] },
  interpolated: { file: 'interpolated.npy', dtype: 'uint8', inner: [] },
  valid: { file: 'valid.npy', dtype: 'uint8', inner: [] },
} as const satisfies Record<string, { file: string; dtype: ArrayDType; inner: readonly number[] }>;

export type DatasetArrayName = keyof typeof DATASET_ARRAYS;

/** The array version 2 adds: face landmarks in output pixels of the crop (NaN where no face). */
export const LANDMARKS_ARRAY = { file: 'landmarks.npy', dtype: 'float32', inner: [LANDMARK_COUNT, 2] } as const;

export interface DatasetManifest {
  format: typeof DATASET_FORMAT;
  version: DatasetVersion;
  source: {
    file: string;
    sha256: string;
    width: number;
    height: number;
    rotation: number;
    fps: number;
    variableFrameRate: boolean;
    startSeconds: number;
    durationSeconds: number;
  };
  fps: number;
  frameCount: number;
  size: number;
  crop: { x: number; y: number; size: number };
  tracker: { name: string; version: string; modelSha256: string };
  frames: { dir: string; pattern: string };
  /** `landmarks` is present exactly in version 2. */
  arrays: Record<DatasetArrayName, ArraySpec> & { landmarks?: ArraySpec };
  audio: { file: string; sampleRate: number; channels: number; samples: number } | null;
  /** Absent in datasets written before minor version 1 (read as 0). */
  minorVersion?: number;
  /** Speech features of the audio (minor version 1; absent without audio). */
  speechFeatures?: SpeechFeaturesSpec;
  split: { train: [number, number]; test: [number, number] };
  created: string;
  tool: string;
}

export const SPEECH_FEATURES_FILE = 'speech_features.npy';

export interface SpeechFeaturesSpec extends ArraySpec {
  /** Rows per second (100). */
  rate: number;
  /** Time of row 0's centre after frame 0 (seconds). */
  offsetSeconds: number;
  /** How far past a row's centre its numbers look (seconds). */
  lookaheadSeconds: number;
  /** One name per column. */
  names: string[];
}

function speechFeaturesSpec(v: unknown, path: string): SpeechFeaturesSpec {
  const e = obj(v, path);
  const shape = arr(e.shape, `${path}.shape`, { len: 2 }).map((d, i) => num(d, `${path}.shape[${i}]`, { int: true, min: 0 }));
  const file = str(e.file, `${path}.file`, { nonEmpty: true });
  if (file.includes('/') || file.includes('\\') || file.startsWith('.')) fail(`${path}.file`, 'must be a plain file name inside the dataset folder');
  const names = arr(e.names, `${path}.names`, { len: shape[1] as number }).map((n, i) => str(n, `${path}.names[${i}]`, { nonEmpty: true }));
  return {
    file,
    dtype: oneOf(e.dtype, `${path}.dtype`, ['float32'] as const),
    shape,
    rate: num(e.rate, `${path}.rate`, { min: 1, max: 1000 }),
    offsetSeconds: num(e.offsetSeconds, `${path}.offsetSeconds`, { min: -10, max: 10 }),
    lookaheadSeconds: num(e.lookaheadSeconds, `${path}.lookaheadSeconds`, { min: 0, max: 10 }),
    names,
  };
}

function range(v: unknown, path: string, n: number): [number, number] {
  const a = arr(v, path, { len: 2 });
  const lo = num(a[0], `${path}[0]`, { int: true, min: 0, max: n });
  const hi = num(a[1], `${path}[1]`, { int: true, min: lo, max: n });
  return [lo, hi];
}

/** Validates a parsed dataset.json. Throws SchemaError naming the field. */
export function parseDatasetManifest(v: unknown, where = 'dataset.json'): DatasetManifest {
  const o = obj(v, where);
  const p = (k: string): string => `${where}: ${k}`;
  if (o.format !== DATASET_FORMAT) fail(p('format'), `expected "${DATASET_FORMAT}"`);
  const version = DATASET_VERSIONS.find((x) => x === o.version);
  if (version === undefined) fail(p('version'), `unsupported version ${JSON.stringify(o.version)} (this reads ${DATASET_VERSIONS.join(' and ')})`);
  const s = obj(o.source, p('source'));
  const frameCount = num(o.frameCount, p('frameCount'), { int: true, min: 1 });
  const size = num(o.size, p('size'), { int: true, min: 16, max: 4096 });
  const c = obj(o.crop, p('crop'));
  const t = obj(o.tracker, p('tracker'));
  const f = obj(o.frames, p('frames'));
  const a = obj(o.arrays, p('arrays'));
  const arraySpec = (name: string, spec: { dtype: ArrayDType; inner: readonly number[] }): ArraySpec => {
    const e = obj(a[name], p(`arrays.${name}`));
    const shape = arr(e.shape, p(`arrays.${name}.shape`)).map((d, i) => num(d, p(`arrays.${name}.shape[${i}]`), { int: true, min: 0 }));
    const expected = [frameCount, ...spec.inner];
    if (shape.join(',') !== expected.join(',')) fail(p(`arrays.${name}.shape`), `expected [${expected.join(', ')}]`);
    const file = str(e.file, p(`arrays.${name}.file`), { nonEmpty: true });
    if (file.includes('/') || file.includes('\\') || file.startsWith('.')) fail(p(`arrays.${name}.file`), 'must be a plain file name inside the dataset folder');
    return { file, dtype: oneOf(e.dtype, p(`arrays.${name}.dtype`), [spec.dtype]), shape };
  };
  const arrays = {} as DatasetManifest['arrays'];
  for (const [name, spec] of Object.entries(DATASET_ARRAYS) as Array<[DatasetArrayName, (typeof DATASET_ARRAYS)[DatasetArrayName]]>) {
    arrays[name] = arraySpec(name, spec);
  }
  if (version === 2) arrays.landmarks = arraySpec('landmarks', LANDMARKS_ARRAY);
  else if (a.landmarks !== undefined) fail(p('arrays.landmarks'), 'only version 2 datasets have landmarks');
  let audio: DatasetManifest['audio'] = null;
  if (o.audio !== null) {
    const au = obj(o.audio, p('audio'));
    audio = {
      file: str(au.file, p('audio.file'), { nonEmpty: true }),
      sampleRate: num(au.sampleRate, p('audio.sampleRate'), { int: true, min: 8000 }),
      channels: num(au.channels, p('audio.channels'), { int: true, min: 1, max: 1 }),
      samples: num(au.samples, p('audio.samples'), { int: true, min: 0 }),
    };
  }
  const minorVersion = o.minorVersion === undefined ? undefined : num(o.minorVersion, p('minorVersion'), { int: true, min: 0 });
  let speechFeatures: SpeechFeaturesSpec | undefined;
  if (o.speechFeatures !== undefined) {
    if (audio === null) fail(p('speechFeatures'), 'only a dataset with audio has speech features');
    speechFeatures = speechFeaturesSpec(o.speechFeatures, p('speechFeatures'));
  }
  const sp = obj(o.split, p('split'));
  const train = range(sp.train, p('split.train'), frameCount);
  const test = range(sp.test, p('split.test'), frameCount);
  if (train[1] > test[0]) fail(p('split'), 'train and test ranges overlap');
  return {
    format: DATASET_FORMAT,
    version,
    source: {
      file: str(s.file, p('source.file')),
      sha256: str(s.sha256, p('source.sha256')),
      width: num(s.width, p('source.width'), { int: true, min: 1 }),
      height: num(s.height, p('source.height'), { int: true, min: 1 }),
      rotation: num(s.rotation, p('source.rotation')),
      fps: num(s.fps, p('source.fps'), { min: 0 }),
      variableFrameRate: s.variableFrameRate === true,
      startSeconds: num(s.startSeconds, p('source.startSeconds'), { min: 0 }),
      durationSeconds: num(s.durationSeconds, p('source.durationSeconds'), { min: 0 }),
    },
    fps: num(o.fps, p('fps'), { min: 1, max: 120 }),
    frameCount,
    size,
    crop: { x: num(c.x, p('crop.x'), { int: true }), y: num(c.y, p('crop.y'), { int: true }), size: num(c.size, p('crop.size'), { int: true, min: 1 }) },
    tracker: { name: str(t.name, p('tracker.name')), version: str(t.version, p('tracker.version')), modelSha256: str(t.modelSha256, p('tracker.modelSha256')) },
    frames: { dir: str(f.dir, p('frames.dir'), { nonEmpty: true }), pattern: str(f.pattern, p('frames.pattern'), { nonEmpty: true }) },
    arrays,
    audio,
    ...(minorVersion === undefined ? {} : { minorVersion }),
    ...(speechFeatures === undefined ? {} : { speechFeatures }),
    split: { train, test },
    created: str(o.created, p('created')),
    tool: str(o.tool, p('tool')),
  };
}
