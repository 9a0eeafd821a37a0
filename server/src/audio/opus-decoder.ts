/**
 * OpusDecoder: one Opus packet (an RTP payload as browsers send it) → mono float PCM at 16 kHz (or another rate), with
 * node-av (FFmpeg's Opus decoder) and its resampler. The resampler is set up from the first decoded frame:
 * FFmpeg's own decoder outputs float planar, libopus s16 or float (audio-path.md). No packet-loss
 * concealment: a lost packet is a gap the caller fills (OpusInput).
 */
import {
  AV_CHANNEL_LAYOUT_MONO,
  AV_CODEC_ID_OPUS,
  AV_SAMPLE_FMT_FLT,
  AVERROR_EAGAIN,
  AVERROR_EOF,
  Codec,
  CodecContext,
  FFmpegError,
  Frame,
  Packet,
  SoftwareResampleContext,
} from 'node-av';
import type { AVSampleFormat } from 'node-av/constants';

/** Sample rate of the decoded output (the speech features' rate). */
export const PCM_RATE = 16_000;
/** The RTP clock of Opus (RFC 7587): always 48 kHz. */
export const OPUS_RTP_CLOCK = 48_000;

export class OpusDecoder {
  private ctx: CodecContext | null;
  private frame: Frame | null;
  private packet: Packet | null;
  private swr: SoftwareResampleContext | null = null;
  private swrKey = '';
  private readonly out: Buffer[] = [Buffer.alloc(4 * 4096)];
  /** Packets the decoder refused (damaged): each becomes a gap. */
  corrupt = 0;

  /** `outRate`: sample rate of the output (16 kHz for speech features; 48 kHz for re-encoding, e.g. AAC egress). */
  constructor(private readonly outRate = PCM_RATE) {
    const codec = Codec.findDecoder(AV_CODEC_ID_OPUS);
    if (!codec) throw new Error('no Opus decoder in this FFmpeg build');
    const ctx = new CodecContext();
    try {
      ctx.allocContext3(codec);
      ctx.sampleRate = OPUS_RTP_CLOCK;
      ctx.channelLayout = AV_CHANNEL_LAYOUT_MONO;
      FFmpegError.throwIfError(ctx.open2Sync(codec, null), 'open Opus decoder');
    } catch (err) {
      ctx.freeContext();
      throw err;
    }
    this.ctx = ctx;
    this.frame = new Frame();
    this.frame.alloc();
    this.packet = new Packet();
    this.packet.alloc();
  }

  /**
   * Decodes one Opus packet: its samples at 16 kHz mono (empty when the packet was damaged) and how many
   * 48 kHz samples (RTP clock ticks) it held.
   */
  decode(payload: Buffer): { pcm: Float32Array; ticks: number } {
    const { ctx, frame, packet } = this;
    if (!ctx || !frame || !packet) throw new Error('Opus decoder is closed');
    packet.data = payload;
    const sent = ctx.sendPacketSync(packet);
    packet.unref();
    if (sent < 0 && sent !== AVERROR_EAGAIN) {
      this.corrupt++;
      return { pcm: new Float32Array(0), ticks: 0 };
    }
    const parts: Float32Array[] = [];
    let ticks = 0;
    for (;;) {
      const ret = ctx.receiveFrameSync(frame);
      if (ret === AVERROR_EAGAIN || ret === AVERROR_EOF || ret < 0) break;
      try {
        ticks += Math.round((frame.nbSamples * OPUS_RTP_CLOCK) / frame.sampleRate);
        parts.push(this.resample(frame));
      } finally {
        frame.unref();
      }
    }
    return { pcm: concatSamples(parts), ticks };
  }

  private resample(frame: Frame): Float32Array {
    const key = `${String(frame.format)}/${frame.sampleRate}/${frame.channelLayout.nbChannels}`;
    if (!this.swr || key !== this.swrKey) {
      this.swr?.free();
      const swr = new SoftwareResampleContext();
      FFmpegError.throwIfError(
        swr.allocSetOpts2(AV_CHANNEL_LAYOUT_MONO, AV_SAMPLE_FMT_FLT, this.outRate, frame.channelLayout, frame.format as AVSampleFormat, frame.sampleRate),
        'set up the Opus resampler',
      );
      FFmpegError.throwIfError(swr.init(), 'start the Opus resampler');
      this.swr = swr;
      this.swrKey = key;
    }
    const input = frame.data;
    if (!input) return new Float32Array(0);
    const room = this.swr.getOutSamples(frame.nbSamples) + 16;
    if ((this.out[0] as Buffer).length < room * 4) this.out[0] = Buffer.alloc(room * 4);
    const n = this.swr.convertSync(this.out, room, input, frame.nbSamples);
    FFmpegError.throwIfError(n, 'resample Opus output');
    const buf = this.out[0] as Buffer;
    const pcm = new Float32Array(n);
    for (let i = 0; i < n; i++) pcm[i] = buf.readFloatLE(i * 4);
    return pcm;
  }

  close(): void {
    this.swr?.free();
    this.swr = null;
    this.packet?.free();
    this.packet = null;
    this.frame?.free();
    this.frame = null;
    this.ctx?.freeContext();
    this.ctx = null;
  }
}

/** The parts, one after the other, in one array (the part itself when there is one). */
export function concatSamples(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0] as Float32Array;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Float32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
