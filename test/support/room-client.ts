/**
 * A call-room caller for tests (werift + socket.io-client): joins a room, answers the server's offers — its own
 * peer (driving data channel, microphone as Opus sendonly, optional self-view) and one per other participant
 * (their avatar + voice, received with MediaReceiver: video reassembled + decoded, Opus decoded).
 */
import { io, type Socket } from 'socket.io-client';
import { MediaStreamTrack, RtcpSrPacket, RtpHeader, RtpPacket, RTCPeerConnection, type RTCDataChannel } from 'werift';
import { unixMsFromNtp } from '../../server/src/media/sender-reports.js';
import { OpusDecoder } from '../../server/src/audio/opus-decoder.js';
import { RtpFrameAssembler } from '../../server/src/media/rtp-frame-assembler.js';
import { VideoDecoder, type DecodedPicture } from '../../server/src/media/video-decoder.js';
import { parseParticipantInfo, parseParticipantLeft, parseRoomJoinReply, parseRoomOffer, type ParticipantInfo, type RoomOffer } from '../../shared/src/room-signaling.js';
import {
  DATA_CHANNEL_ID,
  DATA_CHANNEL_LABEL,
  parseSessionError,
  validated,
  type ClientToServerEvents,
  type ErrorCode,
  type ServerToClientEvents,
  type VideoCodecName,
} from '../../shared/src/signaling.js';
import { codecParameters, opusParameters } from '../../server/src/session/peer.js';
import { waitForGathering } from '../../server/src/stream/tap-sender.js';
import { until } from './whep-client.js';

export { until };

/**
 * What one peer receives: video reassembled + decoded (latest pictures kept), Opus packets decoded and counted.
 * With decode false (a bench's many callers) frames are only reassembled and counted.
 */
export class MediaReceiver {
  readonly pictures: { pic: DecodedPicture; at: number }[] = [];
  framesDecoded = 0;
  framesReceived = 0;
  videoBytes = 0;
  opusPackets = 0;
  opusBytes = 0;
  /** 48 kHz samples decoded from the Opus packets received. */
  opusSamples = 0;
  /** RTP timestamps as received (video: one per complete frame), the last 500 of each kind. */
  readonly timestamps: Record<'audio' | 'video', number[]> = { audio: [], video: [] };
  /** RTCP sender reports received: NTP time (Unix ms) and RTP timestamp, the last 50 of each kind. */
  readonly senderReports: Record<'audio' | 'video', { ntpMs: number; rtp: number }[]> = { audio: [], video: [] };
  private readonly assembler: RtpFrameAssembler;
  private readonly decoder: VideoDecoder | null;
  private readonly opus: OpusDecoder | null;
  private closed = false;

  constructor(pc: RTCPeerConnection, codec: VideoCodecName, decode = true) {
    this.assembler = new RtpFrameAssembler(codec);
    this.decoder = decode ? new VideoDecoder(codec) : null;
    this.opus = decode ? new OpusDecoder(48_000) : null;
    const keep = <T>(list: T[], v: T, max: number): void => {
      list.push(v);
      if (list.length > max) list.shift();
    };
    pc.onTransceiverAdded.subscribe((t) => {
      t.receiver.onRtcp.subscribe((p) => {
        if (p instanceof RtcpSrPacket) keep(this.senderReports[t.kind === 'audio' ? 'audio' : 'video'], { ntpMs: unixMsFromNtp(p.senderInfo.ntpTimestamp), rtp: p.senderInfo.rtpTimestamp }, 50);
      });
    });
    pc.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => {
        if (this.closed) return;
        if (track.kind === 'audio') {
          this.opusPackets++;
          this.opusBytes += rtp.payload.length;
          keep(this.timestamps.audio, rtp.header.timestamp, 500);
          if (this.opus) this.opusSamples += this.opus.decode(rtp.payload).ticks;
          return;
        }
        this.videoBytes += rtp.payload.length;
        const f = this.assembler.push(rtp);
        if (!f) return;
        this.framesReceived++;
        keep(this.timestamps.video, f.rtpTimestamp, 500);
        if (!this.decoder) return;
        for (const pic of this.decoder.decode(f.data)) {
          this.framesDecoded++;
          this.pictures.push({ pic, at: performance.now() });
          if (this.pictures.length > 3) this.pictures.shift();
        }
      });
    });
  }

  /** The latest picture decoded after `since` (performance.now()). */
  latestAfter(since: number): DecodedPicture | null {
    const last = this.pictures.at(-1);
    return last && last.at >= since ? last.pic : null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.decoder?.close();
    this.opus?.close();
  }
}

export interface RoomClientOptions {
  url: string;
  room: string;
  avatar: string;
  name?: string;
  codec?: VideoCodecName;
  selfView?: boolean;
  timeoutMs?: number;
  /** decode what arrives (default true; a bench only counts) */
  decode?: boolean;
}

export class RoomJoinError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface Remote {
  participant: string;
  peer: string;
  pc: RTCPeerConnection;
  rx: MediaReceiver;
}

export class RoomClient {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  participantId = '';
  readonly codec: VideoCodecName;
  own: RTCPeerConnection | null = null;
  ownPeerId = '';
  channel: RTCDataChannel | null = null;
  selfView: MediaReceiver | null = null;
  private mic: MediaStreamTrack | null = null;
  private micSeq = 0;
  readonly remotes = new Map<string, Remote>();
  readonly joined: ParticipantInfo[] = [];
  readonly left: string[] = [];
  readonly errors: { code: ErrorCode; message: string }[] = [];
  /** Server events that failed validation ("event: why"); a well-behaved server sends none. */
  readonly malformedEvents: string[] = [];
  initialParticipants: ParticipantInfo[] = [];
  readonly stats = { drivingBytes: 0, opusBytes: 0, opusPackets: 0 };
  private closed = false;

  private constructor(readonly opts: RoomClientOptions) {
    this.codec = opts.codec ?? 'vp8';
    this.socket = io(opts.url, { transports: ['websocket'], reconnection: false, autoConnect: false });
    const bad = (event: string) => (why: string) => this.malformedEvents.push(`${event}: ${why}`);
    this.socket.on('session-error', validated(parseSessionError, (e) => this.errors.push(e), bad('session-error')));
    this.socket.on('participant-joined', validated(parseParticipantInfo, (p) => this.joined.push(p), bad('participant-joined')));
    this.socket.on('participant-left', validated(parseParticipantLeft, ({ participant }) => {
      this.left.push(participant);
      const r = this.remotes.get(participant);
      this.remotes.delete(participant);
      if (r) void this.closeRemote(r);
    }, bad('participant-left')));
    this.socket.on('room-offer', validated(parseRoomOffer, (o) => void this.onOffer(o), bad('room-offer')));
  }

  /** Connects the socket and joins; resolves when the caller's own peer is connected and its channel open. */
  static async join(opts: RoomClientOptions): Promise<RoomClient> {
    const c = new RoomClient(opts);
    try {
      await c.connectSocket();
      await c.sendJoin();
      await c.until(() => c.channel?.readyState === 'open', opts.timeoutMs ?? 20_000, 'own peer connected');
      return c;
    } catch (err) {
      await c.close();
      throw err;
    }
  }

  async connectSocket(): Promise<void> {
    this.socket.connect();
    await new Promise<void>((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', (e) => reject(e));
    });
  }

  /** Sends room-join; throws RoomJoinError when refused. */
  async sendJoin(): Promise<void> {
    // a rejoin on this connection starts from nothing
    const old = this.own;
    this.own = null;
    this.channel = null;
    await old?.close();
    const payload = { room: this.opts.room, avatar: this.opts.avatar, codec: this.codec, selfView: this.opts.selfView ?? false, name: this.opts.name };
    const reply = parseRoomJoinReply(await this.socket.timeout(this.opts.timeoutMs ?? 20_000).emitWithAck('room-join', payload));
    if (!reply.ok) throw new RoomJoinError(reply.code, `room-join refused (${reply.code}): ${reply.error}`);
    this.participantId = reply.participantId;
    this.initialParticipants = reply.participants;
  }

  private newPc(): RTCPeerConnection {
    return new RTCPeerConnection({ codecs: { video: [codecParameters(this.codec)], audio: [opusParameters()] }, iceAdditionalHostAddresses: ['127.0.0.1'], iceUseIpv6: false });
  }

  private async onOffer(o: RoomOffer): Promise<void> {
    if (this.closed) return;
    const pc = this.newPc();
    if (o.participant === null) {
      this.own = pc;
      this.ownPeerId = o.peer;
      this.channel = pc.createDataChannel(DATA_CHANNEL_LABEL, { negotiated: true, id: DATA_CHANNEL_ID, ordered: false, maxRetransmits: 0 });
      if (this.opts.selfView) this.selfView = new MediaReceiver(pc, this.codec, this.opts.decode ?? true);
    } else {
      this.remotes.set(o.participant, { participant: o.participant, peer: o.peer, pc, rx: new MediaReceiver(pc, this.codec, this.opts.decode ?? true) });
    }
    await pc.setRemoteDescription({ type: 'offer', sdp: o.sdp });
    if (o.participant === null) {
      const t = pc.getTransceivers().find((x) => x.kind === 'audio');
      if (t) {
        this.mic = new MediaStreamTrack({ kind: 'audio' });
        await t.sender.replaceTrack(this.mic);
        t.setDirection('sendonly');
      }
    }
    await pc.setLocalDescription(await pc.createAnswer());
    await waitForGathering(pc, 5000);
    this.socket.emit('room-answer', { peer: o.peer, sdp: pc.localDescription?.sdp ?? '' });
  }

  /** One driving frame on the data channel. */
  sendDriving(buf: Uint8Array): void {
    if (this.channel?.readyState !== 'open') return;
    this.stats.drivingBytes += buf.byteLength;
    this.channel.send(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
  }

  /** One Opus packet from the "microphone" (RTP timestamp at 48 kHz). */
  sendOpus(payload: Buffer, timestamp: number): void {
    if (!this.mic) return;
    this.micSeq = (this.micSeq + 1) & 0xffff;
    this.stats.opusBytes += payload.length;
    this.stats.opusPackets++;
    this.mic.writeRtp(new RtpPacket(new RtpHeader({ payloadType: 111, sequenceNumber: this.micSeq, timestamp: timestamp >>> 0 }), payload));
  }

  until(pred: () => boolean, ms: number, what: string): Promise<void> {
    return until(pred, ms, what);
  }

  /** Waits for the remote participant's peer to exist and deliver decoded frames. */
  async remote(participant: string, ms = 20_000): Promise<Remote> {
    await this.until(() => (this.remotes.get(participant)?.rx.framesReceived ?? 0) > 0 && (this.opts.decode === false || (this.remotes.get(participant)?.rx.framesDecoded ?? 0) > 0), ms, `video from ${participant} at ${this.participantId}`);
    return this.remotes.get(participant) as Remote;
  }

  leave(): void {
    this.socket.emit('room-leave');
  }

  private async closeRemote(r: Remote): Promise<void> {
    await r.pc.close();
    r.rx.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.socket.disconnect();
    const remotes = [...this.remotes.values()];
    this.remotes.clear();
    await Promise.all(remotes.map((r) => this.closeRemote(r)));
    this.mic?.stop();
    await this.own?.close();
    this.selfView?.close();
  }
}
