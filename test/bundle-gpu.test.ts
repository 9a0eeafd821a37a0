/**
 * `npm run bundle:gpu` (scripts/bundle-gpu.js): the folder builds, stays within 60 MiB, and its run-bench.sh,
 * run from a copy of the folder elsewhere, unpacks node + onnxruntime-node + the bench and measures the 256²
 * avatar at batch 1 on this machine's CPU, with onnxruntime and with the `torch` device (the bundled render process
 * on this machine's python3, PyTorch on the CPU: the bundle carries what that device needs); WebGPU, which cannot
 * start here, is probed and skipped with its reason. With --encoder, the second folder (the encode bench and node-av)
 * stays within 60 MiB too, and its run-encode.sh, run after run-bench.sh in the same work folder, encodes an
 * avatar's pictures on this CPU.
 * The compressed runtime and the avatars are cached in node_modules/.cache/dnp-gpu-bundle: the first build on a
 * machine takes minutes (xz of ~150 MB, three exports), later ones seconds.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/test-avatar.js';

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'dnp-bundle-'));

interface BenchReport {
  probes: Array<{ device: string; starts: boolean; reason: string | null }>;
  runs: Array<{ device: string; avatar: { size: number; description: string }; results: Array<{ batch: number; frameMs: { median: number }; framesPerSecond: number }> }>;
}

describe('npm run bundle:gpu', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('builds a folder of at most 60 MiB whose run-bench.sh measures the render bench on this CPU; and its encoder part', async () => {
    const out = join(tmp, 'bundle');
    await run(process.execPath, [join(REPO_ROOT, 'scripts', 'bundle-gpu.js'), '--out', out, '--encoder'], { cwd: REPO_ROOT, maxBuffer: 16 << 20 });
    const files = readdirSync(out).sort();
    expect(files).toEqual(['README.txt', 'app.tar.xz', 'bundle.json', 'run-bench.sh', 'runtime.tar.xz']);
    const total = files.reduce((s, f) => s + statSync(join(out, f)).size, 0);
    expect(total).toBeLessThanOrEqual(60 * 1024 * 1024);
    const info = JSON.parse(readFileSync(join(out, 'bundle.json'), 'utf8')) as { node: string; avatars: Array<{ size: number; outputFormat: string; precision: string }> };
    expect(info.node).toBe(process.version);
    expect(info.avatars.map((a) => [a.size, a.outputFormat, a.precision])).toEqual([
      [256, 'yuv420p', 'fp16'],
      [256, 'rgb', 'fp32'],
      [512, 'yuv420p', 'fp16'],
      [512, 'rgb', 'fp32'],
      [1024, 'yuv420p', 'fp16'],
      [1024, 'rgb', 'fp32'],
    ]);

    const encoderFiles = readdirSync(`${out}-encoder`).sort();
    expect(encoderFiles).toEqual(['encoder.tar.xz', 'run-encode.sh']);
    expect(encoderFiles.reduce((s, f) => s + statSync(join(`${out}-encoder`, f)).size, 0)).toBeLessThanOrEqual(60 * 1024 * 1024);

    const copy = join(tmp, 'elsewhere');
    cpSync(out, copy, { recursive: true });
    cpSync(`${out}-encoder`, `${copy}-encoder`, { recursive: true });
    const results = join(tmp, 'results');
    const env = { PATH: '/usr/bin:/bin', DNP_BUNDLE_WORK: join(tmp, 'work'), OUT: results, DNP_TORCH_DEVICE: 'cpu' };
    const { stdout } = await run(join(copy, 'run-bench.sh'), ['--sizes', '256', '--batches', '1', '--devices', 'torch,webgpu,cpu', '--runs', '2', '--threads', '1'], { env, maxBuffer: 16 << 20 });
    expect(stdout).toContain('| batch |');
    const report = JSON.parse(readFileSync(join(results, 'results.json'), 'utf8')) as BenchReport;
    const cpu = report.probes.find((p) => p.device === 'cpu');
    expect(cpu?.starts).toBe(true);
    const webgpu = report.probes.find((p) => p.device === 'webgpu');
    if (!webgpu?.starts) expect(webgpu?.reason).toMatch(/\S/); // no adapter here: skipped, with the reason
    expect(report.probes.find((p) => p.device === 'torch')).toEqual({ device: 'torch', starts: true, reason: null });
    const onTorch = report.runs.filter((r) => r.device === 'torch');
    expect(onTorch.map((r) => /yuv420p fp16|rgb fp32/.exec(r.avatar.description)?.[0]).sort()).toEqual(['rgb fp32', 'yuv420p fp16']);
    for (const r of onTorch) expect(r.results[0]?.frameMs.median).toBeGreaterThan(0);
    const onCpu = report.runs.filter((r) => r.device === 'cpu');
    expect(onCpu.map((r) => r.avatar.size)).toEqual([256, 256]);
    expect(onCpu.map((r) => /yuv420p fp16|rgb fp32/.exec(r.avatar.description)?.[0]).sort()).toEqual(['rgb fp32', 'yuv420p fp16']);
    for (const r of onCpu) {
      const b1 = r.results[0];
      expect(b1?.batch).toBe(1);
      expect(b1?.frameMs.median).toBeGreaterThan(0);
      expect(b1?.framesPerSecond).toBeGreaterThan(0);
    }

    // the encoder part, in the work folder run-bench.sh unpacked: an untrained avatar's pictures, scaled, encoded
    const paper = join(tmp, 'work', 'app', 'avatars', 'paper-256-fp16-yuv420p');
    const enc = await run(join(`${copy}-encoder`, 'run-encode.sh'), ['--avatar', paper, '--size', '128', '--streams', '1,2', '--seconds', '1', '--frames', '2', '--workers', '1', '--all'], { env, maxBuffer: 16 << 20 });
    expect(enc.stdout).toContain('| streams |');
    const encoded = JSON.parse(readFileSync(join(results, 'encode.json'), 'utf8')) as { kind: string; size: number; workers: number; results: Array<{ streams: number; framesPerSecond: number; encodeMs: { median: number } }> };
    expect(encoded).toMatchObject({ kind: 'encode', size: 128, workers: 1 });
    expect(encoded.results.map((r) => r.streams)).toEqual([1, 2]);
    for (const r of encoded.results) {
      expect(r.framesPerSecond).toBeGreaterThan(0);
      expect(r.encodeMs.median).toBeGreaterThan(0);
    }
  }, 1_800_000);
});
