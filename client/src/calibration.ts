/**
 * Neutral-face calibration, the pure part: collect the tracked values of ~1 s while the caller holds a
 * neutral face, then average them (shared meanDrivingValues). The page sends the result as 'calibrate'.
 * Frames without a face are counted but not averaged; too few face frames fails with a clear message.
 */
import type { DrivingValues } from '../../shared/src/driving-values.js';
import { cloneDrivingValues } from '../../shared/src/driving-values.js';
import { meanDrivingValues } from '../../shared/src/retarget.js';

export interface CalibrationOptions {
  /** how long to collect, ms (default 1000) */
  durationMs: number;
  /** fewest face frames that make a usable neutral (default 5) */
  minFrames: number;
}

export type CalibrationStep =
  | { done: false; progress: number }
  | { done: true; ok: true; neutral: DrivingValues; frames: number; missed: number }
  | { done: true; ok: false; error: string; frames: number; missed: number };

const DEFAULT_CALIBRATION: CalibrationOptions = { durationMs: 1000, minFrames: 5 };

export class NeutralCalibrator {
  readonly #opts: CalibrationOptions;
  readonly #startMs: number;
  readonly #frames: DrivingValues[] = [];
  #missed = 0;
  #finished = false;

  constructor(startMs: number, opts: Partial<CalibrationOptions> = {}) {
    this.#opts = { ...DEFAULT_CALIBRATION, ...opts };
    if (!(this.#opts.durationMs > 0)) throw new RangeError('durationMs must be > 0');
    if (!(this.#opts.minFrames >= 1)) throw new RangeError('minFrames must be >= 1');
    this.#startMs = startMs;
  }

  /**
   * Adds one tracked camera frame (`values` null when no face was found) seen at `nowMs`. Returns the
   * progress, or the result once `durationMs` has passed (after which further frames are ignored).
   */
  push(values: DrivingValues | null, nowMs: number): CalibrationStep {
    if (this.#finished) return { done: false, progress: 1 };
    if (values) this.#frames.push(cloneDrivingValues(values));
    else this.#missed++;
    const elapsed = nowMs - this.#startMs;
    if (elapsed < this.#opts.durationMs) return { done: false, progress: Math.max(0, elapsed / this.#opts.durationMs) };
    this.#finished = true;
    const frames = this.#frames.length;
    const missed = this.#missed;
    if (frames < this.#opts.minFrames) {
      return { done: true, ok: false, error: `only ${frames} of ${frames + missed} camera frames had a face; keep your face in view and try again`, frames, missed };
    }
    return { done: true, ok: true, neutral: meanDrivingValues(this.#frames), frames, missed };
  }
}
