/**
 * The page's live statistics as one plain object (what the stats panel shows and what the
 * window.dnpDebug test hook returns), and its text formatting. Pure.
 */
import type { Summary } from './window.js';

export interface LiveStats {
  state: string;
  /** camera frames seen / tracked with a face / without / tracker exceptions */
  cameraFrames: number;
  facesFound: number;
  noFace: number;
  trackErrors: number;
  cameraFps: number;
  /** FaceLandmarker time per camera frame, ms (last 5 s) */
  trackingMs: Summary;
  /** driving frames sent on the data channel, and skipped (channel not open or backed up) */
  framesSent: number;
  framesSkipped: number;
  /** render reports received / malformed data-channel messages */
  reports: number;
  badMessages: number;
  /** remote video frames presented (requestVideoFrameCallback) and their rate */
  framesPresented: number;
  presentedFps: number;
  /** from getStats() */
  framesDecoded: number;
  framesDropped: number;
  decodedFps: number;
  uplinkKbps: number;
  downlinkKbps: number;
  videoKbps: number;
  codec: string;
  frameWidth: number;
  frameHeight: number;
  /** end-to-end latency, ms (last 10 s), the most recent samples, and how many were ever measured */
  latencyMs: Summary;
  latencySamples: number[];
  latencyCount: number;
  /** render reports matched to a shown frame whose driving frame was unknown / captured after it was shown */
  latencyUnknownSeq: number;
  latencyInconsistent: number;
  renderMs: Summary;
  encodeMs: Summary;
  /** <video> 'error' events on the avatar view */
  videoErrors: number;
  calibration: string;
  message: string;
  /** what drives the avatar: camera, microphone or both */
  mode: string;
  /** microphone and both modes: from the server's 'voice-stats' (ms; null before the first) */
  speechToLipsMs: number | null;
  voiceDelayMs: number | null;
  speech: boolean;
  /** voice minus video playout on the sender's clock (getStats estimatedPlayoutTimestamp), ms; null when unknown */
  playoutOffsetMs: number | null;
  /**
   * how far the voice plays ahead of the lips that go with it (ms; negative: behind): the playout offset plus the
   * part of the speech-to-lips delay the server's voice delay does not cover; null when unknown
   */
  avOffsetMs: number | null;
  audioPacketsSent: number;
  audioPacketsReceived: number;
}

const fin = (x: number): boolean => Number.isFinite(x);

export function formatMs(s: Summary): string {
  if (s.count === 0 || !fin(s.median)) return '–';
  return `${s.median.toFixed(0)} ms (p90 ${s.p90.toFixed(0)})`;
}

export function formatKbps(kbps: number): string {
  if (!fin(kbps)) return '–';
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(2)} Mbit/s` : `${kbps.toFixed(1)} kbit/s`;
}

export function formatFps(fps: number): string {
  return fin(fps) ? `${fps.toFixed(1)} fps` : '–';
}
