/**
 * The per-stream state around each encode that a session's video and a room stream share: presentation times that
 * always increase (90 kHz) and the "next frame is a keyframe" flag, which a failed encode puts back so that the
 * keyframe is not lost.
 */
import type { EncodedFrame, FrameEncoder, PictureSource } from './frame-encoder.js';

export class FrameStamper {
  #lastPts90 = -1;
  #keyframeWanted = true;

  /** The next encode makes a keyframe. */
  requestKeyframe(): void {
    this.#keyframeWanted = true;
  }

  get wantsKeyframe(): boolean {
    return this.#keyframeWanted;
  }

  /** Encodes `source` at `ptsMs` (made strictly greater than the last frame's); `pts90` is what was used. */
  async encode(encoder: Pick<FrameEncoder, 'encode'>, source: PictureSource, ptsMs: number): Promise<{ frame: EncodedFrame; pts90: number; keyRequested: boolean }> {
    let pts90 = Math.round(ptsMs * 90);
    if (pts90 <= this.#lastPts90) pts90 = this.#lastPts90 + 1;
    this.#lastPts90 = pts90;
    const key = this.#keyframeWanted;
    this.#keyframeWanted = false;
    try {
      return { frame: await encoder.encode(source, pts90, key), pts90, keyRequested: key };
    } catch (err) {
      if (key) this.#keyframeWanted = true;
      throw err;
    }
  }
}
