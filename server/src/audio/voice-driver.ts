/**
 * VoiceDriver: one caller's microphone → the mouth of their avatar. Opus packets → 16 kHz PCM (OpusInput) →
 * the voice gate and the speech features (10 ms frames) → the audio-to-expression model → the latest mouth/jaw
 * blendshapes, each dated in stream time (ms of the caller's audio) and by when that audio arrived here.
 *
 * The gate decides, per predicted frame and in stream time, whether the voice drives the mouth: its weight
 * ramps 0 → 1 over `crossFadeMs` when speech starts and back when it stops, so a camera's mouth (or the
 * avatar's resting mouth) hands over smoothly. noteShown() records, for each video frame sent, how long after
 * its sound arrived the lips for it left the server: the speech-to-lips delay. close() is idempotent.
 */
import type { Logger } from '../log.js';
import { concatSamples } from './opus-decoder.js';
import { OpusInput, type RtpAudioPacket } from './opus-input.js';
import { SPEECH_FEATURE_DIM, SPEECH_FEATURE_FIRST_CENTRE_MS, SPEECH_FEATURE_HOP_MS, SPEECH_FEATURE_LOOKAHEAD_MS, SpeechFeatureStream } from './speech-features/index.js';
import { VoiceGate, type VoiceGateEvent, type VoiceGateOptions } from './voice-gate.js';

/** One prediction of the model: the values of its outputs for feature frame `frame`. */
export interface MouthPrediction {
  frame: number;
  values: Float32Array;
}

/**
 * A streaming audio-to-expression model, one per caller (state: its window of past feature frames).
 * The model behind it (server/src/audio/expression-model.ts) is shared by all callers.
 */
export interface MouthPredictor {
  /** Blendshape indices (MediaPipe order) the model predicts, in the order of its values. */
  readonly outputIndex: readonly number[];
  /** Feature frames after the predicted one that the model looks at (its look-ahead, in 10 ms frames). */
  readonly lookaheadFrames: number;
  /**
   * Feeds feature frames in order (row-major [n × dim], the first being frame `first`); resolves to the new
   * predictions, in frame order (it may predict only the newest frame that its look-ahead allows).
   */
  push(frames: Float32Array, first: number): Promise<MouthPrediction[]>;
  close(): void;
}

/** The shared audio-to-expression model: one predictor (stream state) per caller. */
export interface MouthModel {
  /** A predictor for one caller of the avatar in `avatarDir` (its own calibration, when it has one). */
  createPredictor(avatarDir: string): MouthPredictor;
}

export interface VoiceMouth {
  /** Model outputs (blendshape indices `outputIndex`). */
  values: Float32Array;
  /** How much the voice drives the mouth now (0..1, the gate with its cross-fade). */
  weight: number;
  /** Stream time of these lips (ms of caller audio). */
  streamMs: number;
  /** performance.now() when the audio at streamMs arrived. */
  arrivedAt: number;
}

export interface VoiceDriverOptions {
  predictor: MouthPredictor;
  gate?: VoiceGateOptions;
  /** Ramp of the voice's weight at speech start and stop (ms, default 120). */
  crossFadeMs?: number;
  log: Logger;
}

export interface VoiceDriverStats {
  packets: number;
  featureFrames: number;
  predictions: number;
  speech: boolean;
  speechSegments: number;
  /** The median speech-to-lips delay over the frames of the last 4 s (ms), null before the first. */
  speechToLipsMs: number | null;
  /** Algorithmic look-ahead: Opus packet + features + model (ms). */
  lookaheadMs: number;
  input: ReturnType<OpusInput['toJSON']> | null;
  modelErrors: number;
}

const PCM_PER_MS = 16;
const ARRIVALS_KEPT = 200; // 4 s of 20 ms packets
/** The speech-to-lips delay is the median over the frames sent this long (ms). */
const DELAY_WINDOW_MS = 4000;

export class VoiceDriver {
  private input: OpusInput | null;
  private readonly gate: VoiceGate;
  private readonly features = new SpeechFeatureStream();
  private readonly predictor: MouthPredictor;
  private readonly log: Logger;
  private readonly rampPerFrame: number;
  /** Stream time (ms) at the end of the PCM received so far. */
  private streamEndMs = 0;
  /** Arrival time of the packet now being decoded. */
  private arriving = 0;
  /** [stream end ms, arrival time] of the last packets' PCM, oldest first. */
  private readonly arrivals: Array<[number, number]> = [];
  private readonly events: VoiceGateEvent[] = [];
  private weight = 0;
  private lastPredicted = -1;
  private latestMouth: VoiceMouth | null = null;
  /** Feature frames read but not yet given to the predictor (the first is frame `pendingFirst`). */
  private pending: Float32Array[] = [];
  private pendingFirst = 0;
  private running = false;
  /** [sent at, speech-to-lips ms] of the recent frames. */
  private readonly delays: Array<[number, number]> = [];
  private closed = false;
  private readonly stats = { packets: 0, featureFrames: 0, predictions: 0, speechSegments: 0, modelErrors: 0 };
  /** Called after each new prediction. */
  onMouth: ((m: VoiceMouth) => void) | null = null;

  constructor(opts: VoiceDriverOptions) {
    this.predictor = opts.predictor;
    this.log = opts.log;
    this.rampPerFrame = SPEECH_FEATURE_HOP_MS / Math.max(SPEECH_FEATURE_HOP_MS, opts.crossFadeMs ?? 120);
    this.gate = new VoiceGate(opts.gate);
    this.gate.onChange = (e) => {
      this.events.push(e);
      if (this.events.length > 64) this.events.shift();
      if (e.speech) this.stats.speechSegments++;
    };
    this.input = new OpusInput({ onPcm: (pcm) => this.onPcm(pcm) });
  }

  /** Packet (20 ms) + feature look-ahead + model look-ahead (ms): the least delay from sound to lips. */
  get lookaheadMs(): number {
    return 20 + SPEECH_FEATURE_LOOKAHEAD_MS + this.predictor.lookaheadFrames * SPEECH_FEATURE_HOP_MS;
  }

  get latest(): VoiceMouth | null {
    return this.latestMouth;
  }

  get outputIndex(): readonly number[] {
    return this.predictor.outputIndex;
  }

  /** One RTP packet of the caller's Opus track. */
  push(p: RtpAudioPacket, arrivedAt = performance.now()): void {
    if (this.closed || !this.input) return;
    this.stats.packets++;
    this.arriving = arrivedAt;
    this.input.push(p);
  }

  private onPcm(pcm: Float32Array): void {
    this.streamEndMs += pcm.length / PCM_PER_MS;
    this.arrivals.push([this.streamEndMs, this.arriving]);
    if (this.arrivals.length > ARRIVALS_KEPT) this.arrivals.shift();
    this.gate.push(pcm);
    if (this.features.push(pcm) === 0) return;
    if (this.pending.length === 0) this.pendingFirst = this.features.nextFrameIndex;
    const frames = this.features.read();
    this.stats.featureFrames += frames.length / SPEECH_FEATURE_DIM;
    this.pending.push(frames);
    void this.pump();
  }

  /**
   * Runs the model on the frames that arrived, one call at a time: frames that arrive while it runs are handed
   * over together next (the predictor may then predict only the newest), so a slow machine adds no backlog.
   */
  private async pump(): Promise<void> {
    if (this.running || this.closed || this.pending.length === 0) return;
    this.running = true;
    const first = this.pendingFirst;
    const frames = concatSamples(this.pending);
    this.pending = [];
    try {
      await this.predict(frames, first);
    } finally {
      this.running = false;
    }
    void this.pump();
  }

  private async predict(frames: Float32Array, first: number): Promise<void> {
    let out: MouthPrediction[];
    try {
      out = await this.predictor.push(frames, first);
    } catch (err) {
      this.stats.modelErrors++;
      if (this.stats.modelErrors === 1) this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'audio-to-expression model failed; the mouth rests');
      return;
    }
    if (this.closed) return;
    for (const p of out) {
      const streamMs = SPEECH_FEATURE_FIRST_CENTRE_MS + p.frame * SPEECH_FEATURE_HOP_MS;
      const target = this.speechAt(streamMs) ? 1 : 0;
      const step = this.rampPerFrame * Math.max(1, p.frame - this.lastPredicted);
      this.lastPredicted = p.frame;
      this.weight = target > this.weight ? Math.min(1, this.weight + step) : Math.max(0, this.weight - step);
      this.latestMouth = { values: p.values, weight: this.weight, streamMs, arrivedAt: this.arrivalOf(streamMs) };
      this.stats.predictions++;
    }
    if (out.length > 0 && this.latestMouth) this.onMouth?.(this.latestMouth);
  }

  /** The gate's state at stream time t (its events are dated in stream time). */
  private speechAt(t: number): boolean {
    let state = false;
    for (const e of this.events) {
      if (e.atMs > t) break;
      state = e.speech;
    }
    return state;
  }

  /** When the audio at stream time t arrived (the packet whose PCM holds it; the oldest known if earlier). */
  private arrivalOf(t: number): number {
    for (const [end, at] of this.arrivals) if (t < end) return at;
    return this.arrivals[this.arrivals.length - 1]?.[1] ?? performance.now();
  }

  /** A video frame showing `m` left the server at `sentAt` (performance.now()). */
  noteShown(m: VoiceMouth, sentAt = performance.now()): void {
    this.delays.push([sentAt, sentAt - m.arrivedAt]);
    while (this.delays.length > 1 && sentAt - (this.delays[0] as [number, number])[0] > DELAY_WINDOW_MS) this.delays.shift();
  }

  /** Median speech-to-lips delay of the frames sent in the last 4 s (ms), null before the first. */
  get speechToLipsMs(): number | null {
    if (this.delays.length === 0) return null;
    const s = this.delays.map((d) => d[1]).sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)] as number;
  }

  get speech(): boolean {
    return this.gate.speech;
  }

  toJSON(): VoiceDriverStats {
    const d = this.speechToLipsMs;
    return {
      ...this.stats,
      speech: this.gate.speech,
      speechToLipsMs: d === null ? null : Math.round(d),
      lookaheadMs: Math.round(this.lookaheadMs),
      input: this.input?.toJSON() ?? null,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onMouth = null;
    this.input?.close();
    this.input = null;
    this.predictor.close();
  }
}
