/**
 * The generic audio-to-expression model (train/audio_expression/, shipped in assets/audio-expression/):
 * model.json (validated here) + model.onnx, loaded once with onnxruntime-node. Each audio session gets an
 * AudioExpressionStream: push one speech feature frame (server/src/audio/speech-features/, every 10 ms) and get
 * the mouth and jaw blendshapes of the frame `lookahead` frames earlier (null until that many have arrived).
 * The stream's buffers (window, input tensor, output) are allocated once; the window starts filled with the
 * manifest's pad frame (the training feature mean), exactly as train/audio_expression/data.py streaming_windows.
 * One owner each; close() is idempotent.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { BLENDSHAPE_NAMES, type BlendshapeName } from '../../../shared/src/blendshapes.js';
import { arr, num, numArray, obj, oneOf, SchemaError, str } from '../../../shared/src/json-check.js';
import { parseQuantileCurves, type QuantileCurves } from './expression-calibration.js';

const AUDIO_EXPRESSION_FORMAT = 'dnp-audio-expression';
export const DEFAULT_AUDIO_EXPRESSION_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../assets/audio-expression');
const MAX_WINDOW = 1000;
const MAX_FEATURE_DIM = 4096;

export interface AudioExpressionManifest {
  format: typeof AUDIO_EXPRESSION_FORMAT;
  version: 1;
  modelVersion: string;
  model: { file: string; opset: number; input: string; output: string };
  features: { extractor: string; dim: number; hopMs: number; frameCentreMs: number };
  /** Feature frames per model input: past + 1 + lookahead. */
  window: number;
  past: number;
  /** Feature frames after the predicted one that the model sees. */
  lookahead: number;
  lookaheadMs: number;
  /** What the window holds before audio arrives (and after it ends, on flush). */
  padFeature: number[];
  /** The blendshapes predicted, in output order. */
  outputs: BlendshapeName[];
  /** Quantiles of the model's output on its training speakers (for per-avatar calibration). */
  outputQuantiles?: QuantileCurves;
}

export class AudioExpressionModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AudioExpressionModelError';
  }
}

/** Checks a parsed model.json. Throws SchemaError naming the offending field. */
export function parseAudioExpressionManifest(v: unknown, where = 'model.json'): AudioExpressionManifest {
  const o = obj(v, where);
  oneOf(o.format, `${where}: format`, [AUDIO_EXPRESSION_FORMAT] as const);
  num(o.version, `${where}: version`, { int: true, min: 1, max: 1 });
  const m = obj(o.model, `${where}: model`);
  const file = str(m.file, `${where}: model.file`, { nonEmpty: true, max: 200 });
  if (basename(file) !== file) throw new SchemaError(`${where}: model.file: must be a file name in the model folder`);
  const f = obj(o.features, `${where}: features`);
  const dim = num(f.dim, `${where}: features.dim`, { int: true, min: 1, max: MAX_FEATURE_DIM });
  const window = num(o.window, `${where}: window`, { int: true, min: 1, max: MAX_WINDOW });
  const past = num(o.past, `${where}: past`, { int: true, min: 0, max: MAX_WINDOW });
  const lookahead = num(o.lookahead, `${where}: lookahead`, { int: true, min: 0, max: MAX_WINDOW });
  if (past + 1 + lookahead !== window) throw new SchemaError(`${where}: window: must be past + 1 + lookahead (${past + 1 + lookahead}), got ${window}`);
  const hopMs = num(f.hopMs, `${where}: features.hopMs`, { min: 1, max: 100 });
  const outputs = arr(o.outputs, `${where}: outputs`, { min: 1 }).map((n, i) => oneOf(n, `${where}: outputs[${i}]`, BLENDSHAPE_NAMES));
  if (new Set(outputs).size !== outputs.length) throw new SchemaError(`${where}: outputs: names must be unique`);
  return {
    format: AUDIO_EXPRESSION_FORMAT,
    version: 1,
    modelVersion: str(o.modelVersion, `${where}: modelVersion`, { nonEmpty: true, max: 50 }),
    model: {
      file,
      opset: num(m.opset, `${where}: model.opset`, { int: true, min: 1, max: 100 }),
      input: str(m.input, `${where}: model.input`, { nonEmpty: true, max: 100 }),
      output: str(m.output, `${where}: model.output`, { nonEmpty: true, max: 100 }),
    },
    features: {
      extractor: str(f.extractor, `${where}: features.extractor`, { nonEmpty: true, max: 200 }),
      dim,
      hopMs,
      frameCentreMs: num(f.frameCentreMs, `${where}: features.frameCentreMs`, { min: 0, max: 1000 }),
    },
    window,
    past,
    lookahead,
    lookaheadMs: num(o.lookaheadMs, `${where}: lookaheadMs`, { min: 0, max: lookahead * hopMs + 1e-6 }),
    padFeature: numArray(o.padFeature, `${where}: padFeature`, dim),
    outputs,
    ...(o.outputQuantiles === undefined ? {} : { outputQuantiles: parseQuantileCurves(o.outputQuantiles, `${where}: outputQuantiles`) }),
  };
}

/** What the live feature extractor produces, to check a model against (SPEECH_FEATURE_* of speech-features/). */
export interface FeatureSpec {
  dim: number;
  hopMs: number;
}

export class AudioExpressionModel {
  readonly manifest: AudioExpressionManifest;
  /** For each output, its index among the 52 blendshapes (shared/src/blendshapes.ts). */
  readonly outputIndex: readonly number[];
  #session: ort.InferenceSession | null;
  #closed: Promise<void> | null = null;

  private constructor(manifest: AudioExpressionManifest, session: ort.InferenceSession) {
    this.manifest = manifest;
    this.#session = session;
    this.outputIndex = manifest.outputs.map((n) => BLENDSHAPE_NAMES.indexOf(n));
  }

  /** Loads model.json + its ONNX file from `dir`; refuses a model whose features differ from `features`. */
  static async load(dir: string = DEFAULT_AUDIO_EXPRESSION_DIR, opts: { features?: FeatureSpec; threads?: number } = {}): Promise<AudioExpressionModel> {
    const mpath = join(dir, 'model.json');
    if (!existsSync(mpath)) throw new AudioExpressionModelError(`${dir}: no model.json (an audio-expression model folder, e.g. assets/audio-expression)`);
    let manifest: AudioExpressionManifest;
    try {
      manifest = parseAudioExpressionManifest(JSON.parse(readFileSync(mpath, 'utf8')) as unknown, mpath);
    } catch (err) {
      if (err instanceof SchemaError || err instanceof SyntaxError) throw new AudioExpressionModelError(`${mpath}: ${err.message}`);
      throw err;
    }
    const spec = opts.features;
    if (spec && (spec.dim !== manifest.features.dim || spec.hopMs !== manifest.features.hopMs)) {
      throw new AudioExpressionModelError(
        `${mpath}: the model reads ${manifest.features.dim} features every ${manifest.features.hopMs} ms, the extractor gives ${spec.dim} every ${spec.hopMs} ms (retrain: python3 -m train.audio_expression train)`,
      );
    }
    const onnxPath = join(dir, manifest.model.file);
    if (!existsSync(onnxPath)) throw new AudioExpressionModelError(`${dir}: ${manifest.model.file} is missing`);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(onnxPath, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: opts.threads ?? 1,
        interOpNumThreads: 1,
      });
    } catch (err) {
      throw new AudioExpressionModelError(`${onnxPath}: ONNX Runtime cannot load it (${(err instanceof Error ? err.message : String(err)).split('\n')[0] ?? ''})`);
    }
    if (!session.inputNames.includes(manifest.model.input) || !session.outputNames.includes(manifest.model.output)) {
      await session.release();
      throw new AudioExpressionModelError(
        `${onnxPath}: inputs [${session.inputNames.join(', ')}], outputs [${session.outputNames.join(', ')}]; model.json names ${manifest.model.input} → ${manifest.model.output}`,
      );
    }
    return new AudioExpressionModel(manifest, session);
  }

  get outputQuantiles(): QuantileCurves | undefined {
    return this.manifest.outputQuantiles;
  }

  /** A new per-session stream sharing this model's ONNX session. */
  stream(): AudioExpressionStream {
    return new AudioExpressionStream(this);
  }

  /** Runs one input window [1, window, dim]; the caller owns `input` and `out` (length = outputs). */
  async run(input: ort.Tensor, out: Float32Array): Promise<void> {
    const session = this.#session;
    if (!session) throw new AudioExpressionModelError('the audio-expression model is closed');
    const result = await session.run({ [this.manifest.model.input]: input });
    const y = result[this.manifest.model.output];
    if (!y || !(y.data instanceof Float32Array) || y.data.length !== out.length) {
      throw new AudioExpressionModelError(`model output ${this.manifest.model.output}: expected ${out.length} float32 values`);
    }
    out.set(y.data);
    y.dispose();
  }

  close(): Promise<void> {
    if (!this.#closed) {
      const s = this.#session;
      this.#session = null;
      this.#closed = s ? s.release() : Promise.resolve();
    }
    return this.#closed;
  }
}

/**
 * One caller's voice → blendshapes. push() the feature frames in order, one at a time (await each): after
 * frame n it returns the outputs for frame n − lookahead (null while n < lookahead). flush() pads the end and
 * returns the outputs of the last `lookahead` frames. The returned array is this stream's own buffer,
 * overwritten by the next push: copy what must be kept.
 */
export class AudioExpressionStream {
  readonly #model: AudioExpressionModel;
  readonly #window: Float32Array;
  readonly #input: ort.Tensor;
  readonly #out: Float32Array;
  readonly #pad: Float32Array;
  readonly #dim: number;
  #pushed = 0;
  #busy = false;

  constructor(model: AudioExpressionModel) {
    const m = model.manifest;
    this.#model = model;
    this.#dim = m.features.dim;
    this.#pad = Float32Array.from(m.padFeature);
    this.#window = new Float32Array(m.window * this.#dim);
    this.#input = new ort.Tensor('float32', this.#window, [1, m.window, this.#dim]);
    this.#out = new Float32Array(m.outputs.length);
    this.reset();
  }

  /** Frames pushed since the start (or the last reset). */
  get pushed(): number {
    return this.#pushed;
  }

  /** Forgets the audio so far: the window holds pad frames again. */
  reset(): void {
    if (this.#busy) throw new AudioExpressionModelError('reset while a push is in flight');
    for (let i = 0; i < this.#model.manifest.window; i++) this.#window.set(this.#pad, i * this.#dim);
    this.#pushed = 0;
  }

  async push(frame: Float32Array): Promise<Float32Array | null> {
    if (frame.length !== this.#dim) throw new AudioExpressionModelError(`feature frame of ${frame.length} values, the model reads ${this.#dim}`);
    if (this.#busy) throw new AudioExpressionModelError('push while the previous push is in flight (await each push)');
    this.#window.copyWithin(0, this.#dim);
    this.#window.set(frame, this.#window.length - this.#dim);
    this.#pushed++;
    if (this.#pushed <= this.#model.manifest.lookahead) return null;
    this.#busy = true;
    try {
      await this.#model.run(this.#input, this.#out);
    } finally {
      this.#busy = false;
    }
    return this.#out;
  }

  /** Ends the audio: the outputs of the frames still waiting for their look-ahead (copies), then resets. */
  async flush(): Promise<Float32Array[]> {
    const rest: Float32Array[] = [];
    // Each pad frame releases one waiting frame; `lookahead` of them release all (frames 0 .. pushed − 1).
    const n = this.#pushed > 0 ? this.#model.manifest.lookahead : 0;
    for (let i = 0; i < n; i++) {
      const y = await this.push(this.#pad);
      if (y) rest.push(Float32Array.from(y));
    }
    this.reset();
    return rest;
  }
}
