/**
 * Senone scores of one 39-value feature frame under a phonetically-tied model, the float counterpart of
 * pocketsphinx's ptm_mgau.c: in each stream, every codebook's Gaussians are scored and its top N (4) kept;
 * codeword scores are taken relative to the stream's best one and capped at 96 8-bit log units
 * (MAX_NEG_ASCR); a senone's stream density is the log-sum over its codebook's top N of mixture weight ×
 * codeword likelihood; its score is the sum over streams. Scores are log-likelihoods in nats relative to
 * the best senone of the frame (≤ 0). pocketsphinx's own (negated, integer, 8-bit log units) scores are
 * ≈ −score / SPHINX_SCORE_UNIT.
 */
import type { AcousticModel } from './acoustic-model.js';

/** One pocketsphinx 8-bit log unit (log base 1.0001, shifted right by 10 bits) in nats. */
export const SPHINX_SCORE_UNIT = 1024 * Math.log(1.0001);
const MAX_NEG_ASCR = 96;
const MIN_CODEWORD = -MAX_NEG_ASCR * SPHINX_SCORE_UNIT;
const TOP_N = 4;

export class SenoneScorer {
  readonly model: AcousticModel;
  /** Top-N codeword indices and log-likelihoods, [feat][cb][n]. */
  readonly #topIdx: Int32Array[];
  readonly #topLl: Float64Array[];
  readonly #norm: Float64Array;
  readonly #x: Float64Array;
  readonly #prev = new Int32Array(TOP_N);
  readonly #terms = new Float64Array(TOP_N);

  constructor(model: AcousticModel) {
    this.model = model;
    this.#topIdx = model.veclen.map(() => new Int32Array(model.nCb * TOP_N));
    this.#topLl = model.veclen.map(() => new Float64Array(model.nCb * TOP_N));
    this.#norm = new Float64Array(model.nFeat);
    this.#x = new Float64Array(Math.max(...model.veclen));
    this.reset();
  }

  /** Scores every codebook's Gaussians for the 39-value `feat` (must precede `senoneScores`). The previous
   * frame's top N are scored first, as pocketsphinx does, so that partial distance elimination (exact) cuts
   * most of the other Gaussians short. */
  evaluate(feat: Float32Array): void {
    const m = this.model;
    const nDensity = m.nDensity;
    const prev = this.#prev;
    const x = this.#x;
    for (let f = 0; f < m.nFeat; f++) {
      const len = m.veclen[f] as number;
      const off = m.featOffset[f] as number;
      const mean = m.mean[f] as Float64Array;
      const hiv = m.halfInvVar[f] as Float64Array;
      const logNorm = m.logNorm[f] as Float64Array;
      const topIdx = this.#topIdx[f] as Int32Array;
      const topLl = this.#topLl[f] as Float64Array;
      for (let i = 0; i < len; i++) x[i] = feat[off + i] as number;
      let best = -Infinity;
      for (let cb = 0; cb < m.nCb; cb++) {
        const t0 = cb * TOP_N;
        for (let n = 0; n < TOP_N; n++) {
          prev[n] = topIdx[t0 + n] as number;
          topLl[t0 + n] = -Infinity;
          topIdx[t0 + n] = -1;
        }
        // The previous frame's top N first (full score), then the rest against the running N-th best.
        for (let j = -TOP_N; j < nDensity; j++) {
          let k: number;
          if (j < 0) {
            k = prev[j + TOP_N] as number;
            if (k < 0) continue;
          } else {
            k = j;
            if (k === prev[0] || k === prev[1] || k === prev[2] || k === prev[3]) continue;
          }
          const worst = topLl[t0 + TOP_N - 1] as number;
          const g = cb * nDensity + k;
          const base = g * len;
          let d = logNorm[g] as number;
          let i = 0;
          for (; i < len; i++) {
            const diff = (x[i] as number) - (mean[base + i] as number);
            d -= diff * diff * (hiv[base + i] as number);
            if (d <= worst) break;
          }
          if (i < len) continue;
          let n = TOP_N - 1;
          while (n > 0 && d > (topLl[t0 + n - 1] as number)) {
            topLl[t0 + n] = topLl[t0 + n - 1] as number;
            topIdx[t0 + n] = topIdx[t0 + n - 1] as number;
            n--;
          }
          topLl[t0 + n] = d;
          topIdx[t0 + n] = k;
        }
        if ((topLl[t0] as number) > best) best = topLl[t0] as number;
      }
      this.#norm[f] = best;
    }
  }

  /** Forgets the previous frame's top N (the result does not depend on it, only the speed). */
  reset(): void {
    for (const t of this.#topIdx) t.fill(-1);
  }

  /** Log-likelihood (nats, unnormalised) of senone `sen` for the frame last passed to `evaluate`. */
  senoneLogLikelihood(sen: number): number {
    const m = this.model;
    const cb = m.mdef.sen2ci[sen] as number;
    const nSen = m.mdef.nSen;
    let total = 0;
    for (let f = 0; f < m.nFeat; f++) {
      const topIdx = this.#topIdx[f] as Int32Array;
      const topLl = this.#topLl[f] as Float64Array;
      const norm = this.#norm[f] as number;
      const mixBase = f * m.nDensity * nSen;
      // log Σ_n w·exp(codeword − norm), codeword scores capped as pocketsphinx does.
      const terms = this.#terms;
      let maxTerm = -Infinity;
      for (let n = 0; n < TOP_N; n++) {
        const k = topIdx[cb * TOP_N + n] as number;
        let t = -Infinity;
        if (k >= 0) {
          const rel = Math.max((topLl[cb * TOP_N + n] as number) - norm, MIN_CODEWORD);
          t = rel - (m.mixw[mixBase + k * nSen + sen] as number) * SPHINX_SCORE_UNIT;
        }
        terms[n] = t;
        if (t > maxTerm) maxTerm = t;
      }
      let s = 0;
      for (let n = 0; n < TOP_N; n++) s += Math.exp((terms[n] as number) - maxTerm);
      total += maxTerm + Math.log(s);
    }
    return total;
  }

  /** Scores of `senones` (default: all) relative to the best of them, into `out` (same order). */
  senoneScores(out: Float64Array, senones?: ArrayLike<number>): void {
    const n = senones ? senones.length : this.model.mdef.nSen;
    let best = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = this.senoneLogLikelihood(senones ? (senones[i] as number) : i);
      out[i] = v;
      if (v > best) best = v;
    }
    for (let i = 0; i < n; i++) out[i] = (out[i] as number) - best;
  }
}
