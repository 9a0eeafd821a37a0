/**
 * DriveMix: the conditioning vector of one frame in the audio-driven modes.
 *   microphone  the avatar's neutral face, with the idle motion's head pose, gaze and eye blendshapes, and the
 *               voice's mouth/jaw blendshapes weighted by the gate (weight 0 = the neutral mouth)
 *   both        the camera's vector (head, eyes, brows, everything), with the voice's mouth/jaw blendshapes
 *               over the camera's own in proportion to the gate's weight; before the first camera frame, as
 *               microphone
 */
import { BLENDSHAPE_COUNT } from '../../../shared/src/blendshapes.js';
import { cloneDrivingValues, flattenDrivingValues, type DrivingValues } from '../../../shared/src/driving-values.js';
import { GAZE_SIZE, POSE_SIZE } from '../../../shared/src/pose.js';
import type { IdleMotionSource } from '../audio/idle-motion.js';
import type { VoiceMouth } from '../audio/voice-driver.js';

const BLEND_OFFSET = POSE_SIZE + GAZE_SIZE;

export class DriveMix {
  private readonly neutral: DrivingValues;
  private readonly scratch: DrivingValues;

  constructor(
    neutral: DrivingValues,
    private readonly idle: IdleMotionSource,
    private readonly outputIndex: readonly number[],
  ) {
    this.neutral = cloneDrivingValues(neutral);
    this.scratch = cloneDrivingValues(neutral);
    for (const k of outputIndex) if (!Number.isInteger(k) || k < 0 || k >= BLENDSHAPE_COUNT) throw new RangeError(`blendshape index ${k} out of range`);
  }

  /** Writes the frame's vector into `out` (length 60): the camera's (`camera`, or null) and the voice's (`mouth`, or null). */
  mix(tMs: number, camera: Float32Array | null, mouth: VoiceMouth | null, out: Float32Array): Float32Array {
    if (camera) {
      out.set(camera);
    } else {
      const v = this.scratch;
      v.blendshapes.set(this.neutral.blendshapes);
      this.idle.sample(tMs, v);
      flattenDrivingValues(v, out);
    }
    if (mouth && mouth.weight > 0) {
      const w = mouth.weight;
      for (const [i, k] of this.outputIndex.entries()) {
        const o = BLEND_OFFSET + k;
        out[o] = w * (mouth.values[i] as number) + (1 - w) * (out[o] as number);
      }
    }
    return out;
  }
}
