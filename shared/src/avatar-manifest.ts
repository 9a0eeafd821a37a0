/**
 * Avatar manifest (`avatar.json`), format "dnp-avatar" version 1: the seam between training (`train/`
 * writes it next to `avatar.onnx`) and serving (the server validates it at load).
 *
 * {
 *   "format": "dnp-avatar", "version": 1,
 *   "name": "Display name",
 *   "width": 256, "height": 256,          // output frame size in pixels (multiples of 2)
 *   "fps": 25,                            // render rate the avatar is meant for (1..120)
 *   "driving": "expression" | "audio",
 *   "model": {
 *     "file": "avatar.onnx", "opset": 17,
 *     "inputs":  [{ "name": "cond", "dtype": "float32", "shape": ["batch", 60] }],
 *     "outputs": [{ "name": "rgb",  "dtype": "float32", "shape": ["batch", 3, 256, 256] }],  // NCHW, RGB in [0, 1]
 *     "outputFormat": "rgb" | "yuv420p",  // optional (default "rgb"); "yuv420p": the output is
 *                                         // { "dtype": "uint8", "shape": ["batch", W*H + 2*(W/2)*(H/2)] }, packed
 *                                         // yuv420p (Y, U, V planes; BT.601 limited range as media/rgb-to-yuv.ts)
 *     "precision": "fp32" | "fp16"        // optional (default "fp32"): the graph's weights and compute (not its I/O)
 *   },
 *   "conditioning": {                     // how the input vector is laid out and normalised
 *     "layout": [{ "name": "pose", "size": 6 }, { "name": "gaze", "size": 2 }, { "name": "blendshapes", "size": 52 }],
 *     "mean": [...60], "std": [...60]     // the model input is (value − mean) / std, element-wise
 *   },
 *   "neutral": { "pose": [...6], "gaze": [...2], "blendshapes": [...52] },  // the avatar's neutral face (retargeting)
 *   "training": { ...free-form provenance: preset, variant, iterations, dataset id, PSNR, latent code used, versions }
 * }
 *
 * For an "expression" avatar the layout is exactly pose(6), gaze(2), blendshapes(52) in that order, in the
 * units of pose.ts. An "audio" avatar names its own layout (defined by the audio issue).
 * The first dimension of every input and output is the dynamic batch dimension, written "batch".
 */
import { BLENDSHAPE_COUNT } from './blendshapes.js';
import { CONDITIONING_SIZE } from './driving-values.js';
import { arr, fail, num, numArray, obj, oneOf, str, type Json } from './json-check.js';

const AVATAR_FORMAT = 'dnp-avatar';
const AVATAR_VERSION = 1;

export interface TensorSpec {
  name: string;
  dtype: 'float32' | 'uint8';
  shape: Array<number | 'batch'>;
}

const AVATAR_OUTPUT_FORMATS = ['rgb', 'yuv420p'] as const;
export type AvatarOutputFormat = (typeof AVATAR_OUTPUT_FORMATS)[number];
const AVATAR_PRECISIONS = ['fp32', 'fp16'] as const;
export type AvatarPrecision = (typeof AVATAR_PRECISIONS)[number];

export interface AvatarManifest {
  format: typeof AVATAR_FORMAT;
  version: typeof AVATAR_VERSION;
  name: string;
  width: number;
  height: number;
  fps: number;
  driving: 'expression' | 'audio';
  model: { file: string; opset: number; inputs: TensorSpec[]; outputs: TensorSpec[]; outputFormat?: AvatarOutputFormat; precision?: AvatarPrecision };
  conditioning: { layout: Array<{ name: string; size: number }>; mean: number[]; std: number[] };
  neutral: { pose: number[]; gaze: number[]; blendshapes: number[] };
  training: { [k: string]: Json };
}

function tensorSpec(v: unknown, path: string): TensorSpec {
  const o = obj(v, path);
  const shape = arr(o.shape, `${path}.shape`, { min: 1 }).map((d, i) => {
    if (i === 0) {
      if (d !== 'batch') fail(`${path}.shape[0]`, 'the first dimension must be the dynamic "batch"');
      return 'batch' as const;
    }
    return num(d, `${path}.shape[${i}]`, { int: true, min: 1 });
  });
  return { name: str(o.name, `${path}.name`, { nonEmpty: true }), dtype: oneOf(o.dtype, `${path}.dtype`, ['float32', 'uint8'] as const), shape };
}

/** The model's output format ("rgb" when the manifest does not say). */
export function avatarOutputFormat(m: AvatarManifest): AvatarOutputFormat {
  return m.model.outputFormat ?? 'rgb';
}

/**
 * Validates a parsed avatar.json. `where` prefixes error messages (e.g. the file path).
 * Throws SchemaError naming the field and the problem.
 */
export function parseAvatarManifest(v: unknown, where = 'avatar.json'): AvatarManifest {
  const o = obj(v, where);
  const p = (k: string): string => `${where}: ${k}`;
  if (o.format !== AVATAR_FORMAT) fail(p('format'), `expected "${AVATAR_FORMAT}"`);
  if (o.version !== AVATAR_VERSION) fail(p('version'), `unsupported version ${JSON.stringify(o.version)} (this server reads ${AVATAR_VERSION})`);
  const width = num(o.width, p('width'), { int: true, min: 16, max: 4096 });
  const height = num(o.height, p('height'), { int: true, min: 16, max: 4096 });
  if (width % 2 || height % 2) fail(p('width/height'), 'must be even (video encoders need it)');
  const fps = num(o.fps, p('fps'), { min: 1, max: 120 });
  const driving = oneOf(o.driving, p('driving'), ['expression', 'audio'] as const);

  const m = obj(o.model, p('model'));
  const file = str(m.file, p('model.file'), { nonEmpty: true });
  if (file.includes('/') || file.includes('\\') || file.startsWith('.')) fail(p('model.file'), 'must be a plain file name inside the avatar folder');
  const opset = num(m.opset, p('model.opset'), { int: true, min: 11 });
  const inputs = arr(m.inputs, p('model.inputs'), { len: 1 }).map((t, i) => tensorSpec(t, p(`model.inputs[${i}]`)));
  const outputs = arr(m.outputs, p('model.outputs'), { len: 1 }).map((t, i) => tensorSpec(t, p(`model.outputs[${i}]`)));
  const input = inputs[0]!;
  const output = outputs[0]!;
  const outputFormat = m.outputFormat === undefined ? 'rgb' : oneOf(m.outputFormat, p('model.outputFormat'), AVATAR_OUTPUT_FORMATS);
  const precision = m.precision === undefined ? 'fp32' : oneOf(m.precision, p('model.precision'), AVATAR_PRECISIONS);
  if (input.shape.length !== 2) fail(p('model.inputs[0].shape'), 'expected ["batch", size]');
  if (input.dtype !== 'float32') fail(p('model.inputs[0].dtype'), 'expected "float32"');
  if (outputFormat === 'rgb') {
    if (output.dtype !== 'float32') fail(p('model.outputs[0].dtype'), 'expected "float32" for an rgb output');
    if (output.shape.length !== 4 || output.shape[1] !== 3 || output.shape[2] !== height || output.shape[3] !== width) {
      fail(p('model.outputs[0].shape'), `expected ["batch", 3, ${height}, ${width}] (NCHW RGB at the avatar size)`);
    }
  } else {
    const bytes = width * height + 2 * (width >> 1) * (height >> 1);
    if (output.dtype !== 'uint8') fail(p('model.outputs[0].dtype'), 'expected "uint8" for a yuv420p output');
    if (output.shape.length !== 2 || output.shape[1] !== bytes) fail(p('model.outputs[0].shape'), `expected ["batch", ${bytes}] (packed yuv420p at ${width}x${height})`);
  }

  const c = obj(o.conditioning, p('conditioning'));
  const layout = arr(c.layout, p('conditioning.layout'), { min: 1 }).map((e, i) => {
    const eo = obj(e, p(`conditioning.layout[${i}]`));
    return { name: str(eo.name, p(`conditioning.layout[${i}].name`), { nonEmpty: true }), size: num(eo.size, p(`conditioning.layout[${i}].size`), { int: true, min: 1 }) };
  });
  const size = layout.reduce((s, e) => s + e.size, 0);
  if (input.shape[1] !== size) fail(p('model.inputs[0].shape[1]'), `is ${String(input.shape[1])} but conditioning.layout adds up to ${size}`);
  if (driving === 'expression') {
    const names = layout.map((e) => `${e.name}:${e.size}`).join(',');
    if (names !== 'pose:6,gaze:2,blendshapes:52' || size !== CONDITIONING_SIZE) {
      fail(p('conditioning.layout'), `an expression avatar must use pose:6, gaze:2, blendshapes:52 (got ${names})`);
    }
  }
  const mean = numArray(c.mean, p('conditioning.mean'), size);
  const std = numArray(c.std, p('conditioning.std'), size);
  std.forEach((s, i) => {
    if (!(s > 0)) fail(p(`conditioning.std[${i}]`), 'must be > 0');
  });

  const n = obj(o.neutral, p('neutral'));
  const neutral = {
    pose: numArray(n.pose, p('neutral.pose'), 6),
    gaze: numArray(n.gaze, p('neutral.gaze'), 2),
    blendshapes: numArray(n.blendshapes, p('neutral.blendshapes'), BLENDSHAPE_COUNT),
  };
  const training = obj(o.training ?? {}, p('training')) as { [k: string]: Json };

  return {
    format: AVATAR_FORMAT,
    version: AVATAR_VERSION,
    name: str(o.name, p('name'), { nonEmpty: true, max: 200 }),
    width,
    height,
    fps,
    driving,
    model: { file, opset, inputs, outputs, outputFormat, precision },
    conditioning: { layout, mean, std },
    neutral,
    training,
  };
}

/**
 * The model's input "cond" for raw conditioning vectors laid end to end: (value − mean) / std, per position of the
 * manifest's layout (what the server's renderer computes for each frame, for scripts and tests that run the model
 * themselves).
 */
export function normaliseConditioning(c: AvatarManifest['conditioning'], vectors: Float32Array): Float32Array {
  const n = c.mean.length;
  if (vectors.length % n) throw new Error(`conditioning: ${vectors.length} values are not whole vectors of ${n}`);
  const out = new Float32Array(vectors.length);
  for (let i = 0; i < vectors.length; i++) out[i] = ((vectors[i] as number) - (c.mean[i % n] as number)) / (c.std[i % n] as number);
  return out;
}
