// shared/src/tracker-mapping.ts on real FaceLandmarker output (../shared/data reference, 300 frames of
// portrait-man-talking.mp4): pose, gaze and blendshapes, the result → face extraction, input checks, and
// that every mapped frame survives the wire format within its quantisation step.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BLENDSHAPE_COUNT, BLENDSHAPE_NAMES } from '../shared/src/blendshapes.js';
import type { DrivingValues } from '../shared/src/driving-values.js';
import { GAZE_MAX_PITCH, GAZE_MAX_YAW } from '../shared/src/pose.js';
import { mapTrackerFace, trackerFaceFromResult, type FaceLandmarkerResultLike } from '../shared/src/tracker-mapping.js';
import { decodeDrivingFrame, encodeDrivingFrame } from '../shared/src/wire.js';

// the project reads its test data from ../shared/data beside the repository
const REF = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'data', 'portrait-man-talking.tracker-reference.json');

interface RefFrame {
  i: number;
  faces: number;
  blendshapes: number[];
  matrix: number[];
}
interface Reference {
  blendshapeNames: string[];
  frames: RefFrame[];
}

function loadReference(): Reference {
  const raw: unknown = JSON.parse(readFileSync(REF, 'utf8'));
  if (typeof raw !== 'object' || raw === null) throw new Error('reference is not an object');
  const o = raw as { blendshapeNames?: unknown; frames?: unknown };
  if (!Array.isArray(o.blendshapeNames) || !Array.isArray(o.frames)) throw new Error('reference lacks blendshapeNames/frames');
  return o as Reference;
}

const ref = loadReference();
const DEG = 180 / Math.PI;
const faceFrames = ref.frames.filter((f) => f.faces === 1);
const mapped: DrivingValues[] = faceFrames.map((f) => mapTrackerFace({ blendshapes: f.blendshapes, matrix: f.matrix }));

function range(values: number[]): [number, number] {
  return [Math.min(...values), Math.max(...values)];
}

function resultOf(f: RefFrame, names: readonly string[] = ref.blendshapeNames): FaceLandmarkerResultLike {
  return {
    faceBlendshapes: [{ categories: names.map((n) => ({ categoryName: n, score: f.blendshapes[ref.blendshapeNames.indexOf(n)] as number })) }],
    facialTransformationMatrixes: [{ data: f.matrix }],
  };
}

describe('tracker reference', () => {
  it('holds 300 tracked frames in MediaPipe blendshape order', () => {
    expect(ref.frames).toHaveLength(300);
    expect(faceFrames).toHaveLength(300);
    expect(ref.blendshapeNames).toEqual([...BLENDSHAPE_NAMES]);
  });
});

describe('mapTrackerFace', () => {
  it('gives the measured pose on frame 0', () => {
    const p = mapped[0]!.pose;
    expect(p[0]! * DEG).toBeCloseTo(1.4, 1);
    expect(p[1]! * DEG).toBeCloseTo(-3.9, 1);
    expect(p[2]! * DEG).toBeCloseTo(-2.1, 1);
    expect(p[3]!).toBeCloseTo(-0.26, 2);
    expect(p[4]!).toBeCloseTo(-0.8, 2);
    expect(p[5]!).toBeCloseTo(-25.7, 1);
  });

  it('spans the measured head-motion ranges over 300 frames', () => {
    const [pitchLo, pitchHi] = range(mapped.map((v) => v.pose[0]! * DEG));
    const [yawLo, yawHi] = range(mapped.map((v) => v.pose[1]! * DEG));
    const [rollLo, rollHi] = range(mapped.map((v) => v.pose[2]! * DEG));
    expect(yawLo).toBeGreaterThan(-14);
    expect(yawLo).toBeLessThan(-12);
    expect(yawHi).toBeGreaterThan(1);
    expect(yawHi).toBeLessThan(3);
    expect(pitchLo).toBeGreaterThan(-0.5);
    expect(pitchLo).toBeLessThan(1);
    expect(pitchHi).toBeGreaterThan(5);
    expect(pitchHi).toBeLessThan(7);
    expect(rollLo).toBeGreaterThan(-8);
    expect(rollLo).toBeLessThan(-6);
    expect(rollHi).toBeGreaterThan(2);
    expect(rollHi).toBeLessThan(4);
    // the face stays in front of the camera at roughly arm's length
    for (const v of mapped) {
      expect(v.pose[5]!).toBeLessThan(-15);
      expect(v.pose[5]!).toBeGreaterThan(-40);
    }
  });

  it('gives finite gaze within the mapping range, and the eyes do move', () => {
    for (const v of mapped) {
      expect(Number.isFinite(v.gaze[0]!) && Number.isFinite(v.gaze[1]!)).toBe(true);
      expect(Math.abs(v.gaze[0]!)).toBeLessThanOrEqual(GAZE_MAX_YAW + 1e-6);
      expect(Math.abs(v.gaze[1]!)).toBeLessThanOrEqual(GAZE_MAX_PITCH + 1e-6);
    }
    const [yawLo, yawHi] = range(mapped.map((v) => v.gaze[0]!));
    expect(yawHi - yawLo).toBeGreaterThan(0.1); // > 5.7° of horizontal eye movement over the clip
  });

  it('passes the blendshapes through in order (jawOpen 0-0.48, five blinks worth of eyeBlink)', () => {
    const jaw = BLENDSHAPE_NAMES.indexOf('jawOpen');
    const blink = BLENDSHAPE_NAMES.indexOf('eyeBlinkLeft');
    faceFrames.forEach((f, i) => {
      for (let k = 0; k < BLENDSHAPE_COUNT; k++) expect(mapped[i]!.blendshapes[k]!).toBeCloseTo(Math.min(1, Math.max(0, f.blendshapes[k]!)), 6);
    });
    const [, jawHi] = range(mapped.map((v) => v.blendshapes[jaw]!));
    expect(jawHi).toBeGreaterThan(0.4);
    expect(jawHi).toBeLessThan(0.55);
    let blinks = 0;
    let closed = false;
    for (const v of mapped) {
      const b = v.blendshapes[blink]!;
      if (!closed && b > 0.5) blinks++;
      closed = b > 0.5 ? true : b < 0.3 ? false : closed;
    }
    expect(blinks).toBe(5);
  });

  it('rejects wrongly sized or non-finite input', () => {
    const f = faceFrames[0]!;
    expect(() => mapTrackerFace({ blendshapes: f.blendshapes.slice(0, 51), matrix: f.matrix })).toThrow(/52 blendshapes/);
    expect(() => mapTrackerFace({ blendshapes: [...f.blendshapes, 0], matrix: f.matrix })).toThrow(/52 blendshapes/);
    expect(() => mapTrackerFace({ blendshapes: f.blendshapes, matrix: f.matrix.slice(0, 15) })).toThrow(/16 numbers/);
    const bad = [...f.blendshapes];
    bad[7] = Number.NaN;
    expect(() => mapTrackerFace({ blendshapes: bad, matrix: f.matrix })).toThrow(/not finite/);
    const badM = [...f.matrix];
    badM[12] = Number.POSITIVE_INFINITY;
    expect(() => mapTrackerFace({ blendshapes: f.blendshapes, matrix: badM })).toThrow(/not finite/);
  });
});

describe('trackerFaceFromResult', () => {
  it('places blendshapes by name even when the categories are shuffled', () => {
    const f = faceFrames[42]!;
    const shuffled = [...ref.blendshapeNames];
    // deterministic Fisher-Yates with a small LCG
    let seed = 12345;
    for (let i = shuffled.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const j = seed % (i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    expect(shuffled).not.toEqual(ref.blendshapeNames);
    const face = trackerFaceFromResult(resultOf(f, shuffled));
    expect(face).not.toBeNull();
    expect(Array.from(face!.blendshapes)).toEqual(Array.from(Float32Array.from(f.blendshapes)));
    expect(Array.from(face!.matrix)).toEqual(f.matrix);
    const v = mapTrackerFace(face!);
    // trackerFaceFromResult stores the scores as float32, as MediaPipe itself reports them
    const direct = mapTrackerFace({ blendshapes: Float32Array.from(f.blendshapes), matrix: f.matrix });
    expect(Array.from(v.pose)).toEqual(Array.from(direct.pose));
    expect(Array.from(v.gaze)).toEqual(Array.from(direct.gaze));
  });

  it('returns null when no face was found', () => {
    expect(trackerFaceFromResult({ faceBlendshapes: [], facialTransformationMatrixes: [] })).toBeNull();
    expect(trackerFaceFromResult({})).toBeNull();
  });

  it('rejects a result that lacks some blendshapes', () => {
    const f = faceFrames[0]!;
    expect(() => trackerFaceFromResult(resultOf(f, ref.blendshapeNames.slice(1)))).toThrow(/51 of 52/);
  });
});

describe('wire round trip of every mapped frame', () => {
  it('decodes within the quantisation step', () => {
    const angle = 0.5e-4 + 1e-6;
    const cm = 0.005 + 1e-5;
    const bs = 0.5 / 255 + 1e-6;
    mapped.forEach((v, i) => {
      const bytes = encodeDrivingFrame({ ...v, seq: i, captureMs: 1000 + i * 33, faceFound: true });
      const d = decodeDrivingFrame(bytes);
      if (!d.ok) throw new Error(`frame ${i}: ${d.error}`);
      expect(d.frame.seq).toBe(i);
      expect(d.frame.captureMs).toBe(1000 + i * 33);
      expect(d.frame.faceFound).toBe(true);
      for (let k = 0; k < 3; k++) expect(Math.abs(d.frame.pose[k]! - v.pose[k]!)).toBeLessThanOrEqual(angle);
      for (let k = 3; k < 6; k++) expect(Math.abs(d.frame.pose[k]! - v.pose[k]!)).toBeLessThanOrEqual(cm);
      for (let k = 0; k < 2; k++) expect(Math.abs(d.frame.gaze[k]! - v.gaze[k]!)).toBeLessThanOrEqual(angle);
      for (let k = 0; k < BLENDSHAPE_COUNT; k++) expect(Math.abs(d.frame.blendshapes[k]! - v.blendshapes[k]!)).toBeLessThanOrEqual(bs);
    });
  });
});
