/**
 * Token buckets: `capacity` tokens, refilled at `perSecond`; take() spends one when there is one. TokenBuckets
 * keeps one per key (a caller's IP address) and forgets full ones, so the map stays small.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly capacity: number,
    readonly perSecond: number,
    now = performance.now(),
  ) {
    this.tokens = capacity;
    this.last = now;
  }

  private refill(now: number): void {
    const dt = Math.max(0, now - this.last) / 1000;
    this.last = now;
    this.tokens = Math.min(this.capacity, this.tokens + dt * this.perSecond);
  }

  /** Spends one token if there is one. */
  take(now = performance.now()): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether the bucket is full again (nothing to remember about its key). */
  isFull(now = performance.now()): boolean {
    this.refill(now);
    return this.tokens >= this.capacity;
  }
}

export class TokenBuckets {
  private readonly buckets = new Map<string, TokenBucket>();
  private takes = 0;

  constructor(
    readonly capacity: number,
    readonly perSecond: number,
    /** Above this many keys, full buckets are dropped. */
    private readonly maxKeys = 10_000,
  ) {}

  take(key: string, now = performance.now()): boolean {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys || ++this.takes % 1000 === 0) this.prune(now);
      b = new TokenBucket(this.capacity, this.perSecond, now);
      this.buckets.set(key, b);
    }
    return b.take(now);
  }

  get size(): number {
    return this.buckets.size;
  }

  private prune(now: number): void {
    for (const [k, b] of this.buckets) if (b.isFull(now)) this.buckets.delete(k);
  }
}
