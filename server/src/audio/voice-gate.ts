/**
 * VoiceGate: is the caller speaking? An energy gate on 10 ms frames of 16 kHz PCM, relative to an adaptive
 * noise floor (so it works at any microphone gain), with hysteresis: speech starts after `attackMs` of frames
 * above floor + `onDb` and stops after `releaseMs` of frames below floor + `offDb`. Events carry the stream
 * time of the change (ms of PCM since the start; a start is dated back to the first loud frame).
 */
import { PCM_RATE } from './opus-decoder.js';

const GATE_FRAME_SAMPLES = PCM_RATE / 100; // 10 ms

export interface VoiceGateOptions {
  /** dB over the noise floor for a frame to count as speech (default 15). */
  onDb?: number;
  /** dB over the noise floor below which a frame counts as silence (default 10). */
  offDb?: number;
  /** Frames quieter than this (dBFS) are never speech (default -55). */
  minDb?: number;
  /** Loud frames in a row before speech starts (ms, default 30). */
  attackMs?: number;
  /** Quiet frames in a row before speech stops (ms, default 250). */
  releaseMs?: number;
}

export interface VoiceGateEvent {
  speech: boolean;
  /** Stream time of the change (ms). */
  atMs: number;
}

/** The noise floor rises this many dB per 10 ms frame (3 dB/s; 0.5 dB/s during loud frames) and falls at once. */
const FLOOR_RISE_DB = 0.03;

export class VoiceGate {
  private readonly onDb: number;
  private readonly offDb: number;
  private readonly minDb: number;
  private readonly attack: number;
  private readonly release: number;
  /** The noise floor (dBFS); the first frame's level until quieter frames pull it down. */
  private floor = NaN;
  private loudRun = 0;
  private quietRun = 0;
  private speaking = false;
  private frames = 0;
  private readonly pending = new Float32Array(GATE_FRAME_SAMPLES);
  private pendingN = 0;
  /** Level of the last frame (dBFS). */
  lastDb = -Infinity;
  onChange: ((e: VoiceGateEvent) => void) | null = null;

  constructor(opts: VoiceGateOptions = {}) {
    this.onDb = opts.onDb ?? 15;
    this.offDb = opts.offDb ?? 10;
    this.minDb = opts.minDb ?? -55;
    this.attack = Math.max(1, Math.round((opts.attackMs ?? 30) / 10));
    this.release = Math.max(1, Math.round((opts.releaseMs ?? 250) / 10));
    if (this.offDb > this.onDb) throw new RangeError('voice gate: offDb must not exceed onDb');
  }

  get speech(): boolean {
    return this.speaking;
  }

  get noiseFloorDb(): number {
    return this.floor;
  }

  /** Stream time (ms) of the PCM consumed so far, in whole frames. */
  get timeMs(): number {
    return this.frames * 10;
  }

  /** Feeds PCM of any length; returns the state after the last whole frame. */
  push(pcm: Float32Array): boolean {
    for (let i = 0; i < pcm.length; ) {
      const n = Math.min(GATE_FRAME_SAMPLES - this.pendingN, pcm.length - i);
      this.pending.set(pcm.subarray(i, i + n), this.pendingN);
      this.pendingN += n;
      i += n;
      if (this.pendingN === GATE_FRAME_SAMPLES) {
        this.pendingN = 0;
        this.frame(this.pending);
      }
    }
    return this.speaking;
  }

  private frame(x: Float32Array): void {
    let ss = 0;
    for (let i = 0; i < x.length; i++) ss += (x[i] as number) * (x[i] as number);
    const db = 10 * Math.log10(ss / x.length + 1e-12);
    this.lastDb = db;
    this.frames++;
    if (Number.isNaN(this.floor)) this.floor = db;
    const loud = db > this.minDb && db > this.floor + this.onDb;
    const quiet = db <= this.minDb || db < this.floor + this.offDb;
    // the floor follows the quiet frames down at once and creeps up slowly (speech does not drag it up fast)
    this.floor = db < this.floor ? Math.max(db, -120) : this.floor + (loud ? FLOOR_RISE_DB / 6 : FLOOR_RISE_DB);
    this.loudRun = loud ? this.loudRun + 1 : 0;
    this.quietRun = quiet ? this.quietRun + 1 : 0;
    if (!this.speaking && this.loudRun >= this.attack) {
      this.speaking = true;
      this.onChange?.({ speech: true, atMs: (this.frames - this.loudRun) * 10 });
    } else if (this.speaking && this.quietRun >= this.release) {
      this.speaking = false;
      this.onChange?.({ speech: false, atMs: (this.frames - this.quietRun) * 10 });
    }
  }
}
