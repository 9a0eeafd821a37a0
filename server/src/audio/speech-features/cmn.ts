/**
 * Causal cepstral mean normalisation for a continuous stream. Sphinx's live CMN (sphinxbase cmn_live.c)
 * subtracts a mean it only refreshes at the end of an utterance or every 300 frames, starting from the
 * model's -cmninit. A call has no utterances, so this updates the mean every frame from the same sums:
 * the prior (-cmninit) counts as PRIOR_FRAMES frames, frames with c0 < 0 (digital silence) are skipped as
 * in sphinx, and when the count passes WINDOW_HIGH frames the sums are scaled back to WINDOW frames
 * (sphinx's CMN_WIN_HWM 800 / CMN_WIN 500), so the mean follows the last ~5-8 s of speech.
 * Each frame is normalised by the mean of the frames before it (no look-ahead).
 */
import { CEPSTRA, CMN_INIT } from './front-end-params.js';

const CMN_PRIOR_FRAMES = 100;
const CMN_WINDOW = 500;
const CMN_WINDOW_HIGH = 800;

export class LiveCmn {
  readonly #sum = new Float64Array(CEPSTRA);
  readonly #mean = new Float64Array(CEPSTRA);
  #frames = 0;

  constructor() {
    this.reset();
  }

  reset(): void {
    for (let i = 0; i < CEPSTRA; i++) {
      const m = CMN_INIT[i] as number;
      this.#mean[i] = m;
      this.#sum[i] = m * CMN_PRIOR_FRAMES;
    }
    this.#frames = CMN_PRIOR_FRAMES;
  }

  /** Normalises CEPSTRA values of `cep` at `offset` in place, then folds the raw frame into the mean. */
  apply(cep: Float32Array, offset = 0): void {
    const c0 = cep[offset] as number;
    for (let i = 0; i < CEPSTRA; i++) {
      const raw = cep[offset + i] as number;
      cep[offset + i] = raw - (this.#mean[i] as number);
      if (c0 >= 0) this.#sum[i] = (this.#sum[i] as number) + raw;
    }
    if (c0 < 0) return;
    this.#frames++;
    if (this.#frames > CMN_WINDOW_HIGH) {
      const scale = CMN_WINDOW / this.#frames;
      for (let i = 0; i < CEPSTRA; i++) this.#sum[i] = (this.#sum[i] as number) * scale;
      this.#frames = CMN_WINDOW;
    }
    for (let i = 0; i < CEPSTRA; i++) this.#mean[i] = (this.#sum[i] as number) / this.#frames;
  }
}
