/**
 * Egress: pushes one MediaTap somewhere (WHIP, RTMP, an MP4 file). One state machine for every kind:
 *
 *   idle ─start()→ connecting ─connected→ live ─lost / failed→ retrying ─(back-off)→ connecting …
 *     any ─stop()→ stopped (final)      the tap closing → stopped      a non-retrying output failing → stopped
 *
 * Network outputs retry with exponential back-off (base × 2^n, capped, the count reset once live for a while);
 * a file output does not retry. State, bytes written and reconnects are reported through `EgressMetrics`.
 * Subclasses implement connect() (resolve once media flows, or throw) and disconnect() (idempotent teardown of
 * the current attempt), and call lost() when a live connection drops and addBytes() for what they wrote.
 */
import type { Logger } from '../log.js';
import type { MediaTap, Unsubscribe } from '../stream/media-tap.js';

export const EGRESS_STATES = ['idle', 'connecting', 'live', 'retrying', 'stopped'] as const;
export type EgressState = (typeof EGRESS_STATES)[number];
export type EgressKind = 'whip' | 'rtmp' | 'mp4';

export interface BackoffOptions {
  /** First retry delay (ms). */
  baseMs: number;
  /** Longest delay (ms). */
  maxMs: number;
  /** Give up (stopped) after this many failed attempts in a row; 0 = never. */
  maxAttempts: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, maxMs: 30_000, maxAttempts: 0 };

/** Delay before retry number `attempt` (1, 2, ...): base × 2^(attempt-1), at most max. */
export function backoffDelay(attempt: number, b: BackoffOptions): number {
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.max(0, attempt - 1));
}

export interface EgressObserver {
  state(e: Egress, s: EgressState): void;
  bytes(e: Egress, n: number): void;
  reconnect(e: Egress): void;
}

export abstract class Egress {
  private st: EgressState = 'idle';
  private retryTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private liveSince = 0;
  private offTapClosed: Unsubscribe | null = null;
  private generation = 0;
  bytes = 0;
  reconnects = 0;
  lastError: string | null = null;
  observer: EgressObserver | null = null;
  private resolveDone: () => void = () => {};
  /** Resolves once stopped and closed (a recording finalised). */
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));

  protected constructor(
    readonly id: string,
    readonly kind: EgressKind,
    readonly tap: MediaTap,
    protected readonly log: Logger,
    private readonly backoff: BackoffOptions | null,
  ) {}

  get state(): EgressState {
    return this.st;
  }

  /** Opens the output; resolves when media flows, throws when this attempt failed. */
  protected abstract connect(): Promise<void>;
  /** Tears the current attempt down (idempotent); `final` on stop() (a file is finalised then). */
  protected abstract disconnect(final: boolean): Promise<void>;

  private set(s: EgressState): void {
    if (this.st === s) return;
    this.st = s;
    this.log.info({ egress: this.id, kind: this.kind, state: s, ...(s === 'retrying' || s === 'stopped' ? { error: this.lastError } : {}) }, 'egress state');
    this.observer?.state(this, s);
  }

  protected addBytes(n: number): void {
    this.bytes += n;
    this.observer?.bytes(this, n);
  }

  /** Starts (idle only). Resolves after the first attempt (live, retrying or stopped). */
  async start(): Promise<void> {
    if (this.st !== 'idle') return;
    this.offTapClosed = this.tap.onClosed(() => void this.stop('the stream ended'));
    if (this.tap.closed) {
      await this.stop('the stream ended');
      return;
    }
    await this.attemptOnce();
  }

  private async attemptOnce(): Promise<void> {
    const gen = ++this.generation;
    this.set('connecting');
    try {
      await this.connect();
      if (gen !== this.generation || this.st !== 'connecting') return;
      this.liveSince = performance.now();
      this.set('live');
    } catch (err) {
      if (gen !== this.generation || this.st !== 'connecting') return;
      await this.failed(err);
    }
  }

  /** A live (or connecting) output dropped: retry with back-off, or stop. */
  protected lost(err: unknown): void {
    if (this.st !== 'live' && this.st !== 'connecting') return;
    this.generation++;
    void this.failed(err);
  }

  private async failed(err: unknown): Promise<void> {
    this.lastError = err instanceof Error ? err.message : String(err);
    await this.disconnect(false).catch(() => {});
    if (this.st === 'stopped') return;
    if (!this.backoff) {
      await this.stop(this.lastError);
      return;
    }
    // A connection that stayed live for a while starts the back-off again from the beginning.
    if (this.liveSince && performance.now() - this.liveSince > this.backoff.maxMs) this.attempt = 0;
    this.liveSince = 0;
    this.attempt++;
    if (this.backoff.maxAttempts > 0 && this.attempt > this.backoff.maxAttempts) {
      await this.stop(`gave up after ${this.attempt - 1} attempts: ${this.lastError}`);
      return;
    }
    const delay = backoffDelay(this.attempt, this.backoff);
    this.set('retrying');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.st !== 'retrying') return;
      this.reconnects++;
      this.observer?.reconnect(this);
      void this.attemptOnce();
    }, delay);
  }

  /** Stops for good (idempotent): no more retries; the output is closed (a file finalised). */
  async stop(reason = 'stopped'): Promise<void> {
    if (this.st === 'stopped') return;
    if (reason !== 'stopped') this.lastError = reason;
    this.generation++;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.offTapClosed?.();
    this.offTapClosed = null;
    this.set('stopped');
    await this.disconnect(true).catch((err: unknown) => this.log.warn({ egress: this.id, err: err instanceof Error ? err.message : String(err) }, 'egress close failed'));
    this.resolveDone();
  }

  toJSON(): { id: string; kind: EgressKind; state: EgressState; bytes: number; reconnects: number; lastError: string | null } {
    return { id: this.id, kind: this.kind, state: this.st, bytes: this.bytes, reconnects: this.reconnects, lastError: this.lastError };
  }
}
