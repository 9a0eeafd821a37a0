/**
 * The phonetic part of the speech features: for each of the model's 42 base phones (39 English phones,
 * silence and two noise classes), the best score among its three context-independent states, turned into
 * a posterior over phones by a softmax (PHONE_ACOUSTIC_SCALE). Context-independent
 * senones are scored only (126 of the model's 5126), and the Gaussians once per frame: see
 * docs/speech-features.md for the cost.
 */
import type { AcousticModel } from './acoustic-model.js';
import { SenoneScorer } from './senone-scorer.js';

/** The CI phones of pocketsphinx-en-us, in model order (checked against the model's mdef on load). */
export const EN_US_PHONES: readonly string[] = [
  '+NSN+', '+SPN+', 'AA', 'AE', 'AH', 'AO', 'AW', 'AY', 'B', 'CH', 'D', 'DH', 'EH', 'ER', 'EY', 'F', 'G', 'HH', 'IH', 'IY', 'JH',
  'K', 'L', 'M', 'N', 'NG', 'OW', 'OY', 'P', 'R', 'S', 'SH', 'SIL', 'T', 'TH', 'UH', 'UW', 'V', 'W', 'Y', 'Z', 'ZH',
];
export const PHONE_DIM = EN_US_PHONES.length;
/** Scale on the log-likelihoods (nats) before the softmax. 1: the posterior under a flat phone prior. On
 * 6 s of speech (vr-1) the best phone then holds 0.60 of the mass on average (entropy 1.3 nats); 0.5 and
 * 0.1 give 0.30 and 0.05 (nearly uniform): context-independent states of neighbouring phones score close. */
const PHONE_ACOUSTIC_SCALE = 1;

export class PhonePosteriors {
  readonly #scorer: SenoneScorer;
  readonly #ciSenones: Int32Array;
  readonly #states: number;
  readonly #senScores: Float64Array;
  readonly #logits = new Float64Array(PHONE_DIM);

  constructor(model: AcousticModel) {
    const names = model.mdef.ciPhones;
    if (names.length !== PHONE_DIM || names.some((n, i) => n !== EN_US_PHONES[i])) {
      throw new Error(`acoustic model in ${model.dir}: its phones (${names.join(' ')}) are not pocketsphinx-en-us's; the speech features are defined for that model`);
    }
    this.#scorer = new SenoneScorer(model);
    this.#ciSenones = model.mdef.ciSenones;
    this.#states = model.mdef.nEmitState;
    this.#senScores = new Float64Array(this.#ciSenones.length);
  }

  /** Forgets the previous frame (the scorer's starting top N); results do not depend on it. */
  reset(): void {
    this.#scorer.reset();
  }

  /** 39-value feature frame → PHONE_DIM posteriors written to `out` at `offset`. */
  compute(feat: Float32Array, out: Float32Array, offset: number): void {
    this.#scorer.evaluate(feat);
    this.#scorer.senoneScores(this.#senScores, this.#ciSenones);
    const s = this.#senScores;
    const k = this.#states;
    let max = -Infinity;
    const logits = this.#logits;
    for (let p = 0; p < PHONE_DIM; p++) {
      let best = -Infinity;
      for (let j = 0; j < k; j++) best = Math.max(best, s[p * k + j] as number);
      logits[p] = best * PHONE_ACOUSTIC_SCALE;
      if ((logits[p] as number) > max) max = logits[p] as number;
    }
    let sum = 0;
    for (let p = 0; p < PHONE_DIM; p++) {
      const e = Math.exp((logits[p] as number) - max);
      logits[p] = e;
      sum += e;
    }
    for (let p = 0; p < PHONE_DIM; p++) out[offset + p] = (logits[p] as number) / sum;
  }
}
