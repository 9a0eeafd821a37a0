// Each control of the synthetic presenter moves its own region and nothing else: frames rendered with one
// control set are compared with the neutral frame inside fixed boxes placed from the presenter's geometry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SynthRenderer, VECTOR_SIZE } from '../server/src/synth/renderer.js';
import { boxDiff, darkPixels, drivingVector, ensureSynthPageBuilt, presenterRegions, type Box } from './support/synth-helpers.js';

const SIZE = 192;
const REGIONS: Record<string, Box> = presenterRegions(SIZE);

type Case = [name: string, values: Record<string, number>, moved: string[], still: string[], base?: Record<string, number>];
const EYES = ['eyeLeft', 'eyeRight'];
const BROWS = ['browLeft', 'browRight'];
const CASES: Case[] = [
  ['jawOpen', { jawOpen: 1 }, ['mouth'], [...EYES, ...BROWS]],
  ['mouthClose', { jawOpen: 0.6, mouthClose: 0.6 }, ['mouth'], [...EYES, ...BROWS], { jawOpen: 0.6 }],
  ['mouthSmile', { mouthSmileLeft: 1, mouthSmileRight: 1 }, ['mouth'], [...EYES, ...BROWS]],
  ['mouthFrown', { mouthFrownLeft: 1, mouthFrownRight: 1 }, ['mouth'], [...EYES, ...BROWS]],
  ['mouthStretch', { mouthStretchLeft: 1, mouthStretchRight: 1 }, ['mouth'], [...EYES, ...BROWS]],
  ['mouthPucker', { mouthPucker: 1 }, ['mouth'], [...EYES, ...BROWS]],
  ['mouthFunnel', { mouthFunnel: 1 }, ['mouth'], [...EYES, ...BROWS]],
  ['cheekPuff', { cheekPuff: 1 }, ['cheekLeft'], [...EYES, ...BROWS]],
  ['gaze', { gazeYaw: 0.4 }, EYES, ['mouth', ...BROWS]],
  ['gazePitch', { gazePitch: -0.3 }, EYES, ['mouth', ...BROWS]],
  ['eyeBlinkLeft', { eyeBlinkLeft: 1 }, ['eyeLeft'], ['eyeRight', 'mouth', ...BROWS]],
  ['eyeBlinkRight', { eyeBlinkRight: 1 }, ['eyeRight'], ['eyeLeft', 'mouth', ...BROWS]],
  ['eyeWide', { eyeWideLeft: 1, eyeWideRight: 1 }, EYES, ['mouth', ...BROWS]],
  ['browInnerUp', { browInnerUp: 1 }, BROWS, ['mouth', ...EYES]],
  ['browDownLeft', { browDownLeft: 1 }, ['browLeft'], ['browRight', 'mouth']],
  ['browOuterUpRight', { browOuterUpRight: 1 }, ['browRight'], ['browLeft', 'mouth', ...EYES]],
  ['yaw', { yaw: 0.4 }, ['face', 'mouth', ...EYES], []],
  ['pitch', { pitch: 0.25 }, ['face', 'mouth', ...EYES], []],
  ['roll', { roll: 0.2 }, ['face', ...EYES], []],
  ['tx', { tx: 2 }, ['face', ...EYES], []],
];

describe('synthetic presenter controls', () => {
  let renderer: SynthRenderer | null = null;
  const frames = new Map<string, Buffer>();

  beforeAll(async () => {
    ensureSynthPageBuilt();
    renderer = await SynthRenderer.start({ size: SIZE });
    const list: Array<[string, Float32Array]> = [['neutral', drivingVector()]];
    for (const [name, values, , , base] of CASES) {
      list.push([name, drivingVector(values)]);
      if (base) list.push([`${name}:base`, drivingVector(base)]);
    }
    const values = new Float32Array(list.length * VECTOR_SIZE);
    list.forEach(([, v], i) => values.set(v, i * VECTOR_SIZE));
    const out = await renderer.render(values, list.length);
    list.forEach(([name], i) => frames.set(name, out[i] as Buffer));
  });

  afterAll(async () => {
    await renderer?.close();
    await renderer?.close(); // idempotent
  });

  it('the regions lie inside the frame and do not overlap where they must not', () => {
    for (const b of Object.values(REGIONS)) {
      expect(b.x0).toBeGreaterThanOrEqual(0);
      expect(b.y1).toBeLessThanOrEqual(SIZE);
      expect(b.x1 - b.x0).toBeGreaterThan(10);
    }
    expect(REGIONS.eyeLeft!.x0).toBeGreaterThan(SIZE / 2); // the subject's left eye is on image right
    expect(REGIONS.mouth!.y0).toBeGreaterThan(REGIONS.eyeLeft!.y1);
  });

  it('renders deterministically: the same vector gives the same pixels', async () => {
    const again = await renderer!.render(drivingVector(), 1);
    expect(again[0]!.equals(frames.get('neutral')!)).toBe(true);
  });

  it.each(CASES)('%s moves its own region and nothing else', (name, _values, moved, still, base) => {
    const ref = frames.get(base ? `${name}:base` : 'neutral')!;
    const img = frames.get(name)!;
    const report = Object.fromEntries(Object.entries(REGIONS).map(([r, box]) => [r, +boxDiff(ref, img, SIZE, box).toFixed(2)]));
    for (const r of moved) expect(report[r], `${name}: ${r} should change (${JSON.stringify(report)})`).toBeGreaterThan(2);
    for (const r of still) expect(report[r], `${name}: ${r} should not change (${JSON.stringify(report)})`).toBeLessThan(0.3);
  });

  it('a blink closes the lids: the eye region darkens less and loses the iris', () => {
    // the iris and pupil are the darkest pixels of an open eye; a closed lid covers them with skin
    const box = REGIONS.eyeLeft!;
    const dark = (img: Buffer): number => {
      let n = 0;
      for (let y = box.y0; y < box.y1; y++) for (let x = box.x0; x < box.x1; x++) if ((img[(y * SIZE + x) * 3] as number) < 90) n++;
      return n;
    };
    expect(dark(frames.get('neutral')!)).toBeGreaterThan(15);
    expect(dark(frames.get('eyeBlinkLeft')!)).toBeLessThan(dark(frames.get('neutral')!) / 3);
  });

  it('gaze moves the pupils toward image right for positive gaze yaw', () => {
    const pupilX = (img: Buffer): number => darkPixels(img, SIZE, REGIONS.eyeLeft!, 120).meanX;
    expect(pupilX(frames.get('gaze')!) - pupilX(frames.get('neutral')!)).toBeGreaterThan(1.5);
  });

  it('yaw turns the head toward image right: the eyes move right', () => {
    const band: Box = { x0: REGIONS.eyeRight!.x0 - 20, x1: REGIONS.eyeLeft!.x1 + 20, y0: REGIONS.eyeLeft!.y0, y1: REGIONS.eyeLeft!.y1 };
    const darkX = (img: Buffer): number => darkPixels(img, SIZE, band, 150).meanX;
    expect(darkX(frames.get('yaw')!) - darkX(frames.get('neutral')!)).toBeGreaterThan(8);
  });
});
