/**
 * PatternTap: a real MediaTap for tests of its consumers (WHEP, egress) that needs no room: a moving test
 * pattern encoded once by the real VideoEncoder + RtpMuxer (server/src/media/), and real Opus packets (from a
 * WAV, test/support/opus-clip.ts) looped, both paced on one ms clock. `encodes` counts pictures encoded, and
 * the optional counter (the server's dnp_stream_encodes_total, as a room publisher counts) shows it in /metrics.
 */
import type { Counter } from 'prom-client';
import type { VideoCodecName } from '../../shared/src/signaling.js';
import { yuv420pBytes } from '../../server/src/media/rgb-to-yuv.js';
import { RtpMuxer } from '../../server/src/media/rtp-muxer.js';
import { VideoEncoder } from '../../server/src/media/video-encoder.js';
import type { MediaTap, TapOpus, TapPicture, TapVideoFrame, TapVideoInfo, Unsubscribe } from '../../server/src/stream/media-tap.js';

export interface PatternTapOptions {
  id?: string;
  codec?: VideoCodecName;
  width?: number;
  height?: number;
  fps?: number;
  bitrate?: number;
  /** 20 ms Opus packets to loop; none = no voice. */
  opus?: Buffer[];
  /** e.g. the server's dnp_stream_encodes_total (Metrics.streamEncodes), counted under stream = id */
  encodeCounter?: Counter<'stream'>;
}

class Subscribers<T> {
  private readonly set = new Set<(v: T) => void>();
  add(cb: (v: T) => void): Unsubscribe {
    this.set.add(cb);
    return () => this.set.delete(cb);
  }
  emit(v: T): void {
    for (const cb of [...this.set]) cb(v);
  }
  get size(): number {
    return this.set.size;
  }
  clear(): void {
    this.set.clear();
  }
}

/** A deterministic moving picture: diagonal luma gradient shifted by `n`, a bright square that walks across. */
export function patternPicture(width: number, height: number, n: number, out: Buffer): void {
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) out[y * width + x] = (x + y + 3 * n) & 0xff;
  }
  const s = Math.floor(height / 4);
  const x0 = (n * 4) % Math.max(1, width - s);
  for (let y = s; y < 2 * s; y++) out.fill(235, y * width + x0, y * width + x0 + s);
  const c = (width / 2) * (height / 2);
  out.fill(128 + ((n * 2) % 64), width * height, width * height + c);
  out.fill(128 - ((n * 2) % 64), width * height + c, width * height + 2 * c);
}

export class PatternTap implements MediaTap {
  readonly id: string;
  readonly video: TapVideoInfo;
  encodes = 0;
  keyframeRequests = 0;
  private readonly rtp = new Subscribers<Buffer>();
  private readonly frames = new Subscribers<TapVideoFrame>();
  private readonly pictures = new Subscribers<TapPicture>();
  private readonly voice = new Subscribers<TapOpus>();
  private readonly closedCbs = new Subscribers<void>();
  private encoder: VideoEncoder | null;
  private muxer: RtpMuxer | null;
  private readonly yuv: Buffer;
  private readonly opus: Buffer[];
  private readonly t0 = performance.now();
  private timer: NodeJS.Timeout | null;
  private nextVideo = 0;
  private nextAudio = 0;
  private keyWanted = true;
  private isClosed = false;

  constructor(private readonly opts: PatternTapOptions = {}) {
    this.id = opts.id ?? 'pattern';
    this.video = { codec: opts.codec ?? 'vp8', width: opts.width ?? 320, height: opts.height ?? 240, fps: opts.fps ?? 25 };
    this.opus = opts.opus ?? [];
    this.yuv = Buffer.alloc(yuv420pBytes(this.video.width, this.video.height));
    const encoder = new VideoEncoder({ ...this.video, bitrate: opts.bitrate ?? 300_000 });
    this.encoder = encoder;
    this.muxer = new RtpMuxer(encoder, { maxPacketSize: 1200, onPacket: (b) => this.rtp.emit(b) });
    this.timer = setInterval(() => this.tick(), 5);
  }

  subscribeVideoRtp(cb: (rtp: Buffer) => void): Unsubscribe {
    return this.rtp.add(cb);
  }
  subscribeVideoFrames(cb: (frame: TapVideoFrame) => void): Unsubscribe {
    return this.frames.add(cb);
  }
  subscribePictures(cb: (picture: TapPicture) => void): Unsubscribe {
    return this.pictures.add(cb);
  }
  subscribeOpus(cb: (packet: TapOpus) => void): Unsubscribe {
    return this.voice.add(cb);
  }
  requestKeyframe(_reason: string): void {
    this.keyframeRequests++;
    this.keyWanted = true;
  }
  setVideoBitrate(bps: number): void {
    this.encoder?.setBitrate(bps);
  }
  videoBitrate(): number {
    return this.encoder?.bitrate ?? 0;
  }
  /** Times the encoder was re-opened for a new bitrate. */
  get bitrateChanges(): number {
    return this.encoder?.reopens ?? 0;
  }
  get closed(): boolean {
    return this.isClosed;
  }
  onClosed(cb: () => void): Unsubscribe {
    return this.closedCbs.add(cb);
  }

  private tick(): void {
    const now = performance.now() - this.t0;
    const frameMs = 1000 / this.video.fps;
    // Catch up at most a few steps (a stalled event loop does not cause a burst).
    for (let i = 0; i < 3 && this.nextVideo * frameMs <= now; i++) this.encodeOne(Math.round(this.nextVideo++ * frameMs));
    if (this.nextVideo * frameMs <= now - 200) this.nextVideo = Math.ceil(now / frameMs);
    if (this.opus.length) {
      for (let i = 0; i < 5 && this.nextAudio * 20 <= now; i++) {
        const data = this.opus[this.nextAudio % this.opus.length] as Buffer;
        this.voice.emit({ data, ptsMs: this.nextAudio++ * 20 });
      }
      if (this.nextAudio * 20 <= now - 200) this.nextAudio = Math.ceil(now / 20);
    }
  }

  private encodeOne(ptsMs: number): void {
    const { encoder, muxer } = this;
    if (!encoder || !muxer) return;
    patternPicture(this.video.width, this.video.height, this.encodes, this.yuv);
    this.pictures.emit({ yuv: this.yuv, ptsMs });
    const key = this.keyWanted;
    this.keyWanted = false;
    const packets = encoder.encode(this.yuv, ptsMs * 90, key);
    this.encodes++;
    this.opts.encodeCounter?.inc({ stream: this.id });
    for (const p of packets) {
      muxer.write(p);
      this.frames.emit({ data: p.data, key: p.key, ptsMs });
    }
  }

  /** How many consumers are subscribed now (video RTP, frames, pictures, voice). */
  get subscribers(): { rtp: number; frames: number; pictures: number; voice: number } {
    return { rtp: this.rtp.size, frames: this.frames.size, pictures: this.pictures.size, voice: this.voice.size };
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.closedCbs.emit();
    this.rtp.clear();
    this.frames.clear();
    this.pictures.clear();
    this.voice.clear();
    this.closedCbs.clear();
    this.muxer?.close();
    this.muxer = null;
    this.encoder?.close();
    this.encoder = null;
  }
}
