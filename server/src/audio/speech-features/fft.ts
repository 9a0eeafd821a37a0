/**
 * In-place iterative radix-2 complex FFT of a fixed power-of-two size (precomputed twiddles and bit-reversal
 * table), and the power spectrum of a real frame. Small on purpose: the front end needs one 512-point
 * transform per 10 ms frame.
 */
export class Fft {
  readonly size: number;
  readonly #cos: Float64Array;
  readonly #sin: Float64Array;
  readonly #rev: Uint32Array;
  readonly #re: Float64Array;
  readonly #im: Float64Array;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 2 || (size & (size - 1)) !== 0) throw new RangeError(`FFT size must be a power of two, got ${size}`);
    this.size = size;
    this.#cos = new Float64Array(size / 2);
    this.#sin = new Float64Array(size / 2);
    for (let i = 0; i < size / 2; i++) {
      this.#cos[i] = Math.cos((2 * Math.PI * i) / size);
      this.#sin[i] = -Math.sin((2 * Math.PI * i) / size);
    }
    const bits = Math.log2(size);
    this.#rev = new Uint32Array(size);
    for (let i = 0; i < size; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.#rev[i] = r;
    }
    this.#re = new Float64Array(size);
    this.#im = new Float64Array(size);
  }

  /** Forward transform of re + i·im, in place. */
  transform(re: Float64Array, im: Float64Array): void {
    const n = this.size;
    const rev = this.#rev;
    for (let i = 0; i < n; i++) {
      const j = rev[i] as number;
      if (j > i) {
        const tr = re[i] as number;
        re[i] = re[j] as number;
        re[j] = tr;
        const ti = im[i] as number;
        im[i] = im[j] as number;
        im[j] = ti;
      }
    }
    for (let len = 2; len <= n; len <<= 1) {
      const half = len >> 1;
      const step = n / len;
      for (let start = 0; start < n; start += len) {
        for (let k = 0; k < half; k++) {
          const wr = this.#cos[k * step] as number;
          const wi = this.#sin[k * step] as number;
          const a = start + k;
          const b = a + half;
          const br = re[b] as number;
          const bi = im[b] as number;
          const tr = br * wr - bi * wi;
          const ti = br * wi + bi * wr;
          const ar = re[a] as number;
          const ai = im[a] as number;
          re[b] = ar - tr;
          im[b] = ai - ti;
          re[a] = ar + tr;
          im[a] = ai + ti;
        }
      }
    }
  }

  /** |X[k]|² for k = 0..size/2 of a real frame (zero-padded to size) into `out` (length size/2 + 1). */
  powerSpectrum(frame: Float64Array, out: Float64Array): void {
    const n = this.size;
    const re = this.#re;
    const im = this.#im;
    re.fill(0);
    im.fill(0);
    re.set(frame.subarray(0, Math.min(frame.length, n)));
    this.transform(re, im);
    for (let k = 0; k <= n / 2; k++) {
      const r = re[k] as number;
      const i = im[k] as number;
      out[k] = r * r + i * i;
    }
  }
}
