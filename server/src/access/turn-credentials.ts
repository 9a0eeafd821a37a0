/**
 * Short-lived TURN credentials (the "TURN REST API" scheme; coturn `use-auth-secret` + `static-auth-secret`):
 * username = "<expiry unix seconds>:<tag>", credential = base64(HMAC-SHA1(secret, username)). The TURN server
 * checks the HMAC with the same secret and refuses the username after its expiry, so nothing handed to a page
 * stays valid for long and the secret itself never leaves the server.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { IceServerConfig } from '../session/peer.js';

export interface TurnOptions {
  /** Shared with the TURN server (coturn static-auth-secret). */
  secret: string;
  /** turn: / turns: URLs. */
  urls: string[];
  /** Lifetime of each credential, seconds. */
  ttlS: number;
}

function turnCredential(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username).digest('base64');
}

/** A fresh credential for `tag` (default: a random one) valid for ttlS from now. */
export function makeTurnServer(turn: TurnOptions, nowS = Math.floor(Date.now() / 1000), tag = randomBytes(6).toString('hex')): IceServerConfig {
  const username = `${nowS + turn.ttlS}:${tag}`;
  return { urls: turn.urls.length === 1 ? (turn.urls[0] as string) : [...turn.urls], username, credential: turnCredential(turn.secret, username) };
}

/** Entries of a static list that carry no secret (STUN, or TURN without credentials): safe to hand to a page. */
export function publicIceServers(list: readonly IceServerConfig[]): IceServerConfig[] {
  return list.filter((s) => s.username === undefined && s.credential === undefined);
}
