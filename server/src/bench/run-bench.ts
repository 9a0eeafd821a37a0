/**
 * `dnp bench`: starts a real server (child process, 127.0.0.1) with an avatar (untrained, made on the fly at each
 * size, or a real avatar folder), drives it from one Node caller at `rateHz` with recorded (or synthetic) driving
 * frames, and measures: end-to-end latency (driving frame sent → the video frame carrying it decoded in the
 * caller, matched by render report seq + RTP timestamp), render and encode time (from the render reports), frames
 * per second, server CPU (the server's process.cpuUsage via its dnp_process_cpu_seconds_total), uplink and
 * downlink bandwidth. Several callers at once: callers-bench.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { DrivingValues } from '../../../shared/src/driving-values.js';
import { DRIVING_FRAME_BYTES } from '../../../shared/src/wire.js';
import type { VideoCodecName } from '../../../shared/src/signaling.js';
import { prepareBenchAvatar, type BenchAvatarSource } from './bench-avatar.js';
import { CallerRig, loadDriving, sleep } from './caller-rig.js';
import { formatMachine, loadAverage, machineInfo, type MachineInfo } from './machine.js';
import { ServerProcess } from './server-process.js';
import { round, type Summary } from './stats.js';
import type { UntrainedPreset } from './untrained-avatar.js';

export interface BenchOptions {
  /** sizes of the untrained avatars (ignored with avatarDir) */
  sizes: number[];
  /** model preset of the untrained avatars */
  preset: UntrainedPreset;
  /** a real avatar folder to bench instead of untrained ones */
  avatarDir: string | null;
  seconds: number;
  warmupSeconds: number;
  rateHz: number;
  fps: number;
  codec: VideoCodecName;
  /** ORT intra-op threads in the server. */
  threads: number;
  /** MediaPipe tracker output to replay (JSON with frames[].blendshapes/matrix), or null for synthetic motion. */
  drivingFile: string | null;
  /** the server's --max-fps (null: each avatar's own rate) */
  maxFps: number | null;
  /** the server's --vp8-cpu-used (null: the server's default) */
  vp8CpuUsed: number | null;
  onProgress?: (line: string) => void;
}

export interface SizeResult {
  size: number;
  avatar: string;
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
  machine: MachineInfo;
  options: Omit<BenchOptions, 'onProgress'>;
  drivingSource: string;
  results: SizeResult[];
}

/**
 * Bytes around each data-channel message on the wire: SCTP common header 12 + DATA chunk 16, DTLS 1.2 record
 * 13 + AES-GCM explicit nonce 8 + tag 16, UDP 8 + IPv4 20 = 93 (SACKs travel the other way).
 */
const WIRE_OVERHEAD_BYTES = 12 + 16 + 13 + 8 + 16 + 8 + 20;

async function benchOne(src: BenchAvatarSource, opts: BenchOptions, driving: DrivingValues[], tmp: string): Promise<SizeResult> {
  const say = opts.onProgress ?? (() => undefined);
  if (src.kind === 'untrained') say(`making an untrained ${src.preset} ${src.size}x${src.size} avatar …`);
  const avatar = await prepareBenchAvatar(src, tmp, opts.maxFps);
  const server = await ServerProcess.start({ avatars: avatar.avatarsDir, threads: opts.threads, maxFps: opts.maxFps, vp8CpuUsed: opts.vp8CpuUsed });
  let rig: CallerRig | null = null;
  try {
    rig = await CallerRig.connect(1, server.url, avatar.id, opts.codec);
    rig.startDriving(driving, opts.rateHz, 0);
    await sleep(opts.warmupSeconds * 1000);
    const cpu0 = await server.cpuSeconds();
    const t0 = performance.now();
    rig.beginWindow();
    const end = t0 + opts.seconds * 1000;
    while (performance.now() < end) {
      await sleep(Math.min(5000, end - performance.now()));
      say(`  ${avatar.size}²: ${Math.round(opts.warmupSeconds + (performance.now() - t0) / 1000)} / ${opts.warmupSeconds + opts.seconds} s`);
    }
    rig.endWindow();
    const secs = (performance.now() - t0) / 1000;
    const cpu1 = await server.cpuSeconds();
    const serverLatencyMs = await server.histogram('dnp_server_latency_ms');
    await sleep(300); // late frames of the window
    const w = rig.result();
    return {
      size: avatar.size,
      avatar: avatar.description,
      avatarFps: avatar.fps,
      codec: opts.codec,
      seconds: round(secs, 1),
      drivingSent: w.drivingSent,
      latencyMs: w.latencyMs,
      renderMs: w.renderMs,
      encodeMs: w.encodeMs,
      fpsRendered: w.fpsRendered,
      fpsDecoded: w.fpsReceived,
      framesIncomplete: w.framesIncomplete,
      serverCpuPercentOfOneCore: round(((cpu1 - cpu0) / secs) * 100, 0),
      uplinkPayloadBytesPerSec: round(w.uplinkPayloadBytes / secs, 0),
      uplinkPayloadKbps: round((w.uplinkPayloadBytes * 8) / secs / 1000, 2),
      uplinkWireKbpsEstimate: round(((w.uplinkPayloadBytes + w.drivingSent * WIRE_OVERHEAD_BYTES) * 8) / secs / 1000, 1),
      downlinkKbps: round((w.downlinkBytes * 8) / secs / 1000, 0),
      serverLatencyMs,
      loadAverage1m: loadAverage(),
    };
  } finally {
    await rig?.close();
    await server.close();
  }
}

export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  const machine = machineInfo();
  const { values, source } = loadDriving(opts.drivingFile);
  const tmp = mkdtempSync(join(os.tmpdir(), 'dnp-bench-'));
  const results: SizeResult[] = [];
  try {
    const sources: BenchAvatarSource[] = opts.avatarDir
      ? [{ kind: 'folder', dir: opts.avatarDir }]
      : opts.sizes.map((size) => ({ kind: 'untrained', preset: opts.preset, size, fps: opts.fps }));
    for (const src of sources) results.push(await benchOne(src, opts, values, tmp));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const { onProgress: _ignored, ...rest } = opts;
  return { machine, options: rest, drivingSource: source, results };
}

export function formatTable(r: BenchResult): string {
  const lines = [
    formatMachine(r.machine),
    ...r.results.map((s) => `avatar: ${s.avatar}`),
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
