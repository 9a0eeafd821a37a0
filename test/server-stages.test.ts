/**
 * The live server's media and driving stages on their own (no network): RGB → YUV, encoder keyframes and
 * RTP packetisation, the driving channel (validation, latest-wins, calibration), the renderer's batching,
 * and the public-IP candidate rewrite.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AV_PIX_FMT_RGB24, AV_PIX_FMT_YUV420P, SWS_AREA } from 'node-av';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLENDSHAPE_COUNT } from '../shared/src/blendshapes.js';
import { emptyDrivingValues, flattenDrivingValues } from '../shared/src/driving-values.js';
import { encodeDrivingFrame, type DrivingFrame } from '../shared/src/wire.js';
import { createLogger } from '../server/src/log.js';
import { rgbPlanarToYuv420p, yuv420pBytes } from '../server/src/media/rgb-to-yuv.js';
import { RtpMuxer } from '../server/src/media/rtp-muxer.js';
import { VideoDecoder } from '../server/src/media/video-decoder.js';
import { VideoEncoder } from '../server/src/media/video-encoder.js';
import { RenderPool } from '../server/src/render/render-pool.js';
import { Renderer } from '../server/src/render/renderer.js';
import { DrivingChannel } from '../server/src/session/driving-channel.js';
import { addPublicIpCandidates } from '../server/src/session/peer.js';
import { makeUntrainedAvatar, type TestAvatar } from './support/test-avatar.js';
import { eventLoopTurnsDuring, waitFor } from './support/wait.js';
import { swsConvert } from './support/video-compare.js';

const W = 64;
const H = 48;

function testImage(w = W, h = H): Float32Array {
  const n = w * h;
  const rgb = new Float32Array(3 * n);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      rgb[i] = x / (w - 1);
      rgb[n + i] = y / (h - 1);
      rgb[2 * n + i] = 0.5 + 0.5 * Math.sin((x + y) / 7);
    }
  }
  return rgb;
}

/** FFmpeg's swscale RGB24 → yuv420p, as an independent reference. */
function ffmpegYuv(rgb: Float32Array, w: number, h: number): Buffer {
  const n = w * h;
  const packed = Buffer.alloc(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) packed[3 * i + c] = Math.round((rgb[c * n + i] as number) * 255);
  return swsConvert(packed, w, h, AV_PIX_FMT_RGB24, AV_PIX_FMT_YUV420P, SWS_AREA); // area: 2x2 chroma mean, as ours
}

describe('RGB → yuv420p', () => {
  it('maps white, black and red to BT.601 limited-range values', () => {
    const n = 4;
    const rgb = new Float32Array(3 * n * 4); // 4x4 image: rows of white, black, red, red
    const w = 4;
    const set = (y: number, r: number, g: number, b: number): void => {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        rgb[i] = r;
        rgb[16 + i] = g;
        rgb[32 + i] = b;
      }
    };
    set(0, 1, 1, 1);
    set(1, 1, 1, 1);
    set(2, 1, 0, 0);
    set(3, 1, 0, 0);
    const out = rgbPlanarToYuv420p(rgb, 4, 4, new Uint8Array(yuv420pBytes(4, 4)));
    expect(out[0]).toBe(235); // white Y
    expect(out[8]).toBe(81); // red Y
    expect([out[16], out[20]]).toEqual([128, 128]); // white U, V
    expect([out[18], out[22]]).toEqual([90, 240]); // red U, V
  });

  it('agrees with FFmpeg swscale within 1 level on a smooth picture', () => {
    const rgb = testImage();
    const ours = rgbPlanarToYuv420p(rgb, W, H, new Uint8Array(yuv420pBytes(W, H)));
    const ref = ffmpegYuv(rgb, W, H);
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs((ours[i] as number) - (ref[i] as number)));
    expect(worst).toBeLessThanOrEqual(1);
  });

  it('rejects odd sizes and short inputs', () => {
    expect(() => rgbPlanarToYuv420p(new Float32Array(27), 3, 3, new Uint8Array(100))).toThrow(RangeError);
    expect(() => rgbPlanarToYuv420p(new Float32Array(10), 4, 4, new Uint8Array(100))).toThrow(RangeError);
  });
});

describe('encoder + RTP muxer', () => {
  for (const codec of ['vp8', 'h264'] as const) {
    it(`${codec}: keyframes exactly where asked, RTP packets ≤ 1200 bytes with one timestamp and a marker per picture, decodable`, () => {
      const w = 256;
      const h = 256;
      const enc = new VideoEncoder({ codec, width: w, height: h, fps: 25, bitrate: 500_000 });
      const packets: Buffer[] = [];
      const mux = new RtpMuxer(enc, { maxPacketSize: 1200, onPacket: (p) => packets.push(p) });
      const dec = new VideoDecoder(codec);
      try {
        const keys: boolean[] = [];
        const perPicture: Buffer[][] = [];
        for (let f = 0; f < 6; f++) {
          const img = testImage(w, h).map((v, i) => (v + f * 0.03 + (i % 7) * 0.001) % 1);
          const yuv = Buffer.from(rgbPlanarToYuv420p(img, w, h, new Uint8Array(enc.yuvBytes)));
          const out = enc.encode(yuv, f * 3600, f === 0 || f === 4);
          expect(out.length).toBe(1); // no look-ahead: one packet per picture, at once
          keys.push((out[0] as { key: boolean }).key);
          const before = packets.length;
          for (const p of out) mux.write(p);
          perPicture.push(packets.slice(before));
          expect(dec.decode((out[0] as { data: Buffer }).data).length).toBe(1);
        }
        expect(keys).toEqual([true, false, false, false, true, false]);
        for (const pic of perPicture) {
          expect(pic.length).toBeGreaterThan(0);
          const ts = pic.map((p) => p.readUInt32BE(4));
          expect(new Set(ts).size).toBe(1);
          pic.forEach((p, i) => {
            expect(p.length).toBeLessThanOrEqual(1200);
            expect(p[0]! >> 6).toBe(2); // RTP version 2
            expect(((p[1] as number) & 0x80) !== 0).toBe(i === pic.length - 1); // marker on the last packet only
          });
        }
        // FFmpeg's rtp muxer writes an RTCP sender report before the first packet: it must be dropped (werift
        // does RTCP itself), every packet that reaches onPacket must be RTP, and the counts must agree.
        const stats = mux.toJSON();
        expect(stats.rtcpDropped).toBeGreaterThanOrEqual(1);
        expect(stats.rtpPackets).toBe(packets.length);
        for (const p of packets) expect((p[1] as number) >= 200 && (p[1] as number) <= 204).toBe(false); // RTCP SR..APP
        expect(new Set(packets.map((p) => (p[1] as number) & 0x7f)).size).toBe(1); // one payload type throughout
      } finally {
        dec.close();
        mux.close();
        enc.close();
        mux.close(); // idempotent
        enc.close();
      }
    });
  }
});

function df(seq: number, over: Partial<DrivingFrame> = {}): Uint8Array {
  return encodeDrivingFrame({
    seq,
    captureMs: seq,
    faceFound: true,
    pose: Float32Array.from([0.1, 0.2, 0, 1, 2, -40]),
    gaze: Float32Array.from([0.1, 0]),
    blendshapes: new Float32Array(BLENDSHAPE_COUNT).fill(0.3),
    ...over,
  });
}

describe('DrivingChannel', () => {
  const avatarNeutral = emptyDrivingValues();
  avatarNeutral.pose[5] = -30;

  it('accepts frames, rejects and counts the rest by reason, and never throws', () => {
    const counted: string[] = [];
    const ch = new DrivingChannel(avatarNeutral, { received: () => counted.push('ok'), rejected: (r) => counted.push(r) });
    expect(ch.handleMessage(df(1))).toBe(true);
    expect(ch.handleMessage('hello')).toBe(false);
    expect(ch.handleMessage(new Uint8Array(200))).toBe(false);
    expect(ch.handleMessage(new Uint8Array(10))).toBe(false);
    const bad = df(2);
    bad[0] = 7;
    expect(ch.handleMessage(bad)).toBe(false);
    expect(ch.handleMessage(df(3).buffer.slice(0) as ArrayBuffer)).toBe(true);
    expect(counted).toEqual(['ok', 'text', 'oversized', 'malformed', 'malformed', 'ok']);
    expect(ch.toJSON()).toMatchObject({ received: 2, rejected: 4, rejectedBy: { text: 1, oversized: 1, malformed: 2 } });
    expect(ch.latest?.seq).toBe(3);
  });

  it('keeps the newest frame: late (reordered) frames are dropped; a restarted sequence resyncs', () => {
    const ch = new DrivingChannel(avatarNeutral);
    const seen: number[] = [];
    ch.onFrame = (v) => seen.push(v.seq);
    for (const s of [1, 2, 5, 3, 4, 6]) ch.handleMessage(df(s));
    expect(seen).toEqual([1, 2, 5, 6]);
    expect(ch.toJSON().stale).toBe(2);
    // seq wraps at 2^32
    for (const s of [0x7fffffff, 0xfffffff0, 0]) ch.handleMessage(df(s));
    expect(seen.slice(-3)).toEqual([0x7fffffff, 0xfffffff0, 0]);
    // a sender that restarts at 1 is followed again after 30 stale frames
    for (let s = 1; s <= 31; s++) ch.handleMessage(df(s));
    expect(ch.latest?.seq).toBe(31);
  });

  it('keeps the last expression while no face is found', () => {
    const ch = new DrivingChannel(avatarNeutral);
    ch.handleMessage(df(1));
    const before = ch.latest?.cond.slice();
    ch.handleMessage(df(2, { faceFound: false, pose: new Float32Array(6) }));
    expect(ch.latest?.seq).toBe(1);
    expect(Array.from(ch.latest?.cond ?? [])).toEqual(Array.from(before ?? []));
    expect(ch.toJSON().noFace).toBe(1);
  });

  it('retargets onto the avatar neutral after calibration', () => {
    const ch = new DrivingChannel(avatarNeutral);
    ch.handleMessage(df(1));
    const raw = ch.latest?.cond.slice() as Float32Array;
    expect(raw[5]).toBeCloseTo(-40, 2);
    const callerNeutral = emptyDrivingValues();
    callerNeutral.pose[5] = -50;
    callerNeutral.blendshapes.fill(0.1);
    ch.calibrate(callerNeutral);
    ch.handleMessage(df(2));
    const c = ch.latest?.cond as Float32Array;
    expect(c[5]).toBeCloseTo(-30 + (-40 - -50), 2); // avatar neutral + (caller − caller neutral)
    expect(c[8]).toBeCloseTo(0 + (0.3 - 0.1), 2);
    expect(ch.toJSON().calibrated).toBe(true);
  });
});

/** The largest absolute difference between corresponding values of two lists of pictures. */
function worstDifference(a: Float32Array[], b: Float32Array[]): number {
  expect(b.length).toBe(a.length);
  let worst = 0;
  a.forEach((x, k) => {
    const y = b[k] as Float32Array;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs((x[i] as number) - (y[i] as number)));
  });
  return worst;
}

/** n different conditioning vectors (head turn and jaw opening growing with k). */
function testVectors(n: number): Float32Array[] {
  return Array.from({ length: n }, (_, k) => {
    const v = emptyDrivingValues();
    v.pose[1] = 0.1 * k;
    v.blendshapes[25] = k / (n - 1);
    return flattenDrivingValues(v, new Float32Array(60));
  });
}

describe('Renderer batching (untrained avatar)', () => {
  let tmp: string;
  let avatar: TestAvatar;
  let renderer: Renderer;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-stage-'));
    avatar = await makeUntrainedAvatar(join(tmp, 'a'), { size: 128 });
    renderer = await Renderer.create('a', avatar.modelPath, avatar.manifest, { device: 'cpu', threads: 1, maxBatch: 4 }, createLogger('silent'));
  });

  afterAll(async () => {
    await renderer?.close();
    await renderer?.close(); // idempotent
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('renders requests that arrive together in shared model runs, each with its own result', async () => {
    const vectors = testVectors(6);
    const alone: Float32Array[] = [];
    for (const v of vectors) alone.push(await renderer.render(v, (rgb) => rgb.slice()));
    const runsBefore = renderer.toJSON().runs;
    const together = await Promise.all(vectors.map((v) => renderer.render(v, (rgb) => rgb.slice())));
    const runs = renderer.toJSON().runs - runsBefore;
    expect(runs).toBeLessThan(vectors.length); // batched (the first runs alone, the rest in batches of ≤ 4)
    expect(renderer.toJSON().maxBatchSeen).toBeGreaterThan(1);
    expect(renderer.toJSON().maxBatchSeen).toBeLessThanOrEqual(4);
    expect(worstDifference(alone, together)).toBeLessThan(1e-4);
    // different vectors → different pictures
    let diff = 0;
    const a0 = together[0] as Float32Array;
    const a5 = together[5] as Float32Array;
    for (let i = 0; i < a0.length; i++) diff += Math.abs((a0[i] as number) - (a5[i] as number));
    expect(diff / a0.length).toBeGreaterThan(0.01);
  });

  it('keeps the main thread free while the model runs (the model runs in a worker thread)', async () => {
    const v = new Float32Array(60);
    const turns = await eventLoopTurnsDuring(async () => {
      for (let i = 0; i < 8; i++) await renderer.render(v, () => undefined);
    });
    if (process.env.DNP_TEST_VERBOSE) process.stderr.write(`event-loop turns during 8 renders: ${turns}\n`);
    // onnxruntime-node's run() holds its calling thread for the whole model run: on the main thread the event
    // loop would turn only a few times per render. In the worker it keeps turning (thousands of times).
    expect(turns).toBeGreaterThan(200);
  });

  it('rejects a vector of the wrong length and renders after that', async () => {
    await expect(renderer.render(new Float32Array(59), () => 0)).rejects.toThrow(/cond has 59 values, expected 60/);
    await expect(renderer.render(new Float32Array(60), () => 1)).resolves.toBe(1);
  });
});

describe('RenderPool (several render workers for one avatar)', () => {
  let tmp: string;
  let avatar: TestAvatar;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-pool-'));
    avatar = await makeUntrainedAvatar(join(tmp, 'a'), { size: 64 });
  });

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('sends frames that arrive together to different workers, with the same pictures as one renderer', async () => {
    const log = createLogger('silent');
    const one = await RenderPool.create('a', avatar.modelPath, avatar.manifest, { device: 'cpu', threads: 1, maxBatch: 4 }, log);
    const two = await RenderPool.create('a', avatar.modelPath, avatar.manifest, { device: 'cpu', threads: 1, maxBatch: 4, workers: 2 }, log);
    try {
      expect([one.size, two.size]).toEqual([1, 2]);
      expect(two.live).toEqual({ workers: 2, runsInFlight: 0, queued: 0 });
      const vectors = testVectors(4);
      two.testSlowRuns(200); // long enough to see where the frames went
      const pending = vectors.slice(0, 2).map((v) => two.render(v, (rgb) => rgb.slice()));
      expect(two.live).toEqual({ workers: 2, runsInFlight: 2, queued: 0 }); // one run on each worker at once
      await Promise.all(pending);
      two.testSlowRuns(0);
      const a = await Promise.all(vectors.map((v) => one.render(v, (rgb) => rgb.slice())));
      const b = await Promise.all(vectors.map((v) => two.render(v, (rgb) => rgb.slice())));
      expect(worstDifference(a, b)).toBeLessThan(1e-4);
      expect(two.toJSON()).toMatchObject({ workers: 2, frames: 6, failed: 0 });
    } finally {
      await Promise.all([one.close(), two.close()]);
      await two.close(); // idempotent
    }
    expect(two.live.workers).toBe(0);
    await expect(two.render(Float32Array.from(avatar.manifest.conditioning.mean), () => 0)).rejects.toThrow(/closed/);
  }, 60_000);

  it('a member whose worker crashed gets no more frames: the others render them', async () => {
    const pool = await RenderPool.create('a', avatar.modelPath, avatar.manifest, { device: 'cpu', threads: 1, maxBatch: 4, workers: 2 }, createLogger('silent'));
    try {
      const cond = Float32Array.from(avatar.manifest.conditioning.mean);
      pool.testFaultNextRun('crash', 0);
      await expect(pool.render(cond, () => 0)).rejects.toThrow(/render worker (exited|crashed)/); // member 0 gets it (a tie) and dies
      expect(pool.live.workers).toBe(1);
      for (let i = 0; i < 4; i++) await expect(pool.render(cond, () => i)).resolves.toBe(i);
      expect(pool.toJSON().frames).toBe(4);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('a crashed worker is replaced: a pool of one renders again after its worker died', async () => {
    const pool = await RenderPool.create('a', avatar.modelPath, avatar.manifest, { device: 'cpu', threads: 1, maxBatch: 4 }, createLogger('silent'));
    let restarts = 0;
    pool.onRestart = () => restarts++;
    try {
      const cond = Float32Array.from(avatar.manifest.conditioning.mean);
      pool.testFaultNextRun('crash');
      await expect(pool.render(cond, () => 0)).rejects.toThrow(/render worker (exited|crashed)/);
      await expect(pool.render(cond, () => 0)).rejects.toThrow(/render worker (exited|crashed)/); // starts the replacement
      await waitFor('the replacement to render', async () => (await pool.render(cond, () => 1).catch(() => 0)) === 1, 30_000, 100);
      expect(pool.toJSON()).toMatchObject({ restarts: 1, workers: 1 });
      expect(restarts).toBe(1);
      expect(pool.live.workers).toBe(1);
    } finally {
      await pool.close();
    }
    expect(pool.live.workers).toBe(0);
  }, 60_000);

  it('refuses a worker count outside 1..64', async () => {
    await expect(RenderPool.create('a', avatar.modelPath, avatar.manifest, { device: 'cpu', threads: 1, maxBatch: 4, workers: 0 }, createLogger('silent'))).rejects.toThrow(/1\.\.64/);
  });
});

describe('public IP candidates', () => {
  it('adds a copy of each UDP host candidate with the public address', () => {
    const sdp = ['v=0', 'a=candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host', 'a=candidate:2 1 tcp 1 10.0.0.5 9 typ host', 'a=end-of-candidates', ''].join('\r\n');
    const out = addPublicIpCandidates(sdp, '203.0.113.7').split('\r\n');
    expect(out).toContain('a=candidate:1p 1 udp 2130706430 203.0.113.7 50000 typ host');
    expect(out.filter((l) => l.includes('203.0.113.7')).length).toBe(1);
  });
});
