/**
 * The `torch` render device (server/src/render/torch-session.mjs + train/render_process.py): the avatar's own ONNX
 * graph run by a PyTorch process. It is meant for PyTorch GPU hosts (CUDA graphs); here, with no GPU, the same
 * process runs on PyTorch's CPU (DNP_TORCH_DEVICE=cpu), which exercises the whole path: spawn, the binary pipe
 * protocol, batching, the yuv420p output, close. Its frames must match onnxruntime's; a torch device that cannot
 * start falls back to onnxruntime on the CPU with the process's own reason.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseAvatarManifest } from '../shared/src/avatar-manifest.js';
import { createLogger } from '../server/src/log.js';
import { Renderer } from '../server/src/render/renderer.js';
import { REPO_ROOT, makeUntrainedAvatar, type TestAvatar } from './support/test-avatar.js';

const ENV_KEYS = ['DNP_TORCH_DEVICE', 'DNP_PYTHON', 'DNP_TORCH_GRAPHS'] as const;
const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));

function restoreEnv(): void {
  for (const k of ENV_KEYS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
}

/** Renders `conds` as one batch (all queued at once) and returns each frame's values. */
async function renderAll(r: Renderer, conds: Float32Array[]): Promise<Array<Float32Array | Uint8Array>> {
  if (r.outputFormat === 'rgb') return Promise.all(conds.map((c) => r.render(c, (rgb) => rgb.slice())));
  const n = (r.width * r.height * 3) / 2;
  return Promise.all(conds.map(async (c) => {
    const yuv = new Uint8Array(n);
    await r.renderYuv420p(c, yuv);
    return yuv;
  }));
}

function conditions(r: Renderer, count: number): Float32Array[] {
  const { mean, std } = r.manifest.conditioning;
  return Array.from({ length: count }, (_, k) => Float32Array.from(mean, (m, i) => m + 0.8 * (std[i] ?? 1) * Math.sin(1.3 * k + 0.7 * i)));
}

/** The largest absolute difference between two renders of the same frames, and how many values differ at all. */
function difference(x: ArrayLike<number>, y: ArrayLike<number>): { worst: number; differ: number } {
  let worst = 0;
  let differ = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs((x[i] ?? 0) - (y[i] ?? 0));
    worst = Math.max(worst, d);
    if (d) differ++;
  }
  return { worst, differ };
}

describe('torch render device', () => {
  let tmp: string;
  let rgbAvatar: TestAvatar;
  let yuvAvatar: TestAvatar;
  const log = createLogger('silent');
  const open: Renderer[] = [];

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-torch-'));
    rgbAvatar = await makeUntrainedAvatar(join(tmp, 'rgb'), { size: 64 });
    yuvAvatar = await makeUntrainedAvatar(join(tmp, 'yuv'), { size: 64, exportArgs: ['--yuv', '--fp16'] });
  });

  afterEach(async () => {
    for (const r of open.splice(0)) await r.close();
    restoreEnv();
  });

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  async function pair(a: TestAvatar): Promise<[Renderer, Renderer]> {
    process.env.DNP_TORCH_DEVICE = 'cpu';
    const torch = await Renderer.create('t', a.modelPath, a.manifest, { device: 'torch', threads: 1, maxBatch: 4 }, log);
    open.push(torch);
    const ort = await Renderer.create('o', a.modelPath, a.manifest, { device: 'cpu', threads: 1, maxBatch: 4 }, log);
    open.push(ort);
    // a comparison with onnxruntime proves nothing if the torch device fell back to onnxruntime's CPU provider
    expect(torch.fallbackReason).toBeUndefined();
    expect(torch.device).toBe('torch');
    return [torch, ort];
  }

  it('renders an RGB avatar as onnxruntime does, one frame and a batch of four', async () => {
    const [torch, ort] = await pair(rgbAvatar);
    expect(torch.device).toBe('torch');
    expect(torch.fallbackReason).toBeUndefined();
    for (const batch of [1, 4]) {
      const conds = conditions(torch, batch);
      const [a, b] = [await renderAll(torch, conds), await renderAll(ort, conds)];
      for (let k = 0; k < batch; k++) {
        const x = a[k] as Float32Array;
        const y = b[k] as Float32Array;
        expect(x.length).toBe(3 * 64 * 64);
        expect(difference(x, y).worst).toBeLessThan(1e-4);
      }
    }
    expect(torch.toJSON().maxBatchSeen).toBeGreaterThanOrEqual(2); // frames queued together went through the process as one batch
  });

  it('logs, through the server\'s logger, how each batch size runs (a CUDA graph, or eagerly and why)', async () => {
    process.env.DNP_TORCH_DEVICE = 'cpu';
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done): void {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const r = await Renderer.create('t', rgbAvatar.modelPath, rgbAvatar.manifest, { device: 'torch', threads: 1, maxBatch: 2 }, createLogger('info', sink));
    open.push(r);
    await renderAll(r, conditions(r, 1));
    const said = (): string[] => lines.filter((l) => l.msg === 'render process').map((l) => String(l.line));
    // the process's stderr travels on a pipe of its own, so the line may come after the frame: wait for it (≤ 10 s)
    for (let i = 0; i < 200 && said().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(said()).toContain('render_process: batch 1 runs eagerly (no CUDA device)');
  });

  it('renders the shipped default avatar (variant W: GridSample, head geometry) as onnxruntime does', async () => {
    const file = join(REPO_ROOT, 'avatars', 'default', 'avatar.json');
    const manifest = parseAvatarManifest(JSON.parse(readFileSync(file, 'utf8')), file);
    const [torch, ort] = await pair({ dir: join(REPO_ROOT, 'avatars', 'default'), manifest, modelPath: join(REPO_ROOT, 'avatars', 'default', manifest.model.file) });
    const conds = conditions(torch, 2);
    const [a, b] = [await renderAll(torch, conds), await renderAll(ort, conds)];
    for (let k = 0; k < 2; k++) {
      expect(difference(a[k] as Float32Array, b[k] as Float32Array).worst).toBeLessThan(1e-4);
    }
  });

  it('passes a yuv420p fp16 avatar\'s bytes through (within one level of onnxruntime\'s in < 3 % of the bytes)', async () => {
    const [torch, ort] = await pair(yuvAvatar);
    expect(torch.outputFormat).toBe('yuv420p');
    const conds = conditions(torch, 3);
    const [a, b] = [await renderAll(torch, conds), await renderAll(ort, conds)];
    for (let k = 0; k < 3; k++) {
      const x = a[k] as Uint8Array;
      const y = b[k] as Uint8Array;
      expect(x.length).toBe((64 * 64 * 3) / 2);
      const { worst, differ } = difference(x, y);
      expect(worst).toBeLessThanOrEqual(1);
      expect(differ / x.length).toBeLessThan(0.03);
    }
  });

  it('falls back to onnxruntime on the CPU with the process\'s reason where PyTorch has no CUDA device', async () => {
    process.env.DNP_TORCH_DEVICE = 'cuda';
    const r = await Renderer.create('t', rgbAvatar.modelPath, rgbAvatar.manifest, { device: 'torch', threads: 1, maxBatch: 2 }, log);
    open.push(r);
    expect(r.device).toBe('cpu');
    expect(r.fallbackReason).toMatch(/sees no CUDA device/);
    const [frame] = await renderAll(r, conditions(r, 1));
    expect(frame?.length).toBe(3 * 64 * 64);
  });

  it('falls back where the Python interpreter does not exist, and close() is safe twice', async () => {
    process.env.DNP_PYTHON = join(tmp, 'no-such-python');
    const r = await Renderer.create('t', rgbAvatar.modelPath, rgbAvatar.manifest, { device: 'torch', threads: 1, maxBatch: 2 }, log);
    expect(r.device).toBe('cpu');
    expect(r.fallbackReason).toMatch(/PyTorch render process ended.*ENOENT/);
    await r.close();
    await r.close();
  });
});
