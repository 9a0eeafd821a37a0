/**
 * Signaling: socket.io events of shared/src/signaling.ts, each payload validated before use. A
 * malformed message is answered (ack) or logged, counted in dnp_signaling_rejected_total{event}, and
 * never trusted; the socket and any session keep going. One session per socket at a time.
 */
import type { Server as HttpServer } from 'node:http';
import { Server as IoServer, type Socket } from 'socket.io';
import {
  parseCalibrateRequest,
  parseIceCandidate,
  parseJoinRequest,
  parseSessionDescription,
  type AckReply,
  type ClientToServerEvents,
  type ErrorCode,
  type JoinReply,
  type SessionError,
  type ServerToClientEvents,
  type ShutdownNotice,
  type VideoCodecName,
} from '../../shared/src/signaling.js';
import type { AccessPolicy } from './access/access-policy.js';
import type { JoinTokenClaims } from './access/join-token.js';
import { TokenBuckets } from './access/token-bucket.js';
import { summaryOf, type AvatarRegistry } from './avatars/registry.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import { LIMIT_DEFAULTS } from './server-limits.js';
import type { Session, SessionEndReason } from './session/session.js';
import { JoinRefused, type Sessions } from './session/sessions.js';

/** Largest socket.io message accepted (an SDP is at most 64 KiB by the protocol); a larger one drops the socket. */
const MAX_SIGNALING_BYTES = 80 * 1024;

/** Per-socket state kept by socket.io (socket.data). */
interface SocketData {
  /** The join token's claims; null when tokens are not required. */
  claims: JoinTokenClaims | null;
}
type DnpIo = IoServer<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
type DnpSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/** An ack callback as it arrives: whatever the client passed, called only after a typeof check. */
type Ack<R> = (reply: R) => void;
function ackOf<R>(v: unknown): Ack<R> | undefined {
  return typeof v === 'function' ? (v as Ack<R>) : undefined;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The code a caller gets when its session ends this way; null = no message (it asked for it, or is gone). */
function sessionErrorCode(reason: SessionEndReason): ErrorCode | null {
  switch (reason) {
    case 'peer-failed':
      return 'peer-failed';
    case 'connect-timeout':
      return 'connect-timeout';
    case 'idle':
      return 'idle';
    case 'error':
      return 'render-failed';
    default:
      return null; // leave, disconnect, rejoin, peer-closed, server-close ('shutdown' tells the caller)
  }
}

const SESSION_END_TEXT: Record<SessionEndReason, string> = {
  leave: 'left',
  disconnect: 'disconnected',
  rejoin: 'replaced by a new join',
  'peer-failed': 'the WebRTC connection failed',
  'peer-closed': 'the WebRTC connection closed',
  'connect-timeout': 'the WebRTC connection did not come up in time',
  idle: 'no driving frames for too long',
  'server-close': 'the server is shutting down',
  error: 'the session failed',
};

export interface SignalingLimits {
  /** Joins per minute per client address (token bucket; the burst is the same number). */
  joinsPerMinute: number;
  /** Open signaling sockets per client address (joined or not); more are refused at the handshake (`too-many-sockets`). */
  maxSocketsPerAddress: number;
  /** A socket without a session this long (since it connected or its last session ended) is disconnected (ms; 0 = never). */
  joinTimeoutMs: number;
}

export class Signaling {
  readonly io: DnpIo;
  private closed = false;
  private shuttingDown = false;
  private readonly joinBuckets: TokenBuckets;
  /** Open sockets per client address (reserved at the handshake, released when the connection closes). */
  private readonly socketsByAddress = new Map<string, number>();
  private readonly joinTimeoutMs: number;
  /** A socket that holds something else than a session (a room membership): the join timeout leaves it alone. */
  socketHeld: (socket: object) => boolean = () => false;

  constructor(
    http: HttpServer,
    private readonly avatars: AvatarRegistry,
    private readonly sessions: Sessions,
    private readonly access: AccessPolicy,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly defaultCodec: VideoCodecName = 'vp8',
    limits: SignalingLimits = { joinsPerMinute: LIMIT_DEFAULTS.joinsPerMinute, maxSocketsPerAddress: LIMIT_DEFAULTS.maxSocketsPerAddress, joinTimeoutMs: LIMIT_DEFAULTS.joinTimeoutMs },
  ) {
    this.joinTimeoutMs = limits.joinTimeoutMs;
    this.joinBuckets = new TokenBuckets(limits.joinsPerMinute, limits.joinsPerMinute / 60);
    this.io = new IoServer<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>(http, {
      maxHttpBufferSize: MAX_SIGNALING_BYTES,
      serveClient: false,
      transports: ['websocket', 'polling'],
      // Cross-site WebSocket hijacking: a page of another site must not open signaling in the caller's browser.
      allowRequest: (req, cb) => {
        const origin = req.headers.origin;
        if (access.origins.allows(origin)) {
          cb(null, true);
          return;
        }
        metrics.accessRefused.inc({ reason: 'origin' });
        log.warn({ origin, address: req.socket.remoteAddress }, 'signaling from a foreign origin refused');
        cb('forbidden origin', false);
      },
    });
    // Join tokens are checked at the handshake: a socket without a valid one never gets to send anything.
    this.io.use((socket, next) => {
      const auth: unknown = socket.handshake.auth;
      const token = typeof auth === 'object' && auth !== null ? (auth as Record<string, unknown>).token : undefined;
      try {
        socket.data.claims = access.checkToken(token);
        next();
      } catch (err) {
        metrics.accessRefused.inc({ reason: 'token' });
        log.warn({ socket: socket.id, address: socket.handshake.address, error: errorText(err) }, 'signaling without a valid token refused');
        next(Object.assign(new Error(`forbidden: ${errorText(err)}`), { data: { code: 'forbidden' satisfies ErrorCode } }));
      }
    });
    // Sockets per address, counted from the handshake (a burst of handshakes cannot all slip in before any connects)
    // until the underlying connection closes, whichever way it ends.
    this.io.use((socket, next) => {
      const address = socket.handshake.address;
      const open = this.socketsByAddress.get(address) ?? 0;
      if (open >= limits.maxSocketsPerAddress) {
        metrics.socketsRefused.inc();
        log.warn({ address, open }, 'signaling connection refused: too many open from this address');
        next(Object.assign(new Error(`too many connections from ${address} (${open} open)`), { data: { code: 'too-many-sockets' satisfies ErrorCode } }));
        return;
      }
      this.socketsByAddress.set(address, open + 1);
      metrics.signalingSockets.inc();
      let released = false;
      socket.conn.once('close', () => {
        if (released) return;
        released = true;
        metrics.signalingSockets.dec();
        const n = (this.socketsByAddress.get(address) ?? 1) - 1;
        if (n <= 0) this.socketsByAddress.delete(address);
        else this.socketsByAddress.set(address, n);
      });
      next();
    });
    this.io.on('connection', (socket) => this.attach(socket));
  }

  private reject(event: string, socket: DnpSocket, code: ErrorCode, error: string, ack?: Ack<Extract<AckReply, { ok: false }>>): void {
    this.metrics.signalingRejected.inc({ event });
    this.log.warn({ socket: socket.id, event, code, error }, 'signaling message rejected');
    ack?.({ ok: false, error, code } satisfies AckReply);
  }

  private attach(socket: DnpSocket): void {
    let session: Session | null = null;
    const log = this.log.child({ socket: socket.id });
    log.debug({ address: socket.handshake.address }, 'socket connected');

    // A socket must hold a session: one that connects (or whose session ends) and does not join within
    // joinTimeoutMs is told why and disconnected, so idle sockets cannot pile up.
    let joinTimer: NodeJS.Timeout | null = null;
    const disarmJoinTimer = (): void => {
      if (joinTimer) clearTimeout(joinTimer);
      joinTimer = null;
    };
    const armJoinTimer = (): void => {
      if (this.joinTimeoutMs <= 0 || joinTimer || !socket.connected) return;
      joinTimer = setTimeout(() => {
        joinTimer = null;
        if (session || !socket.connected || this.socketHeld(socket)) return;
        this.metrics.joinTimeouts.inc();
        log.info({ address: socket.handshake.address, joinTimeoutMs: this.joinTimeoutMs }, 'socket without a session disconnected');
        socket.emit('session-error', { message: `no session for ${Math.round(this.joinTimeoutMs / 1000)} s: disconnected`, code: 'join-timeout' } satisfies SessionError);
        socket.disconnect(true);
      }, this.joinTimeoutMs);
    };
    armJoinTimer();

    const endSession = (reason: 'leave' | 'disconnect' | 'rejoin'): void => {
      const s = session;
      session = null;
      if (s) void s.close(reason);
      if (reason === 'leave') armJoinTimer();
    };

    let settingUp = false;
    socket.on('join', (payload: unknown, ack?: unknown) => {
      const reply = ackOf<JoinReply>(ack);
      if (!this.joinBuckets.take(socket.handshake.address)) {
        this.metrics.joinsRateLimited.inc();
        this.reject('join', socket, 'rate-limited', `too many joins from ${socket.handshake.address}: wait a few seconds`, reply);
        return;
      }
      let req;
      try {
        req = parseJoinRequest(payload);
        if ((payload as { codec?: unknown }).codec === undefined) req.codec = this.defaultCodec;
      } catch (err) {
        this.reject('join', socket, 'bad-request', errorText(err), reply);
        return;
      }
      if (this.shuttingDown) {
        this.reject('join', socket, 'shutting-down', 'server is shutting down', reply);
        return;
      }
      if (settingUp) {
        this.reject('join', socket, 'busy', 'the previous join on this connection is still being set up', reply);
        return;
      }
      const claims = socket.data.claims ?? null;
      if (!this.access.allowsAvatar(claims, req.avatar)) {
        this.metrics.accessRefused.inc({ reason: 'scope' });
        this.reject('join', socket, 'forbidden', `forbidden: the token does not admit avatar "${req.avatar}"`, reply);
        return;
      }
      const avatar = this.avatars.get(req.avatar);
      if (!avatar) {
        this.reject('join', socket, 'unknown-avatar', `unknown avatar "${req.avatar}" (GET /avatars lists them)`, reply);
        return;
      }
      if (avatar.manifest.driving !== 'expression') {
        this.reject('join', socket, 'unsupported-avatar', `avatar "${req.avatar}" is driven by ${avatar.manifest.driving}, which this server does not stream yet`, reply);
        return;
      }
      endSession('rejoin');
      let s: Session;
      try {
        s = this.sessions.create(avatar, req.codec, (reason, error) => {
          if (session === s) {
            session = null;
            armJoinTimer();
          }
          const code = sessionErrorCode(reason);
          if (code && socket.connected) socket.emit('session-error', { message: error ?? SESSION_END_TEXT[reason], code } satisfies SessionError);
        }, req.mode);
      } catch (err) {
        this.reject('join', socket, err instanceof JoinRefused ? err.code : 'internal', errorText(err), reply);
        return;
      }
      session = s;
      disarmJoinTimer();
      settingUp = true;
      s.onVoiceStats = (v) => {
        if (socket.connected) socket.emit('voice-stats', v);
      };
      log.info({ session: s.id, avatar: avatar.id, codec: req.codec, mode: req.mode }, 'session created');
      reply?.({ ok: true, sessionId: s.id, avatar: summaryOf(avatar) } satisfies JoinReply);
      s.offer().then(
        (sdp) => {
          settingUp = false;
          if (!s.isClosed) socket.emit('offer', { type: 'offer', sdp });
        },
        (err: unknown) => {
          settingUp = false;
          s.failOffer(new Error(`cannot create the offer: ${errorText(err)}`));
        },
      );
    });

    socket.on('answer', (payload: unknown) => {
      let desc;
      try {
        desc = parseSessionDescription(payload, 'answer');
      } catch (err) {
        this.reject('answer', socket, 'bad-request', errorText(err));
        return;
      }
      const s = session;
      if (!s) {
        this.reject('answer', socket, 'no-session', 'answer without a session (join first)');
        return;
      }
      s.answer(desc.sdp).catch((err: unknown) => this.reject('answer', socket, 'bad-request', `answer not applied: ${errorText(err)}`));
    });

    socket.on('ice', (payload: unknown) => {
      let c;
      try {
        c = parseIceCandidate(payload);
      } catch (err) {
        this.reject('ice', socket, 'bad-request', errorText(err));
        return;
      }
      if (!session) {
        this.reject('ice', socket, 'no-session', 'ICE candidate without a session');
        return;
      }
      void session.addCandidate(c);
    });

    socket.on('calibrate', (payload: unknown, ack?: unknown) => {
      const reply = ackOf<AckReply>(ack);
      let req;
      try {
        req = parseCalibrateRequest(payload);
      } catch (err) {
        this.reject('calibrate', socket, 'bad-request', errorText(err), reply);
        return;
      }
      if (!session) {
        this.reject('calibrate', socket, 'no-session', 'calibrate without a session (join first)', reply);
        return;
      }
      session.calibrate(req.neutral);
      reply?.({ ok: true } satisfies AckReply);
    });

    socket.on('leave', () => endSession('leave'));
    socket.on('disconnect', (reason) => {
      log.debug({ reason }, 'socket disconnected');
      disarmJoinTimer();
      endSession('disconnect');
    });
  }

  /** Refuses further joins and tells every connected socket that the server is going away (`shutdown`). */
  notifyShutdown(message: string): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.io.emit('shutdown', { message } satisfies ShutdownNotice);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.shuttingDown = true;
    this.io.disconnectSockets(true);
    await new Promise<void>((resolve) => {
      // io.close() also closes the HTTP server it is attached to; the Server closes that itself.
      this.io.engine.close();
      resolve();
    });
  }
}
