/**
 * RenderPool: one avatar's renderers, each its own worker thread and ONNX Runtime session (render/renderer.ts),
 * so that frames of different sessions render in parallel on different cores (`--render-workers`). A model run
 * uses `--threads` intra-op threads; several small runs side by side use cores better than one run spread over
 * them (measured in docs/server.md). Each frame goes to the renderer with the least work waiting (its queued
 * frames plus its runs in flight); a renderer still batches the frames that wait for it.
 *
 * Same surface as one Renderer (what an AvatarEntry holds); with one worker it is exactly that Renderer. The
 * members fail and recover on their own (a hung run replaces that member's worker only); a member whose worker
 * crashed gets no more frames while another can render, and is replaced by a fresh renderer (the model loaded
 * again; at most one attempt per member every RESTART_MIN_MS, so a model that always crashes does not spin).
 * close() is idempotent.
 */
import type { AvatarManifest, AvatarOutputFormat } from '../../../shared/src/avatar-manifest.js';
import type { Logger } from '../log.js';
import type { Picture, PictureSource } from '../media/frame-encoder.js';
import type { RenderDevice } from './ort-session.js';
import { Renderer, type FrameConsumer, type RendererOptions, type RendererStats } from './renderer.js';

/** The default render workers per avatar for `cores` cores: one per core, at most 4 (each holds a copy of the model). */
export function defaultRenderWorkers(cores: number): number {
  return Math.max(1, Math.min(4, cores));
}

export interface RenderPoolOptions extends RendererOptions {
  /** Render worker threads for this avatar (each with its own model session); default 1. */
  workers?: number;
}

/** A crashed member is started again at most this often (ms). */
const RESTART_MIN_MS = 5_000;

export class RenderPool {
  readonly id: string;
  readonly manifest: AvatarManifest;
  readonly device: RenderDevice;
  readonly fallbackReason: string | undefined;
  readonly outputFormat: AvatarOutputFormat;
  private readonly members: Renderer[];
  private closing: Promise<void> | null = null;
  private readonly restarting = new Map<number, Promise<void>>();
  private readonly lastRestart = new Map<number, number>();
  /** Crashed members started again. */
  private restarts = 0;
  private runCb: ((ms: number, batch: number) => void) | null = null;
  private behindCb: (() => void) | null = null;
  private hungCb: (() => void) | null = null;
  /** A crashed member was replaced by a fresh renderer. */
  onRestart: (() => void) | null = null;

  private constructor(
    members: Renderer[],
    private readonly modelPath: string,
    private readonly opts: RenderPoolOptions,
    private readonly log: Logger,
  ) {
    const first = members[0];
    if (!first) throw new Error('a render pool needs at least one renderer');
    this.members = members;
    this.id = first.id;
    this.manifest = first.manifest;
    this.device = first.device;
    this.fallbackReason = first.fallbackReason;
    this.outputFormat = first.outputFormat;
  }

  /** Starts `workers` renderers (each loads the model and renders its warm-up frame); all or none. */
  static async create(id: string, modelPath: string, manifest: AvatarManifest, opts: RenderPoolOptions, log: Logger): Promise<RenderPool> {
    const n = opts.workers ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new RangeError(`render workers must be an integer in 1..64, got ${n}`);
    const started = await Promise.allSettled(Array.from({ length: n }, () => Renderer.create(id, modelPath, manifest, opts, log)));
    const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await Promise.all(ok.map((r) => r.close()));
      throw failed.reason;
    }
    return new RenderPool(ok, modelPath, opts, log);
  }

  /** Starts a fresh renderer in place of crashed member `i` (in the background; bounded in rate). */
  private restart(i: number): void {
    if (this.closing || this.restarting.has(i)) return;
    const now = Date.now();
    if (now - (this.lastRestart.get(i) ?? -Infinity) < RESTART_MIN_MS) return;
    this.lastRestart.set(i, now);
    const dead = this.members[i];
    this.log.warn({ avatar: this.id, member: i, reason: dead?.failure }, 'render worker crashed; starting a new one');
    const p = Renderer.create(this.id, this.modelPath, this.manifest, this.opts, this.log)
      .then(
        async (r) => {
          if (this.closing) {
            await r.close();
            return;
          }
          r.onRun = this.runCb;
          r.onBehind = this.behindCb;
          r.onHung = this.hungCb;
          this.members[i] = r;
          this.restarts++;
          this.onRestart?.();
          this.log.info({ avatar: this.id, member: i }, 'render worker replaced');
          await dead?.close();
        },
        (err: unknown) => this.log.error({ avatar: this.id, member: i, err: err instanceof Error ? err.message : String(err) }, 'could not start a new render worker'),
      )
      .finally(() => this.restarting.delete(i));
    this.restarting.set(i, p);
  }

  /** Renderers (worker threads) in the pool. */
  get size(): number {
    return this.members.length;
  }

  /** The working member with the least work waiting (queued frames + runs in flight); the first on a tie (all failed: the first, which rejects with its reason). */
  private pick(): Renderer {
    let best = this.members[0] as Renderer;
    let bestLoad = Infinity;
    for (const [i, r] of this.members.entries()) {
      if (r.failure !== null) {
        this.restart(i);
        continue;
      }
      const l = r.live;
      const load = l.queued + l.runsInFlight;
      if (load < bestLoad) {
        best = r;
        bestLoad = load;
      }
    }
    return best;
  }

  render<T>(cond: Float32Array, consume: FrameConsumer<T>): Promise<T> {
    return this.pick().render(cond, consume);
  }

  renderYuv420p(cond: Float32Array, yuv: Uint8Array, beforeCopy?: () => void): Promise<number> {
    return this.pick().renderYuv420p(cond, yuv, beforeCopy);
  }

  renderInto(cond: Float32Array, picture: Picture): Promise<{ ms: number; source: PictureSource }> {
    return this.pick().renderInto(cond, picture);
  }

  /** Observers for metrics, set on every member: a model run (ms, frames), a run over one frame interval, a hung run. */
  set onRun(cb: ((ms: number, batch: number) => void) | null) {
    this.runCb = cb;
    for (const r of this.members) r.onRun = cb;
  }
  set onBehind(cb: (() => void) | null) {
    this.behindCb = cb;
    for (const r of this.members) r.onBehind = cb;
  }
  set onHung(cb: (() => void) | null) {
    this.hungCb = cb;
    for (const r of this.members) r.onHung = cb;
  }

  /** Live resources summed over the members (for /metrics and leak checks). */
  get live(): { workers: number; runsInFlight: number; queued: number } {
    const sum = { workers: 0, runsInFlight: 0, queued: 0 };
    for (const r of this.members) {
      const l = r.live;
      sum.workers += l.workers;
      sum.runsInFlight += l.runsInFlight;
      sum.queued += l.queued;
    }
    return sum;
  }

  /** Test-only: every member's model runs take at least msPerFrame × batch ms from now on. */
  testSlowRuns(msPerFrame: number, exact = false): void {
    for (const r of this.members) r.testSlowRuns(msPerFrame, exact);
  }

  /** Test-only: the next model run of every member (or of member `index`) never answers, blocks its thread, fails, or ends the thread. */
  testFaultNextRun(mode: 'silent' | 'spin' | 'throw' | 'crash', index?: number): void {
    for (const [i, r] of this.members.entries()) if (index === undefined || i === index) r.testFaultNextRun(mode);
  }

  toJSON(): RendererStats & { workers: number; restarts: number } {
    const all = this.members.map((r) => r.toJSON());
    const sum = (k: 'runs' | 'frames' | 'behind' | 'failed' | 'hung'): number => all.reduce((a, s) => a + s[k], 0);
    return {
      avatar: this.id,
      device: this.device,
      workers: this.members.length,
      restarts: this.restarts,
      runs: sum('runs'),
      frames: sum('frames'),
      maxBatchSeen: Math.max(...all.map((s) => s.maxBatchSeen)),
      behind: sum('behind'),
      lastRenderMs: Math.max(...all.map((s) => s.lastRenderMs)),
      failed: sum('failed'),
      hung: sum('hung'),
    };
  }

  /** Closes every member (each bounded). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all(this.members.map((r) => r.close()));
      await Promise.all([...this.restarting.values()]); // a renderer started meanwhile closes itself
    })();
    return this.closing;
  }
}
