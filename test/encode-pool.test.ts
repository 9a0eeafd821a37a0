/**
 * The encode pool (server/src/media/encode-pool.ts): pictures encoded in a worker thread come out as the same
 * bitstream as on the main thread, RGB pictures are converted in the worker, streams spread over the workers,
 * and a worker that crashes, hangs or fails an encode ends only the streams it carried.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EncodePool } from '../server/src/media/encode-pool.js';
import { InlineFrameEncoder, type FrameEncoder, type FrameEncoderOptions } from '../server/src/media/frame-encoder.js';
import { rgbPlanarToYuv420p, yuv420pBytes } from '../server/src/media/rgb-to-yuv.js';
import { VideoDecoder } from '../server/src/media/video-decoder.js';
import { createLogger } from '../server/src/log.js';
import { eventLoopTurnsDuring } from './support/wait.js';

const log = createLogger('silent');
const W = 64;
const H = 48;
const opts = (o: Partial<FrameEncoderOptions> = {}): FrameEncoderOptions => ({ codec: 'vp8', width: W, height: H, fps: 25, bitrate: 300_000, maxPacketSize: 1200, rgbInput: true, ...o });

/** A moving colour pattern, planar float RGB. */
function pattern(t: number): Float32Array {
  const rgb = new Float32Array(3 * W * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      rgb[i] = (x + 3 * t) / W;
      rgb[W * H + i] = (y + 2 * t) / H;
      rgb[2 * W * H + i] = ((x ^ y) & 15) / 15;
    }
  }
  return rgb;
}

/** Writes frame t into the encoder's picture (RGB, or converted here when `yuv`) and encodes it. */
async function encodeFrame(enc: FrameEncoder, t: number, yuv = false): Promise<Awaited<ReturnType<FrameEncoder['encode']>>> {
  if (yuv) {
    rgbPlanarToYuv420p(pattern(t), W, H, enc.picture.yuv);
    return enc.encode('yuv420p', t * 3600, t === 0);
  }
  enc.picture.rgb?.set(pattern(t));
  return enc.encode('rgb', t * 3600, t === 0);
}

const pools: EncodePool[] = [];
function pool(workers: number, timeoutMs?: number): EncodePool {
  const p = new EncodePool({ workers, log, ...(timeoutMs ? { timeoutMs } : {}) });
  pools.push(p);
  return p;
}

afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});

describe('encode pool', () => {
  it('a worker produces the same VP8 and H.264 bitstream as the main thread, converting RGB itself, and it decodes', async () => {
    const p = pool(1);
    for (const codec of ['vp8', 'h264'] as const) {
      const inline = new InlineFrameEncoder(opts({ codec }));
      const pooled = p.open(opts({ codec }));
      const dec = new VideoDecoder(codec);
      try {
        let last: Uint8Array | null = null;
        for (let t = 0; t < 6; t++) {
          const a = await encodeFrame(inline, t);
          const b = await encodeFrame(pooled, t, t >= 3);
          for (const pk of b.packets) for (const pic of dec.decode(pk.data)) last = pic.yuv;
          expect(b.packets.map((x) => x.data.toString('hex'))).toEqual(a.packets.map((x) => x.data.toString('hex')));
          expect(b.key).toBe(t === 0);
          expect(b.rtp.length).toBeGreaterThan(0);
          expect(b.bytes).toBe(b.rtp.reduce((s, r) => s + r.length, 0));
          expect(Buffer.from(pooled.picture.yuv).equals(Buffer.from(inline.picture.yuv))).toBe(true); // converted in the worker
        }
        // the worker's bitstream decodes to the picture (luma PSNR against the last source)
        expect(last).not.toBeNull();
        const want = pooled.picture.yuv;
        let se = 0;
        for (let i = 0; i < W * H; i++) se += ((last as Uint8Array)[i]! - want[i]!) ** 2;
        expect(10 * Math.log10((255 * 255) / Math.max(1e-9, se / (W * H)))).toBeGreaterThan(25);
        expect(pooled.toJSON()).toMatchObject({ thread: 'worker 0', codec, frames: 6, keyframes: 1 });
        expect(inline.toJSON()).toMatchObject({ thread: 'main', frames: 6, keyframes: 1 });
      } finally {
        dec.close();
        inline.close();
        pooled.close();
        pooled.close(); // idempotent
      }
    }
  }, 60_000);

  it('passes its VP8 speed (libvpx cpu-used) to every stream: 16 codes the pictures otherwise than 8, as inline does, and decodes', async () => {
    const fast = new EncodePool({ workers: 1, log, vp8CpuUsed: 16 });
    pools.push(fast);
    expect(fast.vp8CpuUsed).toBe(16);
    expect(pool(0).vp8CpuUsed).toBe(8); // the default
    const pooled = fast.open(opts());
    expect(pooled.options.vp8CpuUsed).toBe(16);
    const own = fast.open(opts({ vp8CpuUsed: 4 })); // a stream's own value wins
    expect(own.options.vp8CpuUsed).toBe(4);
    own.close();
    const inlineFast = new InlineFrameEncoder(opts({ vp8CpuUsed: 16 }));
    const inlineDefault = new InlineFrameEncoder(opts());
    const dec = new VideoDecoder('vp8');
    try {
      let differs = 0;
      let last: Uint8Array | null = null;
      for (let t = 0; t < 8; t++) {
        const a = await encodeFrame(inlineFast, t);
        const b = await encodeFrame(pooled, t);
        const c = await encodeFrame(inlineDefault, t);
        expect(b.packets.map((x) => x.data.toString('hex'))).toEqual(a.packets.map((x) => x.data.toString('hex')));
        if (Buffer.compare(Buffer.concat(c.packets.map((x) => x.data)), Buffer.concat(b.packets.map((x) => x.data))) !== 0) differs++;
        for (const pk of b.packets) for (const pic of dec.decode(pk.data)) last = pic.yuv;
      }
      expect(differs).toBeGreaterThan(0);
      let se = 0;
      for (let i = 0; i < W * H; i++) se += ((last as Uint8Array)[i]! - pooled.picture.yuv[i]!) ** 2;
      expect(10 * Math.log10((255 * 255) / Math.max(1e-9, se / (W * H)))).toBeGreaterThan(25);
    } finally {
      dec.close();
      inlineFast.close();
      inlineDefault.close();
      pooled.close();
    }
    expect(() => new EncodePool({ workers: 1, log, vp8CpuUsed: 17 })).toThrow(/cpu-used must be an integer 0\.\.16, got 17/);
    expect(() => new InlineFrameEncoder(opts({ vp8CpuUsed: -1 }))).toThrow(/cpu-used must be an integer 0\.\.16/);
  });

  it('spreads streams over at most `workers` threads, starts them when needed and frees them on close', async () => {
    const p = pool(2);
    expect(p.live).toEqual({ workers: 0, streams: 0, failures: 0 });
    const a = p.open(opts());
    const b = p.open(opts());
    const c = p.open(opts());
    expect(p.live).toMatchObject({ workers: 2, streams: 3 });
    await Promise.all([a, b, c].map((e) => encodeFrame(e, 0)));
    expect([a, b, c].map((e) => e.toJSON().thread).sort()).toEqual(['worker 0', 'worker 0', 'worker 1']);
    b.close();
    expect(p.live.streams).toBe(2);
    await expect(b.encode('rgb', 1, false)).rejects.toThrow(/closed/);
    await p.close();
    await p.close(); // idempotent
    expect(p.live.workers).toBe(0);
    await expect(a.encode('rgb', 2, false)).rejects.toThrow(/encode pool is closed/);
    expect(() => p.open(opts())).toThrow(/closed/);
  }, 30_000);

  it('keeps the event loop turning while it encodes (inline, the loop stands still)', async () => {
    const big = { width: 512, height: 512 };
    const turnsDuring = async (enc: FrameEncoder): Promise<number> => {
      const rgb = new Float32Array(3 * 512 * 512).map((_, i) => (i % 509) / 509);
      await enc.encode('yuv420p', 0, true); // started (a worker's first start is not what is measured)
      return eventLoopTurnsDuring(async () => {
        for (let t = 1; t <= 10; t++) {
          enc.picture.rgb?.set(rgb.map((x) => (x + t / 10) % 1));
          await enc.encode('rgb', t * 3600, false);
        }
      });
    };
    const inline = new InlineFrameEncoder(opts(big));
    const pooled = pool(1).open(opts(big));
    try {
      const still = await turnsDuring(inline);
      const turning = await turnsDuring(pooled);
      if (process.env.DNP_TEST_VERBOSE) process.stderr.write(`event-loop turns during 10 encodes at 512²: inline ${still}, in a worker ${turning}\n`);
      expect(still).toBeLessThanOrEqual(2); // a synchronous encode never yields to the event loop
      expect(turning).toBeGreaterThan(20); // the worker converts and encodes while the loop turns
    } finally {
      inline.close();
      pooled.close();
    }
  }, 60_000);

  it('without RTP and with a global header (egress): the same extradata and packets as inline, no RTP', async () => {
    const o = opts({ codec: 'h264', rgbInput: false, packetize: false, globalHeader: true });
    const inline = new InlineFrameEncoder(o);
    const pooled = pool(1).open(o);
    try {
      const [a, b] = await Promise.all([inline.opened(), pooled.opened()]);
      expect(a.extradata?.length).toBeGreaterThan(8); // SPS + PPS
      expect(b.extradata?.toString('hex')).toBe(a.extradata?.toString('hex'));
      for (let t = 0; t < 3; t++) {
        const x = await encodeFrame(inline, t, true);
        const y = await encodeFrame(pooled, t, true);
        expect(y.rtp).toEqual([]);
        expect(y.packets.map((p) => p.data.toString('hex'))).toEqual(x.packets.map((p) => p.data.toString('hex')));
      }
      expect((await pool(1).open(opts()).opened()).extradata).toBeNull(); // RTP streams carry parameter sets in-band
    } finally {
      inline.close();
      pooled.close();
    }
    await expect(pooled.opened()).resolves.toBeTruthy(); // settled once, stays settled
  }, 30_000);

  it('workers: 0 encodes inline on the calling thread', async () => {
    const p = pool(0);
    const e = p.open(opts());
    expect(e).toBeInstanceOf(InlineFrameEncoder);
    expect((await encodeFrame(e, 0)).key).toBe(true);
    e.close();
    expect(p.live.workers).toBe(0);
  });

  it('checks what it is given: an RGB picture for a yuv420p-only stream, a stream that cannot open', async () => {
    const p = pool(1);
    const yuvOnly = p.open(opts({ rgbInput: false }));
    expect(yuvOnly.picture.rgb).toBeNull();
    await expect(yuvOnly.encode('rgb', 0, true)).rejects.toThrow(/takes yuv420p/);
    expect((await encodeFrame(yuvOnly, 0, true)).key).toBe(true);
    const odd = p.open(opts({ codec: 'h264', width: 63, height: 47, rgbInput: false })); // libx264 refuses odd sizes
    await expect(odd.opened()).rejects.toThrow(/cannot open the h264 encoder/);
    await expect(odd.encode('yuv420p', 0, true)).rejects.toThrow(/cannot open the h264 encoder/);
    expect(p.live.failures).toBe(0); // the worker itself is fine
    expect((await encodeFrame(yuvOnly, 1, true)).key).toBe(false);
    yuvOnly.close();
    odd.close();
    expect(yuv420pBytes(W, H)).toBe(yuvOnly.picture.yuv.length);
  }, 30_000);

  it('a failed encode fails only that frame; a crashed or hung worker ends only its streams, and new streams get a new worker', async () => {
    const p = pool(2, 1_500);
    let failures = 0;
    p.onWorkerFailed = () => failures++;
    const a = p.open(opts());
    const b = p.open(opts()); // on the second worker
    await Promise.all([encodeFrame(a, 0), encodeFrame(b, 0)]);

    p.testFault('throw');
    await expect(encodeFrame(a, 1)).rejects.toThrow(/injected encoder failure/);
    await expect(encodeFrame(b, 1)).rejects.toThrow(/injected encoder failure/);
    expect((await encodeFrame(a, 2)).rtp.length).toBeGreaterThan(0); // the stream goes on
    expect(p.live).toMatchObject({ workers: 2, failures: 0 });

    p.testFault('crash');
    await expect(encodeFrame(a, 3)).rejects.toThrow(/encode worker 0 (crashed|exited)/);
    await expect(encodeFrame(a, 4)).rejects.toThrow(/encode worker 0/); // that stream stays failed
    expect(p.live).toMatchObject({ workers: 1, failures: 1 });
    // b's worker had the fault armed too: its next encode fails alone, its stream survives that
    await expect(encodeFrame(b, 3)).rejects.toThrow(/encode worker 1 (crashed|exited)/);
    expect(p.live).toMatchObject({ workers: 0, failures: 2 });

    const c = p.open(opts()); // a fresh worker
    expect((await encodeFrame(c, 0)).key).toBe(true);
    p.testFault('hang');
    const t0 = performance.now();
    await expect(encodeFrame(c, 1)).rejects.toThrow(/did not answer an encode within 1500 ms/);
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(p.live).toMatchObject({ workers: 0, failures: 3 });
    expect(failures).toBe(3);
    const d = p.open(opts());
    expect((await encodeFrame(d, 0)).key).toBe(true);
  }, 60_000);
});
