/**
 * An avatar exported with its colour conversion in the graph (`train export --yuv`: output uint8 packed yuv420p)
 * streams the same picture as the same avatar exported with float RGB output (converted on the host by
 * media/rgb-to-yuv.ts): same weights (same seed), one server, one caller each, decoded frames compared.
 * Also at the renderer: both give the same yuv420p bytes (within one level), and render() (float RGB) is refused
 * for a yuv420p avatar with a clear message.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { yuv420pBytes } from '../server/src/media/rgb-to-yuv.js';
import { RtcClient, type ReceivedFrame } from '../server/src/bench/rtc-client.js';
import { makeUntrainedAvatar, type TestAvatar } from './support/test-avatar.js';
import { startTestServer, type TestServer } from './support/server.js';
import { OfflineRenderer, psnr, yuv420pToRgbFfmpeg } from './support/video-compare.js';

const SIZE = 128;

async function firstFrame(url: string, avatar: string): Promise<ReceivedFrame> {
  const client = await RtcClient.connect({ url, avatar, codec: 'vp8' });
  try {
    const until = performance.now() + 10_000;
    let got: ReceivedFrame | null = null;
    client.onFrame = (f) => {
      got = f;
    };
    while (!got && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
    if (!got) throw new Error(`no decoded frame from ${avatar} within 10 s`);
    return got;
  } finally {
    await client.close();
  }
}

describe('avatar with a yuv420p model output', () => {
  let tmp: string;
  let rgbAvatar: TestAvatar;
  let yuvAvatar: TestAvatar;
  let srv: TestServer;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-yuv-'));
    [rgbAvatar, yuvAvatar] = await Promise.all([
      makeUntrainedAvatar(join(tmp, 'avatars', 'rgb'), { size: SIZE, seed: 1 }),
      makeUntrainedAvatar(join(tmp, 'avatars', 'yuv'), { size: SIZE, seed: 1, exportArgs: ['--yuv'] }),
    ]);
    srv = await startTestServer(join(tmp, 'avatars'));
  });

  afterAll(async () => {
    await srv?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('is recorded in avatar.json and loads as a yuv420p renderer', () => {
    expect(yuvAvatar.manifest.model.outputFormat).toBe('yuv420p');
    expect(yuvAvatar.manifest.model.outputs[0]).toEqual({ name: 'yuv420p', dtype: 'uint8', shape: ['batch', yuv420pBytes(SIZE, SIZE)] });
    expect(srv.server.avatars.get('yuv')?.renderer.outputFormat).toBe('yuv420p');
    expect(srv.server.avatars.get('rgb')?.renderer.outputFormat).toBe('rgb');
  });

  it('renders the same yuv420p bytes as the RGB avatar converted on the host, and refuses render()', async () => {
    const rgb = srv.server.avatars.get('rgb')?.renderer;
    const yuv = srv.server.avatars.get('yuv')?.renderer;
    if (!rgb || !yuv) throw new Error('avatars not loaded');
    const n = yuv420pBytes(SIZE, SIZE);
    const std = rgbAvatar.manifest.conditioning.std;
    for (let k = 0; k < 3; k++) {
      const cond = Float32Array.from(rgbAvatar.manifest.conditioning.mean, (v, j) => v + (std[j] ?? 1) * Math.sin(k + 0.3 * j));
      const a = new Uint8Array(n);
      const b = new Uint8Array(n);
      await Promise.all([rgb.renderYuv420p(cond, a), yuv.renderYuv420p(cond, b)]);
      let worst = 0;
      let differ = 0;
      for (let i = 0; i < n; i++) {
        const d = Math.abs((a[i] as number) - (b[i] as number));
        worst = Math.max(worst, d);
        if (d) differ++;
      }
      expect(worst).toBeLessThanOrEqual(1);
      expect(differ / n).toBeLessThan(1e-3);
    }
    await expect(yuv.render(Float32Array.from(yuvAvatar.manifest.conditioning.mean), () => 0)).rejects.toThrow(/renders yuv420p, not RGB: use renderYuv420p/);
    await expect(yuv.renderYuv420p(Float32Array.from(yuvAvatar.manifest.conditioning.mean), new Uint8Array(n - 1))).rejects.toThrow(RangeError);
  });

  it('streams the same picture as the RGB avatar (PSNR >= 40 dB), and the picture the model renders', async () => {
    const fromRgb = await firstFrame(srv.url, 'rgb'); // the neutral face, before any driving frame
    const fromYuv = await firstFrame(srv.url, 'yuv');
    for (const f of [fromRgb, fromYuv]) expect([f.width, f.height]).toEqual([SIZE, SIZE]);
    const a = yuv420pToRgbFfmpeg(fromRgb.yuv, SIZE, SIZE);
    const b = yuv420pToRgbFfmpeg(fromYuv.yuv, SIZE, SIZE);
    expect(psnr(a, b)).toBeGreaterThanOrEqual(40);
    const offline = await OfflineRenderer.open(rgbAvatar.modelPath, rgbAvatar.manifest);
    try {
      const m = rgbAvatar.manifest;
      const neutral = Float32Array.from([...m.neutral.pose, ...m.neutral.gaze, ...m.neutral.blendshapes]);
      expect(psnr(b, await offline.render(neutral))).toBeGreaterThanOrEqual(30);
    } finally {
      await offline.close();
    }
  });
});
