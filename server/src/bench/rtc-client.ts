/**
 * A Node caller for the live server (used by the integration tests and `dnp bench`): socket.io-client
 * signaling, a werift RTCPeerConnection that answers the server's offer, the negotiated data channel for
 * driving frames and render reports, and RTP → depacketise → decode (node-av) of the video it receives.
 */
import { io, type Socket } from 'socket.io-client';
import { MediaStreamTrack, RTCPeerConnection, RtpHeader, RtpPacket, type RTCDataChannel } from 'werift';
import { RtpFrameAssembler, type AssembledFrame } from '../media/rtp-frame-assembler.js';
import type { DrivingValues } from '../../../shared/src/driving-values.js';
import { decodeRenderReport, type RenderReport } from '../../../shared/src/render-report.js';
import {
  DATA_CHANNEL_ID,
  DATA_CHANNEL_LABEL,
  drivingValuesToJson,
  parseAckReply,
  parseJoinReply,
  parseSessionDescription,
  parseSessionError,
  parseShutdownNotice,
  parseVoiceStats,
  validated,
  type AckReply,
  type ClientToServerEvents,
  type DriveMode,
  type ErrorCode,
  type ServerToClientEvents,
  type VoiceStats,
  type VideoCodecName,
} from '../../../shared/src/signaling.js';
import { VideoDecoder, type DecodedPicture } from '../media/video-decoder.js';
import { codecParameters, opusParameters } from '../session/peer.js';

export interface ReceivedFrame extends DecodedPicture {
  /** RTP timestamp as received. */
  rtpTimestamp: number;
  /** performance.now() when the last packet of the picture arrived (before decoding). */
  arrivedAt: number;
  /** performance.now() after decoding. */
  decodedAt: number;
  key: boolean;
}

export interface RtcClientOptions {
  url: string;
  avatar: string;
  codec?: VideoCodecName;
  timeoutMs?: number;
  /** join token (`dnp token`) for a server with --token-secret */
  token?: string;
  /** what drives the avatar (default camera); microphone and both: sendOpus() is the microphone */
  mode?: DriveMode;
}

export interface RtcClientStats {
  rtpPackets: number;
  rtpBytes: number;
  framesDecoded: number;
  framesIncomplete: number;
  /** complete frames dropped while waiting for a keyframe (after a loss, or before the first keyframe) */
  framesSkipped: number;
  /** PLIs this client sent on its own (after a loss; throttled), as a browser does */
  keyframeRequests: number;
  reports: number;
  bytesSent: number;
  messagesSent: number;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** The server refused the join; `code` says why (shared/src/signaling.ts ErrorCode). */
export class JoinRefusedError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'JoinRefusedError';
  }
}

export class RtcClient {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  readonly pc: RTCPeerConnection;
  readonly channel: RTCDataChannel;
  readonly codec: VideoCodecName;
  sessionId = '';
  private decoder: VideoDecoder;
  private readonly assembler: RtpFrameAssembler;
  private closed = false;
  private track: MediaStreamTrack | null = null;
  /** After a lost or incomplete frame, inter frames cannot be decoded until the next keyframe. */
  private waitingForKey = true;
  private lastPliAt = -Infinity;
  private dropNext = 0;
  private lastSeq: number | null = null;
  readonly stats: RtcClientStats = { rtpPackets: 0, rtpBytes: 0, framesDecoded: 0, framesIncomplete: 0, framesSkipped: 0, keyframeRequests: 0, reports: 0, bytesSent: 0, messagesSent: 0 };
  readonly sessionErrors: string[] = [];
  readonly sessionErrorCodes: ErrorCode[] = [];
  /** 'shutdown' notices from the server (it is stopping). */
  readonly shutdownNotices: string[] = [];
  /** Server events that failed validation ("event: why"); a well-behaved server sends none. */
  readonly malformedEvents: string[] = [];
  onFrame: ((f: ReceivedFrame) => void) | null = null;
  onReport: ((r: RenderReport, at: number) => void) | null = null;
  /** Each relayed voice packet (microphone and both modes): its RTP timestamp and performance.now() on arrival. */
  onVoice: ((p: { payload: Buffer; timestamp: number; arrivedAt: number }) => void) | null = null;
  /** The latest 'voice-stats' from the server. */
  voiceStats: VoiceStats | null = null;
  private mic: MediaStreamTrack | null = null;
  private micSeq = 0;

  private constructor(readonly opts: RtcClientOptions) {
    this.codec = opts.codec ?? 'vp8';
    this.socket = io(opts.url, { transports: ['websocket'], reconnection: false, autoConnect: false, auth: opts.token ? { token: opts.token } : {} });
    const bad = (event: string) => (why: string) => this.malformedEvents.push(`${event}: ${why}`);
    this.socket.on('session-error', validated(parseSessionError, (e) => {
      this.sessionErrors.push(e.message);
      this.sessionErrorCodes.push(e.code);
    }, bad('session-error')));
    this.socket.on('shutdown', validated(parseShutdownNotice, (m) => this.shutdownNotices.push(m), bad('shutdown')));
    this.socket.on('voice-stats', validated(parseVoiceStats, (v) => (this.voiceStats = v), bad('voice-stats')));
    const audio = (opts.mode ?? 'camera') === 'camera' ? [] : [opusParameters()];
    this.pc = new RTCPeerConnection({ codecs: { video: [codecParameters(this.codec)], audio }, iceAdditionalHostAddresses: ['127.0.0.1'], iceUseIpv6: false });
    this.channel = this.pc.createDataChannel(DATA_CHANNEL_LABEL, { negotiated: true, id: DATA_CHANNEL_ID, ordered: false, maxRetransmits: 0 });
    this.channel.onMessage.subscribe((m) => {
      if (typeof m === 'string') return;
      const r = decodeRenderReport(m);
      if (r) {
        this.stats.reports++;
        this.onReport?.(r, performance.now());
      }
    });
    this.decoder = new VideoDecoder(this.codec);
    this.assembler = new RtpFrameAssembler(this.codec);
    this.assembler.onIncomplete = () => this.lost();
    this.pc.onTrack.subscribe((track) => {
      if (track.kind === 'audio') {
        track.onReceiveRtp.subscribe((rtp) => this.onVoice?.({ payload: rtp.payload, timestamp: rtp.header.timestamp, arrivedAt: performance.now() }));
        return;
      }
      this.track = track;
      track.onReceiveRtp.subscribe((rtp) => this.onRtp(rtp));
    });
  }

  /** Connects, joins `avatar` and completes the WebRTC handshake (until the data channel is open). */
  static async connect(opts: RtcClientOptions): Promise<RtcClient> {
    const c = new RtcClient(opts);
    try {
      await c.handshake(opts.timeoutMs ?? 20_000);
      return c;
    } catch (err) {
      await c.close();
      throw err;
    }
  }

  private async handshake(timeoutMs: number): Promise<void> {
    const offer = new Promise<unknown>((resolve) => this.socket.once('offer', resolve));
    this.socket.connect();
    await withTimeout(new Promise<void>((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', (e) => reject(e));
    }), timeoutMs, 'socket.io connect');
    const mode = this.opts.mode ?? 'camera';
    const reply = parseJoinReply(await this.socket.timeout(timeoutMs).emitWithAck('join', { avatar: this.opts.avatar, codec: this.codec, mode }));
    if (!reply.ok) throw new JoinRefusedError(reply.code, `join refused (${reply.code}): ${reply.error}`);
    this.sessionId = reply.sessionId;
    const desc = parseSessionDescription(await withTimeout(offer, timeoutMs, 'the offer'), 'offer');
    await this.pc.setRemoteDescription(desc);
    if (mode !== 'camera') {
      const t = this.pc.getTransceivers().find((x) => x.kind === 'audio');
      if (!t) throw new Error('the server offered no audio for the microphone');
      this.mic = new MediaStreamTrack({ kind: 'audio' });
      await t.sender.replaceTrack(this.mic);
      t.setDirection('sendrecv');
    }
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    if (this.pc.iceGatheringState !== 'complete') {
      await withTimeout(new Promise<void>((resolve) => {
        const sub = this.pc.iceGatheringStateChange.subscribe((s) => {
          if (s === 'complete') {
            sub.unSubscribe();
            resolve();
          }
        });
      }), timeoutMs, 'ICE gathering');
    }
    const sdp = this.pc.localDescription?.sdp;
    if (sdp === undefined) throw new Error('no local description to answer with');
    this.socket.emit('answer', { type: 'answer', sdp });
    if (this.channel.readyState !== 'open') {
      await withTimeout(new Promise<void>((resolve) => {
        const sub = this.channel.stateChanged.subscribe((s) => {
          if (s === 'open') {
            sub.unSubscribe();
            resolve();
          }
        });
      }), timeoutMs, 'the data channel to open');
    }
  }

  /** Test-only: the next `n` received video RTP packets are dropped, as a lossy network would. */
  testDropReceived(n: number): void {
    this.dropNext = n;
  }

  private onRtp(rtp: RtpPacket): void {
    if (this.closed) return;
    if (this.dropNext > 0) {
      this.dropNext--;
      return;
    }
    this.stats.rtpPackets++;
    this.stats.rtpBytes += rtp.serializeSize;
    const seqNo = rtp.header.sequenceNumber;
    if (this.lastSeq !== null) {
      const step = (seqNo - this.lastSeq) & 0xffff;
      if (step === 0 || step >= 0x8000) return; // a duplicate, or late (reordered / retransmitted): its frame is gone
      if (step !== 1) {
        // packets in between were lost: the picture being assembled is incomplete
        this.assembler.reset();
        this.lost();
      }
    }
    this.lastSeq = seqNo;
    const f = this.assembler.push(rtp); // an incomplete picture calls lost()
    if (f) this.finish(f, performance.now());
  }

  private finish(f: AssembledFrame, arrivedAt: number): void {
    const key = f.key;
    if (this.waitingForKey) {
      if (!key) {
        this.stats.framesSkipped++;
        this.askForKeyframe();
        return;
      }
      this.waitingForKey = false;
    }
    for (const pic of this.decoder.decode(f.data)) {
      this.stats.framesDecoded++;
      this.onFrame?.({ ...pic, rtpTimestamp: f.rtpTimestamp, arrivedAt, decodedAt: performance.now(), key });
    }
  }

  /** A frame was lost or arrived incomplete: drop inter frames until a keyframe, and ask for one (as a browser does). */
  private lost(): void {
    this.stats.framesIncomplete++;
    this.waitingForKey = true;
    this.askForKeyframe();
  }

  /** PLI at most every 250 ms; the server throttles too. */
  private askForKeyframe(): void {
    const now = performance.now();
    if (now - this.lastPliAt < 250) return;
    this.lastPliAt = now;
    this.stats.keyframeRequests++;
    this.requestKeyframe().catch(() => undefined);
  }

  /** Sends one data-channel message (a driving frame, or anything for bad-input tests). */
  send(data: Uint8Array | string): void {
    this.channel.send(typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    this.stats.messagesSent++;
    this.stats.bytesSent += typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
  }

  async calibrate(neutral: DrivingValues): Promise<AckReply> {
    return parseAckReply(await this.socket.timeout(5000).emitWithAck('calibrate', { neutral: drivingValuesToJson(neutral) }), 'calibrate reply');
  }

  /** Asks the server for a keyframe (RTCP PLI). */
  async requestKeyframe(): Promise<void> {
    const ssrc = this.track?.ssrc;
    const receiver = this.pc.getTransceivers().find((t) => t.kind === 'video')?.receiver;
    if (ssrc !== undefined && receiver) await receiver.sendRtcpPLI(ssrc);
  }

  /** One Opus packet from the "microphone" (microphone and both modes; RTP timestamp at 48 kHz). */
  sendOpus(payload: Buffer, timestamp: number): void {
    if (!this.mic || this.closed) return;
    this.micSeq = (this.micSeq + 1) & 0xffff;
    this.mic.writeRtp(new RtpPacket(new RtpHeader({ payloadType: 111, sequenceNumber: this.micSeq, timestamp: timestamp >>> 0 }), payload));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onFrame = null;
    this.onReport = null;
    this.onVoice = null;
    try {
      if (this.socket.connected) this.socket.emit('leave');
    } catch {
      // going away anyway
    }
    this.socket.removeAllListeners();
    this.socket.disconnect();
    await this.pc.close().catch(() => undefined);
    this.decoder.close();
  }
}
