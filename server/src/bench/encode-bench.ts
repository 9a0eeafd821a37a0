/**
 * `dnp bench encode`: the encoders alone (no WebRTC, no model runs while measuring). How many sessions can this
 * machine's cores encode? The answer bounds the sessions per machine where rendering is elsewhere (a GPU).
 *
 * The content is the avatar's own: `frames` pictures rendered once on the CPU along a looping path through its
 * conditioning (mean ± half a standard deviation, one or two cycles per loop), converted to yuv420p as the server
 * does, and scaled (bilinear, per plane) when `size` differs from the avatar's. Then, for each stream count S, S
 * encoders are opened on the server's EncodePool (`workers` threads; the same encoders, options and default
 * bitrate as a session) and every stream is given a picture every 1/fps s, as the server's render tick does. A
 * stream whose previous picture is still being encoded skips the tick (the server drops such a frame too). The
 * step holds when every stream delivered at least `holdFps` frames/s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { VideoCodecName } from '../../../shared/src/signaling.js';
import type { Logger } from '../log.js';
import { EncodePool } from '../media/encode-pool.js';
import type { FrameEncoder } from '../media/frame-encoder.js';
import { yuv420pBytes } from '../media/rgb-to-yuv.js';
import { Renderer } from '../render/renderer.js';
import { defaultBitrate } from '../session/video-output.js';
import { prepareBenchAvatar, type BenchAvatar, type BenchAvatarSource } from './bench-avatar.js';
import { formatMachine, loadAverage, machineInfo, type MachineInfo } from './machine.js';
import { quantile, round } from './stats.js';

export interface EncodeBenchOptions {
  /** whose pictures are encoded */
  avatar: BenchAvatarSource;
  /** picture size (square, even); null: the avatar's */
  size: number | null;
  codec: VideoCodecName;
  /** stream counts, measured in this order */
  streams: number[];
  /** encode worker threads (the server's --encode-workers; 0 = inline on the main thread) */
  workers: number;
  /** measured seconds per step (after one second of warm-up) */
  seconds: number;
  /** pictures per second per stream */
  fps: number;
  /** a step holds when every stream delivered at least this many frames/s */
  holdFps: number;
  /** bit/s per stream; 0 = the server's default for the size and rate */
  bitrate: number;
  /** libvpx `cpu-used` of VP8 streams (the server's --vp8-cpu-used) */
  vp8CpuUsed: number;
  /** distinct pictures rendered for the loop */
  frames: number;
  /** stop after the first step that does not hold */
  stopWhenNotHeld: boolean;
  onProgress?: (line: string) => void;
}

export interface EncodeStepResult {
  streams: number;
  /** frames/s each stream delivered: slowest and median */
  fpsPerStream: { min: number; median: number };
  /** one picture's conversion + encode + packetising, on its worker (ms) */
  encodeMs: { median: number; p90: number };
  /** ticks a stream skipped because its previous picture was still being encoded */
  skipped: number;
  framesPerSecond: number;
  kbitPerSecondPerStream: number;
  /** the process's CPU time over the wall time: cores kept busy */
  coresBusy: number;
  held: boolean;
}

export interface EncodeBenchResult {
  kind: 'encode';
  machine: MachineInfo;
  content: string;
  codec: VideoCodecName;
  size: number;
  fps: number;
  bitrate: number;
  /** libvpx `cpu-used` (VP8 only) */
  vp8CpuUsed: number;
  workers: number;
  results: EncodeStepResult[];
  /** the most streams of a step that held (0 when none did) */
  streamsHeld: number;
  loadAverage1m: number;
}

/** Bilinear scaling of one 8-bit plane (pixel centres aligned), into `dst`. */
export function scalePlane(src: Uint8Array, sw: number, sh: number, dst: Uint8Array, dw: number, dh: number): void {
  const fx = sw / dw;
  const fy = sh / dh;
  for (let y = 0; y < dh; y++) {
    const sy = Math.min(Math.max((y + 0.5) * fy - 0.5, 0), sh - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, sh - 1);
    const wy = sy - y0;
    for (let x = 0; x < dw; x++) {
      const sx = Math.min(Math.max((x + 0.5) * fx - 0.5, 0), sw - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, sw - 1);
      const wx = sx - x0;
      const top = (src[y0 * sw + x0] as number) * (1 - wx) + (src[y0 * sw + x1] as number) * wx;
      const bottom = (src[y1 * sw + x0] as number) * (1 - wx) + (src[y1 * sw + x1] as number) * wx;
      dst[y * dw + x] = Math.round(top * (1 - wy) + bottom * wy);
    }
  }
}

/** A packed yuv420p picture scaled to `dw`×`dh`. */
export function scaleYuv420p(src: Uint8Array, sw: number, sh: number, dw: number, dh: number): Uint8Array {
  const out = new Uint8Array(yuv420pBytes(dw, dh));
  const [sl, dl] = [sw * sh, dw * dh];
  const [sc, dc] = [(sw / 2) * (sh / 2), (dw / 2) * (dh / 2)];
  scalePlane(src.subarray(0, sl), sw, sh, out.subarray(0, dl), dw, dh);
  scalePlane(src.subarray(sl, sl + sc), sw / 2, sh / 2, out.subarray(dl, dl + dc), dw / 2, dh / 2);
  scalePlane(src.subarray(sl + sc, sl + 2 * sc), sw / 2, sh / 2, out.subarray(dl + dc, dl + 2 * dc), dw / 2, dh / 2);
  return out;
}

/** The avatar's pictures along a looping path (rendered on the CPU, as yuv420p). */
async function renderLoop(avatar: BenchAvatar, frames: number, log: Logger): Promise<Uint8Array[]> {
  const m = avatar.manifest;
  const renderer = await Renderer.create(avatar.id, avatar.modelPath, m, { device: 'cpu', threads: 0, maxBatch: 8 }, log);
  try {
    const { mean, std } = m.conditioning;
    const pictures = Array.from({ length: frames }, () => new Uint8Array(yuv420pBytes(m.width, m.height)));
    await Promise.all(pictures.map((yuv, i) => {
      const phase = (2 * Math.PI * i) / frames;
      const cond = Float32Array.from(mean, (v, j) => v + 0.5 * (std[j] ?? 1) * Math.sin(phase * (1 + (j % 2)) + j));
      return renderer.renderYuv420p(cond, yuv);
    }));
    return pictures;
  } finally {
    await renderer.close();
  }
}

async function runStep(pool: EncodePool, pictures: readonly Uint8Array[], streams: number, size: number, bitrate: number, opts: EncodeBenchOptions): Promise<EncodeStepResult> {
  const encoders: FrameEncoder[] = [];
  try {
    for (let s = 0; s < streams; s++) {
      encoders.push(pool.open({ codec: opts.codec, width: size, height: size, fps: opts.fps, bitrate, maxPacketSize: 1200, rgbInput: false }));
    }
    await Promise.all(encoders.map((e) => e.opened()));
    const tickMs = 1000 / opts.fps;
    const warmupTicks = Math.round(opts.fps);
    const measuredTicks = Math.round(opts.seconds * opts.fps);
    const busy = new Array<boolean>(streams).fill(false);
    const delivered = new Array<number>(streams).fill(0);
    const bytes = new Array<number>(streams).fill(0);
    const encodeMs: number[] = [];
    let skipped = 0;
    let measuring = false;
    let failure: Error | null = null;
    const inFlight = new Set<Promise<void>>();
    const t0 = performance.now();
    let cpu0 = process.cpuUsage();
    let wall0 = t0;
    for (let tick = 0; tick < warmupTicks + measuredTicks && !failure; tick++) {
      if (tick === warmupTicks) {
        measuring = true;
        cpu0 = process.cpuUsage();
        wall0 = performance.now();
      }
      for (let s = 0; s < streams; s++) {
        if (busy[s]) {
          if (measuring) skipped++;
          continue;
        }
        const e = encoders[s] as FrameEncoder;
        // streams start at different points of the loop, as callers would
        e.picture.yuv.set(pictures[(tick + s * 7) % pictures.length] as Uint8Array);
        busy[s] = true;
        const counted = measuring;
        const p: Promise<void> = e.encode('yuv420p', Math.round(tick * (90_000 / opts.fps)), tick === 0).then(
          (f) => {
            busy[s] = false;
            if (!counted) return;
            delivered[s] = (delivered[s] as number) + 1;
            bytes[s] = (bytes[s] as number) + f.bytes;
            encodeMs.push(f.encodeMs);
          },
          (err: unknown) => {
            failure = err instanceof Error ? err : new Error(String(err));
          },
        ).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      const next = t0 + (tick + 1) * tickMs;
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const wallS = (performance.now() - wall0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await Promise.all(inFlight);
    if (failure) throw failure;
    const fps = delivered.map((n) => n / wallS);
    const total = delivered.reduce((a, b) => a + b, 0);
    const minFps = Math.min(...fps);
    return {
      streams,
      fpsPerStream: { min: round(minFps, 1), median: round(quantile(fps, 0.5), 1) },
      encodeMs: { median: round(quantile(encodeMs, 0.5), 2), p90: round(quantile(encodeMs, 0.9), 2) },
      skipped,
      framesPerSecond: round(total / wallS, 1),
      kbitPerSecondPerStream: round((8 * bytes.reduce((a, b) => a + b, 0)) / wallS / streams / 1000, 0),
      coresBusy: round((cpu.user + cpu.system) / 1e6 / wallS, 2),
      held: minFps >= opts.holdFps,
    };
  } finally {
    for (const e of encoders) e.close();
  }
}

export async function runEncodeBench(opts: EncodeBenchOptions, log: Logger): Promise<EncodeBenchResult> {
  const say = opts.onProgress ?? (() => undefined);
  const machine = machineInfo();
  const tmp = mkdtempSync(join(os.tmpdir(), 'dnp-bench-encode-'));
  const pool = new EncodePool({ workers: opts.workers, log, vp8CpuUsed: opts.vp8CpuUsed });
  try {
    if (opts.avatar.kind === 'untrained') say(`making an untrained ${opts.avatar.preset} ${opts.avatar.size}x${opts.avatar.size} avatar …`);
    const avatar = await prepareBenchAvatar(opts.avatar, tmp);
    const size = opts.size ?? avatar.size;
    say(`rendering ${opts.frames} pictures of ${avatar.description} on the CPU …`);
    let pictures = await renderLoop(avatar, opts.frames, log);
    const m = avatar.manifest;
    let content = `${avatar.description} (${avatar.id}), ${opts.frames} pictures in a loop`;
    if (m.width !== size || m.height !== size) {
      pictures = pictures.map((p) => scaleYuv420p(p, m.width, m.height, size, size));
      content += `, rendered at ${m.width}x${m.height} and scaled to ${size}x${size}`;
    }
    const bitrate = opts.bitrate > 0 ? opts.bitrate : defaultBitrate(size, size, opts.fps);
    const results: EncodeStepResult[] = [];
    for (const n of opts.streams) {
      say(`${n} stream${n === 1 ? '' : 's'}: ${opts.seconds} s …`);
      const r = await runStep(pool, pictures, n, size, bitrate, opts);
      results.push(r);
      say(`  slowest stream ${r.fpsPerStream.min} frames/s, encode ${r.encodeMs.median} ms, ${r.coresBusy} cores busy${r.held ? '' : ' (not held)'}`);
      if (!r.held && opts.stopWhenNotHeld) break;
    }
    return {
      kind: 'encode',
      machine,
      content,
      codec: opts.codec,
      size,
      fps: opts.fps,
      bitrate,
      vp8CpuUsed: pool.vp8CpuUsed,
      workers: pool.size,
      results,
      streamsHeld: Math.max(0, ...results.filter((r) => r.held).map((r) => r.streams)),
      loadAverage1m: loadAverage(),
    };
  } finally {
    await pool.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

export function formatEncodeTable(r: EncodeBenchResult): string {
  const lines = [
    formatMachine(r.machine),
    `content: ${r.content}`,
    `encoder: ${r.codec} ${r.size}x${r.size} at ${r.fps} fps, ${round(r.bitrate / 1000, 0)} kbit/s target${r.codec === 'vp8' ? `, cpu-used ${r.vp8CpuUsed}` : ''}, ${r.workers === 0 ? 'inline on the main thread' : `${r.workers} encode workers`}; load average ${r.loadAverage1m} at the end`,
    '',
    '| streams | frames/s per stream: slowest / median | encode ms median / p90 | skipped ticks | frames/s | kbit/s per stream | cores busy | held |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const s of r.results) {
    lines.push(`| ${s.streams} | ${s.fpsPerStream.min} / ${s.fpsPerStream.median} | ${s.encodeMs.median} / ${s.encodeMs.p90} | ${s.skipped} | ${s.framesPerSecond} | ${s.kbitPerSecondPerStream} | ${s.coresBusy} | ${s.held ? 'yes' : 'no'} |`);
  }
  lines.push('', `streams held at ${r.fps} fps: ${r.streamsHeld}${r.results.some((s) => !s.held) ? '' : ' (every step held; try more streams)'}`);
  return `${lines.join('\n')}\n`;
}
