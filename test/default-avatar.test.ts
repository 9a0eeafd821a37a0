// The shipped default avatar (avatars/default): a valid, small avatar folder made by our own pipeline from the
// synthetic presenter; compared with the generator itself on driving vectors it was not trained on; and served by
// `dnp serve` with no --avatars argument (the fresh-clone path), with frames arriving over WebRTC.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normaliseConditioning, parseAvatarManifest, type AvatarManifest } from '../shared/src/avatar-manifest.js';
import { DEFAULT_FRAMING } from '../client/src/synth/presenter.js';
import { RtcClient } from '../server/src/bench/rtc-client.js';
import { heldOutVectors } from '../server/src/synth/held-out.js';
import { SynthRenderer, VECTOR_SIZE } from '../server/src/synth/renderer.js';
import { startServeChild } from './support/serve-child.js';
import { ensureSynthPageBuilt } from './support/synth-helpers.js';
import { REPO_ROOT } from './support/test-avatar.js';

const DIR = join(REPO_ROOT, 'avatars', 'default');
/** Measured on the committed avatar: 30.22 dB on these 40 vectors (the avatars before it: 27.52, 27.11, 26.75;
 * avatars/default/PROVENANCE.md); the goal is 30 dB. The bound leaves room for the generator's drawing on
 * another machine. */
const MIN_PSNR_DB = 29.5;

function readManifest(): AvatarManifest {
  return parseAvatarManifest(JSON.parse(readFileSync(join(DIR, 'avatar.json'), 'utf8')), 'avatars/default/avatar.json');
}

function psnr(a: Float32Array, b: Uint8Array | Buffer): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) * 255 - (b[i] as number);
    se += d * d;
  }
  return 10 * Math.log10((255 * 255) / Math.max(se / a.length, 1e-10));
}

describe('the shipped default avatar', () => {
  it('is a valid trained avatar folder under 10 MB whose neutral face is the generator neutral', () => {
    const m = readManifest();
    expect(m.width).toBe(256);
    expect(m.driving).toBe('expression');
    expect(m.training['provenance']).toBe('trained');
    expect(m.training['variant']).toBe('W');
    const bytes = readdirSync(DIR).reduce((n, f) => n + statSync(join(DIR, f)).size, 0);
    expect(bytes).toBeLessThan(10 * 1024 * 1024);
    expect(m.neutral.pose).toEqual([0, 0, 0, DEFAULT_FRAMING.tx, DEFAULT_FRAMING.ty, DEFAULT_FRAMING.tz]);
    expect(m.neutral.gaze).toEqual([0, 0]);
    expect(m.neutral.blendshapes.every((b) => b === 0)).toBe(true);
    const prov = readFileSync(join(DIR, 'PROVENANCE.md'), 'utf8');
    expect(prov).toMatch(/dnp synth/);
    expect(prov).toMatch(/--seed 11\b/);
  });

  describe('against the generator on held-out driving vectors', () => {
    let synth: SynthRenderer | null = null;
    let session: ort.InferenceSession | null = null;
    beforeAll(async () => {
      ensureSynthPageBuilt();
      synth = await SynthRenderer.start({ size: 256, handleSignals: false });
      session = await ort.InferenceSession.create(join(DIR, 'avatar.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1 });
    }, 120_000);
    afterAll(async () => {
      await synth?.close();
      await session?.release();
    });

    it(`renders them within ${MIN_PSNR_DB} dB PSNR of the generator on average`, async () => {
      if (!synth || !session) throw new Error('not started');
      const m = readManifest();
      // a trajectory of the same recipe with another seed than the training dataset's (7, not 11): 40 vectors, the
      // same as scripts/default-vs-generator.ts (8 were too few: one frame's head placement moved the mean by 0.3 dB)
      const { picks, vectors: all } = heldOutVectors(40);
      const plane = 256 * 256;
      const scores: number[] = [];
      for (let start = 0; start < picks.length; start += 8) {
        const n = Math.min(8, picks.length - start);
        const vectors = all.subarray(start * VECTOR_SIZE, (start + n) * VECTOR_SIZE);
        const truth = await synth.render(vectors, n);
        const cond = normaliseConditioning(m.conditioning, vectors);
        const out = await session.run({ cond: new ort.Tensor('float32', cond, [n, VECTOR_SIZE]) });
        const rgb = out['rgb']?.data as Float32Array;
        for (let i = 0; i < n; i++) {
          const hwc = new Float32Array(plane * 3); // CHW planar → packed RGB like the generator's frames
          for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) hwc[p * 3 + c] = rgb[(i * 3 + c) * plane + p] as number;
          scores.push(psnr(hwc, truth[i] as Buffer));
        }
      }
      const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
      if (process.env['DNP_TEST_VERBOSE']) console.log('default avatar vs generator PSNR', scores.map((s) => s.toFixed(2)).join(' '), 'mean', mean.toFixed(2));
      expect(mean).toBeGreaterThan(MIN_PSNR_DB);
    }, 120_000);
  });

  it('is served by `dnp serve` with no --avatars argument, and its frames arrive over WebRTC', async () => {
    const serve = await startServeChild(['--port', '0', '--log-level', 'warn']);
    const url = serve.url;
    let client: RtcClient | null = null;
    try {
      const avatars = (await (await fetch(`${url}/avatars`)).json()) as Array<{ id: string }>;
      expect(avatars.map((a) => a.id)).toContain('default');
      client = await RtcClient.connect({ url, avatar: 'default', timeoutMs: 30_000 });
      const c = client;
      const frame = await new Promise<{ width: number; yuv: Buffer }>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no frame within 30 s')), 30_000);
        c.onFrame = (f) => {
          clearTimeout(t);
          resolve({ width: f.width, yuv: f.yuv });
        };
      });
      expect(frame.width).toBe(256);
      // a picture, not a flat field: the luma plane varies
      const y = frame.yuv.subarray(0, 256 * 256);
      let mean = 0;
      for (const v of y) mean += v;
      mean /= y.length;
      let varSum = 0;
      for (const v of y) varSum += (v - mean) ** 2;
      expect(Math.sqrt(varSum / y.length)).toBeGreaterThan(10);
    } finally {
      await client?.close();
      expect(await serve.stop()).toBe(0);
    }
  }, 150_000);
});
