/**
 * Fuzz test of the driving-frame decoder (shared/src/wire.ts): 1,000,000+ random and mutated messages,
 * deterministic (seeded). The decoder must never throw, must reject exactly the messages an independent
 * reference check calls invalid, and every message it accepts must re-encode to the same bytes (so nothing
 * out of range slips through as a different value).
 */
import { describe, expect, it } from 'vitest';
import { DRIVING_FRAME_BYTES, decodeDrivingFrame, encodeDrivingFrame } from '../shared/src/wire.js';

/** mulberry32: small, fast, deterministic. */
function rng32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

let r32: () => number = rng32(1);
const r = (): number => r32() / 4294967296;

/** Random bytes into out[start, end), four per generator call. */
function fill(out: Uint8Array, start: number, end: number): void {
  for (let i = start; i < end; i += 4) {
    let x = r32();
    for (let k = 0; k < 4 && i + k < end; k++, x >>>= 8) out[i + k] = x & 0xff;
  }
}

/** The format's rules, written out independently of the decoder. */
function referenceValid(b: Uint8Array): boolean {
  if (b.length !== 78) return false;
  if (b[0] !== 1) return false;
  if (((b[1] as number) & 0xfe) !== 0) return false;
  const i16 = (o: number): number => {
    const v = (b[o] as number) | ((b[o + 1] as number) << 8);
    return v >= 0x8000 ? v - 0x10000 : v;
  };
  for (let i = 0; i < 3; i++) if (Math.abs(i16(10 + 2 * i)) > 31416) return false; // pitch, yaw, roll ≤ π
  for (let i = 0; i < 3; i++) if (i16(16 + 2 * i) < -32767) return false; // tx, ty, tz: ±327.67 cm
  for (let i = 0; i < 2; i++) if (Math.abs(i16(22 + 2 * i)) > 15708) return false; // gaze ≤ π/2
  return true;
}

function validFrame(): Uint8Array {
  const b = new Uint8Array(78);
  b[0] = 1;
  b[1] = r() < 0.5 ? 1 : 0;
  fill(b, 2, 10);
  const put = (o: number, v: number): void => {
    const u = v < 0 ? v + 0x10000 : v;
    b[o] = u & 0xff;
    b[o + 1] = u >> 8;
  };
  const edge = (max: number): number => {
    const x = r();
    if (x < 0.1) return max;
    if (x < 0.2) return -max;
    return Math.round((r() * 2 - 1) * max);
  };
  for (let i = 0; i < 3; i++) put(10 + 2 * i, edge(31416));
  for (let i = 0; i < 3; i++) put(16 + 2 * i, edge(32767));
  for (let i = 0; i < 2; i++) put(22 + 2 * i, edge(15708));
  fill(b, 26, 78);
  return b;
}

function mutate(b: Uint8Array): Uint8Array {
  const out = b.slice();
  const n = 1 + Math.floor(r() * 3);
  for (let k = 0; k < n; k++) {
    const i = Math.floor(r() * out.length);
    if (r() < 0.5) out[i] = ((out[i] as number) ^ (1 << Math.floor(r() * 8))) & 0xff;
    else out[i] = Math.floor(r() * 256);
  }
  return out;
}

function randomBytes(len: number): Uint8Array {
  const out = new Uint8Array(len);
  fill(out, 0, len);
  return out;
}

/** The same bytes in the shapes the decoder can be given: Uint8Array, Buffer at an offset, DataView, ArrayBuffer. */
function view(b: Uint8Array, shape: number): ArrayBufferView | ArrayBuffer {
  switch (shape % 4) {
    case 0:
      return b;
    case 1: {
      const big = Buffer.alloc(b.length + 13);
      big.set(b, 7);
      return big.subarray(7, 7 + b.length);
    }
    case 2:
      return new DataView(b.buffer, b.byteOffset, b.byteLength);
    default:
      return b.slice().buffer;
  }
}

describe('driving-frame decoder fuzz', () => {
  it('1,000,000 random and mutated messages: never throws, rejects exactly the invalid ones, accepted ones re-encode byte for byte', async () => {
    r32 = rng32(0x5eed1234);
    const N = 1_000_000;
    const counts = { accepted: 0, rejected: 0, kinds: [0, 0, 0, 0, 0] };
    const mismatches: string[] = [];
    const reencode = new Uint8Array(DRIVING_FRAME_BYTES);
    for (let n = 0; n < N; n++) {
      if (n % 50_000 === 0) await new Promise((res) => setImmediate(res)); // let vitest's worker talk to its parent
      const kind = Math.floor(r() * 5);
      counts.kinds[kind] = (counts.kinds[kind] as number) + 1;
      let b: Uint8Array;
      if (kind === 0) b = validFrame();
      else if (kind === 1) b = mutate(validFrame());
      else if (kind === 2) b = randomBytes(78);
      else if (kind === 3) b = randomBytes(Math.floor(r() * 160));
      else {
        const v = validFrame(); // truncated or extended
        if (r() < 0.5) b = v.subarray(0, Math.floor(r() * 78));
        else {
          b = new Uint8Array(78 + 1 + Math.floor(r() * 8));
          b.set(v);
          fill(b, 78, b.length);
        }
      }
      let res;
      try {
        res = decodeDrivingFrame(view(b, n));
      } catch (err) {
        throw new Error(`decoder threw on ${Buffer.from(b).toString('hex')}: ${String(err)}`);
      }
      const valid = referenceValid(b);
      if (res.ok !== valid) {
        if (mismatches.length < 5) mismatches.push(`${res.ok ? 'accepted' : 'rejected'} ${Buffer.from(b).toString('hex')}`);
        continue;
      }
      if (res.ok) {
        counts.accepted++;
        encodeDrivingFrame(res.frame, reencode);
        let same = true;
        for (let i = 0; i < DRIVING_FRAME_BYTES; i++) if (reencode[i] !== b[i]) same = false;
        if (!same && mismatches.length < 5) {
          mismatches.push(`re-encoded differently: ${Buffer.from(b).toString('hex')} → ${Buffer.from(reencode).toString('hex')}`);
        }
      } else {
        counts.rejected++;
        if (typeof res.error !== 'string' || res.error.length === 0) mismatches.push(`rejected without a reason: ${Buffer.from(b).toString('hex')}`);
      }
    }
    expect(mismatches).toEqual([]);
    expect(counts.accepted + counts.rejected).toBe(N);
    // every kind was exercised, and both outcomes are common enough to mean something
    for (const k of counts.kinds) expect(k).toBeGreaterThan(N / 10);
    expect(counts.accepted).toBeGreaterThan(N / 10);
    expect(counts.rejected).toBeGreaterThan(N / 2);
  }, 300_000);
});
