/**
 * Render device selection: asking for a GPU execution provider that cannot be used here falls back to the
 * CPU with a clear log line, and the avatar still renders. On this project's CI machines (no GPU, no
 * Vulkan loader) WebGPU fails at session creation ("Failed to get a WebGPU adapter") and CUDA's provider
 * is not installed, so both take the fallback path. On a machine where WebGPU does work, run with
 * DNP_TEST_EXPECT_WEBGPU=1 to assert the WebGPU path instead.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RenderDevice } from '../server/src/render/ort-session.js';
import { makeUntrainedAvatar } from './support/test-avatar.js';
import { startTestServer } from './support/server.js';

const EXPECT_WEBGPU = process.env.DNP_TEST_EXPECT_WEBGPU === '1';

describe('render device fallback', () => {
  let tmp: string;
  let avatars: string;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-dev-'));
    avatars = join(tmp, 'avatars');
    await makeUntrainedAvatar(join(avatars, 'a'), { size: 128 });
  });

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const cases: Array<[RenderDevice, boolean]> = [
    ['webgpu', !EXPECT_WEBGPU],
    ['cuda', true],
  ];
  for (const [device, expectFallback] of cases) {
    it(`${device} requested → ${expectFallback ? 'falls back to CPU with a logged reason' : 'runs on the GPU'}, and renders`, async () => {
      const srv = await startTestServer(avatars, { device });
      try {
        const a = srv.server.avatars.get('a');
        expect(a).toBeDefined();
        if (!a) return;
        if (expectFallback) {
          expect(a.renderer.device).toBe('cpu');
          expect(a.renderer.fallbackReason).toBeTruthy();
          const line = srv.logs.find((l) => l.level === 40 && l.requested === device);
          expect(line?.msg).toMatch(new RegExp(`device "${device}" is not usable here .*falling back to CPU`));
          expect(typeof line?.reason).toBe('string');
        } else {
          expect(a.renderer.device).toBe(device);
        }
        const cond = Float32Array.from(a.manifest.conditioning.mean);
        const stats = await a.renderer.render(cond, (rgb) => {
          let lo = Infinity;
          let hi = -Infinity;
          for (const v of rgb) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
          }
          return { n: rgb.length, lo, hi };
        });
        expect(stats.n).toBe(3 * 128 * 128);
        expect(stats.lo).toBeGreaterThanOrEqual(0);
        expect(stats.hi).toBeLessThanOrEqual(1);
        expect(stats.hi - stats.lo).toBeGreaterThan(0.05); // a picture, not a constant
      } finally {
        await srv.close();
      }
    });
  }
});
