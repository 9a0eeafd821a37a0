/**
 * AacEncoder: mono float PCM at 48 kHz → AAC-LC packets (FFmpeg's native `aac`, node-av low-level), 1024-sample
 * frames from an internal FIFO. Parameter sets go in extradata (global header) for FLV / MP4.
 * Timestamps: the sample index of each frame's first sample (time base 1/48000).
 */
import {
  AV_CHANNEL_LAYOUT_MONO,
  AV_CODEC_FLAG_GLOBAL_HEADER,
  AV_SAMPLE_FMT_FLTP,
  AVERROR_EAGAIN,
  AVERROR_EOF,
  Codec,
  CodecContext,
  FFmpegError,
  Frame,
  Packet,
  Rational,
} from 'node-av';
import { FF_ENCODER_AAC } from 'node-av/constants';

export const AAC_RATE = 48_000;

export interface AacPacket {
  data: Buffer;
  /** In samples (1/48000). */
  pts: number;
  duration: number;
}

export class AacEncoder {
  private ctx: CodecContext | null;
  private frame: Frame | null;
  private packet: Packet | null;
  private readonly frameSize: number;
  private fifo = new Float32Array(8192);
  private fill = 0;
  /** Samples handed to the encoder so far (the next frame's pts). */
  private samples = 0;

  constructor(bitrate = 96_000) {
    const codec = Codec.findEncoderByName(FF_ENCODER_AAC);
    if (!codec) throw new Error('no AAC encoder in this FFmpeg build');
    let ctx: CodecContext | null = null;
    let frame: Frame | null = null;
    try {
      ctx = new CodecContext();
      ctx.allocContext3(codec);
      ctx.sampleRate = AAC_RATE;
      ctx.channelLayout = AV_CHANNEL_LAYOUT_MONO;
      ctx.sampleFormat = AV_SAMPLE_FMT_FLTP;
      ctx.bitRate = BigInt(bitrate);
      ctx.timeBase = new Rational(1, AAC_RATE);
      ctx.setFlags(AV_CODEC_FLAG_GLOBAL_HEADER);
      FFmpegError.throwIfError(ctx.open2Sync(codec, null), 'open AAC encoder');
      this.frameSize = ctx.frameSize || 1024;
      frame = new Frame();
      frame.alloc();
      frame.format = AV_SAMPLE_FMT_FLTP;
      frame.sampleRate = AAC_RATE;
      frame.channelLayout = AV_CHANNEL_LAYOUT_MONO;
      frame.nbSamples = this.frameSize;
      FFmpegError.throwIfError(frame.allocBuffer(), 'allocate audio frame');
    } catch (err) {
      frame?.free();
      ctx?.freeContext();
      throw err;
    }
    this.ctx = ctx;
    this.frame = frame;
    this.packet = new Packet();
    this.packet.alloc();
  }

  get codecContext(): CodecContext {
    if (!this.ctx) throw new Error('AAC encoder is closed');
    return this.ctx;
  }

  /** Samples accepted so far (written + waiting in the FIFO). */
  get position(): number {
    return this.samples + this.fill;
  }

  /** Appends PCM; returns the AAC packets of every complete frame. */
  write(pcm: Float32Array): AacPacket[] {
    if (this.fill + pcm.length > this.fifo.length) {
      const bigger = new Float32Array(Math.max(this.fifo.length * 2, this.fill + pcm.length));
      bigger.set(this.fifo.subarray(0, this.fill));
      this.fifo = bigger;
    }
    this.fifo.set(pcm, this.fill);
    this.fill += pcm.length;
    const out: AacPacket[] = [];
    while (this.fill >= this.frameSize) {
      out.push(...this.encodeFrame(this.fifo.subarray(0, this.frameSize)));
      this.fifo.copyWithin(0, this.frameSize, this.fill);
      this.fill -= this.frameSize;
    }
    return out;
  }

  /** Appends `n` samples of silence. */
  silence(n: number): AacPacket[] {
    return n > 0 ? this.write(new Float32Array(n)) : [];
  }

  private encodeFrame(samples: Float32Array | null): AacPacket[] {
    const { ctx, frame, packet } = this;
    if (!ctx || !frame || !packet) throw new Error('AAC encoder is closed');
    if (samples) {
      FFmpegError.throwIfError(frame.makeWritable(), 'make audio frame writable');
      FFmpegError.throwIfError(frame.fromBuffer(Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength)), 'fill audio frame');
      frame.pts = BigInt(this.samples);
      this.samples += samples.length;
      FFmpegError.throwIfError(ctx.sendFrameSync(frame), 'send frame to AAC encoder');
    } else {
      const ret = ctx.sendFrameSync(null);
      if (ret < 0 && ret !== AVERROR_EOF) FFmpegError.throwIfError(ret, 'flush AAC encoder');
    }
    const out: AacPacket[] = [];
    for (;;) {
      const ret = ctx.receivePacketSync(packet);
      if (ret === AVERROR_EAGAIN || ret === AVERROR_EOF) break;
      FFmpegError.throwIfError(ret, 'receive AAC packet');
      if (packet.data) out.push({ data: Buffer.from(packet.data), pts: Number(packet.pts), duration: Number(packet.duration) || this.frameSize });
      packet.unref();
    }
    return out;
  }

  /** Pads the last partial frame with silence and drains the encoder. */
  flush(): AacPacket[] {
    const out: AacPacket[] = [];
    if (this.fill > 0) out.push(...this.silence(this.frameSize - this.fill));
    out.push(...this.encodeFrame(null));
    return out;
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
