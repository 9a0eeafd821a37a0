/**
 * Sphinx's 1s_c_d_dd feature (sphinxbase feat.c `feat_1s_c_d_dd_cep2feat`): for frame t,
 * [c(t), c(t+2) − c(t−2), (c(t+3) − c(t−1)) − (c(t+1) − c(t−3))], 39 values. Needs 3 frames either side:
 * at the start of a stream the first frame stands in for frames before it and at its end the last frame
 * for frames after it, as sphinx pads an utterance.
 */
import { CEPSTRA } from './front-end-params.js';

export const DELTA_WINDOW = 3;
export const DYNAMIC_DIM = CEPSTRA * 3;

/** c(t−3) .. c(t+3) as 7 views of CEPSTRA values each; writes DYNAMIC_DIM values to `out` at `offset`. */
export function dynamicFeatures(ctx: readonly Float32Array[], out: Float32Array, offset = 0): void {
  if (ctx.length !== 2 * DELTA_WINDOW + 1) throw new RangeError(`dynamicFeatures needs ${2 * DELTA_WINDOW + 1} frames, got ${ctx.length}`);
  const at = (k: number): Float32Array => ctx[k + DELTA_WINDOW] as Float32Array;
  const [m3, m2, m1, c, p1, p2, p3] = [at(-3), at(-2), at(-1), at(0), at(1), at(2), at(3)];
  for (let i = 0; i < CEPSTRA; i++) {
    out[offset + i] = c[i] as number;
    out[offset + CEPSTRA + i] = (p2[i] as number) - (m2[i] as number);
    out[offset + 2 * CEPSTRA + i] = (p3[i] as number) - (m1[i] as number) - ((p1[i] as number) - (m3[i] as number));
  }
}
