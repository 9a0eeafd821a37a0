// The pure stages of `dnp prepare`: crop placement, face-gap filling and the split, constant-rate
// resampling, the NPY / PNG / WAV writers, display-matrix rotation, and the command-line parser.
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { computeCrop, type Box } from '../server/src/prepare/crop.js';
import { CfrResampler, isVariableFrameRate } from '../server/src/prepare/frame-timing.js';
import { fillGaps, splitFrames } from '../server/src/prepare/gaps.js';
import { encodeNpy, npyHeader } from '../server/src/prepare/npy.js';
import { UsageError } from '../server/src/cli/args.js';
import { parsePrepareArgs } from '../server/src/prepare/options.js';
import { crc32, encodePngRgb, pngSize } from '../server/src/prepare/png.js';
import { trackingSize } from '../server/src/prepare/pipeline.js';
import { rotationFilters, rotationFromDisplayMatrix } from '../server/src/prepare/video.js';
import { encodeWav16 } from '../server/src/prepare/wav.js';

const contains = (outer: { x: number; y: number; size: number }, b: Box): boolean =>
  b.x0 >= outer.x && b.y0 >= outer.y && b.x1 <= outer.x + outer.size && b.y1 <= outer.y + outer.size;

describe('computeCrop', () => {
  it('covers every face with room for hair above and neck below, square and inside the frame', () => {
    const boxes: Box[] = [];
    for (let i = 0; i < 50; i++) boxes.push({ x0: 800 + i, y0: 300 + (i % 7), x1: 1000 + i, y1: 560 + (i % 7) });
    const c = computeCrop(boxes, 1920, 1080);
    expect(c.limited).toBe(false);
    for (const b of boxes) expect(contains(c, b)).toBe(true);
    expect(Number.isInteger(c.x) && Number.isInteger(c.y) && Number.isInteger(c.size)).toBe(true);
    const top = Math.min(...boxes.map((b) => b.y0));
    const chin = Math.max(...boxes.map((b) => b.y1));
    expect(c.y).toBeLessThan(top - 0.4 * 260); // hair
    expect(c.y + c.size).toBeGreaterThan(chin + 0.7 * 260); // neck, shoulders
    expect(c.x + c.size).toBeLessThanOrEqual(1920);
    expect(c.y + c.size).toBeLessThanOrEqual(1080);
    // centred horizontally on the faces
    const cx = c.x + c.size / 2;
    expect(Math.abs(cx - (800 + 1049) / 2)).toBeLessThan(2);
  });

  it('slides inside the frame at a border instead of padding', () => {
    const c = computeCrop([{ x0: 10, y0: 20, x1: 110, y1: 140 }], 640, 480);
    expect(c.x).toBe(0);
    expect(c.y).toBe(0);
    expect(c.limited).toBe(false);
    expect(contains(c, { x0: 10, y0: 20, x1: 110, y1: 140 })).toBe(true);
  });

  it('shrinks to the shorter side when the portrait does not fit, keeping the head', () => {
    const face = { x0: 137, y0: 121, x1: 378, y1: 403 };
    const c = computeCrop([face], 512, 480);
    expect(c.limited).toBe(true);
    expect(c.size).toBe(480);
    expect(c.y).toBe(0);
    expect(contains(c, face)).toBe(true);
  });

  it('ignores degenerate boxes and refuses an empty list', () => {
    expect(() => computeCrop([], 100, 100)).toThrow(/no face boxes/);
    expect(() => computeCrop([{ x0: 5, y0: 5, x1: 5, y1: 9 }], 100, 100)).toThrow(/no face boxes/);
  });
});

describe('fillGaps and splitFrames', () => {
  it('interpolates short inner gaps, excludes long and edge gaps', () => {
    const found = Uint8Array.from([0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0]);
    const data = new Float32Array(found.length * 2);
    found.forEach((f, i) => {
      if (f) {
        data[i * 2] = i;
        data[i * 2 + 1] = -i;
      }
    });
    const r = fillGaps(found, [{ data, width: 2 }], 3);
    expect(Array.from(r.valid)).toEqual([0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0]);
    expect(Array.from(r.interpolated)).toEqual([0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(data[2 * 2]).toBeCloseTo(2);
    expect(data[3 * 2 + 1]).toBeCloseTo(-3);
    expect(data[7 * 2]).toBe(0); // long gap left at zero
    expect(r.validCount).toBe(6);
    expect(r.excludedCount).toBe(7);
  });

  it('puts the last fraction of the clip in the test part', () => {
    expect(splitFrames(100, 0.2)).toEqual({ train: [0, 80], test: [80, 100] });
    expect(splitFrames(90, 0)).toEqual({ train: [0, 90], test: [90, 90] });
  });
});

describe('CfrResampler', () => {
  const run = (times: number[], fps: number, start = 0, max = Infinity, lastDur = 1 / 30): number[] => {
    const r = new CfrResampler(fps, start, max);
    const shown: number[] = []; // source index shown by each output frame
    times.forEach((t, k) => {
      const n = r.push(t);
      for (let j = 0; j < n; j++) shown.push(k - 1);
    });
    const n = r.finish(lastDur);
    for (let j = 0; j < n; j++) shown.push(times.length - 1);
    return shown;
  };
  const cfr30 = Array.from({ length: 30 }, (_, i) => i / 30);

  it('maps a constant-rate source at its own rate one to one', () => {
    expect(run(cfr30, 30)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });
  it('drops and repeats frames to reach another rate', () => {
    expect(run(cfr30, 15)).toEqual(Array.from({ length: 15 }, (_, i) => 2 * i));
    expect(run(cfr30, 60).slice(0, 6)).toEqual([0, 0, 1, 1, 2, 2]);
  });
  it('honours the start time and the frame limit', () => {
    expect(run(cfr30, 30, 10 / 30, 5)).toEqual([10, 11, 12, 13, 14]);
  });
  it('detects variable frame rate', () => {
    expect(isVariableFrameRate(Array(20).fill(1 / 30))).toBe(false);
    expect(isVariableFrameRate([...Array(20).fill(1 / 30), 2 / 30])).toBe(true);
  });
});

describe('file writers', () => {
  it('writes NPY v1.0 headers numpy accepts', () => {
    const h = npyHeader('float32', [3, 6]);
    expect(h.length % 64).toBe(0);
    expect(h.subarray(0, 8)).toEqual(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]));
    expect(h.readUInt16LE(8)).toBe(h.length - 10);
    expect(h.toString('latin1', 10)).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3, 6\), \} *\n$/);
    expect(npyHeader('uint8', [7]).toString('latin1')).toContain("'descr': '|u1', 'fortran_order': False, 'shape': (7,)");
    const npy = encodeNpy(Float32Array.from([1.5, -2]), [2]);
    const body = npy.subarray(npy.length - 8);
    expect(body.readFloatLE(0)).toBe(1.5);
    expect(body.readFloatLE(4)).toBe(-2);
    expect(() => encodeNpy(new Uint8Array(3), [2])).toThrow(/holds 2 values/);
  });

  it('writes lossless PNG', async () => {
    const w = 7;
    const h = 5;
    const rgb = new Uint8Array(w * h * 3).map((_, i) => (i * 37) & 0xff);
    const png = await encodePngRgb(rgb, w, h);
    expect(pngSize(png)).toEqual({ width: w, height: h });
    // undo the filters: first row None, the rest Up
    const idatLen = png.readUInt32BE(33);
    expect(png.toString('latin1', 37, 41)).toBe('IDAT');
    expect(png.readUInt32BE(41 + idatLen)).toBe((crc32(png, 37, 41 + idatLen) ^ 0xffffffff) >>> 0);
    const raw = inflateSync(png.subarray(41, 41 + idatLen));
    const out = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      const f = raw[y * (w * 3 + 1)];
      for (let x = 0; x < w * 3; x++) {
        const v = raw[y * (w * 3 + 1) + 1 + x] as number;
        out[y * w * 3 + x] = f === 2 ? (v + (out[(y - 1) * w * 3 + x] as number)) & 0xff : v;
      }
    }
    expect(out).toEqual(rgb);
  });

  it('writes 16-bit mono WAV', () => {
    const wav = encodeWav16(Int16Array.from([0, 1000, -1000]), 16000);
    expect(wav.toString('latin1', 0, 4)).toBe('RIFF');
    expect(wav.readUInt32LE(24)).toBe(16000);
    expect(wav.readUInt16LE(22)).toBe(1);
    expect(wav.readUInt32LE(40)).toBe(6);
    expect(wav.readInt16LE(46)).toBe(1000);
  });
});

describe('rotation', () => {
  const matrix = (deg: number): Buffer => {
    // a display matrix for which FFmpeg 8's av_display_rotation_get() returns `deg` (what ffprobe prints
    // as "displaymatrix: rotation of DEG degrees")
    const r = (deg * Math.PI) / 180;
    const b = Buffer.alloc(36);
    const fp = (v: number): number => Math.round(v * 65536);
    b.writeInt32LE(fp(Math.cos(r)), 0);
    b.writeInt32LE(fp(-Math.sin(r)), 4);
    b.writeInt32LE(fp(Math.sin(r)), 12);
    b.writeInt32LE(fp(Math.cos(r)), 16);
    b.writeInt32LE(1 << 30, 32);
    return b;
  };
  it('reads the display matrix like the ffmpeg command line (autorotate)', () => {
    expect(rotationFromDisplayMatrix(null)).toBe(0);
    expect(rotationFromDisplayMatrix(matrix(0))).toBe(0);
    // a phone held upright records "rotation of -90.00 degrees": ffmpeg turns it clockwise by 90
    expect(rotationFromDisplayMatrix(matrix(-90))).toBe(90);
    expect(rotationFromDisplayMatrix(matrix(90))).toBe(270);
    expect(rotationFromDisplayMatrix(matrix(180))).toBe(180);
    expect(rotationFilters(90)).toEqual(['transpose=clock']);
    expect(rotationFilters(0)).toEqual([]);
  });
});

describe('parsePrepareArgs', () => {
  const env = { DNP_TRACKER_MODEL: '/models/face.task' };
  it('parses every option', () => {
    const o = parsePrepareArgs(
      ['in.mp4', '--out', 'ds', '--size', '512', '--fps=25', '--start', '1.5', '--max-seconds', '60', '--test-fraction', '0.1', '--force', '--chromium', '/c', '--max-gap', '0.3', '--png-level', '3'],
      env,
    );
    expect(o).toMatchObject({ input: 'in.mp4', out: 'ds', size: 512, fps: 25, startSeconds: 1.5, maxSeconds: 60, testFraction: 0.1, force: true, chromium: '/c', maxGapSeconds: 0.3, pngLevel: 3, trackerModel: '/models/face.task' });
    expect(parsePrepareArgs(['in.mp4', '--out', 'ds', '--tracker-model', 'x.task'], env).trackerModel).toBe('x.task');
    expect(parsePrepareArgs(['in.mp4', '--out', 'ds'], env)).toMatchObject({ size: 256, fps: null, startSeconds: 0, maxSeconds: null, testFraction: 0.2, force: false });
  });
  it('rejects bad arguments with a message naming them', () => {
    const bad: Array<[string[], RegExp]> = [
      [['--out', 'ds'], /missing INPUT/],
      [['in.mp4'], /missing --out/],
      [['in.mp4', '--out', 'ds', '--size', '300'], /--size: 300 is not one of 256, 512, 1024/],
      [['in.mp4', '--out', 'ds', '--fps', 'abc'], /--fps: 'abc' is not a number/],
      [['in.mp4', '--out', 'ds', '--test-fraction', '1'], /outside/],
      [['in.mp4', '--out', 'ds', '--bogus'], /unknown option --bogus/],
      [['a.mp4', 'b.mp4', '--out', 'ds'], /expected one INPUT/],
    ];
    for (const [argv, re] of bad) expect(() => parsePrepareArgs(argv, env)).toThrow(re);
    expect(() => parsePrepareArgs(['in.mp4', '--out', 'ds'], {})).toThrow(UsageError);
    expect(() => parsePrepareArgs(['in.mp4', '--out', 'ds'], {})).toThrow(/no FaceLandmarker model configured.*DNP_TRACKER_MODEL/);
  });
});

describe('trackingSize', () => {
  it('bounds the tracked image to 960 pixels on its longest side', () => {
    expect(trackingSize(512, 480)).toEqual({ width: 512, height: 480 });
    expect(trackingSize(1920, 1080)).toEqual({ width: 960, height: 540 });
    expect(trackingSize(1080, 1920)).toEqual({ width: 540, height: 960 });
  });
});
