/**
 * The training package's avatar export, seen from the server side: `python3 -m train export --untrained` writes a
 * manifest that the TypeScript validator accepts and an ONNX model that onnxruntime-node runs with the declared
 * shapes, values in [0, 1], and an output that depends on the conditioning input.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { normaliseConditioning, parseAvatarManifest } from '../shared/src/avatar-manifest.js';

const ROOT = resolve(import.meta.dirname, '..');
const PYTHON = '/usr/bin/python3';
const dirs: string[] = [];

function exportUntrained(args: string[]): { status: number | null; stderr: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'dnp-train-export-'));
  dirs.push(dir);
  const r = spawnSync(PYTHON, ['-m', 'train', 'export', '--untrained', '--out', dir, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr, dir };
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('train export (untrained avatar)', () => {
  it('writes a manifest that parseAvatarManifest accepts and a model that runs in onnxruntime-node', async () => {
    const { status, stderr, dir } = exportUntrained(['--preset', 'cpu', '--size', '256', '--fps', '25', '--name', 'Test avatar', '--seed', '3']);
    expect(status, stderr).toBe(0);
    const manifest = parseAvatarManifest(JSON.parse(readFileSync(join(dir, 'avatar.json'), 'utf8')), 'avatar.json');
    expect(manifest.name).toBe('Test avatar');
    expect(manifest.width).toBe(256);
    expect(manifest.height).toBe(256);
    expect(manifest.fps).toBe(25);
    expect(manifest.driving).toBe('expression');
    expect(manifest.training.provenance).toBe('untrained');
    expect(manifest.neutral.pose[5]).toBeLessThan(-20);

    const session = await ort.InferenceSession.create(join(dir, manifest.model.file), { intraOpNumThreads: 1 });
    try {
      expect(session.inputNames).toEqual(['cond']);
      expect(session.outputNames).toEqual(['rgb']);
      // batch 2: the neutral face and a changed expression, both normalised as the server does
      const raw = [...manifest.neutral.pose, ...manifest.neutral.gaze, ...manifest.neutral.blendshapes];
      const vectors = new Float32Array(2 * 60);
      for (let b = 0; b < 2; b++) {
        for (let i = 0; i < 60; i++) vectors[b * 60 + i] = b === 1 && i >= 8 ? (i % 3 === 0 ? 0.8 : 0.1) : raw[i]!; // blendshapes only
      }
      const cond = normaliseConditioning(manifest.conditioning, vectors);
      const out = await session.run({ cond: new ort.Tensor('float32', cond, [2, 60]) });
      const rgb = out.rgb!;
      expect(rgb.dims).toEqual([2, 3, 256, 256]);
      const data = rgb.data as Float32Array;
      let min = Infinity;
      let max = -Infinity;
      let diff = 0;
      const n = 3 * 256 * 256;
      for (let i = 0; i < n; i++) {
        const a = data[i]!;
        const b = data[n + i]!;
        min = Math.min(min, a, b);
        max = Math.max(max, a, b);
        diff += Math.abs(a - b);
      }
      expect(min).toBeGreaterThanOrEqual(0);
      expect(max).toBeLessThanOrEqual(1);
      expect(max - min).toBeGreaterThan(0.1); // not a flat grey image
      expect(diff / n).toBeGreaterThan(0.01); // the expression input changes the picture
    } finally {
      await session.release();
    }
  });

  it('supports 512x512', async () => {
    const { status, stderr, dir } = exportUntrained(['--preset', 'cpu', '--size', '512', '--name', 'Big']);
    expect(status, stderr).toBe(0);
    const manifest = parseAvatarManifest(JSON.parse(readFileSync(join(dir, 'avatar.json'), 'utf8')));
    expect(manifest.model.outputs[0]!.shape).toEqual(['batch', 3, 512, 512]);
    const session = await ort.InferenceSession.create(join(dir, 'avatar.onnx'), { intraOpNumThreads: 1 });
    try {
      const out = await session.run({ cond: new ort.Tensor('float32', new Float32Array(60), [1, 60]) });
      expect(out.rgb!.dims).toEqual([1, 3, 512, 512]);
    } finally {
      await session.release();
    }
  });

  it('refuses a size the decoder cannot produce, with a clear message', () => {
    const { status, stderr } = exportUntrained(['--size', '200', '--name', 'Bad']);
    expect(status).not.toBe(0);
    expect(stderr).toMatch(/size 200 must be the grid 64 times a power of two/);
  });
});
