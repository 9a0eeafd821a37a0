// dnp synth end to end: the dataset passes the dataset validator, has the requested size and frame count,
// stores the driving vectors it rendered, and is identical for the same seed.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDatasetManifest } from '../shared/src/dataset-schema.js';
import { createLogger } from '../server/src/log.js';
import { synthDataset } from '../server/src/synth/generate.js';
import { parseSynthArgs } from '../server/src/synth/options.js';
import { pngSize } from '../server/src/prepare/png.js';
import { loadMotionLibrary } from '../server/src/synth/motion-library.js';
import { VECTOR_SIZE, generateTrajectory } from '../server/src/synth/trajectory.js';
import { readNpy } from './support/prepare-helpers.js';
import { ensureSynthPageBuilt, runSynthCli } from './support/synth-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'dnp-synth-ds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => ensureSynthPageBuilt());

function manifestOf(d: string): ReturnType<typeof parseDatasetManifest> {
  return parseDatasetManifest(JSON.parse(readFileSync(join(d, 'dataset.json'), 'utf8')) as unknown);
}

describe('dnp synth dataset', () => {
  const a = join(dir, 'a'), b = join(dir, 'b');

  it('writes a valid dataset of the requested size and length, holding the driving vectors', async () => {
    const r = await runSynthCli(['--out', a, '--seconds', '0.4', '--seed', '5', '--test-fraction', '0.25', '--no-landmarks']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/rendering .*10\/10 frames/);
    const m = manifestOf(a);
    expect(m).toMatchObject({ frameCount: 10, size: 256, fps: 25, audio: null, version: 2, crop: { x: 0, y: 0, size: 256 } });
    expect(m.split).toEqual({ train: [0, 7], test: [7, 10] });
    const frames = readdirSync(join(a, 'frames')).sort();
    expect(frames).toHaveLength(10);
    expect(frames[0]).toBe('000000.png');
    for (const f of frames) expect(pngSize(readFileSync(join(a, 'frames', f)))).toEqual({ width: 256, height: 256 });
    const pose = readNpy(join(a, 'pose.npy')), gaze = readNpy(join(a, 'gaze.npy')), bs = readNpy(join(a, 'blendshapes.npy'));
    expect([pose.shape, gaze.shape, bs.shape]).toEqual([[10, 6], [10, 2], [10, 52]]);
    for (const name of ['face_found', 'valid']) expect(Array.from(readNpy(join(a, `${name}.npy`)).data)).toEqual(new Array(10).fill(1));
    expect(Array.from(readNpy(join(a, 'interpolated.npy')).data)).toEqual(new Array(10).fill(0));
    const lm = readNpy(join(a, 'landmarks.npy'));
    expect(lm.shape).toEqual([10, 478, 2]);
    expect(Number.isNaN(lm.data[0])).toBe(true);
    // the stored arrays are the generator's vectors for that seed
    const v = generateTrajectory(loadMotionLibrary(), { frames: 10, fps: 25, seed: 5 });
    for (let i = 0; i < 10; i++) {
      for (let k = 0; k < 6; k++) expect(pose.data[i * 6 + k]).toBe(v[i * VECTOR_SIZE + k]);
      for (let k = 0; k < 52; k++) expect(bs.data[i * 52 + k]).toBe(v[i * VECTOR_SIZE + 8 + k]);
    }
  });

  it('is deterministic: the same seed gives the same frames and arrays', async () => {
    // in-process this time (the same code path as the command, without its start-up)
    await synthDataset(parseSynthArgs(['--out', b, '--seconds', '0.4', '--seed', '5', '--test-fraction', '0.25', '--no-landmarks'], {}), createLogger('silent'));
    for (const f of readdirSync(join(a, 'frames'))) expect(readFileSync(join(b, 'frames', f)).equals(readFileSync(join(a, 'frames', f))), f).toBe(true);
    for (const f of ['pose.npy', 'gaze.npy', 'blendshapes.npy']) expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f))), f).toBe(true);
    expect(manifestOf(b).source.sha256).toBe(manifestOf(a).source.sha256);
  });
});
