/**
 * FrameEncoder: what a stream (a Session's VideoOutput, a room Publisher) encodes its pictures with. The renderer
 * writes each picture into `picture` (planar float RGB when the avatar renders RGB, else packed yuv420p), then
 * encode() converts it if needed, encodes it and packetises it as RTP.
 *
 * Two implementations behind this interface:
 *  - in an encode worker (media/encode-pool.ts, the default): `picture` is shared memory, the main thread only
 *    posts a message and gets the packets back;
 *  - inline (this file; `--encode-workers 0`): everything on the calling thread, as before the pool existed.
 */
import type { VideoCodecName } from '../../../shared/src/signaling.js';
import { rgbPlanarToYuv420p, yuv420pBytes } from './rgb-to-yuv.js';
import { RtpEncoder, type RtpEncoderOptions } from './rtp-encoder.js';
import type { EncodedPacket } from './video-encoder.js';

export type PictureSource = 'rgb' | 'yuv420p';

export interface FrameEncoderOptions extends RtpEncoderOptions {
  /** Pictures arrive as planar float RGB (NCHW, [0, 1]) and are converted to yuv420p before encoding. */
  rgbInput: boolean;
}

/** Where the next picture is written: `rgb` (3·W·H floats; null without rgbInput) or `yuv` (packed yuv420p). */
export interface Picture {
  readonly rgb: Float32Array | null;
  /** Packed yuv420p; after an encode of an RGB picture it holds that picture converted (the last picture sent). */
  readonly yuv: Uint8Array;
}

export interface EncodedFrame {
  /** RTP packets of the picture, in order. */
  rtp: Buffer[];
  /** The encoder's output for the picture (bitstream packets). */
  packets: EncodedPacket[];
  /** The picture was coded as a keyframe. */
  key: boolean;
  /** Conversion + encode + packetise, on whichever thread did it (ms). */
  encodeMs: number;
  /** RTP bytes. */
  bytes: number;
}

export interface FrameEncoderStats {
  /** "main" (inline) or "worker N". */
  thread: string;
  codec: VideoCodecName;
  width: number;
  height: number;
  frames: number;
  keyframes: number;
  rtpPackets: number;
  bytes: number;
  bitrate: number;
}

export interface FrameEncoder {
  readonly picture: Picture;
  readonly options: FrameEncoderOptions;
  /** Resolves once the encoder is open, with its extradata (parameter sets, with globalHeader); rejects when it cannot open. */
  opened(): Promise<{ extradata: Buffer | null }>;
  /** Encodes the picture now in `picture` (`source` says which buffer), at `pts90k`; a keyframe when asked. */
  encode(source: PictureSource, pts90k: number, keyframe: boolean): Promise<EncodedFrame>;
  /** The target bitrate now (bit/s). */
  readonly bitrate: number;
  /** A new target bitrate; the encoder re-opens before the next picture (a keyframe). */
  setBitrate(bps: number): void;
  /** Why this encoder cannot encode any more (its worker died, or it did not open), or null while it can. */
  readonly failure: string | null;
  toJSON(): FrameEncoderStats;
  /** Frees the encoder (in its worker, or here). Idempotent; a pending encode rejects. */
  close(): void;
}

/** Checks a picture request against the options (shared by both implementations). */
export function checkSource(source: PictureSource, options: FrameEncoderOptions): void {
  if (source === 'rgb' && !options.rgbInput) throw new Error('this encoder takes yuv420p pictures, not RGB');
}

/** Counts what a stream's encodes produced (shared by both implementations). */
export class EncodeCounts {
  frames = 0;
  keyframes = 0;
  rtpPackets = 0;
  bytes = 0;

  add(f: EncodedFrame): void {
    this.frames++;
    if (f.key) this.keyframes++;
    this.rtpPackets += f.rtp.length;
    this.bytes += f.bytes;
  }

  stats(thread: string, o: FrameEncoderOptions, bitrate: number): FrameEncoderStats {
    return { thread, codec: o.codec, width: o.width, height: o.height, frames: this.frames, keyframes: this.keyframes, rtpPackets: this.rtpPackets, bytes: this.bytes, bitrate };
  }
}

/** Converts (when `source` is rgb) and encodes one picture with `enc`; the conversion lands in `picture.yuv`. Used by both sides. */
export function encodePicture(enc: RtpEncoder, picture: Picture, source: PictureSource, pts90k: number, keyframe: boolean): EncodedFrame {
  const t0 = performance.now();
  const { width, height } = enc.options;
  if (source === 'rgb') {
    if (!picture.rgb) throw new Error('no RGB picture buffer');
    rgbPlanarToYuv420p(picture.rgb, width, height, picture.yuv);
  }
  const yuv = Buffer.from(picture.yuv.buffer, picture.yuv.byteOffset, yuv420pBytes(width, height));
  const { rtp, packets } = enc.encode(yuv, pts90k, keyframe);
  let bytes = 0;
  for (const p of rtp) bytes += p.length;
  return { rtp, packets, key: packets.some((p) => p.key), encodeMs: performance.now() - t0, bytes };
}

/** Picture buffers of a stream: `shared` for a worker to read, plain memory otherwise. */
export function allocatePicture(o: FrameEncoderOptions, shared: boolean): Picture {
  const alloc = (bytes: number): ArrayBufferLike => (shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  return {
    rgb: o.rgbInput ? new Float32Array(alloc(3 * o.width * o.height * Float32Array.BYTES_PER_ELEMENT)) : null,
    yuv: new Uint8Array(alloc(yuv420pBytes(o.width, o.height))),
  };
}

/** The inline FrameEncoder: converts, encodes and packetises on the calling (main) thread. */
export class InlineFrameEncoder implements FrameEncoder {
  readonly picture: Picture;
  private enc: RtpEncoder | null;
  private readonly counts = new EncodeCounts();

  /** Throws (with every native context freed) when the encoder cannot be opened. */
  constructor(readonly options: FrameEncoderOptions) {
    this.enc = new RtpEncoder(options);
    this.picture = allocatePicture(options, false);
  }

  opened(): Promise<{ extradata: Buffer | null }> {
    return this.enc ? Promise.resolve({ extradata: this.enc.extradata }) : Promise.reject(new Error('encoder is closed'));
  }

  encode(source: PictureSource, pts90k: number, keyframe: boolean): Promise<EncodedFrame> {
    try {
      const enc = this.enc;
      if (!enc) throw new Error('encoder is closed');
      checkSource(source, this.options);
      const f = encodePicture(enc, this.picture, source, pts90k, keyframe);
      this.counts.add(f);
      return Promise.resolve(f);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  get bitrate(): number {
    return this.enc?.bitrate ?? this.options.bitrate;
  }

  setBitrate(bps: number): void {
    this.enc?.setBitrate(bps);
  }

  /** An inline encoder fails frame by frame, never for good. */
  get failure(): string | null {
    return null;
  }

  toJSON(): FrameEncoderStats {
    return this.counts.stats('main', this.options, this.bitrate);
  }

  close(): void {
    this.enc?.close();
    this.enc = null;
  }
}
