/**
 * SpeechFeatureStream: 16 kHz mono float PCM in chunks of any size → one feature vector per 10 ms:
 * 13 cepstra (live CMN), their deltas and delta-deltas (pocketsphinx en-us front end), then the posteriors
 * of the model's 42 phones from its Gaussian mixtures.
 * Frame t covers samples [160t, 160t + 410) (its centre is 12.8 ms + 10t ms after the first sample). Its
 * vector is ready once frame t + 3 has been seen (the delta-deltas), i.e. 42.8 ms after its centre:
 * that is the look-ahead. `flush()` ends the input and emits the last frames (the last frame stands in
 * for the missing future ones); `extractSpeechFeatures` is push(all) + flush(), so offline and streaming
 * numbers are identical.
 */
import { loadAcousticModel, type AcousticModel } from './acoustic-model.js';
import { LiveCmn } from './cmn.js';
import { CepstralFrame } from './cepstra.js';
import { DELTA_WINDOW, DYNAMIC_DIM, dynamicFeatures } from './deltas.js';
import { CEPSTRA, FRAME_SHIFT, FRAME_SIZE, PCM_SCALE, PRE_EMPHASIS } from './front-end-params.js';
import { EN_US_PHONES, PHONE_DIM, PhonePosteriors } from './phone-posteriors.js';

export const SPEECH_FEATURE_HOP_MS = 10;
/** 39 cepstral values (13 cepstra after CMN, deltas, delta-deltas), then 42 phone posteriors. */
export const SPEECH_FEATURE_DIM = DYNAMIC_DIM + PHONE_DIM;
/** Milliseconds from a frame's centre to the last sample it needs. */
export const SPEECH_FEATURE_LOOKAHEAD_MS = ((FRAME_SIZE / 2 + DELTA_WINDOW * FRAME_SHIFT) / 16_000) * 1000;
/** Milliseconds from the first sample to the centre of frame 0. */
export const SPEECH_FEATURE_FIRST_CENTRE_MS = (FRAME_SIZE / 2 / 16_000) * 1000;

const CEP_NAMES = Array.from({ length: CEPSTRA }, (_, i) => `c${i}`);
export const SPEECH_FEATURE_NAMES: readonly string[] = [
  ...CEP_NAMES,
  ...CEP_NAMES.map((n) => `d_${n}`),
  ...CEP_NAMES.map((n) => `dd_${n}`),
  ...EN_US_PHONES.map((p) => `p_${p}`),
];

export interface SpeechFeatureOptions {
  /** The acoustic model, or its directory (default: $DNP_SPEECH_MODEL_DIR, else Debian's pocketsphinx-en-us path). */
  model?: AcousticModel | string;
}

export class SpeechFeatureStream {
  readonly #cepstra = new CepstralFrame();
  readonly #cmn = new LiveCmn();
  readonly #phones: PhonePosteriors;
  /** Pre-emphasised samples not yet consumed by a frame (at most FRAME_SIZE + a chunk). */
  #buf = new Float64Array(4096);
  #bufLen = 0;
  #prevSample = 0;
  /** Normalised cepstra of frames #histBase, #histBase + 1, ... (kept back to DELTA_WINDOW before the next to emit). */
  #hist: Float32Array[] = [];
  #histBase = 0;
  /** Cepstral frames computed so far. */
  #cepFrames = 0;
  /** Feature frames emitted so far. */
  #emitted = 0;
  #ended = false;
  #ready: Float32Array[] = [];
  readonly #frame = new Float64Array(FRAME_SIZE);

  /** Loads the acoustic model (once per directory per process); throws SpeechModelMissingError when it is absent. */
  constructor(opts: SpeechFeatureOptions = {}) {
    const model = typeof opts.model === 'object' ? opts.model : loadAcousticModel(opts.model);
    this.#phones = new PhonePosteriors(model);
  }

  /** Appends samples (float PCM, nominally in [-1, 1)); returns the number of feature frames ready to read. */
  push(pcm16k: Float32Array): number {
    if (this.#ended) throw new Error('SpeechFeatureStream: push after flush (call reset() first)');
    if (this.#bufLen + pcm16k.length > this.#buf.length) {
      const bigger = new Float64Array(Math.max(this.#buf.length * 2, this.#bufLen + pcm16k.length));
      bigger.set(this.#buf.subarray(0, this.#bufLen));
      this.#buf = bigger;
    }
    let prev = this.#prevSample;
    for (let i = 0; i < pcm16k.length; i++) {
      const v = pcm16k[i] as number;
      const x = Number.isFinite(v) ? v * PCM_SCALE : 0;
      this.#buf[this.#bufLen++] = x - PRE_EMPHASIS * prev;
      prev = x;
    }
    this.#prevSample = prev;
    let consumed = 0;
    while (this.#bufLen - consumed >= FRAME_SIZE) {
      this.#frame.set(this.#buf.subarray(consumed, consumed + FRAME_SIZE));
      this.#addCepstra();
      consumed += FRAME_SHIFT;
    }
    if (consumed > 0) {
      this.#buf.copyWithin(0, consumed, this.#bufLen);
      this.#bufLen -= consumed;
    }
    return this.#ready.length;
  }

  /** Ends the input: emits the frames still waiting for look-ahead. Returns the number ready to read. */
  flush(): number {
    if (this.#ended) return this.#ready.length;
    this.#ended = true;
    this.#emitReady();
    return this.#ready.length;
  }

  /** Feature frames ready to read. */
  get available(): number {
    return this.#ready.length;
  }

  /** Index (from the start of the stream) of the next frame `read` returns. */
  get nextFrameIndex(): number {
    return this.#emitted - this.#ready.length;
  }

  /** Takes up to `max` ready frames as one row-major [n × SPEECH_FEATURE_DIM] array. */
  read(max = Infinity): Float32Array {
    const n = Math.min(max, this.#ready.length);
    const out = new Float32Array(n * SPEECH_FEATURE_DIM);
    for (let i = 0; i < n; i++) out.set(this.#ready[i] as Float32Array, i * SPEECH_FEATURE_DIM);
    this.#ready.splice(0, n);
    return out;
  }

  reset(): void {
    this.#bufLen = 0;
    this.#prevSample = 0;
    this.#hist = [];
    this.#histBase = 0;
    this.#cepFrames = 0;
    this.#emitted = 0;
    this.#ended = false;
    this.#ready = [];
    this.#cmn.reset();
    this.#phones.reset();
  }

  #addCepstra(): void {
    const cep = new Float32Array(CEPSTRA);
    this.#cepstra.compute(this.#frame, cep);
    this.#cmn.apply(cep);
    this.#hist.push(cep);
    this.#cepFrames++;
    this.#emitReady();
  }

  /** Cepstra of frame k, the first/last frame standing in for frames outside the stream. */
  #cep(k: number): Float32Array {
    const clamped = Math.min(Math.max(k, 0), this.#cepFrames - 1);
    return this.#hist[Math.max(clamped - this.#histBase, 0)] as Float32Array;
  }

  /** Emits every frame whose look-ahead has arrived (all remaining ones once the input has ended). */
  #emitReady(): void {
    const ctx: Float32Array[] = new Array<Float32Array>(2 * DELTA_WINDOW + 1);
    while (this.#emitted < this.#cepFrames && (this.#ended || this.#emitted + DELTA_WINDOW < this.#cepFrames)) {
      const t = this.#emitted;
      for (let k = -DELTA_WINDOW; k <= DELTA_WINDOW; k++) ctx[k + DELTA_WINDOW] = this.#cep(t + k);
      const out = new Float32Array(SPEECH_FEATURE_DIM);
      dynamicFeatures(ctx, out, 0);
      this.#phones.compute(out, out, DYNAMIC_DIM);
      this.#ready.push(out);
      this.#emitted++;
    }
    const keepFrom = Math.max(this.#emitted - DELTA_WINDOW, 0);
    if (keepFrom > this.#histBase) {
      this.#hist.splice(0, keepFrom - this.#histBase);
      this.#histBase = keepFrom;
    }
  }
}

/** Features of a whole clip: the same numbers as streaming it in any chunk size and flushing. [T × DIM]. */
export function extractSpeechFeatures(pcm16k: Float32Array, opts: SpeechFeatureOptions = {}): { frames: number; dim: number; data: Float32Array } {
  const s = new SpeechFeatureStream(opts);
  s.push(pcm16k);
  s.flush();
  const data = s.read();
  return { frames: data.length / SPEECH_FEATURE_DIM, dim: SPEECH_FEATURE_DIM, data };
}
