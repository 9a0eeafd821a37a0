/**
 * One Renderer per avatar: owns the ORT InferenceSession (shared by every session that shows this
 * avatar) and a small batch queue. Requests that arrive while a model run is in flight are collected and
 * rendered together in the next run (one run for several callers); a lone request runs at once.
 *
 * The model contract (avatar-manifest.ts): input "cond" float32 [batch, N] = (values − mean) / std
 * (normalised here), output "rgb" float32 [batch, 3, H, W] in [0, 1].
 */
import * as ort from 'onnxruntime-node';
import type { AvatarManifest } from '../../../shared/src/avatar-manifest.js';
import type { Logger } from '../log.js';
import { createOrtSession, type RenderDevice } from './ort-session.js';

export interface RendererOptions {
  device: RenderDevice;
  threads: number;
  /** Largest number of frames rendered in one model run. */
  maxBatch: number;
}

/** Called synchronously with a view of the rendered frame (valid only during the call). */
export type FrameConsumer<T> = (rgb: Float32Array, renderMs: number) => T;

interface Request {
  cond: Float32Array;
  consume: FrameConsumer<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export interface RendererStats {
  avatar: string;
  device: RenderDevice;
  runs: number;
  frames: number;
  maxBatchSeen: number;
  behind: number;
  lastRenderMs: number;
  failed: number;
}

/** Checks the model's declared inputs/outputs against the manifest. Returns a problem, or null. */
export function checkModelAgainstManifest(session: ort.InferenceSession, m: AvatarManifest): string | null {
  const inSpec = m.model.inputs[0];
  const outSpec = m.model.outputs[0];
  if (!inSpec || !outSpec) return 'manifest declares no input or output';
  if (session.inputNames.length !== 1 || session.inputNames[0] !== inSpec.name) {
    return `model inputs are [${session.inputNames.join(', ')}], manifest expects ["${inSpec.name}"]`;
  }
  if (session.outputNames.length !== 1 || session.outputNames[0] !== outSpec.name) {
    return `model outputs are [${session.outputNames.join(', ')}], manifest expects ["${outSpec.name}"]`;
  }
  const check = (what: string, meta: ort.InferenceSession.ValueMetadata | undefined, spec: Array<number | 'batch'>): string | null => {
    if (!meta || !meta.isTensor) return `${what} is not a tensor`;
    if (meta.type !== 'float32') return `${what} has type ${meta.type}, expected float32`;
    if (meta.shape.length === 0) return null; // shape not recorded in the model: checked at the first run
    if (meta.shape.length !== spec.length) return `${what} has shape [${meta.shape.join(', ')}], manifest says [${spec.join(', ')}]`;
    for (let i = 1; i < spec.length; i++) {
      const d = meta.shape[i];
      if (typeof d === 'number' && d !== spec[i]) return `${what} has shape [${meta.shape.join(', ')}], manifest says [${spec.join(', ')}]`;
    }
    if (typeof meta.shape[0] === 'number' && meta.shape[0] !== 1) {
      return `${what} has a fixed batch dimension ${meta.shape[0]}; the first dimension must be dynamic`;
    }
    return null;
  };
  return check(`input "${inSpec.name}"`, session.inputMetadata[0], inSpec.shape) ?? check(`output "${outSpec.name}"`, session.outputMetadata[0], outSpec.shape);
}

export class Renderer {
  readonly id: string;
  readonly manifest: AvatarManifest;
  readonly device: RenderDevice;
  readonly fallbackReason: string | undefined;
  private session: ort.InferenceSession | null;
  private readonly log: Logger;
  private readonly maxBatch: number;
  private readonly condSize: number;
  private readonly frameSize: number;
  private readonly invStd: Float32Array;
  private readonly mean: Float32Array;
  /** Input buffer for maxBatch vectors, allocated once; tensors are views on it per batch size. */
  private readonly input: Float32Array;
  private readonly inputTensors = new Map<number, ort.Tensor>();
  private queue: Request[] = [];
  private running = false;
  private closed = false;
  private stats: Omit<RendererStats, 'avatar' | 'device'> = { runs: 0, frames: 0, maxBatchSeen: 0, behind: 0, lastRenderMs: 0, failed: 0 };
  private lastBehindWarn = 0;
  private warming = false;
  /** Observers for metrics: (ms, batch). */
  onRun: ((ms: number, batch: number) => void) | null = null;
  onBehind: (() => void) | null = null;

  private constructor(id: string, manifest: AvatarManifest, created: { session: ort.InferenceSession; device: RenderDevice; fallbackReason?: string }, opts: RendererOptions, log: Logger) {
    this.id = id;
    this.manifest = manifest;
    this.session = created.session;
    this.device = created.device;
    this.fallbackReason = created.fallbackReason;
    this.log = log.child({ avatar: id });
    this.maxBatch = opts.maxBatch;
    this.condSize = manifest.conditioning.mean.length;
    this.frameSize = 3 * manifest.width * manifest.height;
    this.mean = Float32Array.from(manifest.conditioning.mean);
    this.invStd = Float32Array.from(manifest.conditioning.std, (s) => 1 / s);
    this.input = new Float32Array(this.maxBatch * this.condSize);
  }

  /**
   * Loads the model, checks it against the manifest and renders one warm-up frame (which also proves the
   * output shape). Throws an Error naming the model file and the problem.
   */
  static async create(id: string, modelPath: string, manifest: AvatarManifest, opts: RendererOptions, log: Logger): Promise<Renderer> {
    let created;
    try {
      created = await createOrtSession(modelPath, { device: opts.device, threads: opts.threads }, log);
    } catch (err) {
      throw new Error(`${modelPath}: cannot load the ONNX model: ${err instanceof Error ? err.message : String(err)}`);
    }
    const problem = checkModelAgainstManifest(created.session, manifest);
    if (problem) {
      await created.session.release();
      throw new Error(`${modelPath}: ${problem}`);
    }
    const r = new Renderer(id, manifest, created, opts, log);
    try {
      r.warming = true;
      await r.render(Float32Array.from(manifest.conditioning.mean), () => undefined);
      r.warming = false;
    } catch (err) {
      await r.close();
      throw new Error(`${modelPath}: warm-up render failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    return r;
  }

  get width(): number {
    return this.manifest.width;
  }
  get height(): number {
    return this.manifest.height;
  }
  get fps(): number {
    return this.manifest.fps;
  }

  /**
   * Renders one frame for the raw (un-normalised) conditioning vector `cond`; `consume` is called with the
   * frame while it is valid and its result is returned.
   */
  render<T>(cond: Float32Array, consume: FrameConsumer<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`renderer ${this.id} is closed`));
    if (cond.length !== this.condSize) return Promise.reject(new RangeError(`cond has ${cond.length} values, expected ${this.condSize}`));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ cond: cond.slice(), consume, resolve: resolve as (v: unknown) => void, reject });
      if (!this.running) void this.drain();
    });
  }

  private inputTensor(batch: number): ort.Tensor {
    let t = this.inputTensors.get(batch);
    if (!t) {
      t = new ort.Tensor('float32', this.input.subarray(0, batch * this.condSize), [batch, this.condSize]);
      this.inputTensors.set(batch, t);
    }
    return t;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0 && this.session) {
        const batch = this.queue.splice(0, this.maxBatch);
        const n = this.condSize;
        for (let b = 0; b < batch.length; b++) {
          const c = (batch[b] as Request).cond;
          for (let i = 0; i < n; i++) this.input[b * n + i] = ((c[i] as number) - (this.mean[i] as number)) * (this.invStd[i] as number);
        }
        const inName = this.manifest.model.inputs[0]?.name ?? 'cond';
        const outName = this.manifest.model.outputs[0]?.name ?? 'rgb';
        const t0 = performance.now();
        let out: ort.Tensor | undefined;
        try {
          const res = await this.session.run({ [inName]: this.inputTensor(batch.length) });
          out = res[outName];
          const dims = out?.dims ?? [];
          if (!out || out.type !== 'float32' || dims.length !== 4 || dims[0] !== batch.length || dims[1] !== 3 || dims[2] !== this.height || dims[3] !== this.width) {
            throw new Error(`model output "${outName}" has shape [${dims.join(', ')}], expected [${batch.length}, 3, ${this.height}, ${this.width}]`);
          }
        } catch (err) {
          this.stats.failed++;
          for (const r of batch) r.reject(err);
          continue;
        }
        const ms = performance.now() - t0;
        this.account(ms, batch.length);
        const data = out.data as Float32Array;
        for (let b = 0; b < batch.length; b++) {
          const r = batch[b] as Request;
          try {
            r.resolve(r.consume(data.subarray(b * this.frameSize, (b + 1) * this.frameSize), ms));
          } catch (err) {
            r.reject(err);
          }
        }
        out.dispose();
      }
    } finally {
      this.running = false;
    }
  }

  private account(ms: number, batch: number): void {
    if (this.warming) return;
    this.stats.runs++;
    this.stats.frames += batch;
    this.stats.lastRenderMs = ms;
    if (batch > this.stats.maxBatchSeen) this.stats.maxBatchSeen = batch;
    this.onRun?.(ms, batch);
    const budget = 1000 / this.fps;
    if (ms > budget) {
      this.stats.behind++;
      this.onBehind?.();
      const now = Date.now();
      if (now - this.lastBehindWarn > 10_000) {
        this.lastBehindWarn = now;
        this.log.warn({ renderMs: Math.round(ms * 10) / 10, budgetMs: Math.round(budget * 10) / 10, batch, device: this.device, behindSoFar: this.stats.behind }, 'renderer is falling behind real time (model run longer than one frame interval)');
      }
    }
  }

  toJSON(): RendererStats {
    return { avatar: this.id, device: this.device, ...this.stats };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pending = this.queue;
    this.queue = [];
    for (const r of pending) r.reject(new Error(`renderer ${this.id} closed`));
    // Wait for an in-flight run before releasing the native session.
    while (this.running) await new Promise((r) => setTimeout(r, 5));
    const s = this.session;
    this.session = null;
    if (s) await s.release();
  }
}
