/**
 * Admission control on measured load: a new session is refused (code `busy`, "server is busy") when the
 * render + encode time per frame measured for the sessions already running (rolling windows, per avatar) says
 * that one more would push them below their frame rate — instead of admitting it and degrading everybody.
 *
 * Three budgets, each in ms of work per second, with the new session counted and every term multiplied by the
 * headroom factor (≥ 1, slack for jitter and for what is not measured: WebRTC, socket.io, GC):
 *   render workers of each avatar n_a · render_a · fps_a                       ≤ 1000 · w (w render workers, one model run at a time each)
 *   encoding (all encoders)       Σ_a n_a · encode_a · fps_a                   ≤ 1000 · e (e encode workers; 1 = the main thread when inline)
 *   all cores                     Σ_a n_a · (render_a · t + encode_a) · fps_a  ≤ 1000 · cores
 * where render_a is the measured model run time per frame (run ms / frames in the run), encode_a the measured
 * RGB→YUV + encode + packetise time per frame (medians of rolling windows of the last 100 samples), and t the ORT threads one run may use (capped at the cores).
 * An avatar without measurements yet is admitted (nothing to predict from), and so is any join while no session runs.
 */

/** Median of the last `size` samples (robust to a cold first run or a stall). */
class RollingMedian {
  private readonly samples: number[] = [];
  private next = 0;

  constructor(private readonly size: number) {}

  push(v: number): void {
    if (!Number.isFinite(v) || v < 0) return;
    if (this.samples.length < this.size) {
      this.samples.push(v);
    } else {
      this.samples[this.next] = v;
      this.next = (this.next + 1) % this.size;
    }
  }

  get count(): number {
    return this.samples.length;
  }

  get median(): number {
    const n = this.samples.length;
    if (n === 0) return 0;
    const sorted = [...this.samples].sort((a, b) => a - b);
    const mid = n >> 1;
    return n % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  }
}

export interface AdmissionOptions {
  enabled: boolean;
  /** Every predicted load is multiplied by this (≥ 1) before it is compared with its budget. */
  headroom: number;
  /** Cores the server may use (os.availableParallelism()). */
  cores: number;
  /** ORT intra-op threads per model run (0 = one per core). */
  renderThreads: number;
  /** Render workers per avatar (render/render-pool.ts); default 1. */
  renderWorkers?: number;
  /** Threads that encode: the encode pool's workers (media/encode-pool.ts), or 0 when encoding runs inline on the main thread. Default 0. */
  encodeWorkers?: number;
  /** Samples per rolling window; default 100 (4 s of one 25 fps session). */
  window?: number;
}

/** What an admission decision needs to know about a session (the one asking, or one already running). */
export interface AdmissionSession {
  avatar: string;
  fps: number;
}

export type AdmissionLimit = 'render' | 'encode' | 'cores';

export interface AdmissionRefusal {
  limit: AdmissionLimit;
  /** Human-readable: which budget, the numbers. */
  message: string;
}

export class Admission {
  private readonly render = new Map<string, RollingMedian>();
  private readonly encode = new Map<string, RollingMedian>();
  private readonly window: number;

  constructor(readonly opts: AdmissionOptions) {
    this.window = opts.window ?? 100;
  }

  /** A model run of `avatar` took `ms` for `frames` frames. */
  observeRender(avatar: string, ms: number, frames: number): void {
    if (frames < 1) return;
    this.rolling(this.render, avatar).push(ms / frames);
  }

  /** One frame of a session of `avatar` took `ms` to convert, encode and packetise. */
  observeEncode(avatar: string, ms: number): void {
    this.rolling(this.encode, avatar).push(ms);
  }

  /** Measured ms per frame of one avatar (0 when not measured yet). */
  perFrame(avatar: string): { renderMs: number; encodeMs: number; measured: boolean } {
    const r = this.render.get(avatar);
    const e = this.encode.get(avatar);
    return { renderMs: r?.median ?? 0, encodeMs: e?.median ?? 0, measured: (r?.count ?? 0) > 0 };
  }

  /** null = admit `joining`; otherwise which budget it would exceed, and why. */
  check(joining: AdmissionSession, running: readonly AdmissionSession[]): AdmissionRefusal | null {
    if (!this.opts.enabled) return null;
    // nothing running: nothing to protect (and a stale measurement must not lock everybody out)
    if (running.length === 0 || !this.perFrame(joining.avatar).measured) return null;
    const h = this.opts.headroom;
    const t = this.opts.renderThreads === 0 ? this.opts.cores : Math.min(this.opts.renderThreads, this.opts.cores);
    const perAvatar = new Map<string, { n: number; fps: number }>();
    for (const s of [...running, joining]) {
      const a = perAvatar.get(s.avatar) ?? { n: 0, fps: s.fps };
      a.n++;
      perAvatar.set(s.avatar, a);
    }
    let encodeLoad = 0;
    let totalLoad = 0;
    const fmt = (x: number): string => x.toFixed(1);
    for (const [avatar, { n, fps }] of perAvatar) {
      const { renderMs, encodeMs } = this.perFrame(avatar);
      const renderLoad = n * renderMs * fps * h;
      const workers = Math.max(1, this.opts.renderWorkers ?? 1);
      if (renderLoad > 1000 * workers && avatar === joining.avatar) {
        return {
          limit: 'render',
          message: `server is busy: avatar "${avatar}" renders in ${fmt(renderMs)} ms per frame (measured); ${n} sessions at ${fps} fps would need ${Math.round(renderLoad)} ms of its ${workers === 1 ? 'render worker' : `${workers} render workers`} per second with headroom ${h} (at most ${1000 * workers})`,
        };
      }
      encodeLoad += n * encodeMs * fps * h;
      totalLoad += n * (renderMs * t + encodeMs) * fps * h;
    }
    const workers = this.opts.encodeWorkers ?? 0;
    const encodeBudget = 1000 * Math.max(1, Math.min(workers, this.opts.cores));
    if (encodeLoad > encodeBudget) {
      const where = workers > 0 ? `the ${workers} encode worker(s)` : 'the main thread';
      return { limit: 'encode', message: `server is busy: encoding ${running.length + 1} sessions would need ${Math.round(encodeLoad)} ms of ${where} per second with headroom ${h} (at most ${encodeBudget}; measured)` };
    }
    if (totalLoad > 1000 * this.opts.cores) {
      return { limit: 'cores', message: `server is busy: ${running.length + 1} sessions would need ${Math.round(totalLoad)} ms of CPU per second with headroom ${h} (at most ${1000 * this.opts.cores} on ${this.opts.cores} cores; measured)` };
    }
    return null;
  }

  private rolling(map: Map<string, RollingMedian>, avatar: string): RollingMedian {
    let r = map.get(avatar);
    if (!r) {
      r = new RollingMedian(this.window);
      map.set(avatar, r);
    }
    return r;
  }
}
