/**
 * MediaTap: one participant's outgoing media (rendered avatar video + relayed voice), encoded once and shared by
 * every consumer: the other participants of a room, WHEP viewers, WHIP / RTMP / MP4 egress. N consumers never cost
 * N encodes. A room's publisher implements it; consumers only subscribe.
 *
 * Clock: every `ptsMs` is milliseconds on one clock per tap (performance.now() - tap start), shared by video and
 * audio, so that a consumer can keep them in sync.
 */
import type { VideoCodecName } from '../../../shared/src/signaling.js';

export type Unsubscribe = () => void;

export interface TapVideoInfo {
  codec: VideoCodecName;
  width: number;
  height: number;
  fps: number;
}

/** One rendered picture, packed yuv420p (width x height). Valid only during the callback: copy to keep it. */
export interface TapPicture {
  yuv: Buffer;
  ptsMs: number;
}

/** One encoded video frame as the shared encoder produced it (VP8 frame or H.264 Annex-B access unit). */
export interface TapVideoFrame {
  data: Buffer;
  key: boolean;
  ptsMs: number;
}

/** One Opus packet (normally 20 ms, 48 kHz) of the participant's voice. */
export interface TapOpus {
  data: Buffer;
  ptsMs: number;
}

export interface MediaTap {
  readonly id: string;
  readonly video: TapVideoInfo;
  /** RTP packets of the shared encode (max 1200 B); a WebRTC consumer writes them to its own werift track. */
  subscribeVideoRtp(cb: (rtp: Buffer) => void): Unsubscribe;
  /** Encoded frames of the shared encode. */
  subscribeVideoFrames(cb: (frame: TapVideoFrame) => void): Unsubscribe;
  /** Raw pictures, for a consumer that must encode another codec (RTMP / MP4 take H.264). */
  subscribePictures(cb: (picture: TapPicture) => void): Unsubscribe;
  /** The participant's voice, if it sends one. */
  subscribeOpus(cb: (packet: TapOpus) => void): Unsubscribe;
  /**
   * The tap clock now (ms, the clock of every ptsMs; the video RTP timestamps are ptsMs x 90). A WebRTC consumer
   * gives it to its sender reports (fixSenderReports rtpNow) so that a browser syncs video and voice. Optional:
   * taps without it get reports extrapolated from the last packet sent.
   */
  clockMs?(): number;
  /**
   * Bandwidth policy (stream/tap-bandwidth.ts): a new target bitrate for the shared encode, bit/s (the publisher
   * passes it to VideoEncoder.setBitrate). Optional: a tap without it keeps its bitrate.
   */
  setVideoBitrate?(bps: number): void;
  /** The shared encode's target bitrate now, bit/s. */
  videoBitrate?(): number;
  /** A consumer needs a keyframe (a new receiver, a PLI); the publisher throttles. */
  requestKeyframe(reason: string): void;
  readonly closed: boolean;
  /** Called once when the publisher goes away (participant left, server closing). */
  onClosed(cb: () => void): Unsubscribe;
}
