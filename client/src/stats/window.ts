/**
 * Time-windowed samples (e.g. the last 5 s of latency or tracking times) with summary statistics.
 * Pure: the caller passes the clock, so it runs the same in the page and in Node tests.
 */
export interface Summary {
  count: number;
  mean: number;
  median: number;
  p90: number;
  min: number;
  max: number;
}

/** The p-quantile (0..1) of ascending-sorted values by linear interpolation; NaN for an empty list. */
export function quantile(sorted: readonly number[], p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (p <= 0) return sorted[0] as number;
  if (p >= 1) return sorted[n - 1] as number;
  const pos = (n - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

/** Summary of a list of numbers (count 0 and NaN fields when empty). */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) return { count: 0, mean: Number.NaN, median: Number.NaN, p90: Number.NaN, min: Number.NaN, max: Number.NaN };
  const s = [...values].sort((a, b) => a - b);
  let sum = 0;
  for (const v of s) sum += v;
  return { count: s.length, mean: sum / s.length, median: quantile(s, 0.5), p90: quantile(s, 0.9), min: s[0] as number, max: s[s.length - 1] as number };
}

/** Keeps (time, value) samples no older than `windowMs` and no more than `maxSamples`. */
export class SampleWindow {
  readonly #windowMs: number;
  readonly #maxSamples: number;
  #times: number[] = [];
  #values: number[] = [];
  #total = 0;

  constructor(windowMs: number, maxSamples = 1000) {
    if (!(windowMs > 0)) throw new RangeError('windowMs must be > 0');
    if (!(maxSamples >= 1)) throw new RangeError('maxSamples must be >= 1');
    this.#windowMs = windowMs;
    this.#maxSamples = Math.floor(maxSamples);
  }

  add(nowMs: number, value: number): void {
    this.#times.push(nowMs);
    this.#values.push(value);
    this.#total++;
    this.#prune(nowMs);
  }

  /** Values still inside the window at `nowMs`, oldest first. */
  values(nowMs: number): number[] {
    this.#prune(nowMs);
    return [...this.#values];
  }

  summary(nowMs: number): Summary {
    return summarize(this.values(nowMs));
  }

  /** Number of samples ever added. */
  get total(): number {
    return this.#total;
  }

  #prune(nowMs: number): void {
    let drop = 0;
    while (drop < this.#times.length && nowMs - (this.#times[drop] as number) > this.#windowMs) drop++;
    drop = Math.max(drop, this.#times.length - this.#maxSamples);
    if (drop > 0) {
      this.#times.splice(0, drop);
      this.#values.splice(0, drop);
    }
  }
}

/** Events per second over a sliding window (e.g. presented video frames, tracked camera frames). */
export class RateMeter {
  readonly #windowMs: number;
  #times: number[] = [];
  #total = 0;

  constructor(windowMs = 2000) {
    if (!(windowMs > 0)) throw new RangeError('windowMs must be > 0');
    this.#windowMs = windowMs;
  }

  tick(nowMs: number): void {
    this.#times.push(nowMs);
    this.#total++;
    this.#prune(nowMs);
  }

  /**
   * Events per second at `nowMs`: (events in window − 1) / span between the first and last of them, so
   * a steady 25 Hz stream reads 25 regardless of where the window edge falls. 0 with fewer than 2 events.
   */
  rate(nowMs: number): number {
    this.#prune(nowMs);
    const n = this.#times.length;
    if (n < 2) return 0;
    const span = (this.#times[n - 1] as number) - (this.#times[0] as number);
    return span > 0 ? ((n - 1) * 1000) / span : 0;
  }

  get total(): number {
    return this.#total;
  }

  #prune(nowMs: number): void {
    let drop = 0;
    while (drop < this.#times.length && nowMs - (this.#times[drop] as number) > this.#windowMs) drop++;
    if (drop > 0) this.#times.splice(0, drop);
  }
}
