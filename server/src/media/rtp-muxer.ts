/**
 * RTP packetisation with FFmpeg's own `rtp` muxer (RFC 7741 for VP8, RFC 6184 for H.264) opened on a
 * write callback: each encoded picture comes out as RTP packets of at most `maxPacketSize` bytes.
 * The RTCP sender reports the muxer also writes are dropped (werift does RTCP itself), and werift
 * rewrites SSRC, payload type, sequence numbers and timestamps on the way out.
 */
import {
  AVFMT_FLAG_CUSTOM_IO,
  AV_PKT_FLAG_KEY,
  FFmpegError,
  FormatContext,
  IOContext,
  Packet,
  Rational,
} from 'node-av';
import type { EncodedPacket, VideoEncoder } from './video-encoder.js';

export interface RtpMuxerOptions {
  maxPacketSize: number;
  /** Called synchronously with each RTP packet (a fresh Buffer). */
  onPacket: (rtp: Buffer) => void;
}

/** RTCP packet types 200..204 sit where an RTP packet has its marker bit + payload type. */
function isRtcp(b: Buffer): boolean {
  if (b.length < 2) return true;
  const pt = b[1] as number;
  return pt >= 200 && pt <= 204;
}

export class RtpMuxer {
  private fmt: FormatContext | null;
  private io: IOContext | null;
  private packet: Packet | null;
  private headerWritten = false;
  private readonly onPacket: (rtp: Buffer) => void;
  private rtpPackets = 0;
  private rtcpDropped = 0;
  private bytes = 0;

  constructor(encoder: VideoEncoder, opts: RtpMuxerOptions) {
    this.onPacket = opts.onPacket;
    // Freed again if a later step throws: a half-built muxer must not leak its contexts.
    let fmt: FormatContext | null = null;
    let io: IOContext | null = null;
    try {
      fmt = new FormatContext();
      FFmpegError.throwIfError(fmt.allocOutputContext2(null, 'rtp', null), 'allocate rtp muxer');
      io = new IOContext();
      io.allocContextWithCallbacks(opts.maxPacketSize, 1, null, (buf: Buffer) => {
        this.handle(buf);
        return buf.length;
      });
      io.maxPacketSize = opts.maxPacketSize;
      fmt.pb = io;
      fmt.setFlags(AVFMT_FLAG_CUSTOM_IO);
      const stream = fmt.newStream(null);
      FFmpegError.throwIfError(stream.codecpar.fromContext(encoder.codecContext), 'rtp stream parameters');
      stream.timeBase = new Rational(1, 90000);
    } catch (err) {
      if (fmt) {
        fmt.pb = null;
        fmt.freeContext();
      }
      io?.freeContext();
      throw err;
    }
    this.fmt = fmt;
    this.io = io;
    const packet = new Packet();
    packet.alloc();
    this.packet = packet;
  }

  private handle(buf: Buffer): void {
    if (isRtcp(buf)) {
      this.rtcpDropped++;
      return;
    }
    this.rtpPackets++;
    this.bytes += buf.length;
    this.onPacket(Buffer.from(buf));
  }

  /** Packetises one encoded picture; onPacket runs for each RTP packet before this returns. */
  write(p: EncodedPacket): void {
    const { fmt, packet } = this;
    if (!fmt || !packet) throw new Error('rtp muxer is closed');
    if (!this.headerWritten) {
      FFmpegError.throwIfError(fmt.writeHeaderSync(null), 'write rtp header');
      this.headerWritten = true;
    }
    packet.data = p.data;
    packet.pts = BigInt(p.pts90k);
    packet.dts = BigInt(p.pts90k);
    packet.streamIndex = 0;
    packet.flags = p.key ? AV_PKT_FLAG_KEY : (0 as typeof AV_PKT_FLAG_KEY);
    FFmpegError.throwIfError(fmt.writeFrameSync(packet), 'write rtp packet');
    packet.unref();
    this.io?.flushSync();
  }

  toJSON(): { rtpPackets: number; rtcpDropped: number; bytes: number } {
    return { rtpPackets: this.rtpPackets, rtcpDropped: this.rtcpDropped, bytes: this.bytes };
  }

  close(): void {
    const fmt = this.fmt;
    this.fmt = null;
    if (fmt) {
      fmt.pb = null;
      fmt.freeContext();
    }
    this.io?.freeContext();
    this.io = null;
    this.packet?.free();
    this.packet = null;
  }
}
