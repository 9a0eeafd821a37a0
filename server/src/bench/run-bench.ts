/**
 * `dnp bench`: starts a real server (child process, 127.0.0.1) with an untrained CPU avatar at each size,
 * drives it from a Node caller at `rateHz` with recorded (or synthetic) driving frames, and measures:
 * end-to-end latency (driving frame sent → the video frame carrying it decoded in the caller, matched by
 * render report seq + RTP timestamp), render and encode time (from the render reports), frames per
 * second, server CPU (the server's process.cpuUsage via its dnp_process_cpu_seconds_total), uplink and
 * downlink bandwidth.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { DrivingValues } from '../../../shared/src/driving-values.js';
import { mapTrackerFace } from '../../../shared/src/tracker-mapping.js';
import { DRIVING_FRAME_BYTES, encodeDrivingFrame } from '../../../shared/src/wire.js';
import type { VideoCodecName } from '../../../shared/src/signaling.js';
import { PROJECT_ROOT } from '../project-paths.js';
import { RtcClient } from './rtc-client.js';
import { round, summarise, type Summary } from './stats.js';
import { exportUntrainedAvatar } from './untrained-avatar.js';

export interface BenchOptions {
  sizes: number[];
  seconds: number;
  warmupSeconds: number;
  rateHz: number;
  fps: number;
  codec: VideoCodecName;
  /** ORT intra-op threads in the server. */
  threads: number;
  /** MediaPipe tracker output to replay (JSON with frames[].blendshapes/matrix), or null for synthetic motion. */
  drivingFile: string | null;
  onProgress?: (line: string) => void;
}

export interface SizeResult {
  size: number;
  avatarFps: number;
  codec: VideoCodecName;
  seconds: number;
  drivingSent: number;
  latencyMs: Summary;
  renderMs: Summary;
  encodeMs: Summary;
  fpsRendered: number;
  fpsDecoded: number;
  framesIncomplete: number;
  serverCpuPercentOfOneCore: number;
  uplinkPayloadBytesPerSec: number;
  uplinkPayloadKbps: number;
  uplinkWireKbpsEstimate: number;
  downlinkKbps: number;
  /** Server part of the latency (driving frame arrival → video frame sent), from dnp_server_latency_ms buckets (whole run). */
  serverLatencyMs: { median: number; p90: number } | null;
  /** 1-minute load average at the end of the window (other work on the machine skews every number). */
  loadAverage1m: number;
}

export interface BenchResult {
  machine: { cpu: string; cores: number; memoryGiB: number; platform: string; node: string; loadAverage1m: number };
  options: Omit<BenchOptions, 'onProgress'>;
  drivingSource: string;
  results: SizeResult[];
}

/**
 * Bytes around each data-channel message on the wire: SCTP common header 12 + DATA chunk 16, DTLS 1.2 record
 * 13 + AES-GCM explicit nonce 8 + tag 16, UDP 8 + IPv4 20 = 93 (SACKs travel the other way).
 */
const WIRE_OVERHEAD_BYTES = 12 + 16 + 13 + 8 + 16 + 8 + 20;

class ServerProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static async start(avatarsDir: string, threads: number): Promise<ServerProcess> {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'dnp.js'), 'serve', '--avatars', avatarsDir, '--port', '0', '--host', '127.0.0.1', '--threads', String(threads), '--log-level', 'warn'], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let err = '';
      const t = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 60_000);
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /open (http:\/\/[^/\s]+)\//.exec(err);
        if (m?.[1]) {
          clearTimeout(t);
          resolve(m[1]);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`server exited (${code}): ${err}`));
      });
    });
    return new ServerProcess(child, url);
  }

  async cpuSeconds(): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const m = /^dnp_process_cpu_seconds_total (\S+)$/m.exec(text);
    return m?.[1] ? Number(m[1]) : NaN;
  }

  /** Median and p90 of a histogram on /metrics (linear within buckets), or null when it has no samples. */
  async histogram(name: string): Promise<{ median: number; p90: number } | null> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
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

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

function loadDriving(file: string | null): { values: DrivingValues[]; source: string } {
  if (file && existsSync(file)) {
    const json = JSON.parse(readFileSync(file, 'utf8')) as { frames?: Array<{ faces?: number; blendshapes?: number[]; matrix?: number[] }> };
    const values = (json.frames ?? [])
      .filter((f) => (f.faces ?? 0) > 0 && Array.isArray(f.blendshapes) && Array.isArray(f.matrix))
      .map((f) => mapTrackerFace({ blendshapes: f.blendshapes as number[], matrix: f.matrix as number[] }));
    if (values.length > 0) return { values, source: `${file} (${values.length} tracked frames, looped)` };
  }
  const values: DrivingValues[] = [];
  for (let i = 0; i < 300; i++) {
    const t = i / 30;
    const b = new Float32Array(52);
    b[25] = 0.5 + 0.5 * Math.sin(2 * Math.PI * 2 * t); // jawOpen, talking-like
    b[9] = b[10] = i % 90 < 4 ? 1 : 0; // blinks
    values.push({ pose: Float32Array.from([0.1 * Math.sin(t), 0.2 * Math.sin(0.7 * t), 0.05 * Math.sin(1.3 * t), 0, 0, -45]), gaze: Float32Array.from([0.1 * Math.sin(0.5 * t), 0]), blendshapes: b });
  }
  return { values, source: 'synthetic head motion and talking (no tracker file)' };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function benchOne(size: number, opts: BenchOptions, driving: DrivingValues[], tmp: string): Promise<SizeResult> {
  const say = opts.onProgress ?? (() => undefined);
  const dir = join(tmp, `avatars-${size}`, `bench-${size}`);
  say(`making an untrained ${size}x${size} avatar …`);
  await exportUntrainedAvatar(dir, size, opts.fps);
  const server = await ServerProcess.start(join(tmp, `avatars-${size}`), opts.threads);
  let client: RtcClient | null = null;
  try {
    client = await RtcClient.connect({ url: server.url, avatar: `bench-${size}`, codec: opts.codec });
    const c = client;
    const sentAt = new Map<number, number>();
    const decodedAt = new Map<number, number>(); // rtp timestamp → first decode time
    const reports: Array<{ seq: number; ts: number; renderMs: number; encodeMs: number; at: number }> = [];
    let measuring = false;
    let decodedInWindow = 0;
    c.onFrame = (f) => {
      if (!decodedAt.has(f.rtpTimestamp)) decodedAt.set(f.rtpTimestamp, f.decodedAt);
      if (measuring) decodedInWindow++;
    };
    c.onReport = (r, at) => {
      if (measuring) reports.push({ seq: r.seq, ts: r.rtpTimestamp, renderMs: r.renderMs, encodeMs: r.encodeMs, at });
    };

    const period = 1000 / opts.rateHz;
    const total = opts.warmupSeconds + opts.seconds;
    const start = performance.now();
    let seq = 0;
    let next = start;
    let windowStart = 0;
    let cpu0 = NaN;
    let bytes0 = { up: 0, down: 0 };
    let lastProgress = start;
    while (performance.now() - start < total * 1000) {
      if (!measuring && performance.now() - start >= opts.warmupSeconds * 1000) {
        measuring = true;
        windowStart = performance.now();
        cpu0 = await server.cpuSeconds();
        bytes0 = { up: c.stats.bytesSent, down: c.stats.rtpBytes };
      }
      const v = driving[seq % driving.length] as DrivingValues;
      seq++;
      const now = performance.now();
      c.send(encodeDrivingFrame({ seq, captureMs: Math.floor(now), faceFound: true, pose: v.pose, gaze: v.gaze, blendshapes: v.blendshapes }));
      if (measuring) sentAt.set(seq, now);
      if (now - lastProgress > 5000) {
        lastProgress = now;
        say(`  ${size}²: ${Math.round((now - start) / 1000)} / ${total} s`);
      }
      next += period;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
    }
    const windowEnd = performance.now();
    const cpu1 = await server.cpuSeconds();
    const serverLatencyMs = await server.histogram('dnp_server_latency_ms');
    measuring = false;
    const secs = (windowEnd - windowStart) / 1000;
    await sleep(300); // late frames of the window

    const latencies: number[] = [];
    const seenSeq = new Set<number>();
    for (const r of reports) {
      if (r.renderMs === 0 || seenSeq.has(r.seq)) continue; // re-sent pictures carry an old seq
      const sent = sentAt.get(r.seq);
      const dec = decodedAt.get(r.ts);
      if (sent === undefined || dec === undefined) continue;
      seenSeq.add(r.seq);
      latencies.push(dec - sent);
    }
    const rendered = reports.filter((r) => r.renderMs > 0);
    const upBytes = c.stats.bytesSent - bytes0.up;
    const msgs = sentAt.size;
    return {
      size,
      avatarFps: opts.fps,
      codec: opts.codec,
      seconds: round(secs, 1),
      drivingSent: msgs,
      latencyMs: roundSummary(summarise(latencies)),
      renderMs: roundSummary(summarise(rendered.map((r) => r.renderMs))),
      encodeMs: roundSummary(summarise(rendered.map((r) => r.encodeMs))),
      fpsRendered: round(rendered.length / secs, 1),
      fpsDecoded: round(decodedInWindow / secs, 1),
      framesIncomplete: c.stats.framesIncomplete,
      serverCpuPercentOfOneCore: round(((cpu1 - cpu0) / secs) * 100, 0),
      uplinkPayloadBytesPerSec: round(upBytes / secs, 0),
      uplinkPayloadKbps: round((upBytes * 8) / secs / 1000, 2),
      uplinkWireKbpsEstimate: round(((upBytes + msgs * WIRE_OVERHEAD_BYTES) * 8) / secs / 1000, 1),
      downlinkKbps: round(((c.stats.rtpBytes - bytes0.down) * 8) / secs / 1000, 0),
      serverLatencyMs,
      loadAverage1m: round(os.loadavg()[0] ?? 0, 2),
    };
  } finally {
    await client?.close();
    await server.close();
  }
}

function roundSummary(s: Summary): Summary {
  return { n: s.n, median: round(s.median, 1), p90: round(s.p90, 1), max: round(s.max, 1) };
}

export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  const cpus = os.cpus();
  const machine = {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
    loadAverage1m: round(os.loadavg()[0] ?? 0, 2),
  };
  const { values, source } = loadDriving(opts.drivingFile);
  const tmp = mkdtempSync(join(os.tmpdir(), 'dnp-bench-'));
  const results: SizeResult[] = [];
  try {
    for (const size of opts.sizes) results.push(await benchOne(size, opts, values, tmp));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const { onProgress: _ignored, ...rest } = opts;
  return { machine, options: rest, drivingSource: source, results };
}

export function formatTable(r: BenchResult): string {
  const lines = [
    `machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, ${r.machine.platform}, node ${r.machine.node}, load ${r.machine.loadAverage1m} at start`,
    `driving: ${r.drivingSource} at ${r.options.rateHz} Hz; codec ${r.options.codec}; server ORT threads ${r.options.threads}; ${r.options.seconds} s measured after ${r.options.warmupSeconds} s warm-up`,
    `wire payload: ${DRIVING_FRAME_BYTES} B per driving frame`,
    '',
    '| size | latency median / p90 ms | in server median / p90 ms | render median / p90 ms | encode median / p90 ms | fps rendered / decoded | server CPU % of a core | uplink payload kbit/s (wire est.) | downlink kbit/s | load avg |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of r.results) {
    lines.push(
      `| ${s.size}² ${s.codec} | ${s.latencyMs.median} / ${s.latencyMs.p90} | ${s.serverLatencyMs ? `${s.serverLatencyMs.median} / ${s.serverLatencyMs.p90}` : '-'} | ${s.renderMs.median} / ${s.renderMs.p90} | ${s.encodeMs.median} / ${s.encodeMs.p90} | ${s.fpsRendered} / ${s.fpsDecoded} | ${s.serverCpuPercentOfOneCore} | ${s.uplinkPayloadKbps} (${s.uplinkWireKbpsEstimate}) | ${s.downlinkKbps} | ${s.loadAverage1m} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
