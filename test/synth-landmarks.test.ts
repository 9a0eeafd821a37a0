// dnp synth --vectors: renders given driving vectors; with a tracker model, the same FaceTracker as
// `dnp prepare` tracks the rendered frames (landmarks.npy) and reads the driving pose back.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDatasetManifest } from '../shared/src/dataset-schema.js';
import { encodeNpy } from '../server/src/prepare/npy.js';
import { VECTOR_SIZE } from '../server/src/synth/trajectory.js';
import { readNpy } from './support/prepare-helpers.js';
import { TRACKER_MODEL, drivingVector, ensureSynthPageBuilt, runSynthCli } from './support/synth-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'dnp-synth-lm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => ensureSynthPageBuilt());

describe('dnp synth --vectors with landmarks', () => {
  it.skipIf(!existsSync(TRACKER_MODEL))('--vectors renders the given vectors; the tracker finds the face and fills the landmarks', async () => {
    const n = 4;
    const values = new Float32Array(n * VECTOR_SIZE);
    values.set(drivingVector(), 0);
    values.set(drivingVector({ jawOpen: 0.8 }), VECTOR_SIZE);
    values.set(drivingVector({ yaw: 0.3 }), 2 * VECTOR_SIZE);
    values.set(drivingVector({ eyeBlinkLeft: 1, eyeBlinkRight: 1 }), 3 * VECTOR_SIZE);
    const file = join(dir, 'v.npy');
    writeFileSync(file, encodeNpy(values, [n, VECTOR_SIZE]));
    const out = join(dir, 'c');
    const r = await runSynthCli(['--out', out, '--vectors', file, '--tracker-model', TRACKER_MODEL], { LOG_LEVEL: 'info' });
    expect(r.code, r.stderr).toBe(0);
    const m = parseDatasetManifest(JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8')) as unknown);
    expect(m.frameCount).toBe(n);
    expect(m.source.file).toBe('v.npy');
    const pose = readNpy(join(out, 'pose.npy'));
    expect(pose.data[2 * 6 + 1]).toBeCloseTo(0.3, 6);
    const lm = readNpy(join(out, 'landmarks.npy'));
    for (const x of lm.data) {
      expect(Number.isFinite(x)).toBe(true);
      expect(x).toBeGreaterThan(-10);
      expect(x).toBeLessThan(266);
    }
    // the tracker reads the rendered controls back: the yawed frame has a positive yaw, the jaw frame an open jaw
    const line = r.stderr.split('\n').find((l) => l.includes('"agreement"'));
    expect(line).toBeDefined();
    const agreement = (JSON.parse(line!) as { agreement: { found: number; correlation: number[] } }).agreement;
    expect(agreement.found).toBe(n);
    expect(agreement.correlation[1]).toBeGreaterThan(0.9);
  });
});
