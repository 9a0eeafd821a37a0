/**
 * FrameLoop: when a stream makes a picture, re-sends one, or forces a keyframe. Shared by a caller's Session and
 * a room participant's Publisher; it knows nothing of WebRTC, rendering or encoding (its target does those), so
 * it runs under fake timers in tests (test/frame-loop.test.ts).
 *
 *  - Pacing: a new input (update()) is rendered as soon as possible, but on a 1/fps grid (at most fps on
 *    average; one late frame does not delay all the next) and never two frames closer than half an interval.
 *  - Latest wins: inputs that arrive while a frame is being made mark the loop dirty; one frame follows for all
 *    of them, made from the latest input (the target reads it when the frame starts).
 *  - Keepalive: while nothing new arrives, the last picture is re-sent every `keepaliveMs`.
 *  - Keyframes (PLI/FIR, new receivers): honoured at once (a re-send as a keyframe when idle, else the next
 *    frame), at most once per `keyframeMinIntervalMs`; requests inside that window share one deferred keyframe.
 * One frame or re-send at a time. close() is idempotent; `inFlight` lets an owner wait for the last frame.
 */

export interface FrameLoopOptions {
  fps: number;
  /** Re-send the last picture after this long without a new one (ms). */
  keepaliveMs: number;
  /** Keyframes at most once per this many ms. */
  keyframeMinIntervalMs: number;
  /** The clock (ms); default performance.now. */
  now?: () => number;
}

export interface FrameLoopTarget {
  /** Makes and sends one picture from the latest input. */
  renderFrame(): Promise<void>;
  /** Sends the last picture again. */
  resendFrame(): Promise<void>;
  /** A keyframe request is honoured (at once, or the deferred one at the end of a window): the next picture sent must be a keyframe. */
  requestKeyframe(): void;
  /** A frame or a re-send failed (the loop goes on; the owner decides whether the stream ends). */
  failed(what: 'frame' | 'resend', err: unknown): void;
  /** Whether pictures are wanted now (a publisher nobody watches renders nothing); default always. */
  wanted?(): boolean;
}

export interface FrameLoopCounts {
  rendered: number;
  resent: number;
  skippedWhileBusy: number;
  keyframeRequestsThrottled: number;
}

export class FrameLoop {
  private readonly intervalMs: number;
  private readonly now: () => number;
  private running = false;
  private closed = false;
  private busy = false;
  private dirty = false;
  private haveFrame = false;
  private lastStart = -Infinity;
  /** Nominal start of the next frame slot. */
  private nextSlot = -Infinity;
  private lastSent = -Infinity;
  private lastKeyframeRequest = -Infinity;
  private slotTimer: NodeJS.Timeout | null = null;
  private keyframeTimer: NodeJS.Timeout | null = null;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private frame: Promise<void> | null = null;
  readonly counts: FrameLoopCounts = { rendered: 0, resent: 0, skippedWhileBusy: 0, keyframeRequestsThrottled: 0 };

  constructor(
    private readonly opts: FrameLoopOptions,
    private readonly target: FrameLoopTarget,
  ) {
    if (!(opts.fps > 0)) throw new RangeError(`fps must be > 0, got ${opts.fps}`);
    this.intervalMs = 1000 / opts.fps;
    this.now = opts.now ?? (() => performance.now());
  }

  /** The frame or re-send in flight (settles either way), or null. */
  get inFlight(): Promise<void> | null {
    return this.frame;
  }

  /** A picture was sent within this many ms (for idle checks; Infinity before the first). */
  get msSinceSent(): number {
    return this.now() - this.lastSent;
  }

  /** Starts the loop (the stream can send now): the first frame, then keepalive re-sends. Idempotent. */
  start(): void {
    if (this.running || this.closed) return;
    this.running = true;
    this.keepaliveTimer = setInterval(() => {
      if (!this.busy && this.wanted() && this.now() - this.lastSent >= this.opts.keepaliveMs) this.resend();
    }, Math.max(20, Math.round(this.opts.keepaliveMs / 2)));
    this.update();
  }

  /** A new input (driving vector, voice frame, a new subscriber): a frame from the latest input soon. */
  update(): void {
    this.dirty = true;
    this.kick();
  }

  /**
   * A keyframe request: 'honoured' (a keyframe now: a re-send when idle, else the next frame) or 'throttled'
   * (within keyframeMinIntervalMs of the last one: one deferred keyframe at the end of that window).
   */
  requestKeyframe(): 'honoured' | 'throttled' {
    if (this.closed) return 'throttled';
    const now = this.now();
    const wait = this.lastKeyframeRequest + this.opts.keyframeMinIntervalMs - now;
    if (wait > 0) {
      this.counts.keyframeRequestsThrottled++;
      this.keyframeTimer ??= setTimeout(() => {
        this.keyframeTimer = null;
        this.requestKeyframe();
      }, Math.ceil(wait));
      return 'throttled';
    }
    this.lastKeyframeRequest = now;
    this.target.requestKeyframe();
    if (!this.busy) this.resend();
    return 'honoured';
  }

  private wanted(): boolean {
    return this.target.wanted?.() ?? true;
  }

  /** Starts a frame now if one is due, or arms a timer for the next slot. */
  private kick(): void {
    if (this.closed || !this.running || !this.dirty || !this.wanted()) return;
    if (this.busy) {
      this.counts.skippedWhileBusy++;
      return; // finishing the current frame calls kick() again
    }
    const due = Math.max(this.nextSlot, this.lastStart + this.intervalMs / 2);
    const wait = due - this.now();
    if (wait <= 0) {
      if (this.slotTimer) clearTimeout(this.slotTimer);
      this.slotTimer = null;
      this.track(this.makeFrame());
    } else {
      this.slotTimer ??= setTimeout(() => {
        this.slotTimer = null;
        this.kick();
      }, Math.ceil(wait));
    }
  }

  private track(p: Promise<void>): void {
    const frame = p.finally(() => {
      if (this.frame === frame) this.frame = null;
    });
    this.frame = frame;
  }

  private async makeFrame(): Promise<void> {
    this.busy = true;
    this.dirty = false;
    const start = this.now();
    this.lastStart = start;
    this.nextSlot = (start - this.nextSlot > this.intervalMs ? start : this.nextSlot) + this.intervalMs;
    try {
      await this.target.renderFrame();
      if (this.closed) return;
      this.counts.rendered++;
      this.haveFrame = true;
      this.lastSent = this.now();
    } catch (err) {
      if (!this.closed) this.target.failed('frame', err);
    } finally {
      this.busy = false;
    }
    // Let the event loop deliver the inputs that arrived during this frame before choosing the next (kicking
    // right here would render the input from before this frame: a whole frame late).
    if (!this.closed) setImmediate(() => this.kick());
  }

  /** Re-sends the last picture (keepalive, keyframe); it counts as the frame in flight. */
  private resend(): void {
    if (this.closed || !this.running || !this.haveFrame || this.busy) return;
    this.busy = true;
    this.counts.resent++;
    this.track(
      this.target
        .resendFrame()
        .then(
          () => {
            this.lastSent = this.now();
          },
          (err: unknown) => {
            if (!this.closed) this.target.failed('resend', err);
          },
        )
        .finally(() => {
          this.busy = false;
          if (!this.closed) setImmediate(() => this.kick());
        }),
    );
  }

  /** Stops every timer; a frame in flight finishes (see inFlight) but nothing new starts. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of [this.slotTimer, this.keyframeTimer]) if (t) clearTimeout(t);
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.slotTimer = this.keyframeTimer = this.keepaliveTimer = null;
  }
}
