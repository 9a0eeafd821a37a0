/**
 * VideoOutput: one session's outgoing video. yuv420p picture → Encoder (VP8 / H.264) → FFmpeg RTP muxer →
 * werift track, plus one render report per frame on the data channel carrying the RTP timestamp the
 * receiver sees. Keyframe at start and whenever asked (PLI / FIR).
 */
import { encodeRenderReport, RENDER_REPORT_BYTES } from '../../../shared/src/render-report.js';
import type { VideoCodecName } from '../../../shared/src/signaling.js';
import { yuv420pBytes } from '../media/rgb-to-yuv.js';
import { RtpMuxer } from '../media/rtp-muxer.js';
import { VideoEncoder } from '../media/video-encoder.js';
import type { Peer } from './peer.js';

export interface VideoOutputOptions {
  codec: VideoCodecName;
  width: number;
  height: number;
  fps: number;
  bitrate: number;
}

export interface SentFrame {
  rtpTimestamp: number | undefined;
  bytes: number;
  packets: number;
  key: boolean;
  encodeMs: number;
}

export interface VideoOutputStats {
  frames: number;
  keyframes: number;
  keyframeRequests: number;
  reports: number;
  bytes: number;
  encoder: ReturnType<VideoEncoder['toJSON']> | null;
  rtp: ReturnType<RtpMuxer['toJSON']> | null;
}

/** Default target bitrate: ~0.3 bit per pixel per frame at the avatar's rate, within [200 k, 4 M]. */
export function defaultBitrate(width: number, height: number, fps: number): number {
  return Math.round(Math.min(4_000_000, Math.max(200_000, 0.3 * width * height * fps)));
}

export class VideoOutput {
  /** The latest picture, packed yuv420p; kept to re-send when the caller pauses. */
  readonly yuv: Buffer;
  private encoder: VideoEncoder | null;
  private muxer: RtpMuxer | null;
  private readonly peer: Peer;
  private readonly t0 = performance.now();
  private lastPts = -1;
  private keyframeWanted = true;
  private failNext = false;
  private frameBytes = 0;
  private framePackets = 0;
  private readonly stats = { frames: 0, keyframes: 0, keyframeRequests: 0, reports: 0, bytes: 0 };

  constructor(peer: Peer, opts: VideoOutputOptions) {
    this.peer = peer;
    this.yuv = Buffer.alloc(yuv420pBytes(opts.width, opts.height));
    const encoder = new VideoEncoder({ codec: opts.codec, width: opts.width, height: opts.height, fps: opts.fps, bitrate: opts.bitrate });
    try {
      this.muxer = new RtpMuxer(encoder, {
        maxPacketSize: 1200,
        onPacket: (rtp) => {
          this.frameBytes += rtp.length;
          this.framePackets++;
          this.peer.track.writeRtp(rtp);
        },
      });
    } catch (err) {
      encoder.close(); // the muxer failed half-way: the encoder's native context must not leak
      throw err;
    }
    this.encoder = encoder;
  }

  /** Test-only: the next send() throws, as a failing encoder would. */
  testFailNextSend(): void {
    this.failNext = true;
  }

  requestKeyframe(): void {
    this.stats.keyframeRequests++;
    this.keyframeWanted = true;
  }

  get wantsKeyframe(): boolean {
    return this.keyframeWanted;
  }

  /**
   * Encodes `this.yuv` (filled by the caller), sends it as RTP and, when `report` is given, a render report.
   * `startMs` is when the work on this frame began (performance.now()), included in encodeMs.
   */
  send(report: { seq: number; renderMs: number } | null, startMs: number): SentFrame {
    const { encoder, muxer } = this;
    if (!encoder || !muxer) throw new Error('video output is closed');
    if (this.failNext) {
      this.failNext = false;
      throw new Error('injected encoder failure (test)');
    }
    let pts = Math.round((performance.now() - this.t0) * 90);
    if (pts <= this.lastPts) pts = this.lastPts + 1;
    this.lastPts = pts;
    const key = this.keyframeWanted;
    this.keyframeWanted = false;
    this.frameBytes = 0;
    this.framePackets = 0;
    const packets = encoder.encode(this.yuv, pts, key);
    for (const p of packets) muxer.write(p);
    const encodeMs = performance.now() - startMs;
    const rtpTimestamp = this.peer.lastWireTimestamp;
    this.stats.frames++;
    if (key) this.stats.keyframes++;
    let bytes = this.frameBytes;
    if (report && rtpTimestamp !== undefined && this.peer.channel.readyState === 'open') {
      try {
        this.peer.channel.send(Buffer.from(encodeRenderReport({ seq: report.seq, rtpTimestamp, renderMs: report.renderMs, encodeMs })));
        this.stats.reports++;
        bytes += RENDER_REPORT_BYTES;
      } catch {
        // channel closing: the session will notice
      }
    }
    this.stats.bytes += bytes;
    return { rtpTimestamp, bytes, packets: this.framePackets, key, encodeMs };
  }

  toJSON(): VideoOutputStats {
    return { ...this.stats, encoder: this.encoder?.toJSON() ?? null, rtp: this.muxer?.toJSON() ?? null };
  }

  close(): void {
    this.muxer?.close();
    this.muxer = null;
    this.encoder?.close();
    this.encoder = null;
  }
}
