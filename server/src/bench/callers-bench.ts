/**
 * `dnp bench --callers N` and `--callers max` (ramp): several Node WebRTC callers (bench/rtc-client.ts) on one
 * server (child process, 127.0.0.1) and one avatar, each driving at `rateHz` with its own phase.
 *
 * Fixed mode: N callers join, drive through a warm-up, then one measured window: per caller fps received,
 * end-to-end latency, render and encode ms (from the render reports), and the aggregate with server CPU.
 *
 * Ramp mode: callers join one at a time; after each join all callers are measured for a window of `seconds`
 * (after `warmupSeconds`). It stops when any caller receives fewer than `stopFps` frames/s, when a caller cannot
 * join, or at `maxCallers`. "Sessions held" is the largest count whose step, and every step before it, had every
 * caller at >= `holdFps` (within one frame of counting error over the window).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { DrivingValues } from '../../../shared/src/driving-values.js';
import type { VideoCodecName } from '../../../shared/src/signaling.js';
import { prepareBenchAvatar, type BenchAvatarSource } from './bench-avatar.js';
import { CallerRig, loadDriving, roundSummary, sleep, type CallerWindow } from './caller-rig.js';
import { formatMachine, loadAverage, machineInfo, type MachineInfo } from './machine.js';
import { ServerProcess } from './server-process.js';
import { round, summarise, type Summary } from './stats.js';

export interface CallersBenchOptions {
  avatar: BenchAvatarSource;
  /** a fixed number of callers, or 'ramp' (add one at a time until one falls below stopFps) */
  callers: number | 'ramp';
  /** ramp: most callers tried */
  maxCallers: number;
  /** measured seconds (fixed mode: the one window; ramp: each step) */
  seconds: number;
  /** warm-up seconds before a window (ramp: after each join) */
  warmupSeconds: number;
  rateHz: number;
  codec: VideoCodecName;
  /** the server's ORT threads (--threads; 0 = one per core) */
  threads: number;
  drivingFile: string | null;
  /** the server's --max-fps (null: the avatar's own rate) */
  maxFps: number | null;
  /** the server's --vp8-cpu-used (null: the server's default) */
  vp8CpuUsed: number | null;
  /** ramp: stop when any caller receives fewer frames per second than this */
  stopFps: number;
  /** ramp: a step "holds" when every caller receives at least this many frames per second */
  holdFps: number;
  onProgress?: (line: string) => void;
}

export type CallerResult = Omit<CallerWindow, 'samples' | 'uplinkPayloadBytes' | 'downlinkBytes'> & {
  caller: number;
  uplinkPayloadKbps: number;
  downlinkKbps: number;
};

export interface CallersAggregate {
  callers: number;
  seconds: number;
  fpsReceivedTotal: number;
  fpsReceivedMin: number;
  fpsReceivedMax: number;
  fpsRenderedTotal: number;
  /** over every caller's samples */
  latencyMs: Summary;
  renderMs: Summary;
  encodeMs: Summary;
  /** the server process (model runs, encoding, WebRTC) */
  serverCpuPercentOfOneCore: number;
  /** the server's main thread (event loop): busy % of the window, and busy ms per frame sent */
  mainThreadBusyPercent: number;
  mainThreadMsPerFrame: number;
  /** this bench process (the callers: driving, SCTP/DTLS, decoding); it shares the machine with the server */
  benchCpuPercentOfOneCore: number;
  downlinkKbpsTotal: number;
  sessionErrors: number;
  loadAverage1m: number;
}

export interface CallersStep {
  callers: number;
  perCaller: CallerResult[];
  aggregate: CallersAggregate;
  /** every caller at >= holdFps (ramp criterion; also computed in fixed mode) */
  held: boolean;
}

export interface CallersBenchResult {
  kind: 'callers';
  mode: 'fixed' | 'ramp';
  machine: MachineInfo;
  avatar: { id: string; description: string; size: number; fps: number; flopsPerFrame: number | null };
  options: Omit<CallersBenchOptions, 'onProgress'>;
  drivingSource: string;
  steps: CallersStep[];
  ramp: { sessionsHeld: number; stoppedBecause: string } | null;
}

/** Phase of caller i within one driving period (golden-ratio spread: callers never send in lock-step). */
function phaseMs(i: number, rateHz: number): number {
  return (((i * 0.6180339887) % 1) * 1000) / rateHz;
}

function held(fps: number, holdFps: number, seconds: number): boolean {
  return fps + 1 / seconds >= holdFps; // one frame of counting error over the window
}

async function measure(server: ServerProcess, rigs: readonly CallerRig[], opts: CallersBenchOptions, say: (l: string) => void): Promise<CallersStep> {
  const cpu0 = await server.cpuSeconds();
  const busy0 = await server.mainThreadBusySeconds();
  const sent0 = await server.framesSent();
  const bench0 = process.cpuUsage();
  const t0 = performance.now();
  for (const r of rigs) r.beginWindow();
  const end = t0 + opts.seconds * 1000;
  while (performance.now() < end) {
    await sleep(Math.min(5000, end - performance.now()));
    const left = Math.round((end - performance.now()) / 1000);
    if (left > 0) say(`  ${rigs.length} caller(s): ${left} s left`);
  }
  for (const r of rigs) r.endWindow();
  const secs = (performance.now() - t0) / 1000;
  const cpu1 = await server.cpuSeconds();
  const busy1 = await server.mainThreadBusySeconds();
  const sent1 = await server.framesSent();
  const bench = process.cpuUsage(bench0);
  await sleep(300); // late frames of the window
  const windows = rigs.map((r) => r.result());
  const perCaller: CallerResult[] = windows.map((w, i) => {
    const { samples: _s, uplinkPayloadBytes, downlinkBytes, ...rest } = w;
    return {
      caller: (rigs[i] as CallerRig).index,
      ...rest,
      uplinkPayloadKbps: round((uplinkPayloadBytes * 8) / w.seconds / 1000, 2),
      downlinkKbps: round((downlinkBytes * 8) / w.seconds / 1000, 0),
    };
  });
  const fps = windows.map((w) => w.fpsReceived);
  const all = (k: 'latencyMs' | 'renderMs' | 'encodeMs'): number[] => windows.flatMap((w) => w.samples[k]);
  const aggregate: CallersAggregate = {
    callers: rigs.length,
    seconds: round(secs, 1),
    fpsReceivedTotal: round(fps.reduce((a, b) => a + b, 0), 1),
    fpsReceivedMin: Math.min(...fps),
    fpsReceivedMax: Math.max(...fps),
    fpsRenderedTotal: round(windows.reduce((a, w) => a + w.fpsRendered, 0), 1),
    latencyMs: roundSummary(summarise(all('latencyMs'))),
    renderMs: roundSummary(summarise(all('renderMs'))),
    encodeMs: roundSummary(summarise(all('encodeMs'))),
    serverCpuPercentOfOneCore: round(((cpu1 - cpu0) / secs) * 100, 0),
    mainThreadBusyPercent: round(((busy1 - busy0) / secs) * 100, 0),
    mainThreadMsPerFrame: round(((busy1 - busy0) * 1000) / Math.max(1, sent1 - sent0), 2),
    benchCpuPercentOfOneCore: round(((bench.user + bench.system) / 1e6 / secs) * 100, 0),
    downlinkKbpsTotal: round(perCaller.reduce((a, c) => a + c.downlinkKbps, 0), 0),
    sessionErrors: windows.reduce((a, w) => a + w.errors.length, 0),
    loadAverage1m: loadAverage(),
  };
  return { callers: rigs.length, perCaller, aggregate, held: fps.every((f) => held(f, opts.holdFps, opts.seconds)) };
}

export async function runCallersBench(opts: CallersBenchOptions): Promise<CallersBenchResult> {
  const say = opts.onProgress ?? (() => undefined);
  const machine = machineInfo();
  const { values, source } = loadDriving(opts.drivingFile);
  const tmp = mkdtempSync(join(os.tmpdir(), 'dnp-bench-'));
  const rigs: CallerRig[] = [];
  let server: ServerProcess | null = null;
  try {
    if (opts.avatar.kind === 'untrained') say(`making an untrained ${opts.avatar.preset} ${opts.avatar.size}x${opts.avatar.size} avatar …`);
    const avatar = await prepareBenchAvatar(opts.avatar, tmp, opts.maxFps);
    const most = opts.callers === 'ramp' ? opts.maxCallers : opts.callers;
    server = await ServerProcess.start({ avatars: avatar.avatarsDir, threads: opts.threads, maxSessions: most, joinRate: 100_000, maxFps: opts.maxFps, vp8CpuUsed: opts.vp8CpuUsed });
    const s = server;
    const join1 = async (): Promise<CallerRig> => {
      const rig = await CallerRig.connect(rigs.length + 1, s.url, avatar.id, opts.codec);
      rigs.push(rig);
      rig.startDriving(values as DrivingValues[], opts.rateHz, phaseMs(rig.index, opts.rateHz));
      return rig;
    };
    const steps: CallersStep[] = [];
    let ramp: CallersBenchResult['ramp'] = null;
    if (opts.callers !== 'ramp') {
      say(`${opts.callers} caller(s) joining ${avatar.description} …`);
      for (let i = 0; i < opts.callers; i++) await join1();
      await sleep(opts.warmupSeconds * 1000);
      steps.push(await measure(s, rigs, opts, say));
    } else {
      let stoppedBecause = `reached --max-callers ${opts.maxCallers}`;
      let sessionsHeld = 0;
      let allHeld = true;
      for (let k = 1; k <= opts.maxCallers; k++) {
        try {
          await join1();
        } catch (err) {
          stoppedBecause = `caller ${k} could not join: ${err instanceof Error ? err.message : String(err)}`;
          break;
        }
        await sleep(opts.warmupSeconds * 1000);
        const step = await measure(s, rigs, opts, say);
        steps.push(step);
        allHeld &&= step.held;
        if (allHeld) sessionsHeld = k;
        say(`${k} caller(s): fps received min ${step.aggregate.fpsReceivedMin}, total ${step.aggregate.fpsReceivedTotal}; latency median ${step.aggregate.latencyMs.median} ms; server CPU ${step.aggregate.serverCpuPercentOfOneCore} %`);
        if (step.aggregate.fpsReceivedMin < opts.stopFps) {
          stoppedBecause = `with ${k} callers one received ${step.aggregate.fpsReceivedMin} fps (< ${opts.stopFps})`;
          break;
        }
      }
      ramp = { sessionsHeld, stoppedBecause };
    }
    const { onProgress: _p, ...options } = opts;
    return {
      kind: 'callers',
      mode: opts.callers === 'ramp' ? 'ramp' : 'fixed',
      machine,
      avatar: { id: avatar.id, description: avatar.description, size: avatar.size, fps: avatar.fps, flopsPerFrame: avatar.flopsPerFrame },
      options,
      drivingSource: source,
      steps,
      ramp,
    };
  } finally {
    await Promise.all(rigs.map((r) => r.close()));
    await server?.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

const mp = (s: Summary): string => (s.n === 0 ? '-' : `${s.median} / ${s.p90}`);

export function formatCallersTable(r: CallersBenchResult): string {
  const o = r.options;
  const lines = [
    formatMachine(r.machine),
    `avatar: ${r.avatar.description}${r.avatar.flopsPerFrame ? `, ${round(r.avatar.flopsPerFrame / 1e9, 2)} GFLOP/frame` : ''}`,
    `driving: ${r.drivingSource} at ${o.rateHz} Hz per caller; codec ${o.codec}; server ORT threads ${o.threads}; ${o.seconds} s measured after ${o.warmupSeconds} s warm-up${r.mode === 'ramp' ? ' (each step)' : ''}`,
    '',
  ];
  const last = r.steps.at(-1);
  if (r.mode === 'fixed' && last) {
    lines.push(
      '| caller | fps received / rendered | latency median / p90 ms | render median / p90 ms | encode median / p90 ms | downlink kbit/s | errors |',
      '|---|---|---|---|---|---|---|',
    );
    for (const c of last.perCaller) {
      lines.push(`| ${c.caller} | ${c.fpsReceived} / ${c.fpsRendered} | ${mp(c.latencyMs)} | ${mp(c.renderMs)} | ${mp(c.encodeMs)} | ${c.downlinkKbps} | ${c.errors.length} |`);
    }
    const a = last.aggregate;
    lines.push(`| all ${a.callers} | ${a.fpsReceivedTotal} / ${a.fpsRenderedTotal} (min ${a.fpsReceivedMin}) | ${mp(a.latencyMs)} | ${mp(a.renderMs)} | ${mp(a.encodeMs)} | ${a.downlinkKbpsTotal} | ${a.sessionErrors} |`);
    lines.push('', `server CPU ${a.serverCpuPercentOfOneCore} % of a core; server main thread busy ${a.mainThreadBusyPercent} % (${a.mainThreadMsPerFrame} ms per frame sent); bench (callers) CPU ${a.benchCpuPercentOfOneCore} % of a core; load average ${a.loadAverage1m} at the end`);
  } else {
    lines.push(
      '| callers | fps received min / max / total | latency median / p90 ms | render median / p90 ms | encode median / p90 ms | server CPU % of a core | main thread busy % (ms/frame) | bench CPU % | load avg | all >= hold fps |',
      '|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const s of r.steps) {
      const a = s.aggregate;
      lines.push(`| ${a.callers} | ${a.fpsReceivedMin} / ${a.fpsReceivedMax} / ${a.fpsReceivedTotal} | ${mp(a.latencyMs)} | ${mp(a.renderMs)} | ${mp(a.encodeMs)} | ${a.serverCpuPercentOfOneCore} | ${a.mainThreadBusyPercent} (${a.mainThreadMsPerFrame}) | ${a.benchCpuPercentOfOneCore} | ${a.loadAverage1m} | ${s.held ? 'yes' : 'no'} |`);
    }
    if (r.ramp) lines.push('', `sessions held at >= ${o.holdFps} fps: ${r.ramp.sessionsHeld} (stopped: ${r.ramp.stoppedBecause})`);
  }
  return `${lines.join('\n')}\n`;
}
