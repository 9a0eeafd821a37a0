/**
 * VideoOutput: one session's outgoing video. The renderer writes each picture into `picture`; send() has it
 * converted, encoded and packetised by the session's FrameEncoder (in an encode worker, media/encode-pool.ts,
 * or inline), writes the RTP packets to its sink (the caller's werift track), and sends one render report per
 * frame on the data channel carrying the RTP timestamp the receiver sees. Keyframe at start and whenever asked (PLI / FIR).
 */
import { encodeRenderReport, RENDER_REPORT_BYTES } from '../../../shared/src/render-report.js';
import type { FrameEncoder, FrameEncoderStats, Picture, PictureSource } from '../media/frame-encoder.js';
import { FrameStamper } from '../media/frame-stamper.js';
import type { Peer } from './peer.js';

/** Where a VideoOutput's packets and render reports go (a caller's werift peer, or a fake in tests). */
export interface VideoSink {
  /** Writes one RTP packet of the video track. */
  writeRtp(rtp: Buffer): void;
  /** The RTP timestamp of the last packet as it went on the wire (after the transport's offset), if known. */
  readonly lastWireTimestamp: number | undefined;
  /** Sends a render report on the data channel; false when the channel is not open. */
  sendReport(report: Buffer): boolean;
}

/** A caller's peer as a VideoSink: its video track and its 'driving' data channel. */
export function peerVideoSink(peer: Peer): VideoSink {
  return {
    writeRtp: (rtp) => peer.track.writeRtp(rtp),
    get lastWireTimestamp() {
      return peer.lastWireTimestamp;
    },
    sendReport: (report) => {
      if (peer.channel.readyState !== 'open') return false;
      peer.channel.send(report);
      return true;
    },
  };
}

export interface SentFrame {
  rtpTimestamp: number | undefined;
  bytes: number;
  packets: number;
  key: boolean;
  /** Conversion + encode + packetise (ms), on the thread that did it. */
  encodeMs: number;
}

export interface VideoOutputStats {
  frames: number;
  keyframes: number;
  keyframeRequests: number;
  reports: number;
  bytes: number;
  encoder: FrameEncoderStats | null;
}

/** Default target bitrate: ~0.3 bit per pixel per frame at the avatar's rate, within [200 k, 4 M]. */
export function defaultBitrate(width: number, height: number, fps: number): number {
  return Math.round(Math.min(4_000_000, Math.max(200_000, 0.3 * width * height * fps)));
}

export class VideoOutput {
  private encoder: FrameEncoder | null;
  private readonly sink: VideoSink;
  private readonly t0 = performance.now();
  private readonly stamper = new FrameStamper();
  private failNext = false;
  private readonly stats = { frames: 0, keyframes: 0, keyframeRequests: 0, reports: 0, bytes: 0 };

  /** Takes ownership of `encoder` (closed with this output). */
  constructor(sink: VideoSink, encoder: FrameEncoder) {
    this.sink = sink;
    this.encoder = encoder;
  }

  /** Where the renderer writes the next picture (and, after a send, the last picture sent, as yuv420p). */
  get picture(): Picture {
    if (!this.encoder) throw new Error('video output is closed');
    return this.encoder.picture;
  }

  /** Test-only: the next send() fails, as a failing encoder would. */
  testFailNextSend(): void {
    this.failNext = true;
  }

  requestKeyframe(): void {
    this.stats.keyframeRequests++;
    this.stamper.requestKeyframe();
  }

  get wantsKeyframe(): boolean {
    return this.stamper.wantsKeyframe;
  }

  /**
   * Encodes the picture in `picture` (`source`: which buffer holds it), sends it as RTP and, when `report` is
   * given, a render report. One send at a time (the session's frame loop).
   */
  async send(source: PictureSource, report: { seq: number; renderMs: number } | null): Promise<SentFrame> {
    const encoder = this.encoder;
    if (!encoder) throw new Error('video output is closed');
    if (this.failNext) {
      this.failNext = false;
      throw new Error('injected encoder failure (test)');
    }
    const { frame: f } = await this.stamper.encode(encoder, source, performance.now() - this.t0);
    if (this.encoder !== encoder) throw new Error('video output is closed');
    for (const rtp of f.rtp) this.sink.writeRtp(rtp);
    const rtpTimestamp = this.sink.lastWireTimestamp;
    this.stats.frames++;
    if (f.key) this.stats.keyframes++;
    let bytes = f.bytes;
    if (report && rtpTimestamp !== undefined) {
      try {
        if (this.sink.sendReport(Buffer.from(encodeRenderReport({ seq: report.seq, rtpTimestamp, renderMs: report.renderMs, encodeMs: f.encodeMs })))) {
          this.stats.reports++;
          bytes += RENDER_REPORT_BYTES;
        }
      } catch {
        // channel closing: the session will notice
      }
    }
    this.stats.bytes += bytes;
    return { rtpTimestamp, bytes, packets: f.rtp.length, key: f.key, encodeMs: f.encodeMs };
  }

  toJSON(): VideoOutputStats {
    return { ...this.stats, encoder: this.encoder?.toJSON() ?? null };
  }

  close(): void {
    this.encoder?.close();
    this.encoder = null;
  }
}
