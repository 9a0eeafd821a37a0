/**
 * Who may use a server: the Origin allow-list (socket.io handshakes, POSTs), join tokens (missing, expired,
 * forged, tampered, wrong avatar scope: refused; valid: joins), short-lived TURN credentials (verified with the
 * HMAC, never the static secret), /metrics on a separate loopback port, the options that guard all this, and
 * `dnp token`.
 */
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configUrl, tokenFromSearch } from '../client/src/page-token.js';
import { signJoinToken, verifyJoinToken } from '../server/src/access/join-token.js';
import { defaultAllowedOrigins, normalizeOrigin } from '../server/src/access/origins.js';
import { UsageError } from '../server/src/cli/args.js';
import { resolveServeOptions } from '../server/src/cli/serve-options.js';
import { parseJoinReply, type ClientToServerEvents, type JoinReply, type ServerToClientEvents } from '../shared/src/signaling.js';
import { metricValue, startTestServer, type TestServer } from './support/server.js';
import { makeUntrainedAvatar, REPO_ROOT } from './support/test-avatar.js';

const SECRET = 'test-token-secret-0123456789abcdef0123';
const TURN_SECRET = 'test-turn-secret-0123456789abcdef01234';
const now = (): number => Math.floor(Date.now() / 1000);

type Client = Socket<ServerToClientEvents, ClientToServerEvents>;

interface Opened {
  socket: Client;
  error: string | null;
}

/** Opens a socket.io connection; resolves with the socket once connected, or the connect error message. */
function openSocket(url: string, opts: { origin?: string; token?: string; transport?: 'websocket' | 'polling' } = {}): Promise<Opened> {
  const socket: Client = io(url, {
    transports: [opts.transport ?? 'websocket'],
    reconnection: false,
    forceNew: true,
    extraHeaders: opts.origin ? { origin: opts.origin } : {},
    auth: opts.token !== undefined ? { token: opts.token } : {},
  });
  return new Promise((resolve) => {
    socket.once('connect', () => resolve({ socket, error: null }));
    socket.once('connect_error', (e: Error) => {
      socket.close();
      resolve({ socket, error: e.message });
    });
  });
}

async function joinAvatar(socket: Client, avatar: string): Promise<JoinReply> {
  return parseJoinReply(await socket.timeout(10_000).emitWithAck('join', { avatar }));
}

let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'dnp-access-'));
  mkdirSync(join(tmp, 'empty'));
  await makeUntrainedAvatar(join(tmp, 'avatars', 'a'), { size: 128 });
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('Origin allow-list', () => {
  let srv: TestServer;
  let custom: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(join(tmp, 'empty'));
    custom = await startTestServer(join(tmp, 'empty'), { allowedOrigins: ['https://avatar.example.org'] });
  });
  afterAll(async () => {
    await srv?.close();
    await custom?.close();
  });

  it('refuses signaling from a foreign origin (websocket and polling), accepts the server\'s own and none', async () => {
    const port = new URL(srv.url).port;
    for (const transport of ['websocket', 'polling'] as const) {
      const evil = await openSocket(srv.url, { origin: 'http://evil.example', transport });
      expect(evil.error, transport).not.toBeNull();
      const otherPort = await openSocket(srv.url, { origin: `http://127.0.0.1:${Number(port) + 1}`, transport });
      expect(otherPort.error, transport).not.toBeNull();
    }
    for (const origin of [`http://localhost:${port}`, `http://127.0.0.1:${port}`, `http://[::1]:${port}`, undefined]) {
      const ok = await openSocket(srv.url, origin === undefined ? {} : { origin });
      expect(ok.error, String(origin)).toBeNull();
      ok.socket.close();
    }
    expect(await metricValue(srv.url, 'dnp_access_refused_total{reason="origin"}')).toBe(4);
  });

  it('refuses a POST from a foreign origin before routing', async () => {
    const before = await metricValue(srv.url, 'dnp_access_refused_total{reason="origin"}');
    expect((await fetch(`${srv.url}/config.json`, { method: 'POST', headers: { origin: 'http://evil.example' } })).status).toBe(403);
    expect((await fetch(`${srv.url}/config.json`, { method: 'POST', headers: { origin: srv.url } })).status).toBe(405);
    expect(await metricValue(srv.url, 'dnp_access_refused_total{reason="origin"}')).toBe(before + 1);
  });

  it('default origins: loopback names on the port, plus the listen address (every interface address for 0.0.0.0)', () => {
    const ifs = {
      lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4' as const, mac: '00:00:00:00:00:00', internal: true, cidr: null }],
      eth0: [
        { address: '192.168.1.5', netmask: '255.255.255.0', family: 'IPv4' as const, mac: '02:00:00:00:00:01', internal: false, cidr: null },
        { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6' as const, mac: '02:00:00:00:00:01', internal: false, cidr: null, scopeid: 2 },
        { address: '2001:db8::5', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6' as const, mac: '02:00:00:00:00:01', internal: false, cidr: null, scopeid: 0 },
      ],
    };
    const loop = ['http://localhost:8080', 'http://127.0.0.1:8080', 'http://[::1]:8080'];
    expect(defaultAllowedOrigins('127.0.0.1', 8080, ifs)).toEqual(loop);
    expect(defaultAllowedOrigins('10.0.0.7', 8080, ifs)).toEqual([...loop, 'http://10.0.0.7:8080']);
    expect(defaultAllowedOrigins('0.0.0.0', 8080, ifs)).toEqual([...loop, 'http://192.168.1.5:8080']);
    expect(defaultAllowedOrigins('::', 8080, ifs)).toEqual([...loop, 'http://192.168.1.5:8080', 'http://[2001:db8::5]:8080']);
    expect(normalizeOrigin('HTTPS://Avatar.Example.org:443')).toBe('https://avatar.example.org');
    expect(normalizeOrigin('http://x.example/path')).toBeNull();
    expect(normalizeOrigin('file:///etc/passwd')).toBeNull();
    expect(normalizeOrigin('null')).toBeNull();
  });

  it('--allowed-origins replaces the default list', async () => {
    const port = new URL(custom.url).port;
    expect((await openSocket(custom.url, { origin: `http://localhost:${port}` })).error).not.toBeNull();
    const ok = await openSocket(custom.url, { origin: 'https://avatar.example.org' });
    expect(ok.error).toBeNull();
    ok.socket.close();
  });
});

describe('join tokens', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(join(tmp, 'avatars'), { tokenSecret: SECRET, connectTimeoutMs: 2000 });
  }, 60_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('refuses a socket with a missing, expired, forged or tampered token', async () => {
    const valid = signJoinToken({ avatar: '*', role: 'caller', exp: now() + 60 }, SECRET);
    const [body, sig] = valid.split('.') as [string, string];
    const tampered = `${Buffer.from(JSON.stringify({ v: 1, avatar: '*', role: 'caller', exp: now() + 999_999 })).toString('base64url')}.${sig}`;
    const cases: Array<[string, string | undefined, RegExp]> = [
      ['missing', undefined, /forbidden: a join token is required/],
      ['empty', '', /forbidden: a join token is required/],
      ['expired', signJoinToken({ avatar: '*', role: 'caller', exp: now() - 1 }, SECRET), /forbidden: token expired/],
      ['forged', signJoinToken({ avatar: '*', role: 'caller', exp: now() + 60 }, 'another-secret-0123456789abcdef0123456'), /forbidden: bad token signature/],
      ['tampered', tampered, /forbidden: bad token signature/],
      ['no signature', body, /forbidden: malformed token/],
      ['garbage', 'x.y.z', /forbidden: malformed token/],
    ];
    for (const [what, token, msg] of cases) {
      const r = await openSocket(srv.url, token === undefined ? {} : { token });
      expect(r.error, what).toMatch(msg);
    }
    expect(await metricValue(srv.url, 'dnp_access_refused_total{reason="token"}')).toBe(cases.length);
    expect(await metricValue(srv.url, 'dnp_sessions_total')).toBe(0);
  });

  it('a valid token joins, within its avatar scope only', async () => {
    const any = await openSocket(srv.url, { token: signJoinToken({ avatar: '*', role: 'caller', exp: now() + 60 }, SECRET) });
    expect(any.error).toBeNull();
    expect(await joinAvatar(any.socket, 'a')).toMatchObject({ ok: true });
    any.socket.close();
    const scoped = await openSocket(srv.url, { token: signJoinToken({ avatar: 'a', role: 'caller', exp: now() + 60 }, SECRET) });
    expect(scoped.error).toBeNull();
    expect(await joinAvatar(scoped.socket, 'a')).toMatchObject({ ok: true });
    scoped.socket.close();
    const other = await openSocket(srv.url, { token: signJoinToken({ avatar: 'b', role: 'caller', exp: now() + 60 }, SECRET) });
    expect(other.error).toBeNull();
    const r = await joinAvatar(other.socket, 'a');
    expect(r).toMatchObject({ ok: false, code: 'forbidden', error: expect.stringMatching(/forbidden: the token does not admit avatar "a"/) });
    other.socket.close();
    expect(await metricValue(srv.url, 'dnp_access_refused_total{reason="scope"}')).toBe(1);
  });

  it('verifyJoinToken rejects a wrong role and a wrong version', () => {
    const sign = (payload: object): string => {
      const b = Buffer.from(JSON.stringify(payload)).toString('base64url');
      return `${b}.${createHmac('sha256', SECRET).update(b).digest('base64url')}`;
    };
    expect(verifyJoinToken(sign({ v: 1, avatar: 'a', role: 'caller', exp: now() + 5 }), SECRET).avatar).toBe('a');
    expect(() => verifyJoinToken(sign({ v: 1, avatar: 'a', role: 'admin', exp: now() + 5 }), SECRET)).toThrow(/role/);
    expect(() => verifyJoinToken(sign({ v: 2, avatar: 'a', role: 'caller', exp: now() + 5 }), SECRET)).toThrow(/version/);
    expect(() => verifyJoinToken(sign({ v: 1, avatar: 'a', role: 'caller', exp: 'later' }), SECRET)).toThrow(/expiry/);
  });
});

describe('TURN credentials and the metrics port', () => {
  let open: TestServer;
  let guarded: TestServer;
  const turn = { secret: TURN_SECRET, urls: ['turn:turn.example.org:3478', 'turns:turn.example.org:5349'], ttlS: 600 };
  beforeAll(async () => {
    const ice = { additionalHostAddresses: ['127.0.0.1'], publicIp: null, iceServers: [{ urls: 'turn:static.example.org', username: 'u', credential: 'static-secret' }], portRange: null };
    open = await startTestServer(join(tmp, 'empty'), { turn, ice, metricsPort: 0 });
    guarded = await startTestServer(join(tmp, 'empty'), { turn, ice, tokenSecret: SECRET });
  });
  afterAll(async () => {
    await open?.close();
    await guarded?.close();
  });

  type Cfg = { iceServers: Array<{ urls: string | string[]; username?: string; credential?: string }> };
  const config = async (url: string): Promise<Cfg> => (await (await fetch(url)).json()) as Cfg;

  it('hands out short-lived credentials that verify with HMAC-SHA1 of the shared secret, never the static one', async () => {
    const a = await config(`${open.url}/config.json`);
    const b = await config(`${open.url}/config.json`);
    expect(JSON.stringify(a)).not.toContain('static-secret');
    expect(a.iceServers).toHaveLength(1);
    const s = a.iceServers[0] as { urls: string[]; username: string; credential: string };
    expect(s.urls).toEqual(turn.urls);
    const m = /^(\d+):([0-9a-f]+)$/.exec(s.username);
    expect(m).not.toBeNull();
    const exp = Number(m?.[1]);
    expect(exp).toBeGreaterThanOrEqual(now() + 600 - 5);
    expect(exp).toBeLessThanOrEqual(now() + 600 + 1);
    expect(s.credential).toBe(createHmac('sha1', TURN_SECRET).update(s.username).digest('base64'));
    expect(s.credential).not.toBe(createHmac('sha1', 'another secret').update(s.username).digest('base64'));
    expect(b.iceServers[0]?.username).not.toBe(s.username); // a fresh one per request
  });

  it('with tokens in use, TURN credentials only for a valid ?token=', async () => {
    expect((await config(`${guarded.url}/config.json`)).iceServers).toEqual([]);
    const expired = signJoinToken({ avatar: '*', role: 'caller', exp: now() - 1 }, SECRET);
    expect((await config(`${guarded.url}/config.json?token=${expired}`)).iceServers).toEqual([]);
    const token = signJoinToken({ avatar: '*', role: 'caller', exp: now() + 60 }, SECRET);
    const cfg = await config(`${guarded.url}/config.json?token=${token}`);
    expect(cfg.iceServers).toHaveLength(1);
    expect(cfg.iceServers[0]?.username).toMatch(/^\d+:[0-9a-f]+$/);
  });

  it('serves /metrics on its own loopback port when asked, and not on the main one', async () => {
    expect(open.server.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(open.server.metricsUrl).not.toContain(`:${new URL(open.url).port}/`);
    expect((await fetch(`${open.url}/metrics`)).status).toBe(404);
    const r = await fetch(open.server.metricsUrl);
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('dnp_sessions ');
    expect((await fetch(open.server.metricsUrl.replace('/metrics', '/healthz'))).status).toBe(404);
    expect((await fetch(`${guarded.url}/metrics`)).status).toBe(200); // default: on the main port
  });
});

describe('options and `dnp token`', () => {
  const resolve = (argv: string[], env: Record<string, string> = {}): unknown => resolveServeOptions(argv, env, REPO_ROOT);

  it('refuses a non-loopback host without a token secret, short secrets, half a TURN set-up, bad origins', () => {
    expect(() => resolve(['--host', '0.0.0.0'])).toThrow(/--token-secret/);
    expect(() => resolve(['--host', '192.168.1.5'])).toThrow(UsageError);
    expect(() => resolve(['--host', '0.0.0.0', '--token-secret', 'short'])).toThrow(/at least 32/);
    expect(resolve(['--host', '0.0.0.0', '--token-secret', SECRET])).toMatchObject({ host: '0.0.0.0', tokenSecret: SECRET });
    expect(resolve([], { HOST: '0.0.0.0', DNP_TOKEN_SECRET: SECRET })).toMatchObject({ tokenSecret: SECRET });
    expect(resolve(['--host', '127.0.0.2'])).toMatchObject({ tokenSecret: null });
    expect(() => resolve(['--turn-secret', TURN_SECRET])).toThrow(/go together/);
    expect(() => resolve(['--turn-secret', TURN_SECRET, '--turn-urls', 'stun:x.example'])).toThrow(/turn: or turns:/);
    expect(resolve(['--turn-secret', TURN_SECRET, '--turn-urls', 'turn:t.example:3478'])).toMatchObject({ turn: { secret: TURN_SECRET, urls: ['turn:t.example:3478'], ttlS: 3600 } });
    expect(() => resolve(['--allowed-origins', 'evil.example'])).toThrow(/--allowed-origins/);
    expect(resolve(['--allowed-origins', 'https://Avatar.example.org/, http://localhost:8080'])).toMatchObject({ allowedOrigins: ['https://avatar.example.org', 'http://localhost:8080'] });
    expect(resolve([], { DNP_METRICS_PORT: '9464' })).toMatchObject({ metricsPort: 9464 });
  });

  it('dnp token prints a token the server accepts and a link that carries it', () => {
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'dnp.js'), 'token', '--avatar', 'a', '--ttl', '10m', '--host', '192.168.1.5', '--port', '9000'], {
      cwd: REPO_ROOT,
      env: { ...process.env, DNP_TOKEN_SECRET: SECRET },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const [token, link] = r.stdout.trim().split('\n') as [string, string];
    expect(link).toBe(`http://192.168.1.5:9000/?token=${token}`);
    const claims = verifyJoinToken(token, SECRET);
    expect(claims).toMatchObject({ avatar: 'a', role: 'caller' });
    expect(claims.exp - now()).toBeGreaterThan(590);
    expect(claims.exp - now()).toBeLessThanOrEqual(600);
    const bad = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'dnp.js'), 'token'], { cwd: REPO_ROOT, env: { ...process.env, DNP_TOKEN_SECRET: '' }, encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/no secret/);
  });
});

describe('the page reads ?token=', () => {
  it('takes a token-shaped value from the query and passes it to /config.json', () => {
    const t = signJoinToken({ avatar: 'a', role: 'caller', exp: now() + 60 }, SECRET);
    expect(tokenFromSearch(`?token=${t}`)).toBe(t);
    expect(tokenFromSearch(`?x=1&token=${t}&y=2`)).toBe(t);
    expect(tokenFromSearch('')).toBeNull();
    expect(tokenFromSearch('?token=')).toBeNull();
    expect(tokenFromSearch('?token=<script>')).toBeNull();
    expect(configUrl(null)).toBe('/config.json');
    expect(configUrl(t)).toBe(`/config.json?token=${t}`);
  });
});
