// dnp synth's driving trajectories (pure): the shipped motion library, determinism by seed, mirroring,
// consistency of gaze with the eyeLook* blendshapes, and that excursions cover every control's range.
import { describe, expect, it } from 'vitest';
import { BLENDSHAPE_COUNT, BLENDSHAPE_NAMES, blendshapeIndex, type BlendshapeName } from '../shared/src/blendshapes.js';
import { gazeFromBlendshapes } from '../shared/src/tracker-mapping.js';
import { loadMotionLibrary, parseMotionLibrary, encodeMotionLibrary } from '../server/src/synth/motion-library.js';
import { MIRROR_BLENDSHAPES, VECTOR_SIZE, generateTrajectory, mirrorVector } from '../server/src/synth/trajectory.js';
import { Rng } from '../server/src/synth/rng.js';
import { DEFAULT_FRAMING } from '../client/src/synth/presenter.js';

const lib = loadMotionLibrary();
const BS = 8;

describe('motion library', () => {
  it('loads: several clips of tracked motion, values in range', () => {
    expect(lib.clips.length).toBeGreaterThanOrEqual(3);
    expect(lib.clips.reduce((a, c) => a + c.frames, 0)).toBeGreaterThan(1500);
    for (const c of lib.clips) {
      expect(c.pose.length).toBe(c.frames * 6);
      expect(c.blendshapes.length).toBe(c.frames * BLENDSHAPE_COUNT);
      expect(Math.max(...c.blendshapes)).toBeLessThanOrEqual(1);
      for (let i = 0; i < c.frames; i++) expect(Math.abs(c.pose[i * 6 + 1] as number)).toBeLessThan(1);
    }
    expect(lib.note).toMatch(/FaceLandmarker/);
  });

  it('round-trips through its encoding and rejects malformed documents', () => {
    const c = lib.clips[0]!;
    const doc = encodeMotionLibrary([{ ...c, meanTranslation: [0, 0, 0] }], 'x');
    const back = parseMotionLibrary(JSON.parse(JSON.stringify(doc)) as unknown);
    expect(back.clips[0]!.frames).toBe(c.frames);
    expect(Math.abs((back.clips[0]!.pose[1] as number) - (c.pose[1] as number))).toBeLessThan(1e-4);
    expect(() => parseMotionLibrary({ format: 'nope' })).toThrow(/not a dnp-synth-motion/);
    const bad = JSON.parse(JSON.stringify(doc)) as { clips: Array<{ pose: string }> };
    bad.clips[0]!.pose = 'AAAA';
    expect(() => parseMotionLibrary(bad)).toThrow(/pose: expected/);
  });
});

describe('trajectory', () => {
  const fps = 25;
  const frames = 60 * fps;
  const a = generateTrajectory(lib, { frames, fps, seed: 1 });

  it('is deterministic for a seed and differs between seeds', () => {
    expect(Buffer.from(generateTrajectory(lib, { frames, fps, seed: 1 }).buffer).equals(Buffer.from(a.buffer))).toBe(true);
    expect(Buffer.from(generateTrajectory(lib, { frames, fps, seed: 2 }).buffer).equals(Buffer.from(a.buffer))).toBe(false);
    const r1 = new Rng(7), r2 = new Rng(7);
    expect([r1.next(), r1.next()]).toEqual([r2.next(), r2.next()]);
  });

  it('holds finite values in range; gaze matches the eyeLook* blendshapes (the live mapping)', () => {
    expect(a.length).toBe(frames * VECTOR_SIZE);
    for (let f = 0; f < frames; f++) {
      const o = f * VECTOR_SIZE;
      for (let k = 0; k < VECTOR_SIZE; k++) expect(Number.isFinite(a[o + k])).toBe(true);
      for (let k = 0; k < BLENDSHAPE_COUNT; k++) {
        expect(a[o + BS + k]).toBeGreaterThanOrEqual(0);
        expect(a[o + BS + k]).toBeLessThanOrEqual(1);
      }
      const g = gazeFromBlendshapes(a.subarray(o + BS, o + BS + BLENDSHAPE_COUNT));
      expect(a[o + 6]).toBeCloseTo(g[0], 5);
      expect(a[o + 7]).toBeCloseTo(g[1], 5);
    }
    // translation sits around the renderer's framing
    let ty = 0;
    for (let f = 0; f < frames; f++) ty += (a[f * VECTOR_SIZE + 4] as number) / frames;
    expect(Math.abs(ty - DEFAULT_FRAMING.ty)).toBeLessThan(1.5);
  });

  it('covers each control through its range (excursions) and moves smoothly', () => {
    const max = (name: BlendshapeName): number => {
      let m = 0;
      for (let f = 0; f < frames; f++) m = Math.max(m, a[f * VECTOR_SIZE + BS + blendshapeIndex(name)] as number);
      return m;
    };
    const controls: BlendshapeName[] = [
      'jawOpen', 'mouthClose', 'eyeBlinkLeft', 'eyeBlinkRight', 'eyeWideLeft', 'eyeWideRight', 'browInnerUp', 'browDownLeft', 'browDownRight',
      'browOuterUpLeft', 'browOuterUpRight', 'mouthSmileLeft', 'mouthSmileRight', 'mouthFrownLeft', 'mouthFrownRight', 'mouthPucker',
      'mouthFunnel', 'mouthStretchLeft', 'mouthStretchRight', 'cheekPuff',
    ];
    const low = controls.filter((n) => max(n) < (n === 'mouthClose' ? 0.3 : 0.55));
    expect(low, `controls that never go high: ${low.join(', ')}`).toEqual([]);
    const range = (k: number): number => {
      let lo = Infinity, hi = -Infinity;
      for (let f = 0; f < frames; f++) {
        lo = Math.min(lo, a[f * VECTOR_SIZE + k] as number);
        hi = Math.max(hi, a[f * VECTOR_SIZE + k] as number);
      }
      return hi - lo;
    };
    expect(range(1)).toBeGreaterThan(0.6); // yaw
    expect(range(0)).toBeGreaterThan(0.3); // pitch
    expect(range(2)).toBeGreaterThan(0.2); // roll
    expect(range(6)).toBeGreaterThan(0.4); // gaze yaw
    // human motion, not noise: frame-to-frame steps are small compared with the range
    let step = 0;
    for (let f = 1; f < frames; f++) step = Math.max(step, Math.abs((a[f * VECTOR_SIZE + 1] as number) - (a[(f - 1) * VECTOR_SIZE + 1] as number)));
    expect(step).toBeLessThan(0.15);
  });

  it('mirroring swaps left and right and negates yaw, roll, tx and gaze yaw', () => {
    expect(BLENDSHAPE_NAMES[MIRROR_BLENDSHAPES[blendshapeIndex('eyeBlinkLeft')]!]).toBe('eyeBlinkRight');
    expect(BLENDSHAPE_NAMES[MIRROR_BLENDSHAPES[blendshapeIndex('jawOpen')]!]).toBe('jawOpen');
    expect(BLENDSHAPE_NAMES[MIRROR_BLENDSHAPES[blendshapeIndex('mouthLeft')]!]).toBe('mouthRight');
    const v = new Float32Array(VECTOR_SIZE);
    v[1] = 0.3; v[2] = 0.1; v[3] = 2; v[6] = 0.2;
    v[BS + blendshapeIndex('eyeBlinkLeft')] = 0.9;
    mirrorVector(v);
    expect([v[1], v[2], v[3], v[6]].map((x) => +x!.toFixed(3))).toEqual([-0.3, -0.1, -2, -0.2]);
    expect(v[BS + blendshapeIndex('eyeBlinkRight')]).toBeCloseTo(0.9, 5);
    expect(v[BS + blendshapeIndex('eyeBlinkLeft')]).toBe(0);
  });
});
