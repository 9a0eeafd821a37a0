/**
 * AccessPolicy: who may use a server. The Origin allow-list (socket.io handshakes, state-changing HTTP
 * requests), join tokens (required whenever a token secret is set; the CLI refuses a non-loopback host without
 * one), and the ICE servers handed out: static entries that carry a secret stay on the server, TURN credentials
 * for pages are derived per request and short-lived.
 */
import type { IceServerConfig } from '../session/peer.js';
import { tokenAllows, verifyJoinToken, type JoinTokenClaims } from './join-token.js';
import { OriginPolicy } from './origins.js';
import { makeTurnServer, publicIceServers, type TurnOptions } from './turn-credentials.js';

export interface AccessOptions {
  /** Allowed page origins. */
  origins: readonly string[];
  /** HMAC secret for join tokens; null = no tokens (only for a loopback server). */
  tokenSecret: string | null;
  turn: TurnOptions | null;
  /** --ice-servers as given (may hold static TURN credentials: used by the server's own peer only). */
  staticIceServers: readonly IceServerConfig[];
}

export class AccessPolicy {
  readonly origins: OriginPolicy;
  private readonly tokenSecret: string | null;
  private readonly turn: TurnOptions | null;
  private readonly staticIce: readonly IceServerConfig[];

  constructor(opts: AccessOptions) {
    this.origins = new OriginPolicy(opts.origins);
    this.tokenSecret = opts.tokenSecret;
    this.turn = opts.turn;
    this.staticIce = opts.staticIceServers;
  }

  get tokensRequired(): boolean {
    return this.tokenSecret !== null;
  }

  /** The token's claims, or null when tokens are not required. Throws TokenError when it is missing or bad. */
  checkToken(token: unknown): JoinTokenClaims | null {
    if (this.tokenSecret === null) return null;
    return verifyJoinToken(token, this.tokenSecret);
  }

  /** Whether a socket with these claims (null = no tokens in use) may join `avatar`. */
  allowsAvatar(claims: JoinTokenClaims | null, avatar: string): boolean {
    return claims === null ? !this.tokensRequired : tokenAllows(claims, avatar);
  }

  /**
   * ICE servers for a page (/config.json): the static entries without secrets, plus a fresh short-lived TURN
   * credential — only for a valid token when tokens are required.
   */
  iceServersForPage(token: string | undefined): IceServerConfig[] {
    const out = publicIceServers(this.staticIce);
    if (!this.turn) return out;
    if (this.tokensRequired) {
      try {
        this.checkToken(token);
      } catch {
        return out;
      }
    }
    out.push(makeTurnServer(this.turn));
    return out;
  }

  /** ICE servers for the server's own peer of a new session (static list, plus a fresh TURN credential). */
  iceServersForSession(): IceServerConfig[] {
    const out = [...this.staticIce];
    if (this.turn) out.push(makeTurnServer(this.turn));
    return out;
  }
}
