/**
 * EncodePool: the worker threads that convert, encode and packetise every stream's pictures, so that the main
 * thread (event loop) only moves packets: DTLS, data channels, RTCP and signaling never wait behind an encode.
 *
 * `workers` threads at most, started when needed; a new stream goes to the worker with the fewest streams (a
 * new worker is started instead while fewer than `workers` run and every running one already has a stream).
 * `workers: 0` encodes inline on the calling thread (the server before the pool; kept for comparison).
 *
 * Fault isolation: a worker that crashes, exits, or does not answer an encode within `timeoutMs` is terminated;
 * the streams it carried fail (their next or pending encode rejects with the reason, and their owners close
 * them); streams opened later get a fresh worker. One owner (the Server); close() is idempotent and bounded.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import { parseFromWorker, type FromWorker, type TestFault, type ToWorker } from './encode-protocol.js';
import { allocatePicture, checkSource, EncodeCounts, InlineFrameEncoder, type EncodedFrame, type FrameEncoder, type FrameEncoderOptions, type FrameEncoderStats, type Picture, type PictureSource } from './frame-encoder.js';
import type { EncodedPacket } from './video-encoder.js';
import { checkVp8CpuUsed, DEFAULT_VP8_CPU_USED } from './vp8-speed.js';

const WORKER_URL = new URL('./encode-worker.mjs', import.meta.url);

/** An encode not answered within this long abandons its worker (ms). */
const DEFAULT_ENCODE_TIMEOUT_MS = 5_000;
/** A worker's first start (loading its code and FFmpeg) may take this much longer than an encode (ms). */
const WORKER_START_MS = 30_000;
/** close(): how long a worker may take to exit before it is terminated (ms). */
const EXIT_GRACE_MS = 1_000;

export interface EncodePoolOptions {
  /** Worker threads at most; 0 = encode inline on the calling thread. */
  workers: number;
  timeoutMs?: number;
  /** libvpx `cpu-used` of the VP8 streams opened without one of their own (default DEFAULT_VP8_CPU_USED). */
  vp8CpuUsed?: number;
  log: Logger;
}

/** The default pool size for `cores` cores: half of them (the rest render and run the event loop), at least one. */
export function defaultEncodeWorkers(cores: number): number {
  return Math.max(1, Math.floor(cores / 2));
}

class EncodeWorker {
  readonly worker: Worker;
  readonly streams = new Map<number, PooledFrameEncoder>();
  /** Why the worker is gone (null while it runs). */
  dead: string | null = null;
  /** The worker has loaded (its first message). */
  ready = false;
  readonly exited: Promise<void>;

  constructor(
    readonly index: number,
    private readonly onFailed: (w: EncodeWorker, reason: string) => void,
  ) {
    this.worker = new Worker(WORKER_URL);
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('message', (raw: unknown) => {
      const m = parseFromWorker(raw);
      if (!m) {
        this.fail(`encode worker ${index} sent an unexpected message`);
        return;
      }
      if (m.type === 'ready') {
        this.ready = true;
        return;
      }
      this.streams.get(m.id)?.handle(m);
    });
    this.worker.on('error', (err) => this.fail(`encode worker ${index} crashed: ${err.message}`));
    this.worker.on('exit', (code) => this.fail(`encode worker ${index} exited (${code})`));
  }

  post(m: ToWorker): void {
    if (this.dead) return;
    try {
      this.worker.postMessage(m);
    } catch (err) {
      this.fail(`encode worker ${this.index}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The worker is gone or useless: its streams fail, the thread is terminated. Idempotent. */
  fail(reason: string): void {
    if (this.dead) return;
    this.dead = reason;
    for (const s of this.streams.values()) s.fail(reason);
    this.streams.clear();
    void this.worker.terminate();
    this.onFailed(this, reason);
  }

  /** Asks the worker to free its encoders and end; terminates it after the grace time. */
  async stop(): Promise<void> {
    if (!this.dead) {
      this.dead = 'closed';
      try {
        this.worker.postMessage({ type: 'exit' } satisfies ToWorker);
      } catch {
        // already gone
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), EXIT_GRACE_MS)));
    const exited = await Promise.race([this.exited.then(() => true), grace]);
    clearTimeout(timer);
    if (!exited) await this.worker.terminate();
  }
}

/** One stream's encoder in a worker. */
class PooledFrameEncoder implements FrameEncoder {
  readonly picture: Picture;
  private readonly pending = new Map<number, { resolve: (f: EncodedFrame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private nextSeq = 0;
  private failed: string | null = null;
  private closed = false;
  private bitrateNow: number;
  private readonly counts = new EncodeCounts();
  private readonly openedPromise: Promise<{ extradata: Buffer | null }>;
  private settleOpened: ((r: { extradata: Buffer | null } | Error) => void) | null = null;

  constructor(
    private readonly host: EncodeWorker,
    private readonly id: number,
    readonly options: FrameEncoderOptions,
    private readonly timeoutMs: number,
  ) {
    this.picture = allocatePicture(options, true);
    this.bitrateNow = options.bitrate;
    this.openedPromise = new Promise<{ extradata: Buffer | null }>((resolve, reject) => {
      this.settleOpened = (r) => (r instanceof Error ? reject(r) : resolve(r));
    });
    this.openedPromise.catch(() => undefined); // also reported by encode(); nobody may be waiting here
    host.streams.set(id, this);
    const { rgb, yuv } = this.picture;
    host.post({ type: 'open', id, options, rgb: rgb ? (rgb.buffer as SharedArrayBuffer) : null, yuv: yuv.buffer as SharedArrayBuffer });
  }

  opened(): Promise<{ extradata: Buffer | null }> {
    return this.openedPromise;
  }

  private settle(r: { extradata: Buffer | null } | Error): void {
    this.settleOpened?.(r);
    this.settleOpened = null;
  }

  encode(source: PictureSource, pts90k: number, keyframe: boolean): Promise<EncodedFrame> {
    if (this.closed) return Promise.reject(new Error('encoder is closed'));
    if (this.failed) return Promise.reject(new Error(this.failed));
    try {
      checkSource(source, this.options);
    } catch (err) {
      return Promise.reject(err);
    }
    const seq = this.nextSeq++;
    const limitMs = this.host.ready ? this.timeoutMs : this.timeoutMs + WORKER_START_MS;
    return new Promise<EncodedFrame>((resolve, reject) => {
      const timer = setTimeout(() => this.host.fail(`encode worker ${this.host.index} did not answer an encode within ${limitMs} ms`), limitMs);
      this.pending.set(seq, { resolve, reject, timer });
      this.host.post({ type: 'encode', id: this.id, seq, source, pts90k, keyframe });
    });
  }

  /** A message for this stream from its worker. */
  handle(m: Exclude<FromWorker, { type: 'ready' }>): void {
    if (m.type === 'opened') {
      this.settle({ extradata: m.extradata ? Buffer.from(m.extradata) : null });
      return;
    }
    if (m.type === 'open-error') {
      this.fail(`cannot open the ${this.options.codec} encoder: ${m.message}`);
      return;
    }
    const p = this.pending.get(m.seq);
    if (!p) return;
    this.pending.delete(m.seq);
    clearTimeout(p.timer);
    if (m.type === 'encode-error') {
      p.reject(new Error(m.message));
      return;
    }
    let at = 0;
    const rtp: Buffer[] = [];
    let bytes = 0;
    for (const len of m.rtp) {
      rtp.push(Buffer.from(m.data, at, len));
      at += len;
      bytes += len;
    }
    const packets: EncodedPacket[] = [];
    for (const info of m.packets) {
      packets.push({ data: Buffer.from(m.data, at, info.length), pts90k: info.pts90k, key: info.key });
      at += info.length;
    }
    const f: EncodedFrame = { rtp, packets, key: m.key, encodeMs: m.encodeMs, bytes };
    this.counts.add(f);
    p.resolve(f);
  }

  /** The stream cannot encode any more (its worker failed, or the encoder did not open). */
  fail(reason: string): void {
    if (this.failed) return;
    this.failed = reason;
    this.settle(new Error(reason));
    this.rejectPending(reason);
  }

  private rejectPending(reason: string): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(reason));
    }
    this.pending.clear();
  }

  get bitrate(): number {
    return this.bitrateNow;
  }

  get failure(): string | null {
    return this.failed;
  }

  setBitrate(bps: number): void {
    const b = Math.round(bps);
    if (this.closed || b === this.bitrateNow) return;
    this.bitrateNow = b;
    this.host.post({ type: 'bitrate', id: this.id, bps: b });
  }

  toJSON(): FrameEncoderStats {
    return this.counts.stats(`worker ${this.host.index}`, this.options, this.bitrateNow);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.settle(new Error('encoder is closed'));
    this.rejectPending('encoder is closed');
    if (this.host.streams.get(this.id) === this) {
      this.host.streams.delete(this.id);
      this.host.post({ type: 'close', id: this.id });
    }
  }
}

export class EncodePool {
  readonly size: number;
  private readonly timeoutMs: number;
  /** libvpx `cpu-used` of VP8 streams opened without their own. */
  readonly vp8CpuUsed: number;
  private readonly log: Logger;
  private readonly workers: EncodeWorker[] = [];
  private nextId = 1;
  private nextIndex = 0;
  private closed = false;
  private failures = 0;
  /** A worker failed (crash, exit, timeout); its streams fail with `reason`. */
  onWorkerFailed: ((reason: string) => void) | null = null;

  constructor(opts: EncodePoolOptions) {
    if (!Number.isInteger(opts.workers) || opts.workers < 0) throw new RangeError(`encode workers must be an integer >= 0, got ${opts.workers}`);
    this.size = opts.workers;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_ENCODE_TIMEOUT_MS;
    this.vp8CpuUsed = checkVp8CpuUsed(opts.vp8CpuUsed ?? DEFAULT_VP8_CPU_USED);
    this.log = opts.log;
  }

  /** An encoder for one stream: in a worker, or inline when the pool has no workers. Throws when closed (or inline, when it cannot open). */
  open(streamOptions: FrameEncoderOptions): FrameEncoder {
    if (this.closed) throw new Error('encode pool is closed');
    const options: FrameEncoderOptions = { ...streamOptions, vp8CpuUsed: streamOptions.vp8CpuUsed ?? this.vp8CpuUsed };
    if (this.size === 0) return new InlineFrameEncoder(options);
    return new PooledFrameEncoder(this.pick(), this.nextId++, options, this.timeoutMs);
  }

  private pick(): EncodeWorker {
    let best: EncodeWorker | null = null;
    for (const w of this.workers) if (!best || w.streams.size < best.streams.size) best = w;
    if (best && (best.streams.size === 0 || this.workers.length >= this.size)) return best;
    const w = new EncodeWorker(this.nextIndex++, (failed, reason) => this.workerFailed(failed, reason));
    this.workers.push(w);
    return w;
  }

  private workerFailed(w: EncodeWorker, reason: string): void {
    const i = this.workers.indexOf(w);
    if (i >= 0) this.workers.splice(i, 1);
    if (this.closed) return;
    this.failures++;
    this.log.error({ reason }, 'encode worker failed; its streams end, new streams get a new worker');
    this.onWorkerFailed?.(reason);
  }

  /** Workers running and the streams they carry (for /metrics and tests). */
  get live(): { workers: number; streams: number; failures: number } {
    return { workers: this.workers.length, streams: this.workers.reduce((a, w) => a + w.streams.size, 0), failures: this.failures };
  }

  /** Tests only: the next encode on every running worker throws ('throw'), blocks its thread ('hang') or kills it ('crash'). */
  testFault(mode: TestFault): void {
    for (const w of this.workers) w.post({ type: 'test-fault', mode });
  }

  /** Ends every worker (their streams' encoders are freed). Idempotent; bounded by the exit grace time. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const ws = this.workers.splice(0);
    for (const w of ws) for (const s of w.streams.values()) s.fail('encode pool is closed');
    await Promise.all(ws.map((w) => w.stop()));
  }
}
