/**
 * In-process video encoder (node-av, FFmpeg's libvpx / libx264) tuned for real-time WebRTC:
 * one thread, no look-ahead, no B-frames, a keyframe on demand.
 *
 * Uses node-av's low-level CodecContext directly (media-path.md pitfalls 1-3: private options are set
 * with setOption, never through `options`, which crashes at GC; a keyframe is forced by sending a frame
 * with pictType = I; libvpx runs on one thread).
 */
import {
  AV_CODEC_FLAG_GLOBAL_HEADER,
  AV_CODEC_FLAG_LOW_DELAY,
  AV_LOG_ERROR,
  AV_PICTURE_TYPE_I,
  AV_PICTURE_TYPE_NONE,
  AV_PIX_FMT_YUV420P,
  AV_PKT_FLAG_KEY,
  AVERROR_EAGAIN,
  AVERROR_EOF,
  Codec,
  CodecContext,
  FFmpegError,
  Frame,
  Log,
  Packet,
  Rational,
} from 'node-av';
import type { VideoCodecName } from '../../../shared/src/signaling.js';
import { checkVp8CpuUsed, DEFAULT_VP8_CPU_USED } from './vp8-speed.js';

// FFmpeg's own log lines (encoder banners, x264 statistics at close) would bypass the server's logger.
Log.setLevel(AV_LOG_ERROR);

export interface VideoEncoderOptions {
  codec: VideoCodecName;
  width: number;
  height: number;
  fps: number;
  /** Target bitrate in bits per second. */
  bitrate: number;
  /** Parameter sets in the codec's extradata instead of in-band (FLV / MP4 muxers need it); default false. */
  globalHeader?: boolean;
  /** VP8 only: libvpx's speed (`cpu-used`, 0..16; higher is faster and a little less sharp at the same bitrate). Default DEFAULT_VP8_CPU_USED. */
  vp8CpuUsed?: number;
}

export interface EncodedPacket {
  data: Buffer;
  /** Presentation time in 90 kHz units (the RTP clock). */
  pts90k: number;
  key: boolean;
}

const ENCODER_NAMES: Record<VideoCodecName, string> = { vp8: 'libvpx', h264: 'libx264' };

function check(ret: number, what: string): void {
  FFmpegError.throwIfError(ret, what);
}

export class VideoEncoder {
  readonly options: VideoEncoderOptions;
  private ctx: CodecContext | null;
  private frame: Frame | null;
  private packet: Packet | null;
  private frames = 0;
  private keyframes = 0;
  private bytesOut = 0;

  private readonly codec: Codec;
  private bitrateNow: number;
  private pendingBitrate: number | null = null;
  /** Times the encoder was re-opened for a new bitrate. */
  reopens = 0;

  constructor(options: VideoEncoderOptions) {
    if (options.vp8CpuUsed !== undefined) checkVp8CpuUsed(options.vp8CpuUsed);
    this.options = options;
    const name = ENCODER_NAMES[options.codec];
    const codec = Codec.findEncoderByName(name as Parameters<typeof Codec.findEncoderByName>[0]);
    if (!codec) throw new Error(`video encoder ${name} is not available in this FFmpeg build`);
    this.codec = codec;
    this.bitrateNow = options.bitrate;
    // Every native object allocated here is freed again if a later step throws (a half-built encoder must
    // not leak its codec context, frame or packet).
    let ctx: CodecContext | null = null;
    let frame: Frame | null = null;
    let packet: Packet | null = null;
    try {
      ctx = this.openContext(options.bitrate);
      frame = new Frame();
      frame.alloc();
      frame.width = options.width;
      frame.height = options.height;
      frame.format = AV_PIX_FMT_YUV420P;
      check(frame.allocBuffer(), 'allocate video frame');
      packet = new Packet();
      packet.alloc();
    } catch (err) {
      packet?.free();
      frame?.free();
      ctx?.freeContext();
      throw err;
    }
    this.ctx = ctx;
    this.frame = frame;
    this.packet = packet;
  }

  private openContext(bitrate: number): CodecContext {
    const { options, codec } = this;
    const name = ENCODER_NAMES[options.codec];
    const ctx = new CodecContext();
    try {
      ctx.allocContext3(codec);
      ctx.width = options.width;
      ctx.height = options.height;
      ctx.pixelFormat = AV_PIX_FMT_YUV420P;
      ctx.timeBase = new Rational(1, 90000);
      ctx.framerate = new Rational(Math.round(options.fps * 1000), 1000);
      ctx.bitRate = BigInt(Math.round(bitrate));
      ctx.gopSize = 100_000; // keyframes only on demand (start, PLI)
      ctx.maxBFrames = 0;
      ctx.threadCount = 1;
      ctx.setFlags(AV_CODEC_FLAG_LOW_DELAY);
      if (options.globalHeader) ctx.setFlags(AV_CODEC_FLAG_GLOBAL_HEADER);
      const opts: Record<string, string> =
        options.codec === 'vp8'
          ? { deadline: 'realtime', 'cpu-used': String(options.vp8CpuUsed ?? DEFAULT_VP8_CPU_USED), 'lag-in-frames': '0', 'error-resilient': '1', 'auto-alt-ref': '0', 'static-thresh': '0' }
          : { preset: 'ultrafast', tune: 'zerolatency', profile: 'baseline', 'forced-idr': '1', 'rc-lookahead': '0' };
      for (const [k, v] of Object.entries(opts)) check(ctx.setOption(k, v), `${name}: option ${k}=${v}`);
      check(ctx.open2Sync(codec, null), `open ${name}`);
      return ctx;
    } catch (err) {
      ctx.freeContext();
      throw err;
    }
  }

  /** The target bitrate now (bit/s). */
  get bitrate(): number {
    return this.pendingBitrate ?? this.bitrateNow;
  }

  /**
   * A new target bitrate (bit/s). Neither libvpx nor libx264 (without VBV) takes a new bitrate on an open
   * FFmpeg context, so the encoder is re-opened before the next picture, which is then a keyframe. Callers
   * should change it seldom (BitrateController: at most every few seconds).
   */
  setBitrate(bps: number): void {
    const b = Math.round(bps);
    this.pendingBitrate = b === this.bitrateNow ? null : b;
  }

  /** Size of the packed yuv420p buffer encode() takes. */
  get yuvBytes(): number {
    const { width: w, height: h } = this.options;
    return w * h + 2 * (w / 2) * (h / 2);
  }

  /**
   * Encodes one packed yuv420p picture (Y plane, then U, then V) at `pts90k`. Returns the packets the
   * encoder produced (with lag-in-frames 0 / zerolatency: exactly the packet of this picture).
   */
  encode(yuv: Buffer, pts90k: number, keyframe: boolean): EncodedPacket[] {
    if (this.pendingBitrate !== null && this.ctx) {
      const next = this.openContext(this.pendingBitrate);
      this.ctx.freeContext();
      this.ctx = next;
      this.bitrateNow = this.pendingBitrate;
      this.pendingBitrate = null;
      this.reopens++;
      keyframe = true; // a fresh encoder starts with one
    }
    const { ctx, frame, packet } = this;
    if (!ctx || !frame || !packet) throw new Error('encoder is closed');
    check(frame.makeWritable(), 'make frame writable');
    check(frame.fromBuffer(yuv), 'copy picture into frame');
    frame.pts = BigInt(pts90k);
    frame.pictType = keyframe ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    check(ctx.sendFrameSync(frame), 'send frame to encoder');
    const out: EncodedPacket[] = [];
    for (;;) {
      const ret = ctx.receivePacketSync(packet);
      if (ret === AVERROR_EAGAIN || ret === AVERROR_EOF) break;
      check(ret, 'receive packet from encoder');
      const data = packet.data;
      if (data) {
        const key = (packet.flags & AV_PKT_FLAG_KEY) !== 0;
        out.push({ data: Buffer.from(data), pts90k: Number(packet.pts), key });
        this.bytesOut += data.length;
        if (key) this.keyframes++;
      }
      packet.unref();
    }
    this.frames++;
    return out;
  }

  /** The encoder context, for the RTP muxer's stream parameters. */
  get codecContext(): CodecContext {
    if (!this.ctx) throw new Error('encoder is closed');
    return this.ctx;
  }

  toJSON(): { codec: VideoCodecName; width: number; height: number; frames: number; keyframes: number; bytesOut: number } {
    return { codec: this.options.codec, width: this.options.width, height: this.options.height, frames: this.frames, keyframes: this.keyframes, bytesOut: this.bytesOut };
  }

  close(): void {
    this.packet?.free();
    this.packet = null;
    this.frame?.free();
    this.frame = null;
    this.ctx?.freeContext();
    this.ctx = null;
  }
}
