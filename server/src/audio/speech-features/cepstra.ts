/**
 * One 10 ms frame of the Sphinx front end (sphinxbase fe_sigproc.c, float build, transform "dct"):
 * pre-emphasis (continuing across frames), Hamming window, 512-point power spectrum, 25 mel filter energies,
 * natural log (+1e-4), unitary DCT-II to 13 cepstra, sinusoidal lifter (1 + L/2·sin(πi/L), L = 22).
 * Noise removal and silence removal (sphinx's -remove_noise/-remove_silence) are not applied: every frame
 * is kept so frames stay aligned with time.
 */
import { Fft } from './fft.js';
import { applyMelFilterbank, buildMelFilterbank, type MelFilter } from './mel-filterbank.js';
import { CEPSTRA, FFT_SIZE, FRAME_SIZE, LIFTER, LOG_FLOOR, LOWER_HZ, MEL_FILTERS, SAMPLE_RATE, UPPER_HZ } from './front-end-params.js';

const f32 = Math.fround;

function hammingHalf(size: number): Float64Array {
  const w = new Float64Array(size >> 1);
  for (let i = 0; i < w.length; i++) w[i] = 0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (size - 1));
  return w;
}

function dctMatrix(nCep: number, nFilt: number): Float64Array[] {
  const rows: Float64Array[] = [];
  const step = Math.PI / nFilt;
  for (let i = 0; i < nCep; i++) {
    const row = new Float64Array(nFilt);
    for (let j = 0; j < nFilt; j++) row[j] = f32(Math.cos(step * i * (j + 0.5)));
    rows.push(row);
  }
  return rows;
}

/** Stateless per-frame transform: 410 int16-scaled samples (already pre-emphasised) → 13 cepstra. */
export class CepstralFrame {
  readonly #window = hammingHalf(FRAME_SIZE);
  readonly #fft = new Fft(FFT_SIZE);
  readonly #filters: MelFilter[] = buildMelFilterbank({ sampleRate: SAMPLE_RATE, fftSize: FFT_SIZE, count: MEL_FILTERS, lowerHz: LOWER_HZ, upperHz: UPPER_HZ });
  readonly #dct = dctMatrix(CEPSTRA, MEL_FILTERS);
  readonly #lifter = Float64Array.from({ length: CEPSTRA }, (_, i) => f32(1 + (LIFTER / 2) * Math.sin((i * Math.PI) / LIFTER)));
  readonly #sqrtInvN = f32(Math.sqrt(1 / MEL_FILTERS));
  readonly #sqrtInv2N = f32(Math.sqrt(2 / MEL_FILTERS));
  readonly #frame = new Float64Array(FFT_SIZE);
  readonly #power = new Float64Array(FFT_SIZE / 2 + 1);
  /** The last frame's log mel energies (for inspection and tests). */
  readonly logMel = new Float64Array(MEL_FILTERS);

  /** `emphasised` holds FRAME_SIZE pre-emphasised samples; writes CEPSTRA values to `out` at `offset`. */
  compute(emphasised: Float64Array, out: Float32Array, offset = 0): void {
    const frame = this.#frame;
    frame.fill(0);
    const w = this.#window;
    const n = FRAME_SIZE;
    for (let i = 0; i < n >> 1; i++) {
      frame[i] = (emphasised[i] as number) * (w[i] as number);
      frame[n - 1 - i] = (emphasised[n - 1 - i] as number) * (w[i] as number);
    }
    this.#fft.powerSpectrum(frame, this.#power);
    const mel = this.logMel;
    applyMelFilterbank(this.#filters, this.#power, mel);
    for (let j = 0; j < MEL_FILTERS; j++) mel[j] = Math.log((mel[j] as number) + LOG_FLOOR);
    let c0 = 0;
    for (let j = 0; j < MEL_FILTERS; j++) c0 += mel[j] as number;
    out[offset] = c0 * this.#sqrtInvN * (this.#lifter[0] as number);
    for (let i = 1; i < CEPSTRA; i++) {
      const row = this.#dct[i] as Float64Array;
      let c = 0;
      for (let j = 0; j < MEL_FILTERS; j++) c += (mel[j] as number) * (row[j] as number);
      out[offset + i] = c * this.#sqrtInv2N * (this.#lifter[i] as number);
    }
  }
}
