/**
 * The render bench of the GPU bundle (`npm run bundle:gpu`, scripts/bundle-gpu.js): every avatar folder under
 * AVATARS × every device that starts × the batch sizes, through the server's Renderer (render-bench.ts).
 * Bundled with esbuild into one file that needs only onnxruntime-node next to it (no tsx, no other packages),
 * for GPU hosts without Node or a registry. A device that cannot start (no WebGPU adapter, no CUDA provider, no
 * PyTorch with CUDA for `torch`) is probed once, recorded with its reason and skipped: its "results" would be CPU
 * numbers. A run that fails (a provider's kernel error at one size) is recorded with its error, its batch sizes are
 * tried one by one, and the bench goes on.
 *
 *   node bench.mjs --avatars DIR [--devices torch,webgpu,cuda,cpu] [--batches 1,8,32] [--runs 10] [--threads 0]
 *                  [--sizes 256,512,1024] [--cpu-max-batch 8] [--cpu-max-size 512] [--out results.json]
 */
import { readdirSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { readAvatarManifest } from '../avatars/registry.js';
import { createLogger } from '../log.js';
import { RENDER_DEVICES, type RenderDevice } from '../render/ort-session.js';
import { Renderer } from '../render/renderer.js';
import { commaList, oneOf, parseCommandLine, usageError, valueOptions } from '../cli/args.js';
import { formatRenderTable, runRenderBench, type RenderBenchResult } from './render-bench.js';

const GPU_BENCH_USAGE = `usage: node bench.mjs --avatars DIR [options]
  --avatars DIR          folder of avatar folders (each with avatar.json)
  --devices LIST         torch,webgpu,cuda,cpu  devices to try, in order (${RENDER_DEVICES.join(', ')})
  --batches LIST         1,8,32            batch sizes
  --sizes LIST           all               only avatars of these sizes
  --runs N               10                measured model runs per batch size
  --threads N            0                 ONNX Runtime CPU threads (0 = one per core)
  --cpu-max-batch N      8                 on the CPU, skip larger batches (minutes each at 1024²)
  --cpu-max-size N       512               on the CPU, skip larger avatars
  --out FILE             results.json      all results as JSON (a table goes to stdout)
  --help`;

export interface GpuBenchArgs {
  avatars: string;
  devices: RenderDevice[];
  batches: number[];
  sizes: number[] | null;
  runs: number;
  threads: number;
  cpuMaxBatch: number;
  cpuMaxSize: number;
  out: string;
}

interface DeviceProbe {
  device: RenderDevice;
  starts: boolean;
  reason: string | null;
}

interface GpuBenchReport {
  kind: 'gpu-bundle-bench';
  startedAt: string;
  probes: DeviceProbe[];
  runs: RenderBenchResult[];
  skipped: Array<{ avatar: string; device: RenderDevice; batches: number[]; why: string }>;
  failed: Array<{ avatar: string; device: RenderDevice; batches: number[]; error: string }>;
}

const OPTIONS = valueOptions('avatars', 'devices', 'batches', 'sizes', 'runs', 'threads', 'cpu-max-batch', 'cpu-max-size', 'out');

export function parseGpuBenchArgs(argv: string[]): GpuBenchArgs | 'help' {
  const cl = parseCommandLine(argv, OPTIONS);
  if (cl.help) return 'help';
  const avatars = cl.str('avatars');
  if (!avatars) usageError('--avatars DIR is required');
  const devices = cl.str('devices');
  return {
    avatars,
    devices: devices === undefined ? ['torch', 'webgpu', 'cuda', 'cpu'] : commaList(devices).map((d) => oneOf('devices', d, RENDER_DEVICES)),
    batches: cl.ints('batches', 1, 4096) ?? [1, 8, 32],
    sizes: cl.ints('sizes', 1, 4096) ?? null,
    runs: cl.int('runs', 1, 4096, 10),
    threads: cl.int('threads', 0, 4096, 0),
    cpuMaxBatch: cl.int('cpu-max-batch', 1, 4096, 8),
    cpuMaxSize: cl.int('cpu-max-size', 1, 4096, 512),
    out: cl.str('out') ?? 'results.json',
  };
}

/** Loads the first avatar on `device` with batch 1 and reports whether the device itself started. */
async function probe(device: RenderDevice, avatarDir: string, threads: number, log: ReturnType<typeof createLogger>): Promise<DeviceProbe> {
  const { manifest, modelPath } = readAvatarManifest(avatarDir);
  try {
    const r = await Renderer.create('probe', modelPath, manifest, { device, threads, maxBatch: 1, runTimeoutMs: 120_000 }, log);
    const starts = r.device === device;
    const reason = r.fallbackReason ?? null;
    await r.close();
    return { device, starts, reason };
  } catch (err) {
    return { device, starts: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

async function runGpuBundleBench(a: GpuBenchArgs, say: (line: string) => void): Promise<GpuBenchReport> {
  const quiet = new Writable({ write: (_c, _e, done) => done() });
  const log = createLogger('error', quiet);
  const dirs = readdirSync(a.avatars)
    .map((name) => join(a.avatars, name))
    .filter((d) => existsSync(join(d, 'avatar.json')))
    .filter((d) => !a.sizes || a.sizes.includes(readAvatarManifest(d).manifest.width))
    .sort((x, y) => readAvatarManifest(x).manifest.width - readAvatarManifest(y).manifest.width || x.localeCompare(y));
  if (!dirs.length) throw new Error(`no avatar folders${a.sizes ? ` of sizes ${a.sizes.join(', ')}` : ''} in ${a.avatars}`);
  const report: GpuBenchReport = { kind: 'gpu-bundle-bench', startedAt: new Date().toISOString(), probes: [], runs: [], skipped: [], failed: [] };
  const bench = async (dir: string, device: RenderDevice, batches: number[]): Promise<void> => {
    try {
      report.runs.push(await runRenderBench({ avatar: { kind: 'folder', dir }, batches, runs: a.runs, threads: a.threads, device, onProgress: say }, log));
    } catch (err) {
      const error = err instanceof Error ? err.message.split('\n')[0] ?? err.message : String(err);
      say(`${device} ${dir}: batches ${batches.join(', ')} failed: ${error}`);
      if (batches.length > 1) for (const b of batches) await bench(dir, device, [b]);
      else report.failed.push({ avatar: dir, device, batches, error });
    }
    writeFileSync(a.out, `${JSON.stringify(report, null, 1)}\n`); // partial results survive a crash or a timeout
  };
  for (const device of a.devices) {
    const p = await probe(device, dirs[0] as string, a.threads, log);
    report.probes.push(p);
    say(`device ${device}: ${p.starts ? 'starts' : `does not start (${p.reason ?? 'unknown reason'})`}`);
    if (!p.starts) continue;
    for (const dir of dirs) {
      const size = readAvatarManifest(dir).manifest.width;
      const batches = device === 'cpu' ? a.batches.filter((b) => b <= a.cpuMaxBatch) : a.batches;
      const skipped = a.batches.filter((b) => !batches.includes(b));
      if (device === 'cpu' && size > a.cpuMaxSize) {
        report.skipped.push({ avatar: dir, device, batches: a.batches, why: `CPU: size ${size} > --cpu-max-size ${a.cpuMaxSize}` });
        continue;
      }
      if (skipped.length) report.skipped.push({ avatar: dir, device, batches: skipped, why: `CPU: batch > --cpu-max-batch ${a.cpuMaxBatch}` });
      if (!batches.length) continue;
      say(`${device} ${dir}: batches ${batches.join(', ')} …`);
      await bench(dir, device, batches);
    }
  }
  writeFileSync(a.out, `${JSON.stringify(report, null, 1)}\n`);
  return report;
}

function formatGpuBundleReport(r: GpuBenchReport): string {
  const lines = r.probes.map((p) => `${p.device}: ${p.starts ? 'starts' : `not usable (${p.reason ?? '?'})`}`);
  for (const s of r.skipped) lines.push(`skipped ${s.device} ${s.avatar} batches ${s.batches.join(',')}: ${s.why}`);
  for (const f of r.failed) lines.push(`failed ${f.device} ${f.avatar} batch ${f.batches.join(',')}: ${f.error}`);
  return `${lines.join('\n')}\n\n${r.runs.map(formatRenderTable).join('\n')}`;
}

/** The bundle's entry point (esbuild bundles this file; see scripts/bundle-gpu.js). */
export async function gpuBundleMain(argv: string[]): Promise<number> {
  let a: GpuBenchArgs | 'help';
  try {
    a = parseGpuBenchArgs(argv);
  } catch (err) {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n${GPU_BENCH_USAGE}\n`);
    return 2;
  }
  if (a === 'help') {
    process.stdout.write(`${GPU_BENCH_USAGE}\n`);
    return 0;
  }
  try {
    const r = await runGpuBundleBench(a, (line) => process.stderr.write(`${line}\n`));
    process.stdout.write(formatGpuBundleReport(r));
    return 0;
  } catch (err) {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
