/**
 * `dnp serve` options: command-line flags over environment variables over defaults, each validated
 * once with an error that names the option and the problem. Pure (takes argv and env).
 */
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { arr, obj, optional, str } from '../../../shared/src/json-check.js';
import { VIDEO_CODECS } from '../../../shared/src/signaling.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';
import { RENDER_DEVICES } from '../render/ort-session.js';
import { MIN_SECRET_LENGTH } from '../access/join-token.js';
import { normalizeOrigin } from '../access/origins.js';
import type { TurnOptions } from '../access/turn-credentials.js';
import type { ServerOptions } from '../server.js';
import { LIMIT_DEFAULTS } from '../server-limits.js';
import { ROOM_NAME_RE } from '../../../shared/src/room-signaling.js';
import { ROOM_DEFAULTS } from '../rooms/room-defaults.js';
import type { IceServerConfig } from '../session/peer.js';
import { EGRESS_FLAGS, resolveEgressConfig } from './egress-options.js';

import { DEFAULT_TRACKER_MODEL, PROJECT_ROOT } from '../project-paths.js';

export const DEFAULT_AVATARS_DIR = 'avatars';
export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = '127.0.0.1';

export interface ServeOptions extends ServerOptions {
  logLevel: LogLevel;
}

export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

interface FlagSpec {
  env?: string;
  boolean?: boolean;
}

const FLAGS: Record<string, FlagSpec> = {
  avatars: { env: 'DNP_AVATARS' },
  port: { env: 'PORT' },
  host: { env: 'HOST' },
  device: { env: 'DNP_DEVICE' },
  codec: { env: 'DNP_CODEC' },
  threads: { env: 'DNP_THREADS' },
  'max-batch': { env: 'DNP_MAX_BATCH' },
  'ice-host': { env: 'DNP_ICE_HOSTS' },
  'public-ip': { env: 'DNP_PUBLIC_IP' },
  'ice-servers': { env: 'DNP_ICE_SERVERS' },
  'ice-ports': { env: 'DNP_ICE_PORTS' },
  'tracker-model': { env: 'DNP_TRACKER_MODEL' },
  'audio-model': { env: 'DNP_AUDIO_MODEL' },
  'client-dir': { env: 'DNP_CLIENT_DIR' },
  bitrate: { env: 'DNP_BITRATE' },
  'max-sessions': { env: 'DNP_MAX_SESSIONS' },
  'keepalive-ms': { env: 'DNP_KEEPALIVE_MS' },
  'render-timeout-ms': { env: 'DNP_RENDER_TIMEOUT_MS' },
  'allowed-origins': { env: 'DNP_ALLOWED_ORIGINS' },
  'token-secret': { env: 'DNP_TOKEN_SECRET' },
  'turn-secret': { env: 'DNP_TURN_SECRET' },
  'turn-urls': { env: 'DNP_TURN_URLS' },
  'turn-ttl': { env: 'DNP_TURN_TTL' },
  'metrics-port': { env: 'DNP_METRICS_PORT' },
  'join-rate': { env: 'DNP_JOIN_RATE' },
  'max-sockets-per-address': { env: 'DNP_MAX_SOCKETS_PER_ADDRESS' },
  'join-timeout-ms': { env: 'DNP_JOIN_TIMEOUT_MS' },
  admission: { env: 'DNP_ADMISSION' },
  'admission-headroom': { env: 'DNP_ADMISSION_HEADROOM' },
  'max-driving-hz': { env: 'DNP_MAX_DRIVING_HZ' },
  'keyframe-interval-ms': { env: 'DNP_KEYFRAME_INTERVAL_MS' },
  rooms: { env: 'DNP_ROOMS' },
  'room-size': { env: 'DNP_ROOM_SIZE' },
  'idle-timeout-ms': { env: 'DNP_IDLE_TIMEOUT_MS' },
  'connect-timeout-ms': { env: 'DNP_CONNECT_TIMEOUT_MS' },
  ...EGRESS_FLAGS,
  'log-level': { env: 'LOG_LEVEL' },
};

/** Splits `--name value` / `--name=value` flags. Repeated flags are joined with commas. */
export function parseFlags(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--')) throw new OptionError(`unexpected argument '${a}' (options start with --; see --help)`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const spec = FLAGS[name];
    if (!spec) throw new OptionError(`unknown option --${name} (see --help)`);
    let value: string;
    if (eq > 0) value = a.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new OptionError(`--${name} needs a value`);
      value = next;
      i++;
    }
    const prev = out.get(name);
    out.set(name, prev === undefined ? value : `${prev},${value}`);
  }
  return out;
}

function int(name: string, v: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(v.trim())) throw new OptionError(`--${name}: '${v}' is not a whole number`);
  const n = Number(v);
  if (n < min || n > max) throw new OptionError(`--${name}: ${n} is outside ${min}..${max}`);
  return n;
}

function float(name: string, v: string, min: number, max: number): number {
  if (!/^\d+(?:\.\d+)?$/.test(v.trim())) throw new OptionError(`--${name}: '${v}' is not a number`);
  const n = Number(v);
  if (n < min || n > max) throw new OptionError(`--${name}: ${n} is outside ${min}..${max}`);
  return n;
}

function oneOf<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new OptionError(`--${name}: '${v}' is not one of ${allowed.join(', ')}`);
  return v as T;
}

/** "600k", "1.5M", "800000" → bit/s. */
export function parseBitrate(v: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(v.trim());
  if (!m) throw new OptionError(`--bitrate: '${v}' is not a bitrate (e.g. 600k, 1.5M or 800000)`);
  const mult = m[2] === '' ? 1 : m[2]?.toLowerCase() === 'k' ? 1e3 : 1e6;
  const bps = Math.round(Number(m[1]) * mult);
  if (bps < 50_000 || bps > 20_000_000) throw new OptionError(`--bitrate: ${bps} bit/s is outside 50k..20M`);
  return bps;
}

export function parseIceServers(v: string): IceServerConfig[] {
  let json: unknown;
  try {
    json = JSON.parse(v);
  } catch (err) {
    throw new OptionError(`--ice-servers: not valid JSON (${err instanceof Error ? err.message : String(err)}); expected e.g. [{"urls":"turn:turn.example.org:3478","username":"u","credential":"p"}]`);
  }
  try {
    return arr(json, '--ice-servers').map((e, i) => {
      const p = `--ice-servers[${i}]`;
      const o = obj(e, p);
      const urls = Array.isArray(o.urls) ? arr(o.urls, `${p}.urls`, { min: 1 }).map((u, j) => str(u, `${p}.urls[${j}]`, { nonEmpty: true })) : str(o.urls, `${p}.urls`, { nonEmpty: true });
      for (const u of Array.isArray(urls) ? urls : [urls]) {
        if (!/^(stun|stuns|turn|turns):/.test(u)) throw new OptionError(`${p}.urls: '${u}' must start with stun:, stuns:, turn: or turns:`);
      }
      const s: IceServerConfig = { urls };
      const username = optional(o.username, (x) => str(x, `${p}.username`));
      const credential = optional(o.credential, (x) => str(x, `${p}.credential`));
      if (username !== undefined) s.username = username;
      if (credential !== undefined) s.credential = credential;
      return s;
    });
  } catch (err) {
    if (err instanceof OptionError) throw err;
    throw new OptionError(err instanceof Error ? err.message : String(err));
  }
}

function ipList(name: string, v: string): string[] {
  const list = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const a of list) if (isIP(a) === 0) throw new OptionError(`--${name}: '${a}' is not an IP address`);
  return list;
}

/** 127.0.0.0/8, ::1 and "localhost": only this machine can reach the server. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

function originList(v: string): string[] {
  const list = v.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
  if (list.length === 0) throw new OptionError('--allowed-origins: no origin given');
  return list.map((o) => {
    const n = normalizeOrigin(o);
    if (n === null) throw new OptionError(`--allowed-origins: '${o}' is not an origin like https://avatar.example.org or http://localhost:8080`);
    return n;
  });
}

/** --rooms a,b,c: the call rooms admitted (names as in /?room=NAME). */
function roomList(v: string): string[] {
  const names = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new OptionError('--rooms: give at least one room name');
  for (const n of names) if (!ROOM_NAME_RE.test(n)) throw new OptionError(`--rooms: "${n}" is not a room name (1-64 of A-Z a-z 0-9 _ . ~ -)`);
  return [...new Set(names)];
}

function secret(name: string, v: string | undefined): string | null {
  if (v === undefined) return null;
  if (v.length < MIN_SECRET_LENGTH) throw new OptionError(`--${name}: the secret must be at least ${MIN_SECRET_LENGTH} characters (e.g. openssl rand -hex 32)`);
  return v;
}

function turnOptions(secretValue: string | undefined, urls: string | undefined, ttl: string | undefined): TurnOptions | null {
  if (secretValue === undefined && urls === undefined) return null;
  if (secretValue === undefined || urls === undefined) throw new OptionError('--turn-secret and --turn-urls go together (the TURN server\'s static-auth-secret and its turn:/turns: URLs)');
  const list = urls.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
  if (list.length === 0) throw new OptionError('--turn-urls: no URL given');
  for (const u of list) if (!/^turns?:[^\s]+$/.test(u)) throw new OptionError(`--turn-urls: '${u}' must start with turn: or turns:`);
  return { secret: secret('turn-secret', secretValue) as string, urls: list, ttlS: int('turn-ttl', ttl ?? '3600', 60, 86_400) };
}

/** Resolves all options from argv + env. Relative paths are taken from `cwd`. */
export function resolveServeOptions(argv: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): ServeOptions {
  const flags = parseFlags(argv);
  const get = (name: string): string | undefined => {
    const f = flags.get(name);
    if (f !== undefined) return f;
    const e = FLAGS[name]?.env;
    const ev = e ? env[e] : undefined;
    return ev === undefined || ev === '' ? undefined : ev;
  };
  const path = (p: string): string => (p.startsWith('/') ? p : `${cwd.replace(/\/$/, '')}/${p}`);

  const host = get('host') ?? DEFAULT_HOST;
  if (host !== 'localhost' && isIP(host) === 0) throw new OptionError(`--host: '${host}' is not an IP address (or "localhost")`);
  const tokenSecret = secret('token-secret', get('token-secret'));
  if (!isLoopbackHost(host) && tokenSecret === null) {
    throw new OptionError(`--host ${host} is reachable from other machines: set --token-secret / DNP_TOKEN_SECRET (at least ${MIN_SECRET_LENGTH} characters) so that only callers with a token from 'dnp token' can join`);
  }
  const metricsPortRaw = get('metrics-port');
  const portRaw = get('ice-ports');
  let portRange: [number, number] | null = null;
  if (portRaw !== undefined) {
    const m = /^(\d+)-(\d+)$/.exec(portRaw.trim());
    if (!m) throw new OptionError(`--ice-ports: '${portRaw}' is not a range like 40000-40100`);
    const lo = int('ice-ports', m[1] as string, 1024, 65535);
    const hi = int('ice-ports', m[2] as string, 1024, 65535);
    if (hi <= lo) throw new OptionError('--ice-ports: the upper port must be above the lower one');
    portRange = [lo, hi];
  }
  const publicIp = get('public-ip') ?? null;
  if (publicIp !== null && isIP(publicIp) !== 4) throw new OptionError(`--public-ip: '${publicIp}' is not an IPv4 address`);
  const iceHosts = get('ice-host');
  const tracker = get('tracker-model') ?? (existsSync(DEFAULT_TRACKER_MODEL) ? DEFAULT_TRACKER_MODEL : undefined);

  return {
    host,
    port: int('port', get('port') ?? String(DEFAULT_PORT), 0, 65535),
    avatarsDir: path(get('avatars') ?? join(PROJECT_ROOT, DEFAULT_AVATARS_DIR)),
    device: oneOf('device', get('device') ?? 'cpu', RENDER_DEVICES),
    defaultCodec: oneOf('codec', get('codec') ?? 'vp8', VIDEO_CODECS),
    threads: int('threads', get('threads') ?? '1', 0, 64),
    maxBatch: int('max-batch', get('max-batch') ?? '8', 1, 64),
    ice: {
      additionalHostAddresses: iceHosts === undefined ? ['127.0.0.1'] : ipList('ice-host', iceHosts),
      publicIp,
      iceServers: parseIceServers(get('ice-servers') ?? '[]'),
      portRange,
    },
    clientDir: path(get('client-dir') ?? join(PROJECT_ROOT, 'client', 'dist')),
    trackerModelPath: tracker === undefined ? null : path(tracker),
    audioModelDir: get('audio-model') === undefined ? undefined : get('audio-model') === 'off' ? null : path(get('audio-model') as string),
    keepaliveMs: int('keepalive-ms', get('keepalive-ms') ?? '250', 40, 5000),
    connectTimeoutMs: int('connect-timeout-ms', get('connect-timeout-ms') ?? '20000', 1000, 300_000),
    joinsPerMinute: int('join-rate', get('join-rate') ?? String(LIMIT_DEFAULTS.joinsPerMinute), 1, 100_000),
    maxSocketsPerAddress: int('max-sockets-per-address', get('max-sockets-per-address') ?? String(LIMIT_DEFAULTS.maxSocketsPerAddress), 1, 100_000),
    joinTimeoutMs: int('join-timeout-ms', get('join-timeout-ms') ?? String(LIMIT_DEFAULTS.joinTimeoutMs), 0, 3_600_000),
    admission: oneOf('admission', get('admission') ?? (LIMIT_DEFAULTS.admission ? 'on' : 'off'), ['on', 'off'] as const) === 'on',
    admissionHeadroom: float('admission-headroom', get('admission-headroom') ?? String(LIMIT_DEFAULTS.admissionHeadroom), 1, 10),
    maxDrivingHz: int('max-driving-hz', get('max-driving-hz') ?? String(LIMIT_DEFAULTS.maxDrivingHz), 1, 1000),
    keyframeMinIntervalMs: int('keyframe-interval-ms', get('keyframe-interval-ms') ?? String(LIMIT_DEFAULTS.keyframeMinIntervalMs), 0, 60_000),
    rooms: get('rooms') === undefined ? null : roomList(get('rooms') as string),
    roomSize: int('room-size', get('room-size') ?? String(ROOM_DEFAULTS.maxParticipants), 2, 16),
    idleTimeoutMs: int('idle-timeout-ms', get('idle-timeout-ms') ?? String(LIMIT_DEFAULTS.idleTimeoutMs), 0, 86_400_000),
    bitrate: get('bitrate') === undefined ? 0 : parseBitrate(get('bitrate') as string),
    maxSessions: int('max-sessions', get('max-sessions') ?? '8', 1, 1000),
    allowNoAvatars: false,
    renderTimeoutMs: int('render-timeout-ms', get('render-timeout-ms') ?? '10000', 100, 600_000),
    allowedOrigins: get('allowed-origins') === undefined ? null : originList(get('allowed-origins') as string),
    tokenSecret,
    turn: turnOptions(get('turn-secret'), get('turn-urls'), get('turn-ttl')),
    metricsPort: metricsPortRaw === undefined ? null : int('metrics-port', metricsPortRaw, 0, 65535),
    maxWhepViewers: int('max-whep-viewers', get('max-whep-viewers') ?? '100', 0, 10_000),
    egress: resolveEgressConfig(
      get,
      path,
      (v) => {
        try {
          return parseBitrate(v);
        } catch (err) {
          throw new OptionError(String(err instanceof Error ? err.message : err).replace('--bitrate', '--egress-bitrate'));
        }
      },
      (m) => {
        throw new OptionError(m);
      },
    ),
    logLevel: oneOf('log-level', get('log-level') ?? 'info', LOG_LEVELS),
  };
}
