/**
 * Join tokens: `base64url(JSON payload) "." base64url(HMAC-SHA256(secret, first part))`, payload
 * `{ v: 1, avatar: "<id>" | "*", role: "caller", exp: <unix seconds> }`. Made by `dnp token`, checked by the
 * server at the socket.io handshake (auth.token) and again against the avatar of each join.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const TOKEN_VERSION = 1;
const TOKEN_ROLES = ['caller'] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];
/** Shortest accepted secret (characters). */
export const MIN_SECRET_LENGTH = 32;
const MAX_TOKEN_LENGTH = 1024;

export interface JoinTokenClaims {
  /** Avatar id the token admits to, or "*" for any. */
  avatar: string;
  role: TokenRole;
  /** Expiry, unix seconds. */
  exp: number;
}

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

function mac(secret: string, body: string): Buffer {
  return createHmac('sha256', secret).update(body).digest();
}

export function signJoinToken(claims: JoinTokenClaims, secret: string): string {
  if (secret.length < MIN_SECRET_LENGTH) throw new TokenError(`the token secret must be at least ${MIN_SECRET_LENGTH} characters`);
  const body = Buffer.from(JSON.stringify({ v: TOKEN_VERSION, avatar: claims.avatar, role: claims.role, exp: claims.exp })).toString('base64url');
  return `${body}.${mac(secret, body).toString('base64url')}`;
}

/** Checks the signature, then the payload and expiry. Throws TokenError saying what is wrong. */
export function verifyJoinToken(token: unknown, secret: string, nowS = Math.floor(Date.now() / 1000)): JoinTokenClaims {
  if (typeof token !== 'string' || token.length === 0) throw new TokenError('a join token is required');
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('token too long');
  const dot = token.indexOf('.');
  if (dot <= 0 || dot !== token.lastIndexOf('.')) throw new TokenError('malformed token');
  const body = token.slice(0, dot);
  const sig = Buffer.from(token.slice(dot + 1), 'base64url');
  const want = mac(secret, body);
  if (sig.length !== want.length || !timingSafeEqual(sig, want)) throw new TokenError('bad token signature');
  let p: unknown;
  try {
    p = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    throw new TokenError('malformed token payload');
  }
  if (typeof p !== 'object' || p === null) throw new TokenError('malformed token payload');
  const o = p as Record<string, unknown>;
  if (o.v !== TOKEN_VERSION) throw new TokenError('unsupported token version');
  if (typeof o.avatar !== 'string' || o.avatar.length === 0 || o.avatar.length > 200) throw new TokenError('malformed token scope');
  if (!(TOKEN_ROLES as readonly unknown[]).includes(o.role)) throw new TokenError('token role not allowed');
  if (typeof o.exp !== 'number' || !Number.isInteger(o.exp)) throw new TokenError('malformed token expiry');
  if (o.exp <= nowS) throw new TokenError('token expired');
  return { avatar: o.avatar, role: o.role as TokenRole, exp: o.exp };
}

/** Whether the claims admit a caller to `avatar`. */
export function tokenAllows(claims: JoinTokenClaims, avatar: string): boolean {
  return claims.avatar === '*' || claims.avatar === avatar;
}
