/**
 * Constant-frame-rate resampling of decoded frames (pure). Output frame i stands for time
 * start + i / fps and shows the last source frame displayed at that time (the source frame whose
 * timestamp is <= that time, with EPS tolerance); output times before the first source frame show the
 * first frame. A constant-rate source at the same rate maps one to one.
 */
const TIME_EPS = 1e-3;

export class CfrResampler {
  readonly fps: number;
  readonly start: number;
  readonly maxFrames: number;
  #next = 0;
  #prevTime: number | null = null;
  #deltas: number[] = [];

  constructor(fps: number, start: number, maxFrames = Infinity) {
    this.fps = fps;
    this.start = start;
    this.maxFrames = maxFrames;
  }

  /** Index of the next output frame. */
  get next(): number {
    return this.#next;
  }

  get done(): boolean {
    return this.#next >= this.maxFrames;
  }

  outTime(i: number): number {
    return this.start + i / this.fps;
  }

  /**
   * A source frame with time `t` (seconds) arrived. Returns how many output frames the previous
   * source frame fills (0 for the first frame).
   */
  push(t: number): number {
    const prev = this.#prevTime;
    this.#prevTime = t;
    if (prev === null) return 0;
    if (t > prev) this.#deltas.push(t - prev);
    return this.#advanceTo(t);
  }

  /** End of stream: the last frame lasts `lastDuration` seconds. Returns how many outputs it fills. */
  finish(lastDuration: number): number {
    if (this.#prevTime === null) return 0;
    return this.#advanceTo(this.#prevTime + lastDuration);
  }

  #advanceTo(t: number): number {
    let n = 0;
    while (this.#next < this.maxFrames && this.outTime(this.#next) < t - TIME_EPS) {
      this.#next++;
      n++;
    }
    return n;
  }

  /** True when source frame intervals differ by more than 10% of their median (or 2 ms). */
  get variableFrameRate(): boolean {
    return isVariableFrameRate(this.#deltas);
  }

  get medianDelta(): number | null {
    if (this.#deltas.length === 0) return null;
    const s = [...this.#deltas].sort((a, b) => a - b);
    return s[s.length >> 1] as number;
  }
}

export function isVariableFrameRate(deltas: readonly number[]): boolean {
  if (deltas.length < 2) return false;
  const s = [...deltas].sort((a, b) => a - b);
  const med = s[s.length >> 1] as number;
  const tol = Math.max(0.1 * med, 0.002);
  return (s[0] as number) < med - tol || (s[s.length - 1] as number) > med + tol;
}
