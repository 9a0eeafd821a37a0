/**
 * Publisher: one room participant's outgoing media, made once and shared (implements MediaTap). It renders the
 * participant's avatar from the driving vectors they send (latest wins, at most the avatar's fps), encodes each
 * picture once, and hands the RTP packets to every subscriber (the other participants' peers, the optional
 * self-view, WHEP viewers, egress). The participant's microphone (Opus RTP from their peer) is relayed as is.
 *
 * One clock per tap (ms since the publisher started, performance.now() based) stamps video and audio:
 *  - video: a picture's pts is the capture time of the driving vector it shows (the page's camera clock mapped
 *    onto the tap clock by ArrivalClock; the neutral face and keepalive re-sends: the time they are sent), so the
 *    face lines up with the voice captured with it, however long the render took; RTP timestamps of the shared
 *    encode are rewritten to pts x 90 (the FFmpeg muxer's random base is dropped).
 *  - audio: a packet's pts is its sender RTP time (48 kHz) mapped the same way: late packets (jitter, a busy
 *    server) keep their 20 ms spacing.
 * A WebRTC consumer stamps its sender reports from `clockMs()` (RTP now = clockMs x clock rate): a browser then
 * plays face and voice that arrived together, together.
 *
 * Keyframes: at start, for every new subscriber (requestKeyframe) and after a PLI, at most once per
 * keyframeMinIntervalMs (requests in between share one deferred keyframe). An encoder whose worker died is
 * replaced by a fresh one from the pool (the next picture is a keyframe); the stream goes on. Nothing is rendered while nobody
 * subscribes to video. close() is idempotent.
 */
import { CONDITIONING_SIZE, flattenDrivingValues } from '../../../shared/src/driving-values.js';
import type { VideoCodecName } from '../../../shared/src/signaling.js';
import type { AvatarEntry } from '../avatars/registry.js';
import type { Logger } from '../log.js';
import type { EncodePool } from '../media/encode-pool.js';
import type { FrameEncoder, PictureSource } from '../media/frame-encoder.js';
import { FrameStamper } from '../media/frame-stamper.js';
import { yuv420pBytes } from '../media/rgb-to-yuv.js';
import type { Metrics } from '../metrics.js';
import { avatarNeutral, type DrivingChannel } from '../session/driving-channel.js';
import { defaultBitrate } from '../session/video-output.js';
import { FrameLoop } from '../session/frame-loop.js';
import { ArrivalClock, RtpUnwrapper } from './arrival-clock.js';
import type { MediaTap, TapOpus, TapPicture, TapVideoFrame, TapVideoInfo, Unsubscribe } from './media-tap.js';

export interface PublisherOptions {
  /** Stream id: unique on the server (also the msid of the participant's media stream). */
  id: string;
  avatar: AvatarEntry;
  codec: VideoCodecName;
  /** Video bitrate (bit/s); 0 = derived from the avatar's size and fps. */
  bitrate: number;
  /** Re-send the last picture after this long without a new one (ms). */
  keepaliveMs: number;
  /** Keyframes at most once per this many ms. */
  keyframeMinIntervalMs: number;
  /** Where the stream is encoded (a worker of the pool, or inline when it has none). */
  encodePool: EncodePool;
}

/** close() waits at most this long for a frame in flight. */
const FRAME_WAIT_MS = 2_000;

class Listeners<T> {
  private readonly set = new Set<(v: T) => void>();
  add(cb: (v: T) => void): Unsubscribe {
    this.set.add(cb);
    return () => {
      this.set.delete(cb);
    };
  }
  get size(): number {
    return this.set.size;
  }
  emit(v: T, log: Logger): void {
    for (const cb of this.set) {
      try {
        cb(v);
      } catch (err) {
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'tap subscriber failed');
      }
    }
  }
  clear(): void {
    this.set.clear();
  }
}

export class Publisher implements MediaTap {
  readonly id: string;
  readonly video: TapVideoInfo;
  private readonly t0 = performance.now();
  private readonly log: Logger;
  private readonly avatar: AvatarEntry;
  private encoder: FrameEncoder | null;
  private readonly neutralCond: Float32Array;
  private driving: DrivingChannel | null = null;
  private readonly rtpSubs = new Listeners<Buffer>();
  private readonly frameSubs = new Listeners<TapVideoFrame>();
  private readonly pictureSubs = new Listeners<TapPicture>();
  private readonly opusSubs = new Listeners<TapOpus>();
  private readonly closedSubs = new Listeners<void>();
  private isClosed = false;
  /** Pacing, latest wins, keepalive re-sends and keyframe throttling (session/frame-loop.ts). */
  private readonly loop: FrameLoop;
  private readonly stamper = new FrameStamper();
  private readonly audioClock = new ArrivalClock();
  private readonly audioTicks = new RtpUnwrapper();
  private readonly videoClock = new ArrivalClock();
  readonly stats = { encodes: 0, keyframes: 0, rtpPackets: 0, rtpBytes: 0, opusPackets: 0, keyframeRequests: 0, encoderReplacements: 0 };

  private readonly encodePool: EncodePool;

  constructor(
    opts: PublisherOptions,
    private readonly metrics: Metrics,
    log: Logger,
  ) {
    this.id = opts.id;
    this.avatar = opts.avatar;
    this.log = log.child({ stream: opts.id, avatar: opts.avatar.id });
    const m = opts.avatar.manifest;
    this.video = { codec: opts.codec, width: m.width, height: m.height, fps: m.fps };
    this.neutralCond = flattenDrivingValues(avatarNeutral(m.neutral), new Float32Array(CONDITIONING_SIZE));
    this.encodePool = opts.encodePool;
    this.encoder = opts.encodePool.open({
      codec: opts.codec,
      width: m.width,
      height: m.height,
      fps: m.fps,
      bitrate: opts.bitrate > 0 ? opts.bitrate : defaultBitrate(m.width, m.height, m.fps),
      maxPacketSize: 1200,
      rgbInput: opts.avatar.renderer.outputFormat === 'rgb',
    });
    metrics.encoders.inc({ codec: opts.codec });
    this.loop = new FrameLoop(
      { fps: m.fps, keepaliveMs: opts.keepaliveMs, keyframeMinIntervalMs: opts.keyframeMinIntervalMs },
      {
        renderFrame: () => this.makeFrame(),
        resendFrame: () => this.resendFrame(),
        requestKeyframe: () => {
          this.metrics.keyframeRequests.inc({ outcome: 'honoured' });
          this.stamper.requestKeyframe();
        },
        failed: (what, err) => {
          this.log.warn({ err: err instanceof Error ? err.message : String(err) }, what === 'frame' ? 'render or encode failed; the next frame tries again' : 'encode failed');
          this.replaceDeadEncoder();
        },
        wanted: () => this.wantsVideo,
      },
    );
    this.loop.start(); // renders once somebody subscribes to video
  }

  /** The encoder cannot encode any more (its worker died): a fresh one (a new worker), at the same bitrate, starting with a keyframe. */
  private replaceDeadEncoder(): void {
    const dead = this.encoder;
    if (this.isClosed || !dead || dead.failure === null) return;
    dead.close();
    this.encoder = null;
    try {
      this.encoder = this.encodePool.open({ ...dead.options, bitrate: dead.bitrate });
      this.stamper.requestKeyframe();
      this.stats.encoderReplacements++;
      this.log.warn({ reason: dead.failure }, 'encoder replaced');
    } catch (err) {
      this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'no encoder to replace the failed one: this stream sends no more video');
    }
  }

  /** Bandwidth policy (stream/tap-bandwidth.ts): a new target bitrate; the encoder re-opens before the next picture. */
  setVideoBitrate(bps: number): void {
    this.encoder?.setBitrate(bps);
  }

  /** The shared encode's target bitrate now (bit/s). */
  videoBitrate(): number {
    return this.encoder?.bitrate ?? 0;
  }

  /** ms on this tap's clock (video and audio pts). */
  clockMs(): number {
    return performance.now() - this.t0;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Renders from this channel's latest vector from now on (the participant's data channel). */
  drive(channel: DrivingChannel): void {
    this.driving = channel;
    channel.onFrame = () => this.loop.update();
  }

  /** One Opus packet of the participant's microphone, with its RTP timestamp (48 kHz) and arrival time. */
  pushOpus(payload: Buffer, rtpTimestamp: number, arrivedAt: number): void {
    if (this.isClosed) return;
    const ptsMs = this.audioClock.map(this.audioTicks.unwrap(rtpTimestamp) / 48, arrivedAt - this.t0);
    this.stats.opusPackets++;
    this.opusSubs.emit({ data: payload, ptsMs }, this.log);
  }

  subscribeVideoRtp(cb: (rtp: Buffer) => void): Unsubscribe {
    return this.subscribeVideo(this.rtpSubs, cb);
  }

  subscribeVideoFrames(cb: (frame: TapVideoFrame) => void): Unsubscribe {
    return this.subscribeVideo(this.frameSubs, cb);
  }

  subscribePictures(cb: (picture: TapPicture) => void): Unsubscribe {
    return this.subscribeVideo(this.pictureSubs, cb);
  }

  subscribeOpus(cb: (packet: TapOpus) => void): Unsubscribe {
    return this.opusSubs.add(cb);
  }

  onClosed(cb: () => void): Unsubscribe {
    if (this.isClosed) {
      cb();
      return () => {};
    }
    return this.closedSubs.add(cb);
  }

  private subscribeVideo<T>(subs: Listeners<T>, cb: (v: T) => void): Unsubscribe {
    const off = subs.add(cb);
    this.loop.update();
    return off;
  }

  private get wantsVideo(): boolean {
    return this.rtpSubs.size + this.frameSubs.size + this.pictureSubs.size > 0;
  }

  /** A keyframe soon: now, or at the end of the throttle window (one deferred keyframe for all requests in it). */
  requestKeyframe(reason: string): void {
    if (this.isClosed) return;
    this.stats.keyframeRequests++;
    const outcome = this.loop.requestKeyframe();
    if (outcome === 'throttled') this.metrics.keyframeRequests.inc({ outcome });
    else this.log.debug({ reason }, 'keyframe requested');
  }

  /** One frame (the frame loop's target): render from the latest vector, encode once, fan out. */
  private async makeFrame(): Promise<void> {
    const encoder = this.encoder;
    if (!encoder) return;
    const latest = this.driving?.latest ?? null;
    const cond = latest ? latest.cond : this.neutralCond;
    const { source } = await this.avatar.renderer.renderInto(cond, encoder.picture);
    if (this.isClosed) return;
    await this.send(encoder, source, latest ? this.videoClock.map(latest.captureMs, latest.arrivedAt - this.t0) : this.clockMs());
    if (latest) this.metrics.serverLatencyMs.observe(performance.now() - latest.arrivedAt);
  }

  /** Re-sends the last picture (the frame loop's keepalive or keyframe); the picture buffer holds it as yuv420p. */
  private async resendFrame(): Promise<void> {
    const encoder = this.encoder;
    if (this.isClosed || !encoder) return;
    await this.send(encoder, 'yuv420p', this.clockMs());
  }

  /** Encodes the picture once (pts on the tap clock, ms) and hands it to every subscriber. */
  private async send(encoder: FrameEncoder, source: PictureSource, ptsMs: number): Promise<void> {
    const { frame: f, pts90, keyRequested: key } = await this.stamper.encode(encoder, source, ptsMs);
    const pts = pts90 / 90;
    if (this.isClosed) return;
    this.stats.encodes++;
    if (f.key) this.stats.keyframes++;
    this.metrics.streamEncodes.inc({ stream: this.id });
    if (this.pictureSubs.size) {
      const { yuv } = encoder.picture; // the picture as encoded (converted to yuv420p by the encode)
      this.pictureSubs.emit({ yuv: Buffer.from(yuv.buffer, yuv.byteOffset, yuv420pBytes(this.video.width, this.video.height)), ptsMs: pts }, this.log);
    }
    for (const rtp of f.rtp) this.fanOut(rtp, pts90);
    if (this.frameSubs.size) for (const p of f.packets) this.frameSubs.emit({ data: p.data, key: p.key, ptsMs: pts }, this.log);
    this.metrics.encodeMs.observe({ codec: this.video.codec }, f.encodeMs);
    this.metrics.framesSent.inc();
    if (key) this.metrics.keyframesSent.inc();
  }

  /** One RTP packet to every subscriber, its timestamp rewritten to the picture's pts (the muxer's random base dropped). */
  private fanOut(rtp: Buffer, pts90: number): void {
    rtp.writeUInt32BE(pts90 >>> 0, 4);
    this.stats.rtpPackets++;
    this.stats.rtpBytes += rtp.length;
    this.rtpSubs.emit(rtp, this.log);
  }

  toJSON(): Record<string, unknown> {
    return { id: this.id, avatar: this.avatar.id, ...this.video, subscribers: { rtp: this.rtpSubs.size, frames: this.frameSubs.size, pictures: this.pictureSubs.size, opus: this.opusSubs.size }, ...this.stats, ...this.loop.counts };
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.loop.close();
    if (this.driving) this.driving.onFrame = null;
    this.closedSubs.emit(undefined, this.log);
    for (const s of [this.rtpSubs, this.frameSubs, this.pictureSubs, this.opusSubs, this.closedSubs] as const) s.clear();
    const frame = this.loop.inFlight;
    if (frame) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([frame, new Promise<void>((r) => (timer = setTimeout(r, FRAME_WAIT_MS)))]);
      clearTimeout(timer);
    }
    this.encoder?.close();
    this.encoder = null;
    this.metrics.encoders.dec({ codec: this.video.codec });
    this.metrics.streamEncodes.remove({ stream: this.id });
  }
}
