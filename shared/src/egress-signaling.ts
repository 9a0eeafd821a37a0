/**
 * 'room-egress' (client → server, with an ack): a room participant starts, stops or lists the egress of their own
 * stream. Validated with parseRoomEgressRequest; the server allows RTMP / WHIP only to URLs under its
 * --egress-allow prefixes and a recording only when it has --record.
 *
 *   { action: 'start', kind: 'rtmp' | 'whip' | 'mp4', url?: string }   url for rtmp / whip
 *   { action: 'stop', id: string }
 *   { action: 'list' }
 * Reply: { ok: true, egress: EgressInfo[] } (the room's outputs after the action) | { ok: false, error, code }.
 */
import { arr, bool, num, obj, oneOf, str } from './json-check.js';
import { parseRefusal, type ErrorCode } from './signaling.js';

const EGRESS_KINDS = ['rtmp', 'whip', 'mp4'] as const;
export type EgressKindName = (typeof EGRESS_KINDS)[number];

export type RoomEgressRequest = { action: 'start'; kind: EgressKindName; url: string | null } | { action: 'stop'; id: string } | { action: 'list' };

export interface EgressInfo {
  id: string;
  kind: EgressKindName;
  state: string;
  participant: string;
  bytes: number;
  reconnects: number;
  lastError: string | null;
}

export type RoomEgressReply = { ok: true; egress: EgressInfo[] } | { ok: false; error: string; code: ErrorCode };

export function parseRoomEgressRequest(v: unknown): RoomEgressRequest {
  const o = obj(v, 'room-egress');
  const action = oneOf(o.action, 'room-egress.action', ['start', 'stop', 'list'] as const);
  if (action === 'list') return { action };
  if (action === 'stop') return { action, id: str(o.id, 'room-egress.id', { nonEmpty: true, max: 200 }) };
  const kind = oneOf(o.kind, 'room-egress.kind', EGRESS_KINDS);
  if (kind === 'mp4') return { action, kind, url: null };
  const url = str(o.url, 'room-egress.url', { nonEmpty: true, max: 2048 });
  if (!/^(rtmps?|https?):\/\/\S+$/.test(url)) throw new Error('room-egress.url must be an rtmp(s):// or http(s):// URL');
  return { action, kind, url };
}

/** The 'room-egress' ack, validated by the callers. */
export function parseRoomEgressReply(v: unknown): RoomEgressReply {
  const o = obj(v, 'room-egress reply');
  if (!bool(o.ok, 'room-egress reply.ok')) return parseRefusal(o, 'room-egress reply');
  return {
    ok: true,
    egress: arr(o.egress, 'room-egress reply.egress').map((e, i) => {
      const p = `room-egress reply.egress[${i}]`;
      const x = obj(e, p);
      return {
        id: str(x.id, `${p}.id`, { nonEmpty: true, max: 200 }),
        kind: oneOf(x.kind, `${p}.kind`, EGRESS_KINDS),
        state: str(x.state, `${p}.state`, { max: 100 }),
        participant: str(x.participant, `${p}.participant`, { max: 200 }),
        bytes: num(x.bytes, `${p}.bytes`, { min: 0 }),
        reconnects: num(x.reconnects, `${p}.reconnects`, { int: true, min: 0 }),
        lastError: x.lastError === null ? null : str(x.lastError, `${p}.lastError`, { max: 2000 }),
      };
    }),
  };
}
