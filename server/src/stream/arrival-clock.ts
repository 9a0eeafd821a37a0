/**
 * ArrivalClock: maps a sender's own clock (a microphone's RTP clock, the page's capture times) onto the tap
 * clock, so that what was captured together gets one pts. The offset is the smallest transit seen
 * (arrival − sender time): a packet or frame that arrives late — network jitter, a busy server — keeps its
 * sender-time spacing instead of dragging the timeline; one that arrives earlier than any before moves the
 * offset (the first ones were late). A jump of the sender clock by more than `resetMs` (a restart, a wrap the
 * caller did not unwrap) starts over.
 */
export class ArrivalClock {
  private offset: number | null = null;

  constructor(private readonly resetMs = 2000) {}

  /** The tap-clock time (ms) of sender time `senderMs` that arrived at tap time `arrivalMs`. */
  map(senderMs: number, arrivalMs: number): number {
    const transit = arrivalMs - senderMs;
    if (this.offset === null || transit < this.offset || transit - this.offset > this.resetMs) this.offset = transit;
    return senderMs + this.offset;
  }

  reset(): void {
    this.offset = null;
  }
}

/** Unwraps a 32-bit RTP timestamp sequence into a monotonic-ish number of ticks. */
export class RtpUnwrapper {
  private last: number | null = null;
  private value = 0;

  unwrap(ts: number): number {
    const t = ts >>> 0;
    if (this.last !== null) this.value += ((((t - this.last) % 2 ** 32) + 2 ** 32 + 2 ** 31) % 2 ** 32) - 2 ** 31;
    this.last = t;
    return this.value;
  }
}
