/**
 * One live session with the server: socket.io signaling + the WebRTC peer that answers the server's
 * offer (video from the server, the negotiated 'driving' data channel both ways). Owns the socket and
 * the peer connection; close() is idempotent and releases both.
 *
 * Sequence: connect → 'join' {avatar, codec} (ack) → server emits 'offer' → setRemoteDescription →
 * createAnswer → wait for ICE gathering (≤ 2 s, so the answer carries the candidates) → 'answer' →
 * later candidates trickle as 'ice' → 'connected' + data channel open = live.
 */
import { io, type Socket } from 'socket.io-client';
import { decodeRenderReport, type RenderReport } from '../../shared/src/render-report.js';
import type { DrivingValues } from '../../shared/src/driving-values.js';
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
  type AvatarSummary,
  type ClientToServerEvents,
  type DriveMode,
  type VoiceStats,
  type ErrorCode,
  type ServerToClientEvents,
  type VideoCodecName,
} from '../../shared/src/signaling.js';
import { connectErrorCode, ServerRefusal } from './replies.js';

export interface SessionOptions {
  avatar: string;
  codec: VideoCodecName;
  /** join token (from the page's ?token=), sent in the socket.io handshake; null when the page has none */
  token?: string | null;
  iceServers: RTCIceServer[];
  /** the remote video arrived */
  onVideo: (stream: MediaStream) => void;
  /** a render report arrived on the data channel */
  onReport: (r: RenderReport) => void;
  /** the session ended by itself (server error, disconnect, ICE failure); not called after close() */
  onEnded: (reason: Error) => void;
  /** how long connecting may take, ms (default 20000) */
  connectTimeoutMs?: number;
  /** what drives the avatar (default camera); microphone and both send `microphone` */
  mode?: DriveMode;
  /** the caller's microphone track (microphone and both modes): sent on the offer's audio transceiver */
  microphone?: MediaStreamTrack | null;
  /** the server's 'voice-stats' (microphone and both modes, about once a second) */
  onVoiceStats?: (s: VoiceStats) => void;
}

export interface SessionCounters {
  reports: number;
  badMessages: number;
  iceSent: number;
}

const ACK_TIMEOUT_MS = 10_000;
const GATHER_WAIT_MS = 2_000;

export class LiveSession {
  readonly #socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  readonly #pc: RTCPeerConnection;
  readonly #channel: RTCDataChannel;
  readonly #opts: SessionOptions;
  readonly #counters: SessionCounters = { reports: 0, badMessages: 0, iceSent: 0 };
  #answered = false;
  #live = false;
  #closed = false;
  #avatar: AvatarSummary | null = null;

  private constructor(opts: SessionOptions) {
    this.#opts = opts;
    this.#socket = io({ autoConnect: false, reconnection: false, auth: opts.token ? { token: opts.token } : {} });
    this.#pc = new RTCPeerConnection({ iceServers: opts.iceServers });
    this.#channel = this.#pc.createDataChannel(DATA_CHANNEL_LABEL, {
      negotiated: true,
      id: DATA_CHANNEL_ID,
      ordered: false,
      maxRetransmits: 0,
    });
    this.#channel.binaryType = 'arraybuffer';
  }

  /** Connects and resolves once video can flow and the data channel is open. Rejects (and closes) on failure. */
  static async open(opts: SessionOptions): Promise<LiveSession> {
    const s = new LiveSession(opts);
    try {
      await s.#connect(opts.connectTimeoutMs ?? 20_000);
      return s;
    } catch (e) {
      s.close();
      throw e;
    }
  }

  get channel(): RTCDataChannel {
    return this.#channel;
  }

  get avatar(): AvatarSummary | null {
    return this.#avatar;
  }

  counters(): SessionCounters {
    return { ...this.#counters };
  }

  getStats(): Promise<RTCStatsReport> {
    return this.#pc.getStats();
  }

  /** Sends the caller's neutral face; resolves when the server accepted it. */
  async calibrate(neutral: DrivingValues): Promise<void> {
    if (this.#closed) throw new Error('session is closed');
    const raw: unknown = await this.#socket.timeout(ACK_TIMEOUT_MS).emitWithAck('calibrate', { neutral: drivingValuesToJson(neutral) });
    const reply = parseAckReply(raw, 'calibrate reply');
    if (!reply.ok) throw new ServerRefusal(reply.code, `the server refused the calibration: ${reply.error}`);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.#socket.connected) this.#socket.emit('leave');
    } catch {
      // the socket is going away anyway
    }
    this.#socket.removeAllListeners();
    this.#socket.disconnect();
    this.#channel.onmessage = null;
    this.#pc.ontrack = null;
    this.#pc.onicecandidate = null;
    this.#pc.onconnectionstatechange = null;
    this.#channel.close();
    this.#pc.close();
  }

  #end(reason: Error): void {
    if (this.#closed) return;
    const wasLive = this.#live;
    this.close();
    if (wasLive) this.#opts.onEnded(reason);
  }

  async #connect(timeoutMs: number): Promise<void> {
    const socket = this.#socket;
    const pc = this.#pc;
    let failConnect: (e: Error) => void = () => {};
    const failed = new Promise<never>((_, reject) => {
      failConnect = reject;
    });
    failed.catch(() => {});
    const fail = (msg: string, code?: ErrorCode): void => {
      const e = code ? new ServerRefusal(code, msg) : new Error(msg);
      failConnect(e);
      this.#end(e);
    };

    pc.ontrack = (ev) => {
      // the relayed voice shares the video's stream (one MediaStream, so the browser syncs them): report it once
      if (ev.track.kind === 'video') this.#opts.onVideo(ev.streams[0] ?? new MediaStream([ev.track]));
    };
    pc.onicecandidate = (ev) => {
      if (!ev.candidate || !this.#answered || this.#closed) return;
      const c = ev.candidate;
      socket.emit('ice', { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex });
      this.#counters.iceSent++;
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') fail('the WebRTC connection failed (no network path between the page and the server)');
      else if (pc.connectionState === 'closed') fail('the WebRTC connection closed');
    };
    this.#channel.onmessage = (ev: MessageEvent<unknown>) => {
      const r = ev.data instanceof ArrayBuffer ? decodeRenderReport(ev.data) : null;
      if (!r) {
        this.#counters.badMessages++;
        return;
      }
      this.#counters.reports++;
      this.#opts.onReport(r);
    };

    socket.on('session-error', (v: unknown) => {
      try {
        const err = parseSessionError(v);
        fail(`the server ended the session: ${err.message}`, err.code);
      } catch (e) {
        fail(`the server ended the session (malformed session-error: ${String(e)})`);
      }
    });
    socket.on('shutdown', (v: unknown) => {
      let msg: string;
      try {
        msg = parseShutdownNotice(v);
      } catch (e) {
        msg = `the server is shutting down (malformed notice: ${String(e)})`;
      }
      fail(msg, 'shutting-down');
    });
    socket.on('voice-stats', (v: unknown) => {
      try {
        this.#opts.onVoiceStats?.(parseVoiceStats(v));
      } catch {
        this.#counters.badMessages++;
      }
    });
    socket.on('disconnect', (reason: string) => fail(`lost the connection to the server (${reason})`));
    socket.on('connect_error', (e: Error) => fail(`cannot reach the server (${e.message})`, connectErrorCode(e) ?? undefined));

    const offer = new Promise<RTCSessionDescriptionInit>((resolve, reject) => {
      socket.once('offer', (v: unknown) => {
        try {
          resolve(parseSessionDescription(v, 'offer'));
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
    offer.catch(() => {});

    const open = new Promise<void>((resolve) => {
      if (this.#channel.readyState === 'open') resolve();
      else this.#channel.addEventListener('open', () => resolve(), { once: true });
    });
    const connected = new Promise<void>((resolve) => {
      const check = (): void => {
        if (pc.connectionState === 'connected') resolve();
      };
      pc.addEventListener('connectionstatechange', check);
      check();
    });

    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    });
    const steps = async (): Promise<void> => {
      socket.connect();
      const mode = this.#opts.mode ?? 'camera';
      const raw: unknown = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck('join', { avatar: this.#opts.avatar, codec: this.#opts.codec, mode });
      const reply = parseJoinReply(raw);
      if (!reply.ok) throw new ServerRefusal(reply.code, `the server refused to start a session: ${reply.error}`);
      this.#avatar = reply.avatar;
      await pc.setRemoteDescription(await offer);
      const mic = this.#opts.microphone ?? null;
      if (mode !== 'camera') {
        // the server offers Opus sendrecv: the microphone goes up on it, the relayed voice comes down
        const audio = pc.getTransceivers().find((t) => t.receiver.track.kind === 'audio');
        if (!audio) throw new Error('the server offered no audio for the microphone');
        if (mic) await audio.sender.replaceTrack(mic);
        audio.direction = mic ? 'sendrecv' : 'recvonly';
      }
      await pc.setLocalDescription(await pc.createAnswer());
      await this.#gathered(GATHER_WAIT_MS);
      const local = pc.localDescription;
      if (!local) throw new Error('no local description after createAnswer');
      socket.emit('answer', { type: 'answer', sdp: local.sdp });
      this.#answered = true;
      await Promise.all([connected, open]);
      this.#live = true;
    };
    try {
      await Promise.race([steps(), failed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits until ICE gathering completes or `maxMs` passes (candidates found later are trickled). */
  #gathered(maxMs: number): Promise<void> {
    const pc = this.#pc;
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      };
      const check = (): void => {
        if (pc.iceGatheringState === 'complete') done();
      };
      const t = setTimeout(done, maxMs);
      pc.addEventListener('icegatheringstatechange', check);
    });
  }
}
