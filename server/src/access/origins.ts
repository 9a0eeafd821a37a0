/**
 * Origin allow-list for socket.io handshakes and state-changing HTTP requests (cross-site WebSocket hijacking,
 * CSRF). Browsers always send `Origin` on WebSocket handshakes and POSTs; a request without one is not from a
 * page of another site (curl, the Node bench client) and is let through — the join token guards those.
 */
import { isIP } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

/** "http://Example.org:80/" → "http://example.org"; null when it is not an http(s) origin. */
export function normalizeOrigin(v: string): string | null {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  if (u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) return null;
  return u.origin;
}

function hostPart(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/**
 * The server's own origins: localhost, 127.0.0.1 and [::1] on its port, plus the address it listens on (for
 * 0.0.0.0 / ::, every address of this machine's interfaces). A page behind a reverse proxy (https://…) needs
 * --allowed-origins.
 */
export function defaultAllowedOrigins(listenHost: string, port: number, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string[] {
  const hosts = ['localhost', '127.0.0.1', '::1'];
  const add = (h: string): void => {
    if (!hosts.includes(h)) hosts.push(h);
  };
  if (listenHost === '0.0.0.0' || listenHost === '::') {
    for (const list of Object.values(interfaces)) {
      for (const i of list ?? []) if ((i.family === 'IPv4' || listenHost === '::') && !i.address.startsWith('fe80:')) add(i.address);
    }
  } else add(listenHost);
  return hosts.map((h) => `http://${hostPart(h)}:${port}`);
}

export class OriginPolicy {
  private readonly allowed: Set<string>;

  constructor(origins: readonly string[]) {
    this.allowed = new Set(origins.map((o) => normalizeOrigin(o) ?? o));
  }

  /** `origin` is the request's Origin header (undefined when absent). */
  allows(origin: string | undefined): boolean {
    if (origin === undefined) return true;
    const n = normalizeOrigin(origin);
    return n !== null && this.allowed.has(n);
  }

  list(): string[] {
    return [...this.allowed];
  }
}
