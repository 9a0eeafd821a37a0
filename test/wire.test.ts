/** Driving-frame wire format v1 (shared/src/wire.ts): round trip, golden bytes, every invalid variant. */
import { describe, expect, it } from 'vitest';
import { BLENDSHAPE_COUNT } from '../shared/src/blendshapes.js';
import { decodeDrivingFrame, DRIVING_FRAME_BYTES, encodeDrivingFrame, type DrivingFrame } from '../shared/src/wire.js';

function frame(over: Partial<DrivingFrame> = {}): DrivingFrame {
  const blendshapes = new Float32Array(BLENDSHAPE_COUNT).fill(0.2);
  blendshapes[0] = 0;
  blendshapes[1] = 1;
  blendshapes[2] = 0.5;
  return {
    seq: 0x01020304,
    captureMs: 0x0a0b0c0d,
    faceFound: true,
    pose: Float32Array.from([0.1, -0.2, 3.1416, 1.5, -2.25, -45.67]),
    gaze: Float32Array.from([0.05, -1.5708]),
    blendshapes,
    ...over,
  };
}

/** The bytes of frame(), written by hand from the table in wire.ts. */
const GOLDEN = Uint8Array.from([
  0x01, // version
  0x01, // flags: face found
  0x04, 0x03, 0x02, 0x01, // seq 0x01020304 LE
  0x0d, 0x0c, 0x0b, 0x0a, // captureMs 0x0a0b0c0d LE
  0xe8, 0x03, // pitch 0.1 rad → 1000
  0x30, 0xf8, // yaw -0.2 rad → -2000
  0xb8, 0x7a, // roll 3.1416 rad → 31416 (the largest allowed)
  0x96, 0x00, // tx 1.5 cm → 150
  0x1f, 0xff, // ty -2.25 cm → -225
  0x29, 0xee, // tz -45.67 cm → -4567
  0xf4, 0x01, // gaze yaw 0.05 rad → 500
  0xa4, 0xc2, // gaze pitch -1.5708 rad → -15708 (the smallest allowed)
  0x00, 0xff, 0x80, // blendshapes 0, 1, 0.5 (127.5 rounds to 128)
  ...new Array<number>(49).fill(0x33), // 0.2 × 255 = 51
]);

function bytesOf(f: DrivingFrame): Uint8Array {
  return encodeDrivingFrame(f);
}

function withInt16(at: number, v: number): Uint8Array {
  const b = bytesOf(frame()).slice();
  new DataView(b.buffer).setInt16(at, v, true);
  return b;
}

describe('driving frame wire format v1', () => {
  it('encodes a fixed frame to the hand-written golden bytes', () => {
    expect(GOLDEN.length).toBe(DRIVING_FRAME_BYTES);
    expect(Array.from(bytesOf(frame()))).toEqual(Array.from(GOLDEN));
  });

  it('decodes the golden bytes back to the frame (within quantisation)', () => {
    const r = decodeDrivingFrame(GOLDEN);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const f = r.frame;
    expect(f.seq).toBe(0x01020304);
    expect(f.captureMs).toBe(0x0a0b0c0d);
    expect(f.faceFound).toBe(true);
    const want = frame();
    for (let i = 0; i < 3; i++) expect(Math.abs((f.pose[i] as number) - (want.pose[i] as number))).toBeLessThanOrEqual(0.5e-4 + 1e-7);
    for (let i = 3; i < 6; i++) expect(Math.abs((f.pose[i] as number) - (want.pose[i] as number))).toBeLessThanOrEqual(0.005 + 1e-6);
    for (let i = 0; i < 2; i++) expect(Math.abs((f.gaze[i] as number) - (want.gaze[i] as number))).toBeLessThanOrEqual(0.5e-4 + 1e-7);
    expect(f.blendshapes[0]).toBe(0);
    expect(f.blendshapes[1]).toBe(1);
    expect(f.blendshapes[2]).toBeCloseTo(128 / 255, 6);
    expect(f.blendshapes[51]).toBeCloseTo(51 / 255, 6);
  });

  it('round-trips random in-range frames within one quantisation step', () => {
    let s = 12345;
    const rnd = (): number => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let n = 0; n < 500; n++) {
      const f: DrivingFrame = {
        seq: Math.floor(rnd() * 2 ** 32),
        captureMs: Math.floor(rnd() * 2 ** 32),
        faceFound: rnd() < 0.5,
        pose: Float32Array.from([(rnd() * 2 - 1) * 3.14, (rnd() * 2 - 1) * 3.14, (rnd() * 2 - 1) * 3.14, (rnd() * 2 - 1) * 300, (rnd() * 2 - 1) * 300, (rnd() * 2 - 1) * 300]),
        gaze: Float32Array.from([(rnd() * 2 - 1) * 1.57, (rnd() * 2 - 1) * 1.57]),
        blendshapes: Float32Array.from({ length: BLENDSHAPE_COUNT }, () => rnd()),
      };
      const r = decodeDrivingFrame(encodeDrivingFrame(f));
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      expect(r.frame.seq).toBe(f.seq);
      expect(r.frame.captureMs).toBe(f.captureMs);
      expect(r.frame.faceFound).toBe(f.faceFound);
      for (let i = 0; i < 3; i++) expect(Math.abs((r.frame.pose[i] as number) - (f.pose[i] as number))).toBeLessThan(0.51e-4);
      for (let i = 3; i < 6; i++) expect(Math.abs((r.frame.pose[i] as number) - (f.pose[i] as number))).toBeLessThan(0.0051);
      for (let i = 0; i < 2; i++) expect(Math.abs((r.frame.gaze[i] as number) - (f.gaze[i] as number))).toBeLessThan(0.51e-4);
      for (let i = 0; i < BLENDSHAPE_COUNT; i++) expect(Math.abs((r.frame.blendshapes[i] as number) - (f.blendshapes[i] as number))).toBeLessThan(0.5 / 255 + 1e-6);
    }
  });

  it('wraps seq and floors captureMs into u32', () => {
    const r = decodeDrivingFrame(encodeDrivingFrame(frame({ seq: 2 ** 32 + 5, captureMs: 2 ** 32 + 7.9 })));
    expect(r.ok && r.frame.seq).toBe(5);
    expect(r.ok && r.frame.captureMs).toBe(7);
  });

  it('clamps blendshapes a hair outside [0, 1]', () => {
    const b = new Float32Array(BLENDSHAPE_COUNT);
    b[0] = -0.01;
    b[1] = 1.02;
    const bytes = encodeDrivingFrame(frame({ blendshapes: b }));
    expect(bytes[26]).toBe(0);
    expect(bytes[27]).toBe(255);
  });

  describe('decoder rejects (never throws on)', () => {
    const cases: Array<[string, Uint8Array | ArrayBuffer]> = [
      ['an empty message', new Uint8Array(0)],
      ['one byte short', GOLDEN.slice(0, 77)],
      ['one byte long', Uint8Array.from([...GOLDEN, 0])],
      ['a huge message', new Uint8Array(65536)],
      ['version 0', Uint8Array.from(GOLDEN, (v, i) => (i === 0 ? 0 : v))],
      ['version 2', Uint8Array.from(GOLDEN, (v, i) => (i === 0 ? 2 : v))],
      ['reserved flag bit 1', Uint8Array.from(GOLDEN, (v, i) => (i === 1 ? 0x03 : v))],
      ['reserved flag bit 7', Uint8Array.from(GOLDEN, (v, i) => (i === 1 ? 0x80 : v))],
      ['pitch above +π', withInt16(10, 31417)],
      ['pitch below -π', withInt16(10, -31417)],
      ['yaw out of range', withInt16(12, -32768)],
      ['roll out of range', withInt16(14, 32767)],
      ['gaze yaw above π/2', withInt16(22, 15709)],
      ['gaze pitch below -π/2', withInt16(24, -15709)],
    ];
    for (const [name, bytes] of cases) {
      it(name, () => {
        const r = decodeDrivingFrame(bytes);
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.length).toBeGreaterThan(0);
      });
    }
    it('accepts an ArrayBuffer and an offset view of a valid frame', () => {
      const big = new Uint8Array(100);
      big.set(GOLDEN, 11);
      expect(decodeDrivingFrame(big.subarray(11, 11 + 78)).ok).toBe(true);
      expect(decodeDrivingFrame(GOLDEN.slice().buffer).ok).toBe(true);
    });
  });

  describe('encoder throws on values it cannot represent', () => {
    const bad: Array<[string, Partial<DrivingFrame>]> = [
      ['NaN pitch', { pose: Float32Array.from([NaN, 0, 0, 0, 0, 0]) }],
      ['+Infinity tz', { pose: Float32Array.from([0, 0, 0, 0, 0, Infinity]) }],
      ['-Infinity gaze', { gaze: Float32Array.from([-Infinity, 0]) }],
      ['NaN blendshape', { blendshapes: Float32Array.from({ length: BLENDSHAPE_COUNT }, (_, i) => (i === 7 ? NaN : 0)) }],
      ['yaw beyond π', { pose: Float32Array.from([0, 3.2, 0, 0, 0, 0]) }],
      ['tx beyond 327.67 cm', { pose: Float32Array.from([0, 0, 0, 400, 0, 0]) }],
      ['gaze pitch beyond π/2', { gaze: Float32Array.from([0, 1.6]) }],
      ['5 pose values', { pose: new Float32Array(5) }],
      ['51 blendshapes', { blendshapes: new Float32Array(51) }],
    ];
    for (const [name, over] of bad) {
      it(name, () => {
        expect(() => encodeDrivingFrame(frame(over))).toThrow(RangeError);
      });
    }
    it('a too-small output buffer', () => {
      expect(() => encodeDrivingFrame(frame(), new Uint8Array(77))).toThrow(RangeError);
    });
  });
});
