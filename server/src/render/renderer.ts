/**
 * One Renderer per avatar: owns a render worker thread holding the ORT InferenceSession (shared by every
 * session that shows this avatar; see render-worker.mjs for why it is a worker) and a small batch queue. Requests that arrive while a model run is in flight are collected and
 * rendered together in the next run (one run for several callers); a lone request runs at once.
 *
 * The model contract (avatar-manifest.ts): input "cond" float32 [batch, N] = (values − mean) / std
 * (normalised here), output "rgb" float32 [batch, 3, H, W] in [0, 1].
 */
import { Worker } from 'node:worker_threads';
import type { AvatarManifest } from '../../../shared/src/avatar-manifest.js';
import type { Logger } from '../log.js';
import { RENDER_DEVICES, type RenderDevice } from './ort-session.js';

/** Input/output description as the worker reports it (onnxruntime's ValueMetadata, as plain data). */
export type ValueMeta = { name: string; isTensor: true; type: string; shape: Array<number | string> } | { name: string; isTensor: false };

interface ReadyMessage {
  type: 'ready';
  device: RenderDevice;
  fallbackReason: string | null;
  inputs: ValueMeta[];
  outputs: ValueMeta[];
}
interface ResultMessage {
  type: 'result';
  id: number;
  ms: number;
  dims: number[];
  outType: string;
  /** Floats of the result at the start of the shared output buffer. */
  length: number;
}
type WorkerMessage = ReadyMessage | ResultMessage | { type: 'error'; message: string } | { type: 'run-error'; id: number; message: string };

const WORKER_URL = new URL('./render-worker.mjs', import.meta.url);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** Checks a message from the worker (it crosses a thread boundary: validated like any other input). */
function parseWorkerMessage(v: unknown): WorkerMessage | null {
  if (!isObject(v) || typeof v.type !== 'string') return null;
  switch (v.type) {
    case 'ready':
      return (RENDER_DEVICES as readonly unknown[]).includes(v.device) && Array.isArray(v.inputs) && Array.isArray(v.outputs) ? (v as unknown as ReadyMessage) : null;
    case 'result':
      return typeof v.id === 'number' && typeof v.ms === 'number' && Array.isArray(v.dims) && typeof v.outType === 'string' && typeof v.length === 'number' ? (v as unknown as ResultMessage) : null;
    case 'error':
      return typeof v.message === 'string' ? { type: 'error', message: v.message } : null;
    case 'run-error':
      return typeof v.id === 'number' && typeof v.message === 'string' ? { type: 'run-error', id: v.id, message: v.message } : null;
    default:
      return null;
  }
}

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
export function checkModelAgainstManifest(inputs: readonly ValueMeta[], outputs: readonly ValueMeta[], m: AvatarManifest): string | null {
  const inSpec = m.model.inputs[0];
  const outSpec = m.model.outputs[0];
  if (!inSpec || !outSpec) return 'manifest declares no input or output';
  const names = (l: readonly ValueMeta[]): string => l.map((x) => x.name).join(', ');
  if (inputs.length !== 1 || inputs[0]?.name !== inSpec.name) return `model inputs are [${names(inputs)}], manifest expects ["${inSpec.name}"]`;
  if (outputs.length !== 1 || outputs[0]?.name !== outSpec.name) return `model outputs are [${names(outputs)}], manifest expects ["${outSpec.name}"]`;
  const check = (what: string, meta: ValueMeta | undefined, spec: Array<number | 'batch'>): string | null => {
    if (!meta || !meta.isTensor) return `${what} is not a tensor`;
    if (meta.type !== 'float32') return `${what} has type ${meta.type}, expected float32`;
    if (meta.shape.length === 0) return null; // shape not recorded in the model: checked by the warm-up run
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
  return check(`input "${inSpec.name}"`, inputs[0], inSpec.shape) ?? check(`output "${outSpec.name}"`, outputs[0], outSpec.shape);
}

export class Renderer {
  readonly id: string;
  readonly manifest: AvatarManifest;
  readonly device: RenderDevice;
  readonly fallbackReason: string | undefined;
  private worker: Worker | null;
  private readonly log: Logger;
  private readonly maxBatch: number;
  private readonly condSize: number;
  private readonly frameSize: number;
  private readonly invStd: Float32Array;
  private readonly mean: Float32Array;
  private readonly inName: string;
  private readonly outName: string;
  /** Shared with the worker, allocated once: normalised inputs for up to maxBatch frames. */
  private readonly input: Float32Array;
  /** Shared with the worker: results; one frame at first, grown once to maxBatch frames when a batch needs it. */
  private output: Float32Array;
  private queue: Request[] = [];
  private running = false;
  private closed = false;
  private nextRunId = 1;
  private readonly pendingRuns = new Map<number, { resolve: (m: ResultMessage) => void; reject: (e: Error) => void }>();
  private workerError: string | null = null;
  private stats: Omit<RendererStats, 'avatar' | 'device'> = { runs: 0, frames: 0, maxBatchSeen: 0, behind: 0, lastRenderMs: 0, failed: 0 };
  private lastBehindWarn = 0;
  private warming = false;
  /** Observers for metrics: (ms, batch). */
  onRun: ((ms: number, batch: number) => void) | null = null;
  onBehind: (() => void) | null = null;

  private constructor(id: string, manifest: AvatarManifest, worker: Worker, buffers: { input: SharedArrayBuffer; output: SharedArrayBuffer }, ready: ReadyMessage, opts: RendererOptions, log: Logger) {
    this.id = id;
    this.input = new Float32Array(buffers.input);
    this.output = new Float32Array(buffers.output);
    this.manifest = manifest;
    this.worker = worker;
    this.device = ready.device;
    this.fallbackReason = ready.fallbackReason ?? undefined;
    this.log = log.child({ avatar: id });
    this.maxBatch = opts.maxBatch;
    this.condSize = manifest.conditioning.mean.length;
    this.frameSize = 3 * manifest.width * manifest.height;
    this.mean = Float32Array.from(manifest.conditioning.mean);
    this.invStd = Float32Array.from(manifest.conditioning.std, (s) => 1 / s);
    this.inName = manifest.model.inputs[0]?.name ?? 'cond';
    this.outName = manifest.model.outputs[0]?.name ?? 'rgb';
    worker.on('message', (raw: unknown) => {
      const m = parseWorkerMessage(raw);
      if (!m || (m.type !== 'result' && m.type !== 'run-error')) {
        this.log.error({ message: String(raw) }, 'render worker sent an unexpected message');
        return;
      }
      const p = this.pendingRuns.get(m.id);
      if (!p) return;
      this.pendingRuns.delete(m.id);
      if (m.type === 'result') p.resolve(m);
      else p.reject(new Error(m.message));
    });
    worker.on('error', (err) => this.workerFailed(`render worker crashed: ${err.message}`));
    worker.on('exit', (code) => {
      if (!this.closed) this.workerFailed(`render worker exited (${code})`);
    });
  }

  /**
   * Starts the render worker, loads the model (on the requested device, else the CPU with a logged reason),
   * checks it against the manifest and renders one warm-up frame (which also proves the output shape).
   * Throws an Error naming the model file and the problem.
   */
  static async create(id: string, modelPath: string, manifest: AvatarManifest, opts: RendererOptions, log: Logger): Promise<Renderer> {
    const condSize = manifest.conditioning.mean.length;
    const buffers = {
      input: new SharedArrayBuffer(opts.maxBatch * condSize * Float32Array.BYTES_PER_ELEMENT),
      output: new SharedArrayBuffer(3 * manifest.width * manifest.height * Float32Array.BYTES_PER_ELEMENT),
    };
    const worker = new Worker(WORKER_URL, { workerData: { modelPath, device: opts.device, threads: opts.threads, ...buffers } });
    let ready: ReadyMessage;
    try {
      ready = await new Promise<ReadyMessage>((resolve, reject) => {
        const onMessage = (raw: unknown): void => {
          const m = parseWorkerMessage(raw);
          cleanup();
          if (m?.type === 'ready') resolve(m);
          else reject(new Error(m?.type === 'error' ? m.message : 'render worker sent an unexpected first message'));
        };
        const onError = (err: Error): void => {
          cleanup();
          reject(err);
        };
        const onExit = (code: number): void => {
          cleanup();
          reject(new Error(`render worker exited (${code}) before loading the model`));
        };
        const cleanup = (): void => {
          worker.off('message', onMessage);
          worker.off('error', onError);
          worker.off('exit', onExit);
        };
        worker.on('message', onMessage);
        worker.on('error', onError);
        worker.on('exit', onExit);
      });
    } catch (err) {
      await worker.terminate();
      throw new Error(`${modelPath}: cannot load the ONNX model: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (ready.fallbackReason) {
      log.warn(
        { model: modelPath, requested: opts.device, reason: ready.fallbackReason },
        `renderer: device "${opts.device}" is not usable here (${ready.fallbackReason}); falling back to CPU`,
      );
    } else if (ready.device !== 'cpu') {
      log.info({ model: modelPath, device: ready.device }, 'renderer running on the requested device');
    }
    const problem = checkModelAgainstManifest(ready.inputs, ready.outputs, manifest);
    const r = new Renderer(id, manifest, worker, buffers, ready, opts, log);
    if (problem) {
      await r.close();
      throw new Error(`${modelPath}: ${problem}`);
    }
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
    if (this.workerError) return Promise.reject(new Error(this.workerError));
    if (cond.length !== this.condSize) return Promise.reject(new RangeError(`cond has ${cond.length} values, expected ${this.condSize}`));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ cond: cond.slice(), consume, resolve: resolve as (v: unknown) => void, reject });
      if (!this.running) void this.drain();
    });
  }

  private workerFailed(message: string): void {
    if (this.workerError) return;
    this.workerError = message;
    this.log.error({ error: message }, 'renderer failed');
    for (const p of this.pendingRuns.values()) p.reject(new Error(message));
    this.pendingRuns.clear();
    const queued = this.queue;
    this.queue = [];
    for (const r of queued) r.reject(new Error(message));
  }

  /** Runs the model on the first `batch` vectors of the shared input buffer. */
  private runInWorker(batch: number): Promise<ResultMessage> {
    const worker = this.worker;
    if (!worker || this.workerError) return Promise.reject(new Error(this.workerError ?? `renderer ${this.id} is closed`));
    if (batch * this.frameSize > this.output.length) {
      const grown = new SharedArrayBuffer(this.maxBatch * this.frameSize * Float32Array.BYTES_PER_ELEMENT);
      this.output = new Float32Array(grown);
      worker.postMessage({ type: 'output', output: grown });
    }
    const id = this.nextRunId++;
    return new Promise<ResultMessage>((resolve, reject) => {
      this.pendingRuns.set(id, { resolve, reject });
      worker.postMessage({ type: 'run', id, batch, size: this.condSize, inputName: this.inName, outputName: this.outName });
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0 && this.worker && !this.workerError) {
        const batch = this.queue.splice(0, this.maxBatch);
        const n = this.condSize;
        const input = this.input;
        for (let b = 0; b < batch.length; b++) {
          const c = (batch[b] as Request).cond;
          for (let i = 0; i < n; i++) input[b * n + i] = ((c[i] as number) - (this.mean[i] as number)) * (this.invStd[i] as number);
        }
        let res: ResultMessage;
        try {
          res = await this.runInWorker(batch.length);
          const d = res.dims;
          if (res.outType !== 'float32' || d.length !== 4 || d[0] !== batch.length || d[1] !== 3 || d[2] !== this.height || d[3] !== this.width || res.length !== batch.length * this.frameSize) {
            throw new Error(`model output "${this.outName}" has shape [${d.join(', ')}], expected [${batch.length}, 3, ${this.height}, ${this.width}]`);
          }
        } catch (err) {
          this.stats.failed++;
          for (const r of batch) r.reject(err);
          continue;
        }
        this.account(res.ms, batch.length);
        for (let b = 0; b < batch.length; b++) {
          const r = batch[b] as Request;
          try {
            r.resolve(r.consume(this.output.subarray(b * this.frameSize, (b + 1) * this.frameSize), res.ms));
          } catch (err) {
            r.reject(err);
          }
        }
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

  /** Stops the worker (after an in-flight run) and releases the model. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pending = this.queue;
    this.queue = [];
    for (const r of pending) r.reject(new Error(`renderer ${this.id} closed`));
    while (this.running && !this.workerError) await new Promise((r) => setTimeout(r, 5));
    const w = this.worker;
    this.worker = null;
    if (!w) return;
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    w.postMessage({ type: 'close' });
    const timer = setTimeout(() => void w.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }
}
