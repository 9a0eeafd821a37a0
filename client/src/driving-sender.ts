/**
 * Turns tracked values into wire frames (shared/src/wire.ts) on the driving data channel: one per
 * tracked camera frame, seq counting up from 0, captureMs = performance.now() of the camera frame.
 * The channel is unordered with no retransmits (latest wins), so when it backs up the frame is
 * skipped rather than queued. Knows the channel only through ChannelLike, so it is tested in Node.
 */
import { emptyDrivingValues, type DrivingValues } from '../../shared/src/driving-values.js';
import { DRIVING_FRAME_BYTES, encodeDrivingFrame } from '../../shared/src/wire.js';

export interface ChannelLike {
  readonly readyState: string;
  readonly bufferedAmount: number;
  send(data: Uint8Array<ArrayBuffer>): void;
}

export interface SenderCounters {
  sent: number;
  /** skipped because the channel was not open or had more than `maxBufferedBytes` queued */
  skipped: number;
  /** values that could not be encoded (outside the wire range) */
  encodeErrors: number;
}

export interface SentFrame {
  seq: number;
  captureMs: number;
}

export class DrivingSender {
  readonly #maxBuffered: number;
  #channel: ChannelLike | null = null;
  #seq = 0;
  #last: DrivingValues = emptyDrivingValues();
  readonly #counters: SenderCounters = { sent: 0, skipped: 0, encodeErrors: 0 };

  /** `maxBufferedBytes`: skip frames while more than this is queued on the channel (default 8 frames). */
  constructor(maxBufferedBytes = DRIVING_FRAME_BYTES * 8) {
    this.#maxBuffered = maxBufferedBytes;
  }

  attach(channel: ChannelLike | null): void {
    this.#channel = channel;
  }

  /**
   * Sends one frame. `values` null means no face was found: the last tracked values go out with
   * faceFound = false, so the server knows the face is lost without the avatar jumping.
   * Returns the seq and capture time sent, or null when the frame was skipped.
   */
  send(values: DrivingValues | null, captureMs: number): SentFrame | null {
    const ch = this.#channel;
    if (!ch || ch.readyState !== 'open' || ch.bufferedAmount > this.#maxBuffered) {
      this.#counters.skipped++;
      return null;
    }
    if (values) {
      this.#last.pose.set(values.pose);
      this.#last.gaze.set(values.gaze);
      this.#last.blendshapes.set(values.blendshapes);
    }
    const seq = this.#seq;
    const bytes = new Uint8Array(DRIVING_FRAME_BYTES);
    try {
      encodeDrivingFrame({ ...this.#last, seq, captureMs, faceFound: values !== null }, bytes);
    } catch {
      this.#counters.encodeErrors++;
      return null;
    }
    ch.send(bytes);
    this.#seq = (this.#seq + 1) >>> 0;
    this.#counters.sent++;
    return { seq, captureMs };
  }

  counters(): SenderCounters {
    return { ...this.#counters };
  }
}
