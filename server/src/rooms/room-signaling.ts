/**
 * Room events on a signaling socket (shared/src/room-signaling.ts): each payload validated, each refusal answered
 * with a code and counted (dnp_signaling_rejected_total{event}, dnp_room_joins_refused_total{code}). One room
 * membership per socket; leaving, disconnecting or the caller's connection failing ends it.
 */
import type { Socket } from 'socket.io';
import { parseRoomAnswer, parseRoomIce, parseRoomJoinRequest, type RoomJoinReply } from '../../../shared/src/room-signaling.js';
import { parseCalibrateRequest, type AckReply, type ClientToServerEvents, type ErrorCode, type ServerToClientEvents, type SessionError } from '../../../shared/src/signaling.js';
import type { AccessPolicy } from '../access/access-policy.js';
import type { JoinTokenClaims } from '../access/join-token.js';
import type { AvatarRegistry } from '../avatars/registry.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { JoinRefused } from '../session/sessions.js';
import type { Participant } from './participant.js';
import type { Rooms } from './rooms.js';

type RoomSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, { claims?: JoinTokenClaims | null }>;

export interface RoomSignalingDeps {
  rooms: Rooms;
  avatars: AvatarRegistry;
  access: AccessPolicy;
  metrics: Metrics;
  log: Logger;
  /** false while the server is stopping */
  accepting: () => boolean;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Sockets that hold a room membership now (signaling's join timeout leaves them alone). */
export const socketsInRooms = new WeakSet<object>();
/** Which room and participant a socket is (egress control messages act on the sender's own stream). */
export const roomMemberships = new WeakMap<object, { room: string; participant: string }>();

export function attachRoomSignaling(socket: RoomSocket, deps: RoomSignalingDeps): void {
  const { rooms, metrics } = deps;
  const log = deps.log.child({ socket: socket.id });
  let member: Participant | null = null;
  let joining = false;

  const reject = (event: string, code: ErrorCode, error: string, ack?: (r: { ok: false; error: string; code: ErrorCode }) => void): void => {
    metrics.signalingRejected.inc({ event });
    if (event === 'room-join') metrics.roomJoinsRefused.inc({ code });
    log.warn({ event, code, error }, 'room message rejected');
    ack?.({ ok: false, error, code });
  };
  const ackOf = <R>(v: unknown): ((r: R) => void) | undefined => (typeof v === 'function' ? (v as (r: R) => void) : undefined);

  const leave = (): void => {
    const p = member;
    member = null;
    socketsInRooms.delete(socket);
    roomMemberships.delete(socket);
    if (p) void rooms.leave(p);
  };

  socket.on('room-join', (payload: unknown, ack?: unknown) => {
    const reply = ackOf<RoomJoinReply>(ack);
    if (!rooms.joinBuckets.take(socket.handshake.address)) {
      metrics.joinsRateLimited.inc();
      return reject('room-join', 'rate-limited', `too many joins from ${socket.handshake.address}: wait a few seconds`, reply);
    }
    let req;
    try {
      req = parseRoomJoinRequest(payload);
    } catch (err) {
      reject('room-join', 'bad-request', errorText(err), reply);
      return;
    }
    if (!deps.accepting()) return reject('room-join', 'shutting-down', 'server is shutting down', reply);
    if (member || joining) return reject('room-join', 'already-joined', `already in room "${member ? member.info.id : '…'}" on this connection: leave first`, reply);
    if (!deps.access.allowsAvatar(socket.data.claims ?? null, req.avatar)) {
      metrics.accessRefused.inc({ reason: 'scope' });
      return reject('room-join', 'forbidden', `forbidden: the token does not admit avatar "${req.avatar}"`, reply);
    }
    const avatar = deps.avatars.get(req.avatar);
    if (!avatar) return reject('room-join', 'unknown-avatar', `unknown avatar "${req.avatar}" (GET /avatars lists them)`, reply);
    if (avatar.manifest.driving !== 'expression') return reject('room-join', 'unsupported-avatar', `avatar "${req.avatar}" is driven by ${avatar.manifest.driving}, which rooms do not stream`, reply);
    let p: Participant;
    try {
      p = rooms.join(
        { room: req.room, name: req.name, avatar, codec: req.codec, selfView: req.selfView },
        {
          offer: (o) => socket.emit('room-offer', o),
          joined: (info) => socket.emit('participant-joined', info),
          left: (l) => socket.emit('participant-left', l),
        },
        (end) => {
          if (member === p) {
            member = null;
            socketsInRooms.delete(socket);
            roomMemberships.delete(socket);
          }
          if (socket.connected) socket.emit('session-error', { message: end.message, code: end.code } satisfies SessionError);
        },
      );
    } catch (err) {
      return reject('room-join', err instanceof JoinRefused ? err.code : 'internal', errorText(err), reply);
    }
    member = p;
    socketsInRooms.add(socket);
    roomMemberships.set(socket, { room: req.room, participant: p.id });
    joining = true;
    const others = rooms.participants(req.room).filter((i) => i.id !== p.id);
    reply?.({ ok: true, room: req.room, participantId: p.id, participants: others, maxParticipants: rooms.maxParticipants } satisfies RoomJoinReply);
    rooms.connect(p).then(
      () => (joining = false),
      (err: unknown) => {
        joining = false;
        log.warn({ err: errorText(err) }, 'room connect failed');
        if (member === p) leave();
        if (socket.connected) socket.emit('session-error', { message: `cannot set up the call: ${errorText(err)}`, code: 'internal' } satisfies SessionError);
      },
    );
  });

  socket.on('room-answer', (payload: unknown) => {
    let a;
    try {
      a = parseRoomAnswer(payload);
    } catch (err) {
      return reject('room-answer', 'bad-request', errorText(err));
    }
    const p = member;
    if (!p) return reject('room-answer', 'no-session', 'room-answer without a room (room-join first)');
    p.answer(a.peer, a.sdp).then(
      (found) => {
        if (!found) reject('room-answer', 'no-session', `no peer "${a.peer}" (it has closed)`);
      },
      (err: unknown) => reject('room-answer', 'bad-request', `answer not applied: ${errorText(err)}`),
    );
  });

  socket.on('room-ice', (payload: unknown) => {
    let c;
    try {
      c = parseRoomIce(payload);
    } catch (err) {
      return reject('room-ice', 'bad-request', errorText(err));
    }
    const p = member;
    if (!p) return reject('room-ice', 'no-session', 'room-ice without a room');
    void p.addCandidate(c.peer, c.candidate);
  });

  socket.on('room-calibrate', (payload: unknown, ack?: unknown) => {
    const reply = ackOf<AckReply>(ack);
    let req;
    try {
      req = parseCalibrateRequest(payload);
    } catch (err) {
      return reject('room-calibrate', 'bad-request', errorText(err), reply);
    }
    if (!member) return reject('room-calibrate', 'no-session', 'room-calibrate without a room', reply);
    member.calibrate(req.neutral);
    reply?.({ ok: true } satisfies AckReply);
  });

  socket.on('room-leave', () => leave());
  socket.on('disconnect', () => leave());
}
