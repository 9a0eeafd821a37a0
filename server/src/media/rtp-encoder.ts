/**
 * RtpEncoder: one stream's encoder and RTP packetiser together (VideoEncoder → RtpMuxer), synchronous. This is
 * what an encode worker (media/encode-worker-main.ts) runs for each stream, and what the inline FrameEncoder
 * runs on the main thread. With `packetize: false` it only encodes (egress: the muxer is a file or RTMP, and
 * `globalHeader` puts the parameter sets in `extradata`). Construction either succeeds whole or frees every
 * native context it made.
 */
import type { VideoCodecName } from '../../../shared/src/signaling.js';
import { RtpMuxer } from './rtp-muxer.js';
import { VideoEncoder, type EncodedPacket } from './video-encoder.js';

export interface RtpEncoderOptions {
  codec: VideoCodecName;
  width: number;
  height: number;
  fps: number;
  /** Target bitrate in bits per second. */
  bitrate: number;
  /** Largest RTP packet in bytes. */
  maxPacketSize: number;
  /** Packetise as RTP (default); false: the encoder's packets only. */
  packetize?: boolean;
  /** Parameter sets in the codec's extradata instead of in-band (FLV / MP4 muxers need it); default false. */
  globalHeader?: boolean;
  /** VP8 only: libvpx `cpu-used` (VideoEncoderOptions.vp8CpuUsed). */
  vp8CpuUsed?: number;
}

export interface RtpEncodeResult {
  /** The picture's RTP packets, in order. */
  rtp: Buffer[];
  /** What the encoder produced for the picture (codec bitstream; egress and recorders take these). */
  packets: EncodedPacket[];
}

export class RtpEncoder {
  private encoder: VideoEncoder | null;
  private muxer: RtpMuxer | null = null;
  private collected: Buffer[] = [];

  constructor(readonly options: RtpEncoderOptions) {
    const { codec, width, height, fps, bitrate } = options;
    const encoder = new VideoEncoder({ codec, width, height, fps, bitrate, globalHeader: options.globalHeader ?? false, ...(options.vp8CpuUsed === undefined ? {} : { vp8CpuUsed: options.vp8CpuUsed }) });
    if (options.packetize !== false) {
      try {
        this.muxer = new RtpMuxer(encoder, { maxPacketSize: options.maxPacketSize, onPacket: (rtp) => this.collected.push(rtp) });
      } catch (err) {
        encoder.close(); // the muxer failed half-way: the encoder's native context must not leak
        throw err;
      }
    }
    this.encoder = encoder;
  }

  /** Size of the packed yuv420p picture encode() takes. */
  get yuvBytes(): number {
    if (!this.encoder) throw new Error('encoder is closed');
    return this.encoder.yuvBytes;
  }

  /** The codec's extradata (parameter sets, with globalHeader), or null. */
  get extradata(): Buffer | null {
    const d = this.encoder?.codecContext.extraData ?? null;
    return d && d.length > 0 ? Buffer.from(d) : null;
  }

  /** The target bitrate now (bit/s). */
  get bitrate(): number {
    return this.encoder?.bitrate ?? this.options.bitrate;
  }

  /** A new target bitrate: the encoder re-opens before the next picture (a keyframe). */
  setBitrate(bps: number): void {
    this.encoder?.setBitrate(bps);
  }

  /** Times the encoder was re-opened for a new bitrate. */
  get reopens(): number {
    return this.encoder?.reopens ?? 0;
  }

  /** Encodes one packed yuv420p picture at `pts90k` and packetises it. */
  encode(yuv: Buffer, pts90k: number, keyframe: boolean): RtpEncodeResult {
    const { encoder, muxer } = this;
    if (!encoder) throw new Error('encoder is closed');
    this.collected = [];
    const packets = encoder.encode(yuv, pts90k, keyframe);
    if (muxer) for (const p of packets) muxer.write(p);
    const rtp = this.collected;
    this.collected = [];
    return { rtp, packets };
  }

  toJSON(): { encoder: ReturnType<VideoEncoder['toJSON']> | null; rtp: ReturnType<RtpMuxer['toJSON']> | null } {
    return { encoder: this.encoder?.toJSON() ?? null, rtp: this.muxer?.toJSON() ?? null };
  }

  close(): void {
    this.muxer?.close();
    this.muxer = null;
    this.encoder?.close();
    this.encoder = null;
  }
}
