/**
 * An avatar (avatar.json + avatar.onnx) loaded for offline rendering with onnxruntime-node, on this thread
 * (a batch tool has no sockets to keep alive; the live server uses a worker, server/src/render/). Takes raw
 * driving vectors (60 values: pose 6, gaze 2, blendshapes 52), normalises them with the manifest's mean/std
 * and renders in batches. One owner; close() is idempotent.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { parseAvatarManifest, type AvatarManifest } from '../../../shared/src/avatar-manifest.js';
import { CONDITIONING_SIZE } from '../../../shared/src/driving-values.js';
import { SchemaError } from '../../../shared/src/json-check.js';
import { EvalInputError } from './errors.js';
import { rgbFromPlanes, type RgbImage } from './image.js';

export function readAvatarManifest(dir: string, flag = '--avatar'): AvatarManifest {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new EvalInputError(`${flag} ${dir}: no such folder`);
  const mpath = join(dir, 'avatar.json');
  if (!existsSync(mpath)) throw new EvalInputError(`${flag} ${dir}: no avatar.json (is it an avatar folder written by 'dnp train'?)`);
  let m: AvatarManifest;
  try {
    m = parseAvatarManifest(JSON.parse(readFileSync(mpath, 'utf8')) as unknown, mpath);
  } catch (err) {
    if (err instanceof SchemaError || err instanceof SyntaxError) throw new EvalInputError(`${mpath}: ${err.message}`);
    throw err;
  }
  if (m.driving !== 'expression') throw new EvalInputError(`${mpath}: a "${m.driving}" avatar cannot be evaluated from tracked driving vectors (expression avatars only)`);
  const width = m.model.inputs[0]?.shape[1];
  if (width !== CONDITIONING_SIZE) throw new EvalInputError(`${mpath}: the model takes ${String(width)} driving values, the dataset has ${CONDITIONING_SIZE}`);
  if (!existsSync(join(dir, m.model.file))) throw new EvalInputError(`${flag} ${dir}: ${m.model.file} is missing`);
  return m;
}

export class AvatarModel {
  readonly manifest: AvatarManifest;
  #session: ort.InferenceSession | null;
  #batch: number;
  #closed: Promise<void> | null = null;

  private constructor(manifest: AvatarManifest, session: ort.InferenceSession, batch: number) {
    this.manifest = manifest;
    this.#session = session;
    this.#batch = batch;
  }

  static async load(dir: string, opts: { threads?: number; batch?: number } = {}): Promise<AvatarModel> {
    const manifest = readAvatarManifest(dir);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(join(dir, manifest.model.file), {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: opts.threads ?? 1,
        interOpNumThreads: 1,
      });
    } catch (err) {
      throw new EvalInputError(`${join(dir, manifest.model.file)}: ONNX Runtime cannot load it (${(err instanceof Error ? err.message : String(err)).split('\n')[0] ?? ''})`);
    }
    const input = manifest.model.inputs[0]?.name;
    const output = manifest.model.outputs[0]?.name;
    if (!input || !session.inputNames.includes(input) || !output || !session.outputNames.includes(output)) {
      await session.release();
      throw new EvalInputError(`${dir}: avatar.onnx has inputs [${session.inputNames.join(', ')}] and outputs [${session.outputNames.join(', ')}], avatar.json names ${String(input)} → ${String(output)}`);
    }
    return new AvatarModel(manifest, session, Math.max(1, opts.batch ?? 8));
  }

  get width(): number {
    return this.manifest.width;
  }

  get height(): number {
    return this.manifest.height;
  }

  /** The model input for raw driving vectors: (value − mean) / std. */
  normalise(raw: Float32Array): Float32Array {
    const { mean, std } = this.manifest.conditioning;
    const out = new Float32Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const k = i % CONDITIONING_SIZE;
      out[i] = ((raw[i] as number) - (mean[k] as number)) / (std[k] as number);
    }
    return out;
  }

  /** Renders `count` raw driving vectors (flat count × 60), in batches; calls onFrame in order. */
  async render(raw: Float32Array, onFrame: (k: number, img: RgbImage) => void | Promise<void>): Promise<void> {
    const session = this.#session;
    if (!session) throw new Error('AvatarModel is closed');
    if (raw.length % CONDITIONING_SIZE !== 0) throw new RangeError('driving vectors must be a multiple of 60 values');
    const count = raw.length / CONDITIONING_SIZE;
    const input = this.manifest.model.inputs[0]?.name as string;
    const output = this.manifest.model.outputs[0]?.name as string;
    const { width, height } = this.manifest;
    for (let start = 0; start < count; start += this.#batch) {
      const b = Math.min(this.#batch, count - start);
      const x = this.normalise(raw.subarray(start * CONDITIONING_SIZE, (start + b) * CONDITIONING_SIZE));
      const res = await session.run({ [input]: new ort.Tensor('float32', x, [b, CONDITIONING_SIZE]) });
      const out = res[output];
      if (!out || out.type !== 'float32' || out.dims.join(',') !== [b, 3, height, width].join(',')) {
        throw new Error(`avatar.onnx output ${output} is ${out ? `${out.type} [${out.dims.join(', ')}]` : 'missing'}, expected float32 [${b}, 3, ${height}, ${width}]`);
      }
      const data = out.data as Float32Array;
      for (let k = 0; k < b; k++) await onFrame(start + k, rgbFromPlanes(data, k * 3 * width * height, width, height));
    }
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      const s = this.#session;
      this.#session = null;
      await s?.release();
    })();
    return this.#closed;
  }
}
