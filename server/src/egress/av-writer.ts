/**
 * AvWriter: one MediaTap → H.264 + AAC in an FFmpeg container (FLV to an rtmp:// URL, MP4 to a file), node-av.
 *
 * Video: the tap's raw pictures re-encoded with libx264 (the shared encode may be VP8, and RTMP / MP4 need H.264
 * with parameter sets in extradata), a keyframe every `keyframeIntervalMs`, in an encode worker of the server's
 * pool when one is given (media/encode-pool.ts; a picture that arrives while the last is still encoding is
 * dropped and counted), else on this thread. Audio: the tap's Opus decoded to
 * 48 kHz and encoded to AAC; silence is written where the voice has a gap (muted, or no voice at all) so the
 * audio track never stalls the interleaver. Both tracks are timed on the tap's ms clock from the first picture.
 *
 * Packets go to the muxer through one serial queue of async writes (a slow network never blocks the event
 * loop); a queue longer than `maxQueue` means the output stalled: `onError` fires.
 */
import { AV_CODEC_ID_H264, AV_PIX_FMT_YUV420P, AV_PKT_FLAG_KEY, AVMEDIA_TYPE_VIDEO, Dictionary, FFmpegError, FormatContext, Packet, Rational, type Stream } from 'node-av';
import { OpusDecoder } from '../audio/opus-decoder.js';
import type { EncodePool } from '../media/encode-pool.js';
import { InlineFrameEncoder, type FrameEncoder, type FrameEncoderOptions } from '../media/frame-encoder.js';
import type { EncodedPacket } from '../media/video-encoder.js';
import type { MediaTap, TapOpus, TapPicture, Unsubscribe } from '../stream/media-tap.js';
import { AAC_RATE, AacEncoder, type AacPacket } from './aac-encoder.js';

export interface AvWriterOptions {
  /** FFmpeg muxer: 'flv' (RTMP) or 'mp4'. */
  format: 'flv' | 'mp4';
  /** rtmp://... or a file path. */
  url: string;
  videoBitrate: number;
  audioBitrate: number;
  keyframeIntervalMs: number;
  /** Muxer options, e.g. { movflags: '+frag_keyframe+empty_moov+default_base_moof' }. */
  muxerOptions?: Record<string, string>;
  /** Most packets waiting for the muxer before the output counts as stalled. */
  maxQueue?: number;
  /** Where the video is re-encoded (a worker); absent: on this thread. */
  encodePool?: EncodePool | null;
}

/**
 * Audio may lag the video by this much before silence fills the gap (ms): more than a publisher's audio clock
 * may drift from its video clock before it re-anchors (300 ms), so a late voice packet is not replaced by silence.
 */
const AUDIO_SLACK_MS = 1000;

export class AvWriter {
  private fmt: FormatContext | null = null;
  private video: FrameEncoder | null = null;
  /** The picture being encoded (settles either way), or null. */
  private encoding: Promise<void> | null = null;
  private audio: AacEncoder | null = null;
  private opus: OpusDecoder | null = null;
  private packet: Packet | null = null;
  private vStream: Stream | null = null;
  private aStream: Stream | null = null;
  private unsubs: Unsubscribe[] = [];
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private t0 = -1;
  private lastKeyMs = -Infinity;
  private lastVideoMs = -1;
  private failed = false;
  private closing: Promise<void> | null = null;
  readonly stats = { pictures: 0, picturesDropped: 0, videoPackets: 0, audioPackets: 0, opusPackets: 0, opusLate: 0, silenceSamples: 0, bytes: 0, firstVideoMs: -1, lastVideoMs: -1 };
  onError: ((err: Error) => void) | null = null;
  onBytes: ((n: number) => void) | null = null;

  constructor(
    private readonly tap: MediaTap,
    private readonly opts: AvWriterOptions,
  ) {}

  /** Opens the output (connects for RTMP) and writes the header; then subscribes to the tap. */
  async open(): Promise<void> {
    const { width, height, fps } = this.tap.video;
    const fmt = new FormatContext();
    this.fmt = fmt;
    FFmpegError.throwIfError(fmt.allocOutputContext2(null, this.opts.format, this.opts.url), `allocate ${this.opts.format} muxer`);
    const videoOptions: FrameEncoderOptions = { codec: 'h264', width, height, fps, bitrate: this.opts.videoBitrate, maxPacketSize: 1200, rgbInput: false, packetize: false, globalHeader: true };
    this.video = this.opts.encodePool ? this.opts.encodePool.open(videoOptions) : new InlineFrameEncoder(videoOptions);
    const { extradata } = await this.video.opened();
    this.audio = new AacEncoder(this.opts.audioBitrate);
    this.opus = new OpusDecoder(AAC_RATE);
    this.vStream = fmt.newStream(null);
    const par = this.vStream.codecpar; // what fromContext() of the encoder would copy, the encoder being in a worker
    par.codecType = AVMEDIA_TYPE_VIDEO;
    par.codecId = AV_CODEC_ID_H264;
    par.width = width;
    par.height = height;
    par.format = AV_PIX_FMT_YUV420P;
    par.bitRate = BigInt(this.opts.videoBitrate);
    par.extradata = extradata;
    this.vStream.timeBase = new Rational(1, 90_000);
    this.aStream = fmt.newStream(null);
    FFmpegError.throwIfError(this.aStream.codecpar.fromContext(this.audio.codecContext), 'audio stream parameters');
    this.aStream.timeBase = new Rational(1, AAC_RATE);
    FFmpegError.throwIfError(await fmt.openOutput(), `open ${this.opts.url}`);
    const dict = this.opts.muxerOptions ? Dictionary.fromObject(this.opts.muxerOptions) : null;
    try {
      FFmpegError.throwIfError(await fmt.writeHeader(dict), `write ${this.opts.format} header`);
    } finally {
      dict?.free();
    }
    this.packet = new Packet();
    this.packet.alloc();
    this.tap.requestKeyframe('av writer start');
    this.unsubs.push(
      this.tap.subscribePictures((p) => this.guard(() => this.onPicture(p))),
      this.tap.subscribeOpus((p) => this.guard(() => this.onOpus(p))),
    );
  }

  private guard(fn: () => void): void {
    if (this.failed || this.closing) return;
    try {
      fn();
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.onError?.(err);
  }

  private onPicture(p: TapPicture): void {
    const video = this.video;
    if (!video) return;
    if (this.encoding) {
      this.stats.picturesDropped++; // the encoder still has the last picture (its buffer is in use)
      return;
    }
    if (this.t0 < 0) this.t0 = p.ptsMs;
    const ms = p.ptsMs - this.t0;
    if (ms <= this.lastVideoMs) return; // the same or an older picture
    this.lastVideoMs = ms;
    const key = ms - this.lastKeyMs >= this.opts.keyframeIntervalMs;
    if (key) this.lastKeyMs = ms;
    video.picture.yuv.set(p.yuv);
    const encoding: Promise<void> = video
      .encode('yuv420p', Math.round(ms * 90), key)
      .then(
        (f) => {
          for (const pkt of f.packets) this.enqueueVideo(pkt);
        },
        (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))),
      )
      .finally(() => {
        if (this.encoding === encoding) this.encoding = null;
      });
    this.encoding = encoding;
    this.stats.pictures++;
    if (this.stats.firstVideoMs < 0) this.stats.firstVideoMs = ms;
    this.stats.lastVideoMs = ms;
    // No voice (or a gap in it): keep the audio track going with silence a little behind the video.
    const audio = this.audio;
    if (audio) {
      const want = Math.floor(((ms - AUDIO_SLACK_MS) * AAC_RATE) / 1000);
      if (want > audio.position) {
        this.stats.silenceSamples += want - audio.position;
        for (const a of audio.silence(want - audio.position)) this.enqueueAudio(a);
      }
    }
  }

  private onOpus(p: TapOpus): void {
    const { audio, opus } = this;
    if (!audio || !opus || this.t0 < 0) return; // audio starts with the first picture
    const at = Math.round(((p.ptsMs - this.t0) * AAC_RATE) / 1000);
    const { pcm } = opus.decode(p.data);
    if (pcm.length === 0) return;
    const pos = audio.position;
    this.stats.opusPackets++;
    if (at + pcm.length <= pos) {
      this.stats.opusLate++; // already covered (late packet, or silence filled that time)
      return;
    }
    if (at > pos) {
      this.stats.silenceSamples += at - pos;
      for (const a of audio.silence(at - pos)) this.enqueueAudio(a);
    }
    const skip = Math.max(0, audio.position - at);
    for (const a of audio.write(skip ? pcm.subarray(skip) : pcm)) this.enqueueAudio(a);
  }

  private enqueueVideo(p: EncodedPacket): void {
    this.stats.videoPackets++;
    this.enqueue(p.data, p.pts90k, 0, p.key, 0);
  }

  private enqueueAudio(p: AacPacket): void {
    this.stats.audioPackets++;
    this.enqueue(p.data, p.pts, p.duration, true, 1);
  }

  private enqueue(data: Buffer, pts: number, duration: number, key: boolean, index: 0 | 1): void {
    if (this.queued >= (this.opts.maxQueue ?? 500)) {
      this.fail(new Error(`output stalled (${this.queued} packets waiting)`));
      return;
    }
    this.queued++;
    this.queue = this.queue.then(async () => {
      this.queued--;
      const { fmt, packet, vStream, aStream } = this;
      if (!fmt || !packet || !vStream || !aStream || this.failed) return;
      const stream = index === 0 ? vStream : aStream;
      packet.data = data;
      packet.pts = BigInt(pts);
      packet.dts = BigInt(pts);
      packet.duration = BigInt(duration);
      packet.streamIndex = index;
      packet.flags = key ? AV_PKT_FLAG_KEY : (0 as typeof AV_PKT_FLAG_KEY);
      packet.rescaleTs(index === 0 ? { num: 1, den: 90_000 } : { num: 1, den: AAC_RATE }, stream.timeBase);
      const ret = await fmt.interleavedWriteFrame(packet);
      packet.unref();
      if (ret < 0) {
        this.fail(new Error(`write to ${this.opts.format} output failed: ${new FFmpegError(ret).message}`));
        return;
      }
      this.stats.bytes += data.length;
      this.onBytes?.(data.length);
    });
  }

  /** Stops taking media; with `finish`, flushes the encoders and writes the trailer (finalises an MP4). */
  close(finish: boolean): Promise<void> {
    this.closing ??= this.doClose(finish);
    return this.closing;
  }

  private async doClose(finish: boolean): Promise<void> {
    for (const u of this.unsubs.splice(0)) u();
    await this.encoding; // the last picture's packets join the queue first
    const wasOpen = this.packet !== null;
    if (finish && wasOpen && !this.failed) {
      try {
        for (const a of this.audio?.flush() ?? []) this.enqueueAudio(a);
      } catch {
        // nothing to flush
      }
    }
    await this.queue;
    const fmt = this.fmt;
    if (fmt && wasOpen && finish && !this.failed) {
      await fmt.interleavedWriteFrame(null);
      await fmt.writeTrailer();
    }
    if (fmt) {
      try {
        await fmt.closeOutput();
      } catch {
        // never opened
      }
      fmt.freeContext();
    }
    this.fmt = null;
    this.packet?.free();
    this.packet = null;
    this.video?.close();
    this.video = null;
    this.audio?.close();
    this.audio = null;
    this.opus?.close();
    this.opus = null;
  }
}
