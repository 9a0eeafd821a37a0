/**
 * 'room-egress' over socket.io (shared/src/egress-signaling.ts): a room participant starts, stops and lists the
 * egress of their own stream. Validated; RTMP / WHIP only to URLs under --egress-allow, a recording only with
 * --record; at most MAX_PER_PARTICIPANT outputs per participant; a participant stops only their room's outputs.
 * Refusals are answered with a code and counted (dnp_signaling_rejected_total{event="room-egress"}).
 */
import type { Socket } from 'socket.io';
import { parseRoomEgressRequest, type EgressInfo, type RoomEgressReply } from '../../../shared/src/egress-signaling.js';
import type { ErrorCode } from '../../../shared/src/signaling.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { TapDirectory } from '../stream/tap-directory.js';
import type { EgressManager } from './egress-manager.js';

const MAX_PER_PARTICIPANT = 3;

export interface EgressControlDeps {
  manager: EgressManager;
  taps: TapDirectory;
  /** The socket's room membership, or null. */
  membership: (socket: object) => { room: string; participant: string } | undefined;
  metrics: Metrics;
  log: Logger;
}

export function attachEgressControl(socket: Pick<Socket, 'on' | 'id'>, deps: EgressControlDeps): void {
  const { manager } = deps;
  socket.on('room-egress', (payload: unknown, ack?: unknown) => {
    const reply = typeof ack === 'function' ? (ack as (r: RoomEgressReply) => void) : undefined;
    const refuse = (code: ErrorCode, error: string): void => {
      deps.metrics.signalingRejected.inc({ event: 'room-egress' });
      deps.log.warn({ socket: socket.id, code, error }, 'room-egress refused');
      reply?.({ ok: false, error, code });
    };
    let req;
    try {
      req = parseRoomEgressRequest(payload);
    } catch (err) {
      return refuse('bad-request', err instanceof Error ? err.message : String(err));
    }
    const me = deps.membership(socket);
    if (!me) return refuse('no-session', 'room-egress without a room (room-join first)');
    const list = (): EgressInfo[] => manager.list(me.room).map((e) => ({ id: e.id, kind: e.kind, state: e.state, participant: e.participant, bytes: e.bytes, reconnects: e.reconnects, lastError: e.lastError }));
    if (req.action === 'list') return reply?.({ ok: true, egress: list() });
    if (req.action === 'stop') {
      const own = manager.list(me.room).find((e) => e.id === req.id && e.participant === me.participant);
      if (!own) return refuse('bad-request', `no egress "${req.id}" of yours in this room`);
      void manager.stop(req.id, me.room).then(() => reply?.({ ok: true, egress: list() }));
      return;
    }
    const entry = deps.taps.find(me.room, me.participant);
    if (!entry) return refuse('no-session', 'your stream is not live yet');
    if (manager.list(me.room).filter((e) => e.participant === me.participant && e.state !== 'stopped').length >= MAX_PER_PARTICIPANT) return refuse('forbidden', `at most ${MAX_PER_PARTICIPANT} outputs per participant`);
    if (req.kind !== 'mp4' && (req.url === null || !manager.urlAllowed(req.url))) return refuse('forbidden', 'this server does not allow pushing to that URL (dnp serve --egress-allow)');
    try {
      const e = manager.start(entry, { kind: req.kind, url: req.url ?? undefined });
      deps.log.info({ socket: socket.id, room: me.room, participant: me.participant, egress: e.id }, 'room-egress started');
      reply?.({ ok: true, egress: list() });
    } catch (err) {
      refuse('forbidden', err instanceof Error ? err.message : String(err));
    }
  });
}
