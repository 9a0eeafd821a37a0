/** Validators for what the server sends back over socket.io (acks, 'session-error', 'shutdown'). */
import { bool, obj, str } from '../../shared/src/json-check.js';
import { parseErrorCode, type AckReply, type ErrorCode, type JoinReply, type SessionError } from '../../shared/src/signaling.js';
import { parseAvatarSummary } from './avatars.js';

export function parseAckReply(v: unknown, what: string): AckReply {
  const o = obj(v, what);
  if (bool(o.ok, `${what}.ok`)) return { ok: true };
  return { ok: false, error: str(o.error, `${what}.error`, { max: 2000 }), code: parseErrorCode(o.code) };
}

export function parseJoinReply(v: unknown): JoinReply {
  const o = obj(v, 'join reply');
  if (!bool(o.ok, 'join reply.ok')) return { ok: false, error: str(o.error, 'join reply.error', { max: 2000 }), code: parseErrorCode(o.code) };
  return {
    ok: true,
    sessionId: str(o.sessionId, 'join reply.sessionId', { nonEmpty: true, max: 200 }),
    avatar: parseAvatarSummary(o.avatar, 'join reply.avatar'),
  };
}

export function parseSessionError(v: unknown): SessionError {
  const o = obj(v, 'session-error');
  return { message: str(o.message, 'session-error.message', { max: 2000 }), code: parseErrorCode(o.code) };
}

/** 'shutdown': the server is stopping; the message says why. */
export function parseShutdownNotice(v: unknown): string {
  return str(obj(v, 'shutdown').message, 'shutdown.message', { max: 2000 });
}

/** The code in a socket.io connect_error from the server's handshake middleware (err.data.code), if any. */
export function connectErrorCode(e: unknown): SessionError['code'] | null {
  if (typeof e !== 'object' || e === null) return null;
  const data = (e as { data?: unknown }).data;
  if (typeof data !== 'object' || data === null) return null;
  const code = (data as { code?: unknown }).code;
  return code === undefined ? null : parseErrorCode(code);
}

/** The server refused or ended the session, with its code (what the page acts on) and its text (the detail). */
export class ServerRefusal extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ServerRefusal';
  }
}
