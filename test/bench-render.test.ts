/**
 * `dnp bench render`: the renderer alone on a tiny untrained avatar (warp, 64²): per-batch and per-frame times,
 * frames/s and GFLOP/s present and consistent with each other; a device that is not available falls back to the
 * CPU with a reason. No wall-clock thresholds (the machine is shared).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRenderBench } from '../server/src/bench/render-bench.js';
import { exportUntrainedAvatar } from '../server/src/bench/untrained-avatar.js';
import { createLogger } from '../server/src/log.js';
import { Writable } from 'node:stream';

describe('dnp bench render', () => {
  let tmp = '';
  let dir = '';
  const logged: string[] = [];
  const log = createLogger('warn', new Writable({ write: (c: Buffer, _e, done) => (logged.push(c.toString()), done()) }));

  beforeAll(async () => {
    tmp = mkdtempSync(join(os.tmpdir(), 'dnp-bench-render-test-'));
    dir = join(tmp, 'tiny');
    await exportUntrainedAvatar(dir, { size: 64, fps: 25, preset: 'warp', name: 'tiny' });
  });
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('times batches of 1 and 3: numbers present and consistent', async () => {
    const r = await runRenderBench({ avatar: { kind: 'folder', dir }, batches: [1, 3], runs: 4, threads: 1, device: 'cpu' }, log);
    expect(r.device).toBe('cpu');
    expect(r.fallbackReason).toBeNull();
    expect(r.avatar.size).toBe(64);
    const flops = r.avatar.flopsPerFrame;
    expect(flops).toBeGreaterThan(0);
    expect(r.results.map((b) => b.batch)).toEqual([1, 3]);
    for (const b of r.results) {
      expect(b.runs).toBe(4);
      expect(b.batchMs.median).toBeGreaterThan(0);
      expect(b.batchMs.p90).toBeGreaterThanOrEqual(b.batchMs.median);
      expect(b.batchMs.min).toBeLessThanOrEqual(b.batchMs.median);
      expect(b.frameMs.median).toBeCloseTo(b.batchMs.median / b.batch, 1);
      expect(b.framesPerSecond).toBeCloseTo((1000 * b.batch) / b.batchMs.median, -1);
      expect(b.framesPerSecondWall).toBeGreaterThan(0);
      // The wall clock includes the model runs: it cannot be faster than the model time allows (2 % rounding).
      expect(b.framesPerSecondWall).toBeLessThanOrEqual((1000 * b.batch) / b.batchMs.min * 1.02);
      expect(b.gflopsPerSecond).toBeCloseTo(((flops ?? 0) * b.framesPerSecond) / 1e9, 1);
    }
  }, 180_000);

  it('falls back to the CPU with a logged reason when the device is not usable', async () => {
    logged.length = 0;
    const r = await runRenderBench({ avatar: { kind: 'folder', dir }, batches: [2], runs: 2, threads: 1, device: 'cuda' }, log);
    if (r.device === 'cuda') return; // a machine with the CUDA provider: nothing to fall back from
    expect(r.device).toBe('cpu');
    expect(r.requestedDevice).toBe('cuda');
    expect(r.fallbackReason).toMatch(/\S/);
    expect(logged.join('')).toMatch(/falling back to CPU/);
    expect(r.results[0]?.framesPerSecond).toBeGreaterThan(0);
  }, 180_000);
});
