/**
 * DrivingChannel: data-channel messages → validated driving frames → the conditioning vector the avatar
 * is rendered with (retargeted onto the avatar's neutral once the caller has calibrated). Latest wins:
 * a frame older than the newest one seen (the channel is unordered) is dropped. Pure apart from the
 * callbacks; never throws on input.
 */
import { CONDITIONING_SIZE, cloneDrivingValues, emptyDrivingValues, flattenDrivingValues, type DrivingValues } from '../../../shared/src/driving-values.js';
import { retarget } from '../../../shared/src/retarget.js';
import { decodeDrivingFrame, DRIVING_FRAME_BYTES } from '../../../shared/src/wire.js';

export type RejectReason = 'text' | 'oversized' | 'malformed';

/** The avatar's neutral face (avatar.json), as DrivingValues. */
export function avatarNeutral(n: { pose: readonly number[]; gaze: readonly number[]; blendshapes: readonly number[] }): DrivingValues {
  return { pose: Float32Array.from(n.pose), gaze: Float32Array.from(n.gaze), blendshapes: Float32Array.from(n.blendshapes) };
}

/** Counters that feed the server's metrics (accepted frames, rejections by reason, bytes up). */
export function meteredCounters(m: { drivingReceived: { inc(): void }; drivingRejected: { inc(l: { reason: string }): void }; bytesUp: { inc(n: number): void } }): DrivingCounters {
  return {
    received: (bytes) => {
      m.drivingReceived.inc();
      m.bytesUp.inc(bytes);
    },
    rejected: (reason, bytes) => {
      m.drivingRejected.inc({ reason });
      m.bytesUp.inc(bytes);
    },
  };
}

export interface DrivingCounters {
  received(bytes: number): void;
  rejected(reason: RejectReason, bytes: number): void;
}

export interface LatestVector {
  seq: number;
  captureMs: number;
  /** Local time (performance.now()) the frame arrived. */
  arrivedAt: number;
  /** Flattened [pose, gaze, blendshapes], retargeted when calibrated. */
  cond: Float32Array;
}

export interface DrivingChannelStats {
  received: number;
  rejected: number;
  rejectedBy: Record<RejectReason, number>;
  stale: number;
  noFace: number;
  calibrated: boolean;
  lastError: string | null;
}

/** After this many consecutive "stale" frames the sender is assumed to have restarted its sequence. */
const RESYNC_AFTER = 30;

export class DrivingChannel {
  private readonly avatarNeutral: DrivingValues;
  private callerNeutral: DrivingValues | null = null;
  private readonly scratch = emptyDrivingValues();
  private lastSeq: number | null = null;
  private staleRun = 0;
  private latestVec: LatestVector | null = null;
  private readonly stats: DrivingChannelStats = {
    received: 0,
    rejected: 0,
    rejectedBy: { text: 0, oversized: 0, malformed: 0 },
    stale: 0,
    noFace: 0,
    calibrated: false,
    lastError: null,
  };
  /** Called after each accepted frame with a face. */
  onFrame: ((v: LatestVector) => void) | null = null;

  constructor(
    avatarNeutral: DrivingValues,
    private readonly counters: DrivingCounters | null = null,
  ) {
    this.avatarNeutral = cloneDrivingValues(avatarNeutral);
  }

  get latest(): LatestVector | null {
    return this.latestVec;
  }

  /** The caller's neutral face: from now on frames are retargeted onto the avatar's neutral. */
  calibrate(neutral: DrivingValues): void {
    this.callerNeutral = cloneDrivingValues(neutral);
    this.stats.calibrated = true;
  }

  /** Handles one data-channel message. Returns true when it was accepted as a driving frame. */
  handleMessage(msg: string | Uint8Array | ArrayBuffer, now = performance.now()): boolean {
    if (typeof msg === 'string') return this.reject('text', Buffer.byteLength(msg), 'text message (driving frames are binary)');
    const bytes = msg instanceof ArrayBuffer ? new Uint8Array(msg) : msg;
    if (bytes.byteLength > DRIVING_FRAME_BYTES) return this.reject('oversized', bytes.byteLength, `message of ${bytes.byteLength} bytes (a driving frame has ${DRIVING_FRAME_BYTES})`);
    const res = decodeDrivingFrame(bytes);
    if (!res.ok) return this.reject('malformed', bytes.byteLength, res.error);
    this.stats.received++;
    this.counters?.received(bytes.byteLength);
    const f = res.frame;
    if (this.lastSeq !== null && ((f.seq - this.lastSeq) | 0) <= 0 && this.staleRun < RESYNC_AFTER) {
      this.stats.stale++;
      this.staleRun++;
      return true;
    }
    this.staleRun = 0;
    this.lastSeq = f.seq;
    if (!f.faceFound) {
      this.stats.noFace++;
      return true; // keep showing the last expression
    }
    const values = this.callerNeutral ? retarget(f, this.callerNeutral, this.avatarNeutral, this.scratch) : f;
    const cond = flattenDrivingValues(values, new Float32Array(CONDITIONING_SIZE));
    this.latestVec = { seq: f.seq, captureMs: f.captureMs, arrivedAt: now, cond };
    this.onFrame?.(this.latestVec);
    return true;
  }

  private reject(reason: RejectReason, bytes: number, error: string): false {
    this.stats.rejected++;
    this.stats.rejectedBy[reason]++;
    this.stats.lastError = error;
    this.counters?.rejected(reason, bytes);
    return false;
  }

  toJSON(): DrivingChannelStats {
    return { ...this.stats, rejectedBy: { ...this.stats.rejectedBy } };
  }
}
