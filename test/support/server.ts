/**
 * Starts a real DnpServer for tests: 127.0.0.1, port 0, no STUN/TURN, loopback ICE, logs captured as
 * parsed JSON lines (so tests can look for a message) instead of printed.
 */
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../server/src/log.js';
import { DnpServer, type ServerOptions } from '../../server/src/server.js';
import { REPO_ROOT } from './test-avatar.js';

export interface LogLine {
  level: number;
  msg?: string;
  [k: string]: unknown;
}

export interface TestServer {
  server: DnpServer;
  url: string;
  logs: LogLine[];
  close: () => Promise<void>;
}

export function testServerOptions(avatarsDir: string, overrides: Partial<ServerOptions> = {}): ServerOptions {
  return {
    host: '127.0.0.1',
    port: 0,
    avatarsDir,
    device: 'cpu',
    threads: 1,
    // one render worker per avatar (as on a 1-core machine): the tests count workers and model runs; the pool of
    // several is tested on its own (server-stages, server-integration)
    renderWorkers: 1,
    maxBatch: 8,
    ice: { additionalHostAddresses: ['127.0.0.1'], publicIp: null, iceServers: [], portRange: null },
    clientDir: join(REPO_ROOT, 'client', 'dist'),
    trackerModelPath: null,
    keepaliveMs: 250,
    connectTimeoutMs: 15_000,
    bitrate: 0,
    maxSessions: 8,
    defaultCodec: 'vp8',
    allowNoAvatars: true,
    // many test callers share 127.0.0.1: the per-address join rate is tested on its own (server-limits)
    joinsPerMinute: 10_000,
    maxSocketsPerAddress: 10_000,
    // a loaded test machine would refuse callers that the tests need: admission is tested on its own (server-admission)
    admission: false,
    ...overrides,
  };
}

/** A pino destination that keeps every line (parsed) in `lines`. */
export function captureLogs(lines: LogLine[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) {
        if (l.trim()) {
          try {
            lines.push(JSON.parse(l) as LogLine);
          } catch {
            lines.push({ level: 0, msg: l });
          }
        }
      }
      cb();
    },
  });
}

export async function startTestServer(avatarsDir: string, overrides: Partial<ServerOptions> = {}): Promise<TestServer> {
  const logs: LogLine[] = [];
  // always debug: tests read the server's structured log lines (e.g. 'session closed' with its stats)
  const log = createLogger('debug', captureLogs(logs));
  const server = await DnpServer.start(testServerOptions(avatarsDir, overrides), log);
  return { server, url: server.url, logs, close: () => server.close() };
}

/** Parses Prometheus text into sample lines ("name{labels}" → value) and declared families (# TYPE). */
export function parseMetrics(text: string): { samples: Map<string, number>; families: Set<string> } {
  const samples = new Map<string, number>();
  const families = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) /.exec(line);
    if (type) families.add(type[1] as string);
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    samples.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return { samples, families };
}

/**
 * GET /metrics and return the value of one sample (name with labels, exactly as printed). A labelled series
 * that has not been touched yet reads 0 only when its family is declared; anything else missing throws
 * (a typo or a renamed metric must fail the test, not read as 0).
 */
export async function metricValue(url: string, sample: string): Promise<number> {
  const { samples, families } = parseMetrics(await (await fetch(`${url}/metrics`)).text());
  const v = samples.get(sample);
  if (v !== undefined) return v;
  const brace = sample.indexOf('{');
  if (brace > 0 && families.has(sample.slice(0, brace))) return 0;
  throw new Error(`metric sample ${sample} is not in /metrics`);
}

/** GET /metrics and return the sum of every series of one family (any labels); throws when the family is not declared. */
export async function metricTotal(url: string, family: string): Promise<number> {
  const { samples, families } = parseMetrics(await (await fetch(`${url}/metrics`)).text());
  if (!families.has(family)) throw new Error(`metric ${family} is not in /metrics`);
  let sum = 0;
  for (const [k, v] of samples) if (k === family || k.startsWith(`${family}{`)) sum += v;
  return sum;
}
