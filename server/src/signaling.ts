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
  type JoinReply,
  type ShutdownNotice,
  type VideoCodecName,
} from '../../shared/src/signaling.js';
import type { AccessPolicy } from './access/access-policy.js';
import type { JoinTokenClaims } from './access/join-token.js';
import { summaryOf, type AvatarRegistry } from './avatars/registry.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { Session } from './session/session.js';
import type { Sessions } from './session/sessions.js';

/** Largest socket.io message accepted (an SDP is at most 64 KiB by the protocol). */
export const MAX_SIGNALING_BYTES = 128 * 1024;

type Ack = (reply: unknown) => void;

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class Signaling {
  readonly io: IoServer;
  private closed = false;
  private shuttingDown = false;

  constructor(
    http: HttpServer,
    private readonly avatars: AvatarRegistry,
    private readonly sessions: Sessions,
    private readonly access: AccessPolicy,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly defaultCodec: VideoCodecName = 'vp8',
  ) {
    this.io = new IoServer(http, {
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
        next(Object.assign(new Error(`forbidden: ${errorText(err)}`), { data: { code: 'forbidden' } }));
      }
    });
    this.io.on('connection', (socket) => this.attach(socket));
  }

  private reject(event: string, socket: Socket, error: string, ack?: Ack): void {
    this.metrics.signalingRejected.inc({ event });
    this.log.warn({ socket: socket.id, event, error }, 'signaling message rejected');
    ack?.({ ok: false, error } satisfies AckReply);
  }

  private attach(socket: Socket): void {
    let session: Session | null = null;
    const log = this.log.child({ socket: socket.id });
    log.debug({ address: socket.handshake.address }, 'socket connected');

    const endSession = (reason: 'leave' | 'disconnect' | 'rejoin'): void => {
      const s = session;
      session = null;
      if (s) void s.close(reason);
    };

    socket.on('join', (payload: unknown, ack?: unknown) => {
      const reply: Ack | undefined = typeof ack === 'function' ? (ack as Ack) : undefined;
      let req;
      try {
        req = parseJoinRequest(payload);
        if ((payload as { codec?: unknown }).codec === undefined) req.codec = this.defaultCodec;
      } catch (err) {
        this.reject('join', socket, errorText(err), reply);
        return;
      }
      if (this.shuttingDown) {
        this.reject('join', socket, 'server is shutting down', reply);
        return;
      }
      const claims = (socket.data as { claims?: JoinTokenClaims | null }).claims ?? null;
      if (!this.access.allowsAvatar(claims, req.avatar)) {
        this.metrics.accessRefused.inc({ reason: 'scope' });
        this.reject('join', socket, `forbidden: the token does not admit avatar "${req.avatar}"`, reply);
        return;
      }
      const avatar = this.avatars.get(req.avatar);
      if (!avatar) {
        this.reject('join', socket, `unknown avatar "${req.avatar}" (GET /avatars lists them)`, reply);
        return;
      }
      if (avatar.manifest.driving !== 'expression') {
        this.reject('join', socket, `avatar "${req.avatar}" is driven by ${avatar.manifest.driving}, which this server does not stream yet`, reply);
        return;
      }
      endSession('rejoin');
      let s: Session;
      try {
        s = this.sessions.create(avatar, req.codec, (reason, error) => {
          if (session === s) session = null;
          if (error && socket.connected) socket.emit('session-error', { message: error });
          else if ((reason === 'peer-failed' || reason === 'connect-timeout') && socket.connected) {
            socket.emit('session-error', { message: reason === 'peer-failed' ? 'the WebRTC connection failed' : 'the WebRTC connection did not come up in time' });
          }
        });
      } catch (err) {
        this.reject('join', socket, errorText(err), reply);
        return;
      }
      session = s;
      log.info({ session: s.id, avatar: avatar.id, codec: req.codec }, 'session created');
      reply?.({ ok: true, sessionId: s.id, avatar: summaryOf(avatar) } satisfies JoinReply);
      s.offer().then(
        (sdp) => {
          if (!s.isClosed) socket.emit('offer', { type: 'offer', sdp });
        },
        (err: unknown) => void s.close('error', `cannot create the offer: ${errorText(err)}`),
      );
    });

    socket.on('answer', (payload: unknown) => {
      let desc;
      try {
        desc = parseSessionDescription(payload, 'answer');
      } catch (err) {
        this.reject('answer', socket, errorText(err));
        return;
      }
      const s = session;
      if (!s) {
        this.reject('answer', socket, 'answer without a session (join first)');
        return;
      }
      s.answer(desc.sdp).catch((err: unknown) => this.reject('answer', socket, `answer not applied: ${errorText(err)}`));
    });

    socket.on('ice', (payload: unknown) => {
      let c;
      try {
        c = parseIceCandidate(payload);
      } catch (err) {
        this.reject('ice', socket, errorText(err));
        return;
      }
      if (!session) {
        this.reject('ice', socket, 'ICE candidate without a session');
        return;
      }
      void session.addCandidate(c);
    });

    socket.on('calibrate', (payload: unknown, ack?: unknown) => {
      const reply: Ack | undefined = typeof ack === 'function' ? (ack as Ack) : undefined;
      let req;
      try {
        req = parseCalibrateRequest(payload);
      } catch (err) {
        this.reject('calibrate', socket, errorText(err), reply);
        return;
      }
      if (!session) {
        this.reject('calibrate', socket, 'calibrate without a session (join first)', reply);
        return;
      }
      session.calibrate(req.neutral);
      reply?.({ ok: true } satisfies AckReply);
    });

    socket.on('leave', () => endSession('leave'));
    socket.on('disconnect', (reason) => {
      log.debug({ reason }, 'socket disconnected');
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
