// shared/src/retarget.ts: neutral calibration arithmetic, clamping, and meanDrivingValues.
import { describe, expect, it } from 'vitest';
import { BLENDSHAPE_COUNT } from '../shared/src/blendshapes.js';
import { emptyDrivingValues, type DrivingValues } from '../shared/src/driving-values.js';
import { meanDrivingValues, retarget } from '../shared/src/retarget.js';

function values(pose: number[], gaze: number[], fill: (i: number) => number): DrivingValues {
  return {
    pose: Float32Array.from(pose),
    gaze: Float32Array.from(gaze),
    blendshapes: Float32Array.from({ length: BLENDSHAPE_COUNT }, (_, i) => fill(i)),
  };
}

describe('retarget', () => {
  const avatarNeutral = values([0.05, -0.02, 0.01, 0.5, -1, -30], [0.01, -0.02], (i) => (i % 5) * 0.1);
  const callerNeutral = values([0.1, 0.2, -0.05, -2, 3, -50], [0.05, 0.03], (i) => (i % 3) * 0.05);

  it("maps the caller's neutral onto the avatar's neutral", () => {
    const out = retarget(callerNeutral, callerNeutral, avatarNeutral, emptyDrivingValues());
    for (let i = 0; i < 6; i++) expect(out.pose[i]).toBeCloseTo(avatarNeutral.pose[i]!, 5);
    for (let i = 0; i < 2; i++) expect(out.gaze[i]).toBeCloseTo(avatarNeutral.gaze[i]!, 5);
    for (let i = 0; i < BLENDSHAPE_COUNT; i++) expect(out.blendshapes[i]).toBeCloseTo(avatarNeutral.blendshapes[i]!, 5);
  });

  it("adds the caller's change from their neutral to the avatar's neutral", () => {
    const caller = values([0.3, 0.1, 0.05, -1, 2, -45], [0.15, -0.07], (i) => (i % 3) * 0.05 + (i === 25 ? 0.4 : 0));
    const out = retarget(caller, callerNeutral, avatarNeutral, emptyDrivingValues());
    expect(out.pose[0]).toBeCloseTo(0.05 + 0.2, 5);
    expect(out.pose[1]).toBeCloseTo(-0.02 - 0.1, 5);
    expect(out.pose[2]).toBeCloseTo(0.01 + 0.1, 5);
    expect(out.pose[3]).toBeCloseTo(0.5 + 1, 4);
    expect(out.pose[4]).toBeCloseTo(-1 - 1, 4);
    expect(out.pose[5]).toBeCloseTo(-30 + 5, 4);
    expect(out.gaze[0]).toBeCloseTo(0.01 + 0.1, 5);
    expect(out.gaze[1]).toBeCloseTo(-0.02 - 0.1, 5);
    expect(out.blendshapes[25]).toBeCloseTo(avatarNeutral.blendshapes[25]! + 0.4, 5);
    expect(out.blendshapes[24]).toBeCloseTo(avatarNeutral.blendshapes[24]!, 5);
  });

  it('clamps blendshapes to [0, 1], angles to ±π, gaze to ±π/2 and translation to ±327 cm', () => {
    const zero = emptyDrivingValues();
    const big = values([3, -3, 3, 300, -300, 300], [1.5, -1.5], () => 1);
    const avatar = values([3, -3, 3, 300, -300, 300], [1.5, -1.5], () => 0.9);
    const out = retarget(big, zero, avatar, emptyDrivingValues());
    expect(out.pose[0]).toBeCloseTo(Math.PI, 5);
    expect(out.pose[1]).toBeCloseTo(-Math.PI, 5);
    expect(out.pose[3]).toBe(327);
    expect(out.pose[4]).toBe(-327);
    expect(out.gaze[0]).toBeCloseTo(Math.PI / 2, 5);
    expect(out.gaze[1]).toBeCloseTo(-Math.PI / 2, 5);
    for (const b of out.blendshapes) expect(b).toBe(1);
    const low = retarget(zero, values([0, 0, 0, 0, 0, 0], [0, 0], () => 1), values([0, 0, 0, 0, 0, 0], [0, 0], () => 0.2), emptyDrivingValues());
    for (const b of low.blendshapes) expect(b).toBe(0);
  });

  it('writes into and returns `out`', () => {
    const out = emptyDrivingValues();
    expect(retarget(callerNeutral, callerNeutral, avatarNeutral, out)).toBe(out);
  });
});

describe('meanDrivingValues', () => {
  it('averages every field', () => {
    const a = values([0, 0.2, -0.2, 1, 2, -30], [0.1, 0], (i) => i / 100);
    const b = values([0.2, 0, 0.2, 3, 4, -34], [0.3, -0.2], (i) => i / 50);
    const m = meanDrivingValues([a, b]);
    expect(Array.from(m.pose).map((x) => Number(x.toFixed(5)))).toEqual([0.1, 0.1, 0, 2, 3, -32]);
    expect(m.gaze[0]).toBeCloseTo(0.2, 6);
    expect(m.gaze[1]).toBeCloseTo(-0.1, 6);
    for (let i = 0; i < BLENDSHAPE_COUNT; i++) expect(m.blendshapes[i]).toBeCloseTo((i / 100 + i / 50) / 2, 6);
  });

  it('returns a copy for one frame and throws on none', () => {
    const a = values([0.1, 0.2, 0.3, 1, 2, 3], [0.1, 0.2], () => 0.5);
    const m = meanDrivingValues([a]);
    expect(m.pose).not.toBe(a.pose);
    expect(Array.from(m.pose)).toEqual(Array.from(a.pose));
    expect(() => meanDrivingValues([])).toThrow(/zero frames/);
  });
});
