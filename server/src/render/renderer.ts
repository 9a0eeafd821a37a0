/**
 * One Renderer per avatar: owns a render worker thread holding the ORT InferenceSession (shared by every
 * session that shows this avatar; see render-worker.mjs for why it is a worker) and a small batch queue. Requests that arrive while a model run is in flight are collected and
 * rendered together in the next run (one run for several callers); a lone request runs at once.
 *
 * The model contract (avatar-manifest.ts): input "cond" float32 [batch, N] = (values − mean) / std
 * (normalised here), output "rgb" float32 [batch, 3, H, W] in [0, 1], or, for an avatar whose manifest says
 * outputFormat "yuv420p", uint8 [batch, H*W*3/2] already packed as yuv420p (the colour conversion ran in the
 * graph). renderYuv420p() serves both (copying the model's bytes, or converting its RGB here); render() hands
 * out RGB and is for RGB avatars only.
 */
import { Worker } from 'node:worker_threads';
import { avatarOutputFormat, type AvatarManifest, type AvatarOutputFormat, type TensorSpec } from '../../../shared/src/avatar-manifest.js';
import type { Logger } from '../log.js';
import type { Picture, PictureSource } from '../media/frame-encoder.js';
import { rgbPlanarToYuv420p, yuv420pBytes } from '../media/rgb-to-yuv.js';
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
  /** Values (of outType) of the result at the start of the shared output buffer. */
  length: number;
}
type WorkerMessage =
  | ReadyMessage
  | ResultMessage
  | { type: 'error'; message: string }
  | { type: 'run-error'; id: number; message: string }
  | { type: 'log'; message: string };

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
    case 'log':
      return typeof v.message === 'string' ? { type: 'log', message: v.message } : null;
    default:
      return null;
  }
}

export interface RendererOptions {
  device: RenderDevice;
  threads: number;
  /** Largest number of frames rendered in one model run. */
  maxBatch: number;
  /**
   * A model run that has not returned after this long is abandoned: the worker is terminated and replaced,
   * and the frames of that run fail with the reason (default 10 s; the warm-up run gets at least 60 s).
   */
  runTimeoutMs?: number;
}

export const DEFAULT_RUN_TIMEOUT_MS = 10_000;
const WARMUP_TIMEOUT_MS = 60_000;
/** How long close() lets an in-flight run finish, then how long the worker gets to exit before terminate(). */
const CLOSE_GRACE_MS = 2_000;

interface WorkerBuffers {
  input: SharedArrayBuffer;
  output: SharedArrayBuffer;
}

/** A promise that resolves after `ms` and whose timer can be cleared (so it never keeps the process alive). */
function delay(ms: number): { done: Promise<void>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return { done, cancel: () => clearTimeout(timer) };
}

/** Waits for `p` at most `ms`; true when it settled in time. Never rejects. */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  const d = delay(ms);
  try {
    return await Promise.race([p.then(() => true, () => true), d.done.then(() => false)]);
  } finally {
    d.cancel();
  }
}

/** Asks a worker to release its model and exit; terminates it when it does not within the grace time. Bounded. */
async function stopWorker(w: Worker, graceMs: number): Promise<void> {
  const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
  try {
    w.postMessage({ type: 'close' });
  } catch {
    // already gone
  }
  if (await settledWithin(exited, graceMs)) return;
  await settledWithin(w.terminate(), graceMs);
}

/** Starts a render worker and waits for it to load the model ('ready'). Terminates it on failure. */
async function startWorker(modelPath: string, opts: RendererOptions, buffers: WorkerBuffers): Promise<{ worker: Worker; ready: ReadyMessage }> {
  const worker = new Worker(WORKER_URL, { workerData: { modelPath, device: opts.device, threads: opts.threads, ...buffers } });
  try {
    const ready = await new Promise<ReadyMessage>((resolve, reject) => {
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
    return { worker, ready };
  } catch (err) {
    await settledWithin(worker.terminate(), CLOSE_GRACE_MS);
    throw err;
  }
}

/** Called synchronously with a view of the rendered frame (valid only during the call). */
export type FrameConsumer<T> = (rgb: Float32Array, renderMs: number) => T;
/** A view of the model's output for one frame: float RGB (NCHW) or packed yuv420p bytes. */
type RawConsumer = (frame: Float32Array | Uint8Array, renderMs: number) => unknown;

interface Request {
  cond: Float32Array;
  consume: RawConsumer;
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
  /** model runs abandoned after runTimeoutMs (each replaced the worker) */
  hung: number;
}

/** Checks the model's declared inputs/outputs against the manifest. Returns a problem, or null. */
export function checkModelAgainstManifest(inputs: readonly ValueMeta[], outputs: readonly ValueMeta[], m: AvatarManifest): string | null {
  const inSpec = m.model.inputs[0];
  const outSpec = m.model.outputs[0];
  if (!inSpec || !outSpec) return 'manifest declares no input or output';
  const names = (l: readonly ValueMeta[]): string => l.map((x) => x.name).join(', ');
  if (inputs.length !== 1 || inputs[0]?.name !== inSpec.name) return `model inputs are [${names(inputs)}], manifest expects ["${inSpec.name}"]`;
  if (outputs.length !== 1 || outputs[0]?.name !== outSpec.name) return `model outputs are [${names(outputs)}], manifest expects ["${outSpec.name}"]`;
  const check = (what: string, meta: ValueMeta | undefined, tensor: TensorSpec): string | null => {
    const spec = tensor.shape;
    if (!meta || !meta.isTensor) return `${what} is not a tensor`;
    if (meta.type !== tensor.dtype) return `${what} has type ${meta.type}, expected ${tensor.dtype}`;
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
  return check(`input "${inSpec.name}"`, inputs[0], inSpec) ?? check(`output "${outSpec.name}"`, outputs[0], outSpec);
}

/** Values in one frame of the model's output: 3·W·H floats (rgb) or W·H·3/2 bytes (yuv420p). */
function frameValues(m: AvatarManifest): number {
  return avatarOutputFormat(m) === 'rgb' ? 3 * m.width * m.height : yuv420pBytes(m.width, m.height);
}

function frameBytes(m: AvatarManifest): number {
  return frameValues(m) * (avatarOutputFormat(m) === 'rgb' ? Float32Array.BYTES_PER_ELEMENT : 1);
}

export class Renderer {
  readonly id: string;
  readonly manifest: AvatarManifest;
  readonly device: RenderDevice;
  readonly fallbackReason: string | undefined;
  private worker: Worker | null = null;
  private readonly modelPath: string;
  private readonly opts: RendererOptions;
  private readonly log: Logger;
  private readonly maxBatch: number;
  private readonly runTimeoutMs: number;
  private readonly condSize: number;
  /** "rgb" (float32 frames) or "yuv420p" (uint8 frames from the model). */
  readonly outputFormat: AvatarOutputFormat;
  /** Values per frame in the model's output (3·W·H floats, or W·H·3/2 bytes). */
  private readonly frameSize: number;
  private readonly invStd: Float32Array;
  private readonly mean: Float32Array;
  private readonly inName: string;
  private readonly outName: string;
  /** Shared with the worker (and with its replacement after a hung run). */
  private readonly buffers: WorkerBuffers;
  /** Shared with the worker, allocated once: normalised inputs for up to maxBatch frames. */
  private readonly input: Float32Array;
  /** Shared with the worker: results; one frame at first, grown once to maxBatch frames when a batch needs it. */
  private output: Float32Array;
  /** The same buffer as bytes (yuv420p results). */
  private outputBytes: Uint8Array;
  private queue: Request[] = [];
  private running = false;
  private closed = false;
  private nextRunId = 1;
  private readonly pendingRuns = new Map<number, { resolve: (m: ResultMessage) => void; reject: (e: Error) => void }>();
  /** The run in flight (settles either way), for close() to let it finish. */
  private inflight: Promise<unknown> | null = null;
  /** A replacement worker being started after a hung run. */
  private replacing: Promise<void> | null = null;
  private workerError: string | null = null;
  private stats: Omit<RendererStats, 'avatar' | 'device'> = { runs: 0, frames: 0, maxBatchSeen: 0, behind: 0, lastRenderMs: 0, failed: 0, hung: 0 };
  private lastBehindWarn = 0;
  private warming = false;
  /** Render worker threads of this renderer that have not exited (the current one, and abandoned ones still terminating). */
  private workersAlive = 0;
  /** Observers for metrics: (ms, batch). */
  onRun: ((ms: number, batch: number) => void) | null = null;
  onBehind: (() => void) | null = null;
  /** A model run was abandoned (worker terminated and replaced). */
  onHung: (() => void) | null = null;

  private constructor(id: string, modelPath: string, manifest: AvatarManifest, worker: Worker, buffers: WorkerBuffers, ready: ReadyMessage, opts: RendererOptions, log: Logger) {
    this.id = id;
    this.modelPath = modelPath;
    this.opts = opts;
    this.buffers = buffers;
    this.input = new Float32Array(buffers.input);
    this.output = new Float32Array(buffers.output);
    this.outputBytes = new Uint8Array(buffers.output);
    this.manifest = manifest;
    this.device = ready.device;
    this.fallbackReason = ready.fallbackReason ?? undefined;
    this.log = log.child({ avatar: id });
    this.maxBatch = opts.maxBatch;
    this.runTimeoutMs = opts.runTimeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
    this.condSize = manifest.conditioning.mean.length;
    this.outputFormat = avatarOutputFormat(manifest);
    this.frameSize = frameValues(manifest);
    this.mean = Float32Array.from(manifest.conditioning.mean);
    this.invStd = Float32Array.from(manifest.conditioning.std, (s) => 1 / s);
    this.inName = manifest.model.inputs[0]?.name ?? 'cond';
    this.outName = manifest.model.outputs[0]?.name ?? 'rgb';
    this.attach(worker);
  }

  /** Makes `worker` the current worker and listens to it (messages of a replaced worker are ignored). */
  private attach(worker: Worker): void {
    this.worker = worker;
    this.workersAlive++;
    worker.once('exit', () => this.workersAlive--);
    worker.on('message', (raw: unknown) => {
      if (this.worker !== worker) return;
      const m = parseWorkerMessage(raw);
      if (m?.type === 'log') {
        this.log.info({ device: this.device, line: m.message }, 'render process');
        return;
      }
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
    worker.on('error', (err) => {
      if (this.worker === worker) this.workerFailed(`render worker crashed: ${err.message}`);
    });
    worker.on('exit', (code) => {
      if (this.worker === worker && !this.closed) this.workerFailed(`render worker exited (${code})`);
    });
  }

  /**
   * Starts the render worker, loads the model (on the requested device, else the CPU with a logged reason),
   * checks it against the manifest and renders one warm-up frame (which also proves the output shape).
   * Throws an Error naming the model file and the problem.
   */
  static async create(id: string, modelPath: string, manifest: AvatarManifest, opts: RendererOptions, log: Logger): Promise<Renderer> {
    const condSize = manifest.conditioning.mean.length;
    const buffers: WorkerBuffers = {
      input: new SharedArrayBuffer(opts.maxBatch * condSize * Float32Array.BYTES_PER_ELEMENT),
      output: new SharedArrayBuffer(frameBytes(manifest)),
    };
    let started: { worker: Worker; ready: ReadyMessage };
    try {
      started = await startWorker(modelPath, opts, buffers);
    } catch (err) {
      throw new Error(`${modelPath}: cannot load the ONNX model: ${err instanceof Error ? err.message : String(err)}`);
    }
    const { worker, ready } = started;
    if (ready.fallbackReason) {
      log.warn(
        { model: modelPath, requested: opts.device, reason: ready.fallbackReason },
        `renderer: device "${opts.device}" is not usable here (${ready.fallbackReason}); falling back to CPU`,
      );
    } else if (ready.device !== 'cpu') {
      log.info({ model: modelPath, device: ready.device }, 'renderer running on the requested device');
    }
    const problem = checkModelAgainstManifest(ready.inputs, ready.outputs, manifest);
    const r = new Renderer(id, modelPath, manifest, worker, buffers, ready, opts, log);
    if (problem) {
      await r.close();
      throw new Error(`${modelPath}: ${problem}`);
    }
    try {
      r.warming = true;
      await r.enqueue(Float32Array.from(manifest.conditioning.mean), () => undefined);
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
    if (this.outputFormat !== 'rgb') return Promise.reject(new Error(`avatar ${this.id} renders ${this.outputFormat}, not RGB: use renderYuv420p()`));
    return this.enqueue(cond, consume as RawConsumer) as Promise<T>;
  }

  /**
   * Renders one frame into `yuv` (packed yuv420p at the avatar size, what the encoder takes): the model's own
   * yuv420p bytes copied, or its RGB converted here (media/rgb-to-yuv.ts). `beforeCopy` is called when the
   * frame is ready, just before the conversion or copy. Resolves to the model run's time in ms.
   */
  renderYuv420p(cond: Float32Array, yuv: Uint8Array, beforeCopy?: () => void): Promise<number> {
    const { width, height } = this.manifest;
    if (yuv.length < yuv420pBytes(width, height)) return Promise.reject(new RangeError(`yuv buffer has ${yuv.length} bytes, expected ${yuv420pBytes(width, height)}`));
    return this.enqueue(cond, (frame, ms) => {
      beforeCopy?.();
      if (frame instanceof Uint8Array) yuv.set(frame);
      else rgbPlanarToYuv420p(frame, width, height, yuv);
      return ms;
    }) as Promise<number>;
  }

  /**
   * Renders one frame into a stream's picture buffers (media/frame-encoder.ts): the model's RGB into
   * `picture.rgb` when it has one (the encoder converts it, off the main thread when it runs in a worker), else
   * converted here into `picture.yuv`; a yuv420p model's bytes into `picture.yuv`. Resolves to the model run's
   * time and which buffer now holds the picture.
   */
  renderInto(cond: Float32Array, picture: Picture): Promise<{ ms: number; source: PictureSource }> {
    const { width, height } = this.manifest;
    if (picture.yuv.length < yuv420pBytes(width, height)) return Promise.reject(new RangeError(`yuv buffer has ${picture.yuv.length} bytes, expected ${yuv420pBytes(width, height)}`));
    if (picture.rgb && picture.rgb.length !== 3 * width * height) return Promise.reject(new RangeError(`rgb buffer has ${picture.rgb.length} values, expected ${3 * width * height}`));
    return this.enqueue(cond, (frame, ms): { ms: number; source: PictureSource } => {
      if (frame instanceof Uint8Array) {
        picture.yuv.set(frame);
        return { ms, source: 'yuv420p' };
      }
      if (picture.rgb) {
        picture.rgb.set(frame);
        return { ms, source: 'rgb' };
      }
      rgbPlanarToYuv420p(frame, width, height, picture.yuv);
      return { ms, source: 'yuv420p' };
    }) as Promise<{ ms: number; source: PictureSource }>;
  }

  /** Queues one frame; `consume` gets the model's output for it (RGB floats or yuv420p bytes). */
  private enqueue(cond: Float32Array, consume: RawConsumer): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error(`renderer ${this.id} is closed`));
    if (this.workerError) return Promise.reject(new Error(this.workerError));
    if (cond.length !== this.condSize) return Promise.reject(new RangeError(`cond has ${cond.length} values, expected ${this.condSize}`));
    return new Promise<unknown>((resolve, reject) => {
      this.queue.push({ cond: cond.slice(), consume, resolve, reject });
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

  /** Runs the model on the first `batch` vectors of the shared input buffer; abandoned after the run timeout. */
  private runInWorker(batch: number): Promise<ResultMessage> {
    const worker = this.worker;
    if (!worker || this.workerError) return Promise.reject(new Error(this.workerError ?? `renderer ${this.id} is closed`));
    if (batch * frameBytes(this.manifest) > this.outputBytes.length) {
      const grown = new SharedArrayBuffer(this.maxBatch * frameBytes(this.manifest));
      this.output = new Float32Array(grown);
      this.outputBytes = new Uint8Array(grown);
      this.buffers.output = grown;
      worker.postMessage({ type: 'output', output: grown });
    }
    const id = this.nextRunId++;
    const limit = this.warming ? Math.max(this.runTimeoutMs, WARMUP_TIMEOUT_MS) : this.runTimeoutMs;
    const run = new Promise<ResultMessage>((resolve, reject) => {
      const timer = setTimeout(() => this.runHung(worker, limit), limit);
      this.pendingRuns.set(id, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      worker.postMessage({ type: 'run', id, batch, size: this.condSize, inputName: this.inName, outputName: this.outName });
    });
    this.inflight = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** A run did not return in time: abandon the worker (terminate, replace) and fail its runs with the reason. */
  private runHung(worker: Worker, limitMs: number): void {
    if (this.worker !== worker) return;
    const message = `model run did not finish within ${limitMs} ms; the render worker was terminated${this.closed ? '' : ' and is being replaced'}`;
    this.stats.hung++;
    this.log.error({ limitMs }, 'render worker hung: model run abandoned');
    this.worker = null;
    worker.on('error', () => undefined); // it is being thrown away
    void settledWithin(worker.terminate(), CLOSE_GRACE_MS);
    for (const p of this.pendingRuns.values()) p.reject(new Error(message));
    this.pendingRuns.clear();
    this.onHung?.();
    if (!this.closed) this.replacing = this.replaceWorker();
  }

  private async replaceWorker(): Promise<void> {
    try {
      const { worker } = await startWorker(this.modelPath, this.opts, this.buffers);
      if (this.closed) {
        await stopWorker(worker, CLOSE_GRACE_MS);
        return;
      }
      this.attach(worker);
      this.log.info('render worker replaced');
    } catch (err) {
      this.workerFailed(`cannot replace the hung render worker: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.replacing = null;
      if (this.queue.length > 0 && !this.running && !this.closed) void this.drain();
    }
  }

  /** Live resources, for /metrics (a leak check: after every session has gone, these return to their baseline). */
  get live(): { workers: number; runsInFlight: number; queued: number } {
    return { workers: this.workersAlive, runsInFlight: this.pendingRuns.size, queued: this.queue.length };
  }

  /**
   * Test-only: from now on every model run takes at least msPerFrame × batch ms (a slow model; 0 = off). With
   * `exact`, the run also reports exactly that time, whatever the machine's speed (deterministic measurements).
   */
  testSlowRuns(msPerFrame: number, exact = false): void {
    this.worker?.postMessage({ type: 'test-slow', msPerFrame, exact });
  }

  /** Why this renderer cannot render any more (its worker crashed or exited), or null while it can. */
  get failure(): string | null {
    return this.workerError;
  }

  /** Test-only: the worker's next model run never answers ('silent'), blocks its thread ('spin'), fails ('throw') or ends the thread ('crash'). */
  testFaultNextRun(mode: 'silent' | 'spin' | 'throw' | 'crash'): void {
    this.worker?.postMessage({ type: 'test-fault', mode });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.workerError && !this.closed) {
        if (!this.worker) {
          if (!this.replacing) break;
          await this.replacing; // a hung worker is being replaced: the queue waits for it
          continue;
        }
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
          const want = this.outputFormat === 'rgb' ? [batch.length, 3, this.height, this.width] : [batch.length, this.frameSize];
          const type = this.outputFormat === 'rgb' ? 'float32' : 'uint8';
          if (res.outType !== type || d.length !== want.length || d.some((v, i) => v !== want[i]) || res.length !== batch.length * this.frameSize) {
            throw new Error(`model output "${this.outName}" is ${res.outType} [${d.join(', ')}], expected ${type} [${want.join(', ')}]`);
          }
        } catch (err) {
          this.stats.failed++;
          for (const r of batch) r.reject(err);
          continue;
        }
        this.account(res.ms, batch.length);
        const view = this.outputFormat === 'rgb' ? this.output : this.outputBytes;
        for (let b = 0; b < batch.length; b++) {
          const r = batch[b] as Request;
          try {
            r.resolve(r.consume(view.subarray(b * this.frameSize, (b + 1) * this.frameSize), res.ms));
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

  /**
   * Rejects queued frames, lets an in-flight run finish (at most CLOSE_GRACE_MS), then stops the worker
   * (terminated when it does not exit in time). Bounded even when a model run never returns. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pending = this.queue;
    this.queue = [];
    for (const r of pending) r.reject(new Error(`renderer ${this.id} closed`));
    if (this.inflight && this.pendingRuns.size > 0) await settledWithin(this.inflight, CLOSE_GRACE_MS);
    for (const p of this.pendingRuns.values()) p.reject(new Error(`renderer ${this.id} closed during a model run`));
    this.pendingRuns.clear();
    if (this.replacing) await settledWithin(this.replacing, CLOSE_GRACE_MS); // it stops its own worker when it sees closed
    const w = this.worker;
    this.worker = null;
    if (w) await stopWorker(w, CLOSE_GRACE_MS);
  }
}
