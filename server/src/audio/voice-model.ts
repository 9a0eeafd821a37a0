/**
 * The audio-to-expression model (expression-model.ts) as the sessions use it: loaded once per server, and per
 * caller a window of feature frames behind the MouthPredictor interface of VoiceDriver, with the avatar's own
 * calibration (AVATAR/audio-calibration.json, when present) applied to the outputs. Owns the model: close().
 */
import * as ort from 'onnxruntime-node';
import type { Logger } from '../log.js';
import { ExpressionCalibration, readAvatarCalibration } from './expression-calibration.js';
import { AudioExpressionModel } from './expression-model.js';
import { SPEECH_FEATURE_DIM, SPEECH_FEATURE_HOP_MS } from './speech-features/index.js';
import type { MouthModel, MouthPrediction, MouthPredictor } from './voice-driver.js';

/**
 * One caller's window of feature frames (past + 1 + lookahead, starting as the model's pad frame, as in training's
 * streaming_windows): push() shifts in every frame given and runs the model once, for the newest frame whose
 * look-ahead has arrived (frames in between are not predicted: the video shows the latest lips anyway).
 */
class WindowPredictor implements MouthPredictor {
  readonly outputIndex: readonly number[];
  readonly lookaheadFrames: number;
  private readonly window: Float32Array;
  private readonly input: ort.Tensor;
  private readonly out: Float32Array;
  private pushed = 0;
  private closed = false;

  constructor(
    private readonly model: AudioExpressionModel,
    private readonly calibration: ExpressionCalibration | null,
  ) {
    const m = model.manifest;
    this.outputIndex = model.outputIndex;
    this.lookaheadFrames = m.lookahead;
    this.window = new Float32Array(m.window * SPEECH_FEATURE_DIM);
    for (let i = 0; i < m.window; i++) this.window.set(m.padFeature, i * SPEECH_FEATURE_DIM);
    this.input = new ort.Tensor('float32', this.window, [1, m.window, SPEECH_FEATURE_DIM]);
    this.out = new Float32Array(m.outputs.length);
  }

  async push(frames: Float32Array, first: number): Promise<MouthPrediction[]> {
    const n = frames.length / SPEECH_FEATURE_DIM;
    if (this.closed || n === 0) return [];
    const keep = Math.min(frames.length, this.window.length);
    this.window.copyWithin(0, keep);
    this.window.set(frames.subarray(frames.length - keep), this.window.length - keep);
    this.pushed = first + n;
    const frame = this.pushed - 1 - this.lookaheadFrames;
    if (frame < 0) return [];
    await this.model.run(this.input, this.out);
    const values = Float32Array.from(this.out);
    this.calibration?.apply(values);
    return [{ frame, values }];
  }

  close(): void {
    this.closed = true;
  }
}

export class VoiceModel implements MouthModel {
  private readonly calibrations = new Map<string, ExpressionCalibration | null>();

  private constructor(
    readonly model: AudioExpressionModel,
    private readonly log: Logger,
  ) {}

  /** Loads the model in `dir` (refused when it reads other features than the live extractor gives). */
  static async load(dir: string, log: Logger): Promise<VoiceModel> {
    const model = await AudioExpressionModel.load(dir, { features: { dim: SPEECH_FEATURE_DIM, hopMs: SPEECH_FEATURE_HOP_MS } });
    log.info({ dir, version: model.manifest.modelVersion, outputs: model.manifest.outputs.length, lookaheadMs: model.manifest.lookaheadMs }, 'audio-to-expression model loaded');
    return new VoiceModel(model, log);
  }

  createPredictor(avatarDir: string): MouthPredictor {
    return new WindowPredictor(this.model, this.calibrationFor(avatarDir));
  }

  /** The avatar's calibration, read once; a bad file is logged and ignored (the model's own ranges are used). */
  private calibrationFor(avatarDir: string): ExpressionCalibration | null {
    if (this.calibrations.has(avatarDir)) return this.calibrations.get(avatarDir) ?? null;
    let cal: ExpressionCalibration | null = null;
    try {
      const curves = readAvatarCalibration(avatarDir);
      cal = curves ? ExpressionCalibration.create(this.model, curves) : null;
      if (cal) this.log.info({ avatar: avatarDir }, 'audio-to-expression output calibrated to the avatar');
    } catch (err) {
      this.log.warn({ avatar: avatarDir, err: err instanceof Error ? err.message : String(err) }, 'bad audio calibration: the model\'s own ranges are used');
    }
    this.calibrations.set(avatarDir, cal);
    return cal;
  }

  close(): Promise<void> {
    return this.model.close();
  }
}
