/**
 * A `dnp serve` child process on 127.0.0.1 for the bench (port 0, warn-level logs), with readers for its
 * /metrics (process CPU seconds, histogram quantiles). One owner; close() is idempotent and bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../project-paths.js';
import { round } from './stats.js';

export interface ServerProcessOptions {
  /** folder of avatar folders, or one avatar folder */
  avatars: string;
  /** ORT intra-op threads per avatar (the server's --threads; 0 = one per core) */
  threads: number;
  /** the server's --max-sessions (default: the server's own, 8) */
  maxSessions?: number;
  /** the server's --join-rate (joins per minute per address; the bench joins many times from 127.0.0.1) */
  joinRate?: number;
  /** the server's --max-fps (default: each avatar's own rate) */
  maxFps?: number | null;
  /** the server's --vp8-cpu-used (default: the server's own) */
  vp8CpuUsed?: number | null;
  startTimeoutMs?: number;
}

/** Keeps the last `max` characters of the server's stderr, for error messages. */
const STDERR_KEEP = 8000;

export class ServerProcess {
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    private readonly stderrTail: () => string,
  ) {}

  static async start(o: ServerProcessOptions): Promise<ServerProcess> {
    // admission control off: the bench measures how many sessions the machine holds, it must not be refused early
    const args = [join(PROJECT_ROOT, 'bin', 'dnp.js'), 'serve', '--avatars', o.avatars, '--port', '0', '--host', '127.0.0.1', '--threads', String(o.threads), '--log-level', 'warn', '--admission', 'off'];
    if (o.maxSessions !== undefined) args.push('--max-sessions', String(o.maxSessions));
    if (o.joinRate !== undefined) args.push('--join-rate', String(o.joinRate));
    if (o.maxFps !== undefined && o.maxFps !== null) args.push('--max-fps', String(o.maxFps));
    if (o.vp8CpuUsed !== undefined && o.vp8CpuUsed !== null) args.push('--vp8-cpu-used', String(o.vp8CpuUsed));
    const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-STDERR_KEEP);
    });
    const timeoutMs = o.startTimeoutMs ?? 60_000;
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => {
        cleanup();
        reject(new Error(`server did not start within ${timeoutMs} ms: ${err}`));
      }, timeoutMs);
      const onData = (): void => {
        const m = /open (http:\/\/[^/\s]+)\//.exec(err);
        if (m?.[1]) {
          cleanup();
          resolve(m[1]);
        }
      };
      const onExit = (code: number | null): void => {
        cleanup();
        reject(new Error(`server exited (${code}) before listening: ${err}`));
      };
      const cleanup = (): void => {
        clearTimeout(t);
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
      };
      child.stderr?.on('data', onData);
      child.once('exit', onExit);
    }).catch(async (e: unknown) => {
      await stopChild(child);
      throw e;
    });
    return new ServerProcess(child, url, () => err);
  }

  /** The last part of the server's stderr (its warnings and errors). */
  get stderr(): string {
    return this.stderrTail();
  }

  private async metrics(): Promise<string> {
    const res = await fetch(`${this.url}/metrics`);
    if (!res.ok) throw new Error(`${this.url}/metrics: HTTP ${res.status}`);
    return res.text();
  }

  /** CPU seconds (user + system) the server process has used so far. */
  async cpuSeconds(): Promise<number> {
    const m = /^dnp_process_cpu_seconds_total (\S+)$/m.exec(await this.metrics());
    return m?.[1] ? Number(m[1]) : NaN;
  }

  /** Seconds the server's main thread has been busy so far (event-loop utilisation). */
  async mainThreadBusySeconds(): Promise<number> {
    const m = /^dnp_main_thread_busy_seconds_total (\S+)$/m.exec(await this.metrics());
    return m?.[1] ? Number(m[1]) : NaN;
  }

  /** Frames the server has sent so far. */
  async framesSent(): Promise<number> {
    const m = /^dnp_frames_sent_total (\S+)$/m.exec(await this.metrics());
    return m?.[1] ? Number(m[1]) : NaN;
  }

  /** Median and p90 of a histogram on /metrics (linear within buckets), or null when it has no samples. */
  async histogram(name: string): Promise<{ median: number; p90: number } | null> {
    const text = await this.metrics();
    const buckets: Array<[number, number]> = [];
    for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`, 'gm'))) {
      buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
    }
    const total = buckets.at(-1)?.[1] ?? 0;
    if (total === 0) return null;
    const q = (p: number): number => {
      const target = p * total;
      let prevLe = 0;
      let prevN = 0;
      for (const [le, n] of buckets) {
        if (n >= target) return le === Infinity ? prevLe : prevLe + ((le - prevLe) * (target - prevN)) / Math.max(1, n - prevN);
        prevLe = le;
        prevN = n;
      }
      return prevLe;
    };
    return { median: round(q(0.5), 1), p90: round(q(0.9), 1) };
  }

  /** SIGTERM, then SIGKILL after 5 s; resolves when the process has exited. Idempotent. */
  close(): Promise<void> {
    this.closing ??= stopChild(this.child);
    return this.closing;
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}
