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
import { DEFAULT_VP8_CPU_USED } from '../media/vp8-speed.js';
import type { IceServerConfig } from '../session/peer.js';
import { envOptions, hostAddress, int, parseCommandLine, usageError, UsageError } from './args.js';
import { EGRESS_FLAGS, resolveEgressConfig } from './egress-options.js';

import { DEFAULT_TRACKER_MODEL, PROJECT_ROOT } from '../project-paths.js';

export const DEFAULT_AVATARS_DIR = 'avatars';
export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = '127.0.0.1';

export interface ServeOptions extends ServerOptions {
  logLevel: LogLevel;
}

const FLAGS = {
  ...envOptions({
    avatars: 'DNP_AVATARS',
    port: 'PORT',
    host: 'HOST',
    device: 'DNP_DEVICE',
    codec: 'DNP_CODEC',
    threads: 'DNP_THREADS',
    'max-batch': 'DNP_MAX_BATCH',
    'encode-workers': 'DNP_ENCODE_WORKERS',
    'render-workers': 'DNP_RENDER_WORKERS',
    'ice-host': 'DNP_ICE_HOSTS',
    'public-ip': 'DNP_PUBLIC_IP',
    'ice-servers': 'DNP_ICE_SERVERS',
    'ice-ports': 'DNP_ICE_PORTS',
    'tracker-model': 'DNP_TRACKER_MODEL',
    'audio-model': 'DNP_AUDIO_MODEL',
    'client-dir': 'DNP_CLIENT_DIR',
    bitrate: 'DNP_BITRATE',
    'vp8-cpu-used': 'DNP_VP8_CPU_USED',
    'max-sessions': 'DNP_MAX_SESSIONS',
    'keepalive-ms': 'DNP_KEEPALIVE_MS',
    'render-timeout-ms': 'DNP_RENDER_TIMEOUT_MS',
    'allowed-origins': 'DNP_ALLOWED_ORIGINS',
    'token-secret': 'DNP_TOKEN_SECRET',
    'turn-secret': 'DNP_TURN_SECRET',
    'turn-urls': 'DNP_TURN_URLS',
    'turn-ttl': 'DNP_TURN_TTL',
    'metrics-port': 'DNP_METRICS_PORT',
    'join-rate': 'DNP_JOIN_RATE',
    'max-sockets-per-address': 'DNP_MAX_SOCKETS_PER_ADDRESS',
    'join-timeout-ms': 'DNP_JOIN_TIMEOUT_MS',
    admission: 'DNP_ADMISSION',
    'admission-headroom': 'DNP_ADMISSION_HEADROOM',
    'max-driving-hz': 'DNP_MAX_DRIVING_HZ',
    'max-fps': 'DNP_MAX_FPS',
    'keyframe-interval-ms': 'DNP_KEYFRAME_INTERVAL_MS',
    rooms: 'DNP_ROOMS',
    'room-size': 'DNP_ROOM_SIZE',
    'idle-timeout-ms': 'DNP_IDLE_TIMEOUT_MS',
    'connect-timeout-ms': 'DNP_CONNECT_TIMEOUT_MS',
    'log-level': 'LOG_LEVEL',
  }),
  ...EGRESS_FLAGS,
};

/** "600k", "1.5M", "800000" → bit/s. */
export function parseBitrate(v: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(v.trim());
  if (!m) throw new UsageError(`--bitrate: '${v}' is not a bitrate (e.g. 600k, 1.5M or 800000)`);
  const mult = m[2] === '' ? 1 : m[2]?.toLowerCase() === 'k' ? 1e3 : 1e6;
  const bps = Math.round(Number(m[1]) * mult);
  if (bps < 50_000 || bps > 20_000_000) throw new UsageError(`--bitrate: ${bps} bit/s is outside 50k..20M`);
  return bps;
}

export function parseIceServers(v: string): IceServerConfig[] {
  let json: unknown;
  try {
    json = JSON.parse(v);
  } catch (err) {
    throw new UsageError(`--ice-servers: not valid JSON (${err instanceof Error ? err.message : String(err)}); expected e.g. [{"urls":"turn:turn.example.org:3478","username":"u","credential":"p"}]`);
  }
  try {
    return arr(json, '--ice-servers').map((e, i) => {
      const p = `--ice-servers[${i}]`;
      const o = obj(e, p);
      const urls = Array.isArray(o.urls) ? arr(o.urls, `${p}.urls`, { min: 1 }).map((u, j) => str(u, `${p}.urls[${j}]`, { nonEmpty: true })) : str(o.urls, `${p}.urls`, { nonEmpty: true });
      for (const u of Array.isArray(urls) ? urls : [urls]) {
        if (!/^(stun|stuns|turn|turns):/.test(u)) throw new UsageError(`${p}.urls: '${u}' must start with stun:, stuns:, turn: or turns:`);
      }
      const s: IceServerConfig = { urls };
      const username = optional(o.username, (x) => str(x, `${p}.username`));
      const credential = optional(o.credential, (x) => str(x, `${p}.credential`));
      if (username !== undefined) s.username = username;
      if (credential !== undefined) s.credential = credential;
      return s;
    });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

function ipList(name: string, v: string): string[] {
  const list = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const a of list) if (isIP(a) === 0) throw new UsageError(`--${name}: '${a}' is not an IP address`);
  return list;
}

/** 127.0.0.0/8, ::1 and "localhost": only this machine can reach the server. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

function originList(v: string): string[] {
  const list = v.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
  if (list.length === 0) throw new UsageError('--allowed-origins: no origin given');
  return list.map((o) => {
    const n = normalizeOrigin(o);
    if (n === null) throw new UsageError(`--allowed-origins: '${o}' is not an origin like https://avatar.example.org or http://localhost:8080`);
    return n;
  });
}

/** --rooms a,b,c: the call rooms admitted (names as in /?room=NAME). */
function roomList(v: string): string[] {
  const names = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new UsageError('--rooms: give at least one room name');
  for (const n of names) if (!ROOM_NAME_RE.test(n)) throw new UsageError(`--rooms: "${n}" is not a room name (1-64 of A-Z a-z 0-9 _ . ~ -)`);
  return [...new Set(names)];
}

function secret(name: string, v: string | undefined): string | null {
  if (v === undefined) return null;
  if (v.length < MIN_SECRET_LENGTH) throw new UsageError(`--${name}: the secret must be at least ${MIN_SECRET_LENGTH} characters (e.g. openssl rand -hex 32)`);
  return v;
}

function turnOptions(secretValue: string | undefined, urls: string | undefined, ttl: string | undefined): TurnOptions | null {
  if (secretValue === undefined && urls === undefined) return null;
  if (secretValue === undefined || urls === undefined) throw new UsageError('--turn-secret and --turn-urls go together (the TURN server\'s static-auth-secret and its turn:/turns: URLs)');
  const list = urls.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
  if (list.length === 0) throw new UsageError('--turn-urls: no URL given');
  for (const u of list) if (!/^turns?:[^\s]+$/.test(u)) throw new UsageError(`--turn-urls: '${u}' must start with turn: or turns:`);
  return { secret: secret('turn-secret', secretValue) as string, urls: list, ttlS: ttl === undefined ? 3600 : int('turn-ttl', ttl, 60, 86_400) };
}

/** Resolves all options from argv + env. Relative paths are taken from `cwd`. */
export function resolveServeOptions(argv: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): ServeOptions {
  const cl = parseCommandLine(argv, FLAGS, { env, joinRepeated: true });
  const get = (name: keyof typeof FLAGS): string | undefined => cl.str(name);
  const path = (p: string): string => (p.startsWith('/') ? p : `${cwd.replace(/\/$/, '')}/${p}`);

  const host = hostAddress('host', get('host') ?? DEFAULT_HOST);
  const tokenSecret = secret('token-secret', get('token-secret'));
  if (!isLoopbackHost(host) && tokenSecret === null) {
    throw new UsageError(`--host ${host} is reachable from other machines: set --token-secret / DNP_TOKEN_SECRET (at least ${MIN_SECRET_LENGTH} characters) so that only callers with a token from 'dnp token' can join`);
  }
  const portRaw = get('ice-ports');
  let portRange: [number, number] | null = null;
  if (portRaw !== undefined) {
    const m = /^(\d+)-(\d+)$/.exec(portRaw.trim());
    if (!m) throw new UsageError(`--ice-ports: '${portRaw}' is not a range like 40000-40100`);
    const lo = int('ice-ports', m[1] as string, 1024, 65535);
    const hi = int('ice-ports', m[2] as string, 1024, 65535);
    if (hi <= lo) throw new UsageError('--ice-ports: the upper port must be above the lower one');
    portRange = [lo, hi];
  }
  const publicIp = get('public-ip') ?? null;
  if (publicIp !== null && isIP(publicIp) !== 4) throw new UsageError(`--public-ip: '${publicIp}' is not an IPv4 address`);
  const iceHosts = get('ice-host');
  const tracker = get('tracker-model') ?? (existsSync(DEFAULT_TRACKER_MODEL) ? DEFAULT_TRACKER_MODEL : undefined);

  return {
    host,
    port: cl.int('port', 0, 65535, DEFAULT_PORT),
    avatarsDir: path(get('avatars') ?? join(PROJECT_ROOT, DEFAULT_AVATARS_DIR)),
    device: cl.oneOf('device', RENDER_DEVICES, 'cpu'),
    defaultCodec: cl.oneOf('codec', VIDEO_CODECS, 'vp8'),
    threads: cl.int('threads', 0, 64, 1),
    maxBatch: cl.int('max-batch', 1, 64, 8),
    renderWorkers: get('render-workers') === undefined || get('render-workers') === 'auto' ? undefined : cl.int('render-workers', 1, 64, 1),
    encodeWorkers: get('encode-workers') === undefined || get('encode-workers') === 'auto' ? undefined : cl.int('encode-workers', 0, 64, 0),
    ice: {
      additionalHostAddresses: iceHosts === undefined ? ['127.0.0.1'] : ipList('ice-host', iceHosts),
      publicIp,
      iceServers: parseIceServers(get('ice-servers') ?? '[]'),
      portRange,
    },
    clientDir: path(get('client-dir') ?? join(PROJECT_ROOT, 'client', 'dist')),
    trackerModelPath: tracker === undefined ? null : path(tracker),
    audioModelDir: get('audio-model') === undefined ? undefined : get('audio-model') === 'off' ? null : path(get('audio-model') as string),
    keepaliveMs: cl.int('keepalive-ms', 40, 5000, 250),
    connectTimeoutMs: cl.int('connect-timeout-ms', 1000, 300_000, 20000),
    joinsPerMinute: cl.int('join-rate', 1, 100_000, LIMIT_DEFAULTS.joinsPerMinute),
    maxSocketsPerAddress: cl.int('max-sockets-per-address', 1, 100_000, LIMIT_DEFAULTS.maxSocketsPerAddress),
    joinTimeoutMs: cl.int('join-timeout-ms', 0, 3_600_000, LIMIT_DEFAULTS.joinTimeoutMs),
    admission: cl.oneOf('admission', ['on', 'off'] as const, LIMIT_DEFAULTS.admission ? 'on' : 'off') === 'on',
    admissionHeadroom: cl.num('admission-headroom', 1, 10, LIMIT_DEFAULTS.admissionHeadroom),
    maxDrivingHz: cl.int('max-driving-hz', 1, 1000, LIMIT_DEFAULTS.maxDrivingHz),
    maxFps: cl.num('max-fps', 1, 240) ?? null,
    keyframeMinIntervalMs: cl.int('keyframe-interval-ms', 0, 60_000, LIMIT_DEFAULTS.keyframeMinIntervalMs),
    rooms: get('rooms') === undefined ? null : roomList(get('rooms') as string),
    roomSize: cl.int('room-size', 2, 16, ROOM_DEFAULTS.maxParticipants),
    idleTimeoutMs: cl.int('idle-timeout-ms', 0, 86_400_000, LIMIT_DEFAULTS.idleTimeoutMs),
    bitrate: get('bitrate') === undefined ? 0 : parseBitrate(get('bitrate') as string),
    vp8CpuUsed: cl.int('vp8-cpu-used', 0, 16, DEFAULT_VP8_CPU_USED),
    maxSessions: cl.int('max-sessions', 1, 1000, 8),
    allowNoAvatars: false,
    renderTimeoutMs: cl.int('render-timeout-ms', 100, 600_000, 10000),
    allowedOrigins: get('allowed-origins') === undefined ? null : originList(get('allowed-origins') as string),
    tokenSecret,
    turn: turnOptions(get('turn-secret'), get('turn-urls'), get('turn-ttl')),
    metricsPort: cl.int('metrics-port', 0, 65535) ?? null,
    maxWhepViewers: cl.int('max-whep-viewers', 0, 10_000, 100),
    egress: resolveEgressConfig(
      (name) => get(name as keyof typeof FLAGS),
      path,
      (v) => {
        try {
          return parseBitrate(v);
        } catch (err) {
          throw new UsageError(String(err instanceof Error ? err.message : err).replace('--bitrate', '--egress-bitrate'));
        }
      },
      usageError,
    ),
    logLevel: cl.oneOf('log-level', LOG_LEVELS, 'info'),
  };
}
