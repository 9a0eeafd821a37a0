/** The page's side of server refusals: a handshake's connect_error code, and the error the page throws on a refusal (the reply validators are in shared/src/signaling.ts). */
import { parseErrorCode, type ErrorCode, type SessionError } from '../../shared/src/signaling.js';

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
