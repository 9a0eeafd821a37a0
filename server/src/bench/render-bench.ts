/**
 * `dnp bench render`: the renderer alone, no WebRTC. Loads the avatar's model exactly as the server does (the
 * server's Renderer: render worker thread, the same ORT session options, device fallback to the CPU with a logged
 * reason) and times model runs at each batch size.
 *
 * For batch size B a Renderer with maxBatch B is given one frame (it runs alone, at once) and then (1 + runs) × B
 * frames at the same moment: its queue hands them to the worker as batches of exactly B. The first batch of B is
 * a warm-up; the next `runs` are measured. Times are the worker's own `session.run()` times (as in the server's
 * render reports and dnp_render_ms); the wall time of all measured batches (with the thread hand-over, input
 * normalisation and each frame's yuv420p, as the server makes it: converted from RGB here, or copied from a model
 * with a yuv420p output) gives a second frames/s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { yuv420pBytes } from '../media/rgb-to-yuv.js';
import { Renderer } from '../render/renderer.js';
import type { RenderDevice } from '../render/ort-session.js';
import { prepareBenchAvatar, type BenchAvatarSource } from './bench-avatar.js';
import { formatMachine, loadAverage, machineInfo, type MachineInfo } from './machine.js';
import { quantile, round } from './stats.js';

export interface RenderBenchOptions {
  avatar: BenchAvatarSource;
  batches: number[];
  /** measured model runs per batch size */
  runs: number;
  /** ORT intra-op threads (0 = one per core), as the server's --threads */
  threads: number;
  device: RenderDevice;
  onProgress?: (line: string) => void;
}

export interface BatchResult {
  batch: number;
  runs: number;
  /** one model run of `batch` frames */
  batchMs: { median: number; p90: number; min: number };
  /** batchMs / batch */
  frameMs: { median: number; p90: number; min: number };
  /** batch / median batch time */
  framesPerSecond: number;
  /** frames / wall time of the measured runs (includes the hand-over to the worker thread) */
  framesPerSecondWall: number;
  /** flopsPerFrame × framesPerSecond / 1e9, null when the avatar records no FLOPs */
  gflopsPerSecond: number | null;
}

export interface RenderBenchResult {
  kind: 'render';
  machine: MachineInfo;
  avatar: { id: string; description: string; size: number; flopsPerFrame: number | null };
  requestedDevice: RenderDevice;
  device: RenderDevice;
  fallbackReason: string | null;
  threads: number;
  results: BatchResult[];
  loadAverage1m: number;
}

async function benchBatch(id: string, modelPath: string, avatar: Awaited<ReturnType<typeof prepareBenchAvatar>>, b: number, opts: RenderBenchOptions, log: Logger): Promise<{ r: BatchResult; renderer: { device: RenderDevice; fallbackReason: string | null } }> {
  const renderer = await Renderer.create(id, modelPath, avatar.manifest, { device: opts.device, threads: opts.threads, maxBatch: b, runTimeoutMs: 120_000 }, log);
  try {
    const runs: Array<{ ms: number; batch: number; at: number }> = [];
    renderer.onRun = (ms, batch) => runs.push({ ms, batch, at: performance.now() });
    const cond = Float32Array.from(avatar.manifest.conditioning.mean);
    const std = avatar.manifest.conditioning.std;
    // A different input per frame (mean ± half a standard deviation), like live driving.
    const frames = (n: number, k: number): Float32Array[] =>
      Array.from({ length: n }, (_, i) => Float32Array.from(cond, (v, j) => v + 0.5 * (std[j] ?? 1) * Math.sin(0.7 * (k + i) + j)));
    const yuv = new Uint8Array(yuv420pBytes(avatar.manifest.width, avatar.manifest.height));
    const pending: Array<Promise<unknown>> = [];
    pending.push(renderer.renderYuv420p(frames(1, 0)[0] as Float32Array, yuv)); // runs alone, at once
    for (const f of frames((1 + opts.runs) * b, 1)) pending.push(renderer.renderYuv420p(f, yuv));
    await Promise.all(pending);
    const full = runs.filter((x) => x.batch === b);
    const measured = full.slice(-opts.runs);
    if (measured.length < opts.runs) throw new Error(`expected ${opts.runs} runs of ${b} frames, the renderer made ${measured.length}`);
    const warm = full[full.length - opts.runs - 1];
    const ms = measured.map((x) => x.ms);
    const wallMs = (measured.at(-1)?.at ?? 0) - (warm?.at ?? measured[0]?.at ?? 0);
    const med = quantile(ms, 0.5);
    const fps = (b * 1000) / med;
    return {
      r: {
        batch: b,
        runs: measured.length,
        batchMs: { median: round(med, 2), p90: round(quantile(ms, 0.9), 2), min: round(Math.min(...ms), 2) },
        frameMs: { median: round(med / b, 2), p90: round(quantile(ms, 0.9) / b, 2), min: round(Math.min(...ms) / b, 2) },
        framesPerSecond: round(fps, 1),
        framesPerSecondWall: warm && wallMs > 0 ? round((measured.length * b * 1000) / wallMs, 1) : round(fps, 1),
        gflopsPerSecond: avatar.flopsPerFrame ? round((avatar.flopsPerFrame * fps) / 1e9, 2) : null,
      },
      renderer: { device: renderer.device, fallbackReason: renderer.fallbackReason ?? null },
    };
  } finally {
    await renderer.close();
  }
}

export async function runRenderBench(opts: RenderBenchOptions, log: Logger): Promise<RenderBenchResult> {
  const say = opts.onProgress ?? (() => undefined);
  const machine = machineInfo();
  const tmp = mkdtempSync(join(os.tmpdir(), 'dnp-bench-render-'));
  try {
    if (opts.avatar.kind === 'untrained') say(`making an untrained ${opts.avatar.preset} ${opts.avatar.size}x${opts.avatar.size} avatar …`);
    const avatar = await prepareBenchAvatar(opts.avatar, tmp);
    const results: BatchResult[] = [];
    let device: RenderDevice = opts.device;
    let fallbackReason: string | null = null;
    for (const b of opts.batches) {
      say(`batch ${b}: ${opts.runs} runs …`);
      const { r, renderer } = await benchBatch(avatar.id, avatar.modelPath, avatar, b, opts, log);
      results.push(r);
      device = renderer.device;
      fallbackReason = renderer.fallbackReason;
    }
    return {
      kind: 'render',
      machine,
      avatar: { id: avatar.id, description: avatar.description, size: avatar.size, flopsPerFrame: avatar.flopsPerFrame },
      requestedDevice: opts.device,
      device,
      fallbackReason,
      threads: opts.threads,
      results,
      loadAverage1m: loadAverage(),
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export function formatRenderTable(r: RenderBenchResult): string {
  const lines = [
    formatMachine(r.machine),
    `avatar: ${r.avatar.description}${r.avatar.flopsPerFrame ? `, ${round(r.avatar.flopsPerFrame / 1e9, 3)} GFLOP/frame` : ', FLOPs per frame not recorded'}`,
    `device: ${r.device}${r.fallbackReason ? ` (${r.requestedDevice} not usable: ${r.fallbackReason})` : ''}; ORT threads ${r.threads === 0 ? 'one per core' : r.threads}; load average ${r.loadAverage1m} at the end`,
    '',
    '| batch | runs | batch ms median / p90 | frame ms median / p90 (min) | frames/s (wall) | GFLOP/s |',
    '|---|---|---|---|---|---|',
  ];
  for (const b of r.results) {
    lines.push(`| ${b.batch} | ${b.runs} | ${b.batchMs.median} / ${b.batchMs.p90} | ${b.frameMs.median} / ${b.frameMs.p90} (${b.frameMs.min}) | ${b.framesPerSecond} (${b.framesPerSecondWall}) | ${b.gflopsPerSecond ?? '-'} |`);
  }
  return `${lines.join('\n')}\n`;
}
