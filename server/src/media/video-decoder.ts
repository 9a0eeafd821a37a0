/**
 * In-process VP8 / H.264 decoder (node-av) for the Node test/bench client: one encoded picture in,
 * packed yuv420p out. Not used by the server itself.
 */
import {
  AV_CODEC_ID_H264,
  AV_CODEC_ID_VP8,
  AV_PIX_FMT_YUV420P,
  AVERROR_EAGAIN,
  AVERROR_EOF,
  Codec,
  CodecContext,
  FFmpegError,
  Frame,
  Packet,
} from 'node-av';
import type { VideoCodecName } from '../../../shared/src/signaling.js';

export interface DecodedPicture {
  width: number;
  height: number;
  /** Packed yuv420p (Y, then U, then V). */
  yuv: Buffer;
}

export class VideoDecoder {
  private ctx: CodecContext | null;
  private frame: Frame | null;
  private packet: Packet | null;

  constructor(codec: VideoCodecName) {
    const c = Codec.findDecoder(codec === 'vp8' ? AV_CODEC_ID_VP8 : AV_CODEC_ID_H264);
    if (!c) throw new Error(`no ${codec} decoder in this FFmpeg build`);
    const ctx = new CodecContext();
    ctx.allocContext3(c);
    ctx.threadCount = 1;
    FFmpegError.throwIfError(ctx.open2Sync(c, null), `open ${codec} decoder`);
    this.ctx = ctx;
    this.frame = new Frame();
    this.frame.alloc();
    this.packet = new Packet();
    this.packet.alloc();
  }

  /** Decodes one complete encoded picture; returns the pictures that came out (usually one). */
  decode(data: Buffer): DecodedPicture[] {
    const { ctx, frame, packet } = this;
    if (!ctx || !frame || !packet) throw new Error('decoder is closed');
    packet.data = data;
    const sent = ctx.sendPacketSync(packet);
    packet.unref();
    if (sent < 0 && sent !== AVERROR_EAGAIN) return []; // corrupt picture: skip it, the next keyframe recovers
    const out: DecodedPicture[] = [];
    for (;;) {
      const ret = ctx.receiveFrameSync(frame);
      if (ret === AVERROR_EAGAIN || ret === AVERROR_EOF || ret < 0) break;
      if (frame.format !== AV_PIX_FMT_YUV420P) throw new Error(`decoder produced pixel format ${String(frame.format)}, expected yuv420p`);
      out.push({ width: frame.width, height: frame.height, yuv: frame.toBuffer() });
      frame.unref();
    }
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
