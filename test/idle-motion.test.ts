// Idle motion: the default avatar's stored motion (from its own dataset), the generated fallback, loading
// (absent, bad, good), extraction from a dataset, and the command's argument errors.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BLENDSHAPE_COUNT, blendshapeIndex } from '../shared/src/blendshapes.js';
import { CONDITIONING_SIZE, emptyDrivingValues } from '../shared/src/driving-values.js';
import { blinkAt, ClipIdleMotion, extractIdleMotion, GeneratedIdleMotion, IDLE_MOTION_FILE, loadIdleMotion, parseIdleMotion } from '../server/src/audio/idle-motion.js';
import { run as runCommand } from '../server/src/cli/idle-motion.js';
import type { EvalDataset } from '../server/src/eval/dataset-reader.js';
import { createLogger } from '../server/src/log.js';

const DEFAULT = new URL('../avatars/default/', import.meta.url).pathname;
const BLINK = blendshapeIndex('eyeBlinkLeft');
const JAW = blendshapeIndex('jawOpen');
const log = createLogger('silent');

function trace(m: { sample: ClipIdleMotion['sample'] }, seconds: number, fps = 25): { pose: number[][]; blink: number[]; jaw: number[] } {
  const out = { pose: [] as number[][], blink: [] as number[], jaw: [] as number[] };
  const v = emptyDrivingValues();
  for (let i = 0; i < seconds * fps; i++) {
    v.blendshapes[JAW] = 0.3; // the voice's value: idle motion must leave it alone
    m.sample((i * 1000) / fps, v);
    out.pose.push(Array.from(v.pose));
    out.blink.push(v.blendshapes[BLINK] as number);
    out.jaw.push(v.blendshapes[JAW] as number);
  }
  return out;
}

const std = (xs: number[]): number => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
};

describe('idle motion', () => {
  it("the default avatar's stored motion moves the head, blinks, leaves the mouth alone and has no jumps", () => {
    const m = parseIdleMotion(JSON.parse(readFileSync(join(DEFAULT, IDLE_MOTION_FILE), 'utf8')) as unknown, 'default');
    expect(m.seconds).toBeGreaterThan(20);
    const t = trace(m, 2 * m.seconds + 5); // past both ends of the ping-pong
    const yaw = t.pose.map((p) => p[1] as number);
    expect(std(yaw)).toBeGreaterThan(0.01); // it moves (radians)
    expect(Math.max(...yaw.map(Math.abs))).toBeLessThan(0.6);
    const tz = t.pose.map((p) => p[5] as number);
    expect(Math.abs(tz.reduce((a, b) => a + b, 0) / tz.length - -26)).toBeLessThan(5); // the synth camera distance
    expect(t.blink.filter((b, i) => b > 0.5 && (t.blink[i - 1] ?? 1) <= 0.5).length).toBeGreaterThan(3);
    expect(t.jaw.every((j) => j === Math.fround(0.3))).toBe(true);
    for (let i = 1; i < t.pose.length; i++) expect(Math.abs((t.pose[i]?.[1] as number) - (t.pose[i - 1]?.[1] as number))).toBeLessThan(0.1); // no jump (the data turns up to ~3° a frame)
  });

  it('the generated fallback sways gently around the neutral and blinks every few seconds', () => {
    const neutral = emptyDrivingValues();
    neutral.pose.set([0.1, 0, 0, 0, -1.8, -26]);
    const t = trace(new GeneratedIdleMotion(neutral), 40);
    const pitch = t.pose.map((p) => p[0] as number);
    expect(Math.max(...pitch.map((p) => Math.abs(p - 0.1)))).toBeLessThan(0.05);
    expect(std(pitch)).toBeGreaterThan(0.005);
    const blinks = t.blink.filter((b, i) => b > 0.5 && (t.blink[i - 1] ?? 1) <= 0.5).length;
    expect(blinks).toBeGreaterThanOrEqual(8);
    expect(blinks).toBeLessThanOrEqual(12);
    expect(blinkAt(-1)).toBeGreaterThanOrEqual(0);
  });

  it('loads the file when it is there and valid, else falls back to the generated motion', () => {
    const dir = mkdtempSync(join(tmpdir(), 'idle-'));
    try {
      const neutral = emptyDrivingValues();
      expect(loadIdleMotion(dir, neutral, log).kind).toBe('generated');
      writeFileSync(join(dir, IDLE_MOTION_FILE), '{"format":"dnp-synth-motion","version":1,"clips":[]}');
      expect(loadIdleMotion(dir, neutral, log).kind).toBe('generated');
      writeFileSync(join(dir, IDLE_MOTION_FILE), 'not json');
      expect(loadIdleMotion(dir, neutral, log).kind).toBe('generated');
      expect(loadIdleMotion(DEFAULT, neutral, log).kind).toBe('avatar');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('extracts a dataset\'s training frames: pose (smoothed), gaze and eye blendshapes round-trip', () => {
    const n = 100;
    const cond = new Float32Array(n * CONDITIONING_SIZE);
    const valid = new Uint8Array(n).fill(1);
    valid[10] = 0;
    for (let i = 0; i < n; i++) {
      const c = cond.subarray(i * CONDITIONING_SIZE);
      c.set([0.01 * Math.sin(i / 10), 0.2 * Math.sin(i / 20), 0, 1, -2, -30 + i / 100, 0.05, -0.02]);
      c[8 + BLINK] = i % 30 === 0 ? 1 : 0;
      c[8 + JAW] = 0.5;
      if (i === 10) c[0] = Number.NaN; // an invalid frame: replaced by the previous one
    }
    const ds = { dir: '/x/ds', n, fps: 25, cond, valid, trainIdx: Array.from({ length: 80 }, (_, i) => i).filter((i) => i !== 10) } as unknown as EvalDataset;
    const m = parseIdleMotion(extractIdleMotion(ds, 60), 'extracted');
    expect(m.seconds).toBeCloseTo(79 / 25, 5);
    const v = emptyDrivingValues();
    m.sample((40 * 1000) / 25, v);
    expect(v.pose[1]).toBeCloseTo(0.2 * Math.sin(41 / 20), 2); // frame 41 of the data is frame 40 of the clip
    expect(v.pose[5]).toBeCloseTo(-30 + 41 / 100, 1);
    expect(v.gaze[0]).toBeCloseTo(0.05, 3);
    expect(() => extractIdleMotion({ ...ds, trainIdx: [0, 1, 2] }, 60)).toThrow(/at least 2 s/);
    expect(BLENDSHAPE_COUNT).toBe(52);
  });

  it('dnp idle-motion refuses bad arguments with exit code 2', async () => {
    expect(await runCommand([])).toBe(2);
    expect(await runCommand(['--avatar', DEFAULT, '--data', '/nonexistent'])).toBe(2);
    expect(await runCommand(['--avatar', DEFAULT, '--data', '/tmp', '--seconds', '1'])).toBe(2);
  });
});
