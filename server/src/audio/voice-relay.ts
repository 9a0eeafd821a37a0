/**
 * VoiceRelay: sends the caller's own Opus packets back out (next to the avatar's video, in the same stream),
 * each `delayMs` after it arrived, so that the voice plays with the lips that the audio-driven avatar shows for
 * it (the lips come a feature + model look-ahead + render later than the sound). Packets keep their RTP
 * timestamps (gaps stay gaps); the peer writes correct sender reports. close() is idempotent.
 */
export interface VoiceRelayOptions {
  /** Sends one Opus packet with its RTP timestamp (Peer.sendOpus). */
  send: (payload: Buffer, timestamp: number) => void;
  /** Initial delay (ms). */
  delayMs: number;
  /** Packets held at most (a stalled send side must not grow memory; default 100 = 2 s). */
  maxQueued?: number;
}

interface Queued {
  payload: Buffer;
  timestamp: number;
  dueAt: number;
}

export class VoiceRelay {
  private readonly send: (payload: Buffer, timestamp: number) => void;
  private readonly maxQueued: number;
  private readonly queue: Queued[] = [];
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private delay: number;
  private readonly stats = { relayed: 0, dropped: 0, late: 0 };
  /** RTP timestamp of the last packet sent. */
  private lastSent: number | null = null;

  constructor(opts: VoiceRelayOptions) {
    this.send = opts.send;
    this.delay = Math.max(0, opts.delayMs);
    this.maxQueued = opts.maxQueued ?? 100;
  }

  get delayMs(): number {
    return this.delay;
  }

  /** Changes the delay for the packets that arrive from now on (queued ones keep theirs). */
  setDelay(ms: number): void {
    this.delay = Math.max(0, ms);
  }

  /**
   * A packet from the caller that arrived at `arrivedAt` (performance.now()). Packets go out in RTP-timestamp
   * order (one that arrived out of order takes its place in the queue; one older than a packet already sent is
   * dropped), each no earlier than `delayMs` after it arrived.
   */
  push(payload: Buffer, timestamp: number, arrivedAt: number): void {
    if (this.closed) return;
    if (this.lastSent !== null && ((timestamp - this.lastSent) | 0) <= 0) {
      this.stats.late++;
      return;
    }
    if (this.queue.length >= this.maxQueued) {
      this.queue.shift();
      this.stats.dropped++;
    }
    let i = this.queue.length;
    while (i > 0 && ((timestamp - (this.queue[i - 1] as Queued).timestamp) | 0) < 0) i--;
    const ahead = this.queue[i - 1];
    const dueAt = Math.max(arrivedAt + this.delay, ahead?.dueAt ?? -Infinity);
    this.queue.splice(i, 0, { payload, timestamp, dueAt });
    for (let k = i + 1; k < this.queue.length; k++) {
      const q = this.queue[k] as Queued;
      if (q.dueAt < dueAt) q.dueAt = dueAt; // never due before the packet ahead of it
    }
    this.arm();
  }

  private arm(): void {
    if (this.closed || this.timer || this.queue.length === 0) return;
    const wait = Math.max(0, (this.queue[0] as Queued).dueAt - performance.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flushDue();
    }, Math.ceil(wait));
  }

  private flushDue(): void {
    const now = performance.now();
    while (!this.closed && this.queue.length > 0 && (this.queue[0] as Queued).dueAt <= now + 1) {
      const q = this.queue.shift() as Queued;
      this.send(q.payload, q.timestamp);
      this.lastSent = q.timestamp;
      this.stats.relayed++;
    }
    this.arm();
  }

  toJSON(): { delayMs: number; relayed: number; dropped: number; late: number; queued: number } {
    return { delayMs: Math.round(this.delay), ...this.stats, queued: this.queue.length };
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
  }
}
