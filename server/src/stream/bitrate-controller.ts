/**
 * BitrateController: the target bitrate of one shared encode from its receivers' feedback.
 *
 * Each receiver has its own estimate, starting at the current target:
 *  - loss > lossHigh (default 10 %) in a receiver report: estimate × (1 - loss / 2), floored at minBps, and no
 *    increase for holdMs (default 4 s);
 *  - loss < lossLow (default 2 %) and not holding: estimate grows slowly, × (1 + increasePerS) per second
 *    (default 5 %/s, about +50 % in 8 s), up to maxBps;
 *  - in between: unchanged;
 *  - a REMB caps that receiver's estimate at the bitrate it announces.
 * The encode is shared, so the target is the lowest receiver estimate, never below minBps (one congested viewer
 * lowers the picture for all, down to the floor; below it that viewer loses frames rather than everyone
 * getting an unwatchable picture). The target changes only by >= minChangeRatio (or onto a bound) and at most every
 * minChangeIntervalMs (each change re-opens the encoder and costs a keyframe). Receivers silent for
 * receiverTimeoutMs are forgotten. Pure: time comes in as arguments.
 */
export interface BitrateControllerOptions {
  minBps: number;
  maxBps: number;
  startBps: number;
  lossHigh?: number;
  lossLow?: number;
  increasePerS?: number;
  holdMs?: number;
  minChangeRatio?: number;
  minChangeIntervalMs?: number;
  receiverTimeoutMs?: number;
}

export interface ReceiverFeedback {
  /** Fraction of packets lost since the last report, 0..1 (RTCP RR fraction lost / 256). */
  fractionLost?: number;
  /** Receiver estimated max bitrate (REMB), bit/s. */
  rembBps?: number;
}

interface ReceiverState {
  estimate: number;
  remb: number;
  holdUntil: number;
  lastAt: number;
}

export class BitrateController {
  private readonly o: Required<BitrateControllerOptions>;
  private readonly receivers = new Map<string, ReceiverState>();
  private current: number;
  private lastChange = -Infinity;
  changes = 0;

  constructor(opts: BitrateControllerOptions) {
    if (!(opts.minBps > 0 && opts.minBps <= opts.maxBps)) throw new Error('BitrateController: need 0 < minBps <= maxBps');
    this.o = { lossHigh: 0.1, lossLow: 0.02, increasePerS: 0.05, holdMs: 4000, minChangeRatio: 0.1, minChangeIntervalMs: 2000, receiverTimeoutMs: 10_000, ...opts };
    this.current = this.clamp(opts.startBps);
  }

  private clamp(b: number): number {
    return Math.min(this.o.maxBps, Math.max(this.o.minBps, b));
  }

  get target(): number {
    return this.current;
  }

  get receiverCount(): number {
    return this.receivers.size;
  }

  feedback(receiver: string, fb: ReceiverFeedback, nowMs: number): void {
    let r = this.receivers.get(receiver);
    if (!r) {
      r = { estimate: this.current, remb: Infinity, holdUntil: -Infinity, lastAt: nowMs };
      this.receivers.set(receiver, r);
    }
    const dtS = Math.max(0, Math.min(5, (nowMs - r.lastAt) / 1000));
    r.lastAt = nowMs;
    if (fb.rembBps !== undefined && Number.isFinite(fb.rembBps) && fb.rembBps > 0) r.remb = fb.rembBps;
    if (fb.fractionLost !== undefined && Number.isFinite(fb.fractionLost)) {
      const loss = Math.min(1, Math.max(0, fb.fractionLost));
      if (loss > this.o.lossHigh) {
        r.estimate = Math.max(this.o.minBps, r.estimate * (1 - loss / 2));
        r.holdUntil = nowMs + this.o.holdMs;
      } else if (loss < this.o.lossLow && nowMs >= r.holdUntil) {
        r.estimate = Math.min(this.o.maxBps, r.estimate * (1 + this.o.increasePerS) ** dtS);
      }
    }
  }

  removeReceiver(receiver: string): void {
    this.receivers.delete(receiver);
  }

  /** The new target when it should change now, else null. */
  update(nowMs: number): number | null {
    for (const [id, r] of this.receivers) if (nowMs - r.lastAt > this.o.receiverTimeoutMs) this.receivers.delete(id);
    if (this.receivers.size === 0) return null;
    let lowest = Infinity;
    for (const r of this.receivers.values()) lowest = Math.min(lowest, r.estimate, r.remb);
    const want = Math.round(this.clamp(lowest));
    if (want === this.current) return null;
    const atBound = want === this.o.maxBps || want === this.o.minBps; // reach the bounds exactly
    if (!atBound && Math.abs(want - this.current) / this.current < this.o.minChangeRatio) return null;
    if (nowMs - this.lastChange < this.o.minChangeIntervalMs) return null;
    this.current = want;
    this.lastChange = nowMs;
    this.changes++;
    return want;
  }
}
