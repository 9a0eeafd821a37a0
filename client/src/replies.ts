/** Validators for what the server sends back over socket.io (acks and 'session-error'). */
import { bool, obj, str } from '../../shared/src/json-check.js';
import type { AckReply, JoinReply } from '../../shared/src/signaling.js';
import { parseAvatarSummary } from './avatars.js';

export function parseAckReply(v: unknown, what: string): AckReply {
  const o = obj(v, what);
  if (bool(o.ok, `${what}.ok`)) return { ok: true };
  return { ok: false, error: str(o.error, `${what}.error`, { max: 2000 }) };
}

export function parseJoinReply(v: unknown): JoinReply {
  const o = obj(v, 'join reply');
  if (!bool(o.ok, 'join reply.ok')) return { ok: false, error: str(o.error, 'join reply.error', { max: 2000 }) };
  return {
    ok: true,
    sessionId: str(o.sessionId, 'join reply.sessionId', { nonEmpty: true, max: 200 }),
    avatar: parseAvatarSummary(o.avatar, 'join reply.avatar'),
  };
}

export function parseSessionError(v: unknown): string {
  return str(obj(v, 'session-error').message, 'session-error.message', { max: 2000 });
}

/** 'shutdown': the server is stopping; the message says why. */
export function parseShutdownNotice(v: unknown): string {
  return str(obj(v, 'shutdown').message, 'shutdown.message', { max: 2000 });
}
