/**
 * Session: one caller watching one avatar. Owns the Peer (werift), the DrivingChannel, and — once the
 * peer is connected — the VideoOutput (its FrameEncoder, in an encode worker → RTP → track). Uses (does not
 * own) the avatar's shared Renderer and the server's EncodePool.
 *
 * Frame loop (session/frame-loop.ts): a new driving vector is rendered as soon as it arrives, but at most at
 * the avatar's fps (latest vector wins; a vector that arrives while a frame is being made waits for the next
 * slot). When the caller pauses, the last picture is re-sent every `keepaliveMs` so the stream stays alive;
 * PLI/FIR keyframes are throttled. Before the first driving frame the avatar's neutral face is shown.
 *
 * close(reason) is idempotent and runs on every way a session ends: leave, socket disconnect, peer
 * failed/closed, connect timeout, server close, render/encode error.
 */
import type { DrivingValues } from '../../../shared/src/driving-values.js';
import { CONDITIONING_SIZE, flattenDrivingValues } from '../../../shared/src/driving-values.js';
import type { DriveMode, IceCandidate, VideoCodecName, VoiceStats } from '../../../shared/src/signaling.js';
import { loadIdleMotion, StillIdleMotion, type IdleMotionSource } from '../audio/idle-motion.js';
import { VoiceDriver, type MouthModel } from '../audio/voice-driver.js';
import { VoiceRelay } from '../audio/voice-relay.js';
import type { AvatarEntry } from '../avatars/registry.js';
import type { Logger } from '../log.js';
import type { EncodePool } from '../media/encode-pool.js';
import type { PictureSource } from '../media/frame-encoder.js';
import { TokenBucket } from '../access/token-bucket.js';
import type { Metrics } from '../metrics.js';
import { DriveMix } from './drive-mix.js';
import { DrivingChannel, type LatestVector } from './driving-channel.js';
import { FrameLoop } from './frame-loop.js';
import { Peer, type IceOptions } from './peer.js';
import { defaultBitrate, peerVideoSink, VideoOutput } from './video-output.js';

export interface SessionOptions {
  id: string;
  avatar: AvatarEntry;
  codec: VideoCodecName;
  ice: IceOptions;
  /** Re-send the last picture after this long without a new one (ms). */
  keepaliveMs: number;
  /** Give up when the peer is not connected this long after the offer (ms). */
  connectTimeoutMs: number;
  /** Video bitrate (bit/s); 0 = derived from the avatar's size and fps. */
  bitrate: number;
  /** Close a connected session after this long without a valid driving frame (ms; 0 = never). */
  idleTimeoutMs: number;
  /** Most driving-frame messages per second accepted (1 s burst); the excess is dropped and counted. */
  maxDrivingHz: number;
  /** PLI/FIR-triggered keyframes at most once per this many ms (requests in between share one deferred keyframe). */
  keyframeMinIntervalMs: number;
  /** Where the session's encoder runs (a worker of the pool, or inline when the pool has none). */
  encodePool: EncodePool;
  /** Measured encode time of each rendered frame (admission control); null = not needed. */
  observeEncode?: ((ms: number) => void) | null;
  /** What drives the avatar (default camera); microphone and both need `voiceModel`. */
  mode?: DriveMode;
  /** The audio-to-expression model (microphone and both modes). */
  voiceModel?: MouthModel | null;
  /** Head and eyes without a camera: the avatar's idle motion (default), or still (measurements, tests). */
  idleMotion?: 'avatar' | 'still';
}

/** Idle motion per avatar, read once. */
const idleMotions = new WeakMap<AvatarEntry, IdleMotionSource>();

/** The voice side of a microphone/both session: its driver, the relayed voice and the frame mixer. */
interface VoicePart {
  driver: VoiceDriver;
  relay: VoiceRelay;
  mix: DriveMix;
  t0: number;
  unsubscribe: () => void;
}

/** The relayed voice's delay follows the measured speech-to-lips delay once it is this far off (ms). */
const RELAY_ADJUST_MS = 15;

/** close() waits at most this long for a frame in flight. */
const FRAME_WAIT_MS = 2_000;

export type SessionEndReason = 'leave' | 'disconnect' | 'peer-failed' | 'peer-closed' | 'connect-timeout' | 'idle' | 'server-close' | 'rejoin' | 'error';

export class Session {
  readonly id: string;
  readonly avatar: AvatarEntry;
  readonly codec: VideoCodecName;
  readonly createdAt = Date.now();
  private readonly opts: SessionOptions;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly peer: Peer;
  readonly driving: DrivingChannel;
  private video: VideoOutput | null = null;
  private readonly neutralCond: Float32Array;
  private readonly voiceCond = new Float32Array(CONDITIONING_SIZE);
  private closed = false;
  private connected = false;
  /** Pacing, latest wins, keepalive re-sends and keyframe throttling (started once the peer is connected). */
  private readonly loop: FrameLoop;
  /** What the frame in flight is doing (for the failure's cause). */
  private stage: 'render' | 'encode' = 'render';
  /** seq of the driving frame in the last picture; null while only the neutral face has been shown. */
  private lastSeq: number | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  /** performance.now() of the last valid driving frame (or calibration, or the connection coming up). */
  private lastActivity = performance.now();
  private readonly drivingBucket: TokenBucket;
  private readonly intervalMs: number;
  private readonly counts = { drivingOverRate: 0 };
  /** Called once when the session has closed (to remove it from Sessions and tell the caller). */
  onClosed: ((reason: SessionEndReason, error?: string) => void) | null = null;
  readonly mode: DriveMode;
  private readonly voice: VoicePart | null = null;
  private frameTicker: NodeJS.Timeout | null = null;
  private voiceStatsTimer: NodeJS.Timeout | null = null;
  /** About once a second in microphone/both mode (sent to the caller as 'voice-stats'). */
  onVoiceStats: ((s: VoiceStats) => void) | null = null;

  constructor(opts: SessionOptions, metrics: Metrics, log: Logger) {
    this.opts = opts;
    this.id = opts.id;
    this.avatar = opts.avatar;
    this.codec = opts.codec;
    this.metrics = metrics;
    this.log = log.child({ session: opts.id, avatar: opts.avatar.id });
    this.intervalMs = 1000 / opts.avatar.manifest.fps;
    const n = opts.avatar.manifest.neutral;
    const neutral: DrivingValues = { pose: Float32Array.from(n.pose), gaze: Float32Array.from(n.gaze), blendshapes: Float32Array.from(n.blendshapes) };
    this.neutralCond = flattenDrivingValues(neutral, new Float32Array(CONDITIONING_SIZE));
    this.driving = new DrivingChannel(neutral, {
      received: (bytes) => {
        metrics.drivingReceived.inc();
        metrics.bytesUp.inc(bytes);
      },
      rejected: (reason, bytes) => {
        metrics.drivingRejected.inc({ reason });
        metrics.bytesUp.inc(bytes);
      },
    });
    this.loop = new FrameLoop(
      { fps: opts.avatar.manifest.fps, keepaliveMs: opts.keepaliveMs, keyframeMinIntervalMs: opts.keyframeMinIntervalMs },
      {
        renderFrame: () => this.makeFrame(),
        resendFrame: () => this.resendFrame(),
        requestKeyframe: () => {
          this.metrics.keyframeRequests.inc({ outcome: 'honoured' });
          this.log.debug('keyframe requested by the caller');
          this.video?.requestKeyframe();
        },
        failed: (what, err) => this.fail(what === 'resend' ? 'encode' : this.stage, err),
      },
    );
    this.driving.onFrame = () => {
      this.lastActivity = performance.now();
      this.loop.update();
    };
    this.drivingBucket = new TokenBucket(opts.maxDrivingHz, opts.maxDrivingHz);
    this.mode = opts.mode ?? 'camera';
    if (this.mode !== 'camera' && !opts.voiceModel) throw new Error(`drive mode ${this.mode} needs the audio-to-expression model`);
    this.peer = new Peer(opts.codec, opts.ice, this.log, this.mode === 'camera' ? {} : { audio: 'sendrecv' });
    metrics.peers.inc();
    if (this.mode !== 'camera' && opts.voiceModel) this.voice = this.startVoice(opts.voiceModel, neutral);
    this.peer.channel.onMessage.subscribe((msg) => {
      if (this.closed) return;
      if (!this.drivingBucket.take()) {
        // over the rate: dropped unread (a flood must not cost a decode each)
        this.counts.drivingOverRate++;
        metrics.drivingRejected.inc({ reason: 'rate' });
        metrics.bytesUp.inc(typeof msg === 'string' ? Buffer.byteLength(msg) : msg.length);
        return;
      }
      this.driving.handleMessage(msg);
    });
    this.peer.onKeyframeRequest = () => this.onKeyframeRequest();
    this.peer.onState = (s) => {
      if (s === 'connected') this.onConnected();
      else if (s === 'failed') void this.close('peer-failed');
      else if (s === 'closed') void this.close('peer-closed');
    };
  }

  /** The caller's microphone → VoiceDriver (the mouth) and VoiceRelay (their voice back, delayed to the lips). */
  private startVoice(model: MouthModel, neutral: DrivingValues): VoicePart {
    let idle = this.opts.idleMotion === 'still' ? new StillIdleMotion(neutral) : idleMotions.get(this.avatar);
    if (!idle) {
      idle = loadIdleMotion(this.avatar.dir, neutral, this.log);
      idleMotions.set(this.avatar, idle);
    }
    const driver = new VoiceDriver({ predictor: model.createPredictor(this.avatar.dir), log: this.log });
    const relay = new VoiceRelay({ send: (payload, ts) => this.peer.sendOpus(payload, ts), delayMs: driver.lookaheadMs + this.intervalMs });
    const unsubscribe = this.peer.onAudioRtp((p) => {
      if (this.closed) return;
      this.lastActivity = p.arrivedAt; // a talking (or silent but connected) microphone keeps the session alive
      driver.push({ sequenceNumber: p.sequence, timestamp: p.timestamp, payload: p.payload }, p.arrivedAt);
      relay.push(p.payload, p.timestamp, p.arrivedAt);
    });
    this.log.info({ mode: this.mode, lookaheadMs: Math.round(driver.lookaheadMs), idleMotion: idle.kind }, 'voice-driven session');
    return { driver, relay, mix: new DriveMix(neutral, idle, driver.outputIndex), t0: performance.now(), unsubscribe };
  }

  /** Once a second: the relayed voice's delay follows the measured speech-to-lips delay; the caller gets the numbers. */
  private voiceTick(): void {
    const v = this.voice;
    if (!v || this.closed) return;
    const measured = v.driver.speechToLipsMs;
    if (measured !== null && Math.abs(measured - v.relay.delayMs) > RELAY_ADJUST_MS) v.relay.setDelay(Math.min(1000, Math.max(0, measured)));
    this.onVoiceStats?.({ speechToLipsMs: measured === null ? null : Math.round(measured), voiceDelayMs: Math.round(v.relay.delayMs), speech: v.driver.speech });
  }

  /** A PLI/FIR: a keyframe now, or — within keyframeMinIntervalMs of the last one — one at the end of that window. */
  private onKeyframeRequest(): void {
    if (this.closed) return;
    if (this.loop.requestKeyframe() === 'throttled') this.metrics.keyframeRequests.inc({ outcome: 'throttled' });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Creates the server's offer (complete, with host candidates). */
  async offer(): Promise<string> {
    const sdp = await this.peer.createOffer();
    if (!this.closed && !this.connected) {
      this.connectTimer = setTimeout(() => void this.close('connect-timeout', `peer not connected within ${this.opts.connectTimeoutMs} ms`), this.opts.connectTimeoutMs);
    }
    return sdp;
  }

  async answer(sdp: string): Promise<void> {
    await this.peer.setAnswer(sdp);
  }

  async addCandidate(c: IceCandidate): Promise<void> {
    await this.peer.addCandidate(c);
  }

  calibrate(neutral: DrivingValues): void {
    this.lastActivity = performance.now();
    this.driving.calibrate(neutral);
    this.log.info('caller calibrated');
  }

  private onConnected(): void {
    if (this.closed || this.connected) return;
    this.connected = true;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    const m = this.avatar.manifest;
    try {
      const encoder = this.opts.encodePool.open({
        codec: this.codec,
        width: m.width,
        height: m.height,
        fps: m.fps,
        bitrate: this.opts.bitrate > 0 ? this.opts.bitrate : defaultBitrate(m.width, m.height, m.fps),
        maxPacketSize: 1200,
        rgbInput: this.avatar.renderer.outputFormat === 'rgb',
      });
      this.video = new VideoOutput(peerVideoSink(this.peer), encoder);
      this.metrics.encoders.inc({ codec: this.codec });
    } catch (err) {
      this.fail('encode', new Error(`cannot start the ${this.codec} encoder: ${err instanceof Error ? err.message : String(err)}`));
      return;
    }
    this.log.info({ codec: this.codec }, 'peer connected; streaming');
    this.loop.start(); // first frame: the latest vector or the neutral face, as a keyframe
    if (this.voice) {
      // the voice and the idle motion change every frame: render at the avatar's rate
      this.frameTicker = setInterval(() => this.loop.update(), this.intervalMs);
      this.voiceStatsTimer = setInterval(() => this.voiceTick(), 1000);
    }
    this.lastActivity = performance.now();
    const idleMs = this.opts.idleTimeoutMs;
    if (idleMs > 0) {
      this.idleTimer = setInterval(() => {
        if (performance.now() - this.lastActivity > idleMs) void this.close('idle', `no driving frames for ${Math.round(idleMs / 1000)} s`);
      }, Math.max(50, Math.min(1000, Math.round(idleMs / 4))));
    }
  }

  /** One frame (the frame loop's target): render from the latest vector, encode, send. */
  private async makeFrame(): Promise<void> {
    const video = this.video;
    if (!video) return;
    const start = performance.now();
    const latest: LatestVector | null = this.driving.latest;
    let cond = latest ? latest.cond : this.neutralCond;
    const voice = this.voice;
    const mouth = voice ? voice.driver.latest : null;
    if (voice) cond = voice.mix.mix(start - voice.t0, this.mode === 'both' && latest ? latest.cond : null, mouth, this.voiceCond);
    const seq = latest ? latest.seq : null; // no render report for the neutral face: no driving frame in it
    this.stage = 'render';
    const { ms: renderMs, source } = await this.avatar.renderer.renderInto(cond, video.picture);
    if (this.closed || this.video !== video) return;
    this.stage = 'encode';
    const encodeMs = await this.sendPicture(video, source, seq === null ? null : { seq, renderMs });
    if (this.closed || this.video !== video) return;
    this.lastSeq = seq; // the picture buffer now holds this picture as yuv420p (for re-sends)
    this.opts.observeEncode?.(encodeMs);
    if (voice && mouth) voice.driver.noteShown(mouth);
    if (latest) this.metrics.serverLatencyMs.observe(performance.now() - latest.arrivedAt);
  }

  /** Re-sends the last picture (the frame loop's keepalive, or a keyframe right after a PLI). */
  private async resendFrame(): Promise<void> {
    const video = this.video;
    if (this.closed || !video) return;
    await this.sendPicture(video, 'yuv420p', this.lastSeq === null ? null : { seq: this.lastSeq, renderMs: 0 });
  }

  /** A render or encode failure ends only this session (counted by avatar and cause); the others go on. */
  private fail(cause: 'render' | 'encode' | 'offer', err: unknown): void {
    if (this.closed) return;
    this.metrics.sessionFailures.inc({ avatar: this.avatar.id, cause });
    void this.close('error', `${cause} failed: ${err instanceof Error ? err.message : String(err)}`);
  }

  /** The offer could not be made (called by signaling). */
  failOffer(err: unknown): void {
    this.fail('offer', err);
  }

  /** Test-only: the next encode of this session fails, as a broken encoder would. */
  testFailNextEncode(): void {
    this.video?.testFailNextSend();
  }

  /** Encodes and sends one picture; resolves to the encode time (ms). */
  private async sendPicture(video: VideoOutput, source: PictureSource, report: { seq: number; renderMs: number } | null): Promise<number> {
    const sent = await video.send(source, report);
    this.metrics.encodeMs.observe({ codec: this.codec }, sent.encodeMs);
    this.metrics.framesSent.inc();
    if (sent.key) this.metrics.keyframesSent.inc();
    this.metrics.bytesDown.inc(sent.bytes);
    return sent.encodeMs;
  }

  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      avatar: this.avatar.id,
      codec: this.codec,
      connected: this.connected,
      closed: this.closed,
      ...this.loop.counts,
      ...this.counts,
      peer: this.peer.toJSON(),
      driving: this.driving.toJSON(),
      video: this.video?.toJSON() ?? null,
      mode: this.mode,
      voice: this.voice ? { ...this.voice.driver.toJSON(), relay: this.voice.relay.toJSON() } : null,
    };
  }

  async close(reason: SessionEndReason, error?: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.loop.close();
    if (this.connectTimer) clearTimeout(this.connectTimer);
    for (const t of [this.idleTimer, this.frameTicker, this.voiceStatsTimer]) if (t) clearInterval(t);
    this.connectTimer = this.idleTimer = this.frameTicker = this.voiceStatsTimer = null;
    this.driving.onFrame = null;
    this.onVoiceStats = null;
    if (this.voice) {
      this.voice.unsubscribe();
      this.voice.relay.close();
      this.voice.driver.close();
    }
    if (error) this.log.warn({ reason, error }, 'session ended with an error');
    else this.log.info({ reason }, 'session ended');
    const cb = this.onClosed;
    this.onClosed = null;
    cb?.(reason, error);
    // Let a frame in flight finish (bounded: a hung model run is abandoned by the renderer, but close() must
    // not depend on that). A frame that completes after this point sees `closed` and never touches the encoder.
    const frame = this.loop.inFlight;
    if (frame) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([frame, new Promise<void>((r) => (timer = setTimeout(r, FRAME_WAIT_MS)))]);
      clearTimeout(timer);
    }
    try {
      await this.peer.close();
    } finally {
      this.metrics.peers.dec();
      if (this.video) {
        this.video.close();
        this.video = null;
        this.metrics.encoders.dec({ codec: this.codec });
      }
    }
    this.log.debug({ stats: this.toJSON() }, 'session closed');
  }
}
