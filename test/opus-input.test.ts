// OpusInput: real Opus packets (libopus via node-av, from the speech WAV) → 16 kHz PCM that matches the
// source; the reorder buffer, gap filling by RTP timestamp, late and duplicate packets, sequence wrap, close().
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpusInput, type RtpAudioPacket } from '../server/src/audio/opus-input.js';
import { decodeWav16, encodeWav16 } from '../server/src/prepare/wav.js';
import { encodeOpusClip } from './support/opus-clip.js';

const SPEECH = new URL('../../shared/data/speech-english-16k.wav', import.meta.url).pathname;
const SECONDS = 3;

let source: Float32Array;
let packets: Buffer[];
let dir: string;

function rtp(payloads: Buffer[], firstSeq = 1000, firstTs = 123_456): RtpAudioPacket[] {
  return payloads.map((payload, i) => ({ sequenceNumber: (firstSeq + i) & 0xffff, timestamp: (firstTs + i * 960) >>> 0, payload }));
}

function run(list: RtpAudioPacket[], reorderDepth = 3): { pcm: Float32Array; input: OpusInput } {
  const parts: Float32Array[] = [];
  const input = new OpusInput({ reorderDepth, onPcm: (p) => parts.push(p) });
  for (const p of list) input.push(p);
  input.flush();
  const n = parts.reduce((a, p) => a + p.length, 0);
  const pcm = new Float32Array(n);
  let o = 0;
  for (const p of parts) {
    pcm.set(p, o);
    o += p.length;
  }
  input.close();
  return { pcm, input };
}

/** Highest Pearson correlation of a and b over lags 0..maxLag (b delayed). */
function bestCorrelation(a: Float32Array, b: Float32Array, maxLag: number): { r: number; lag: number } {
  let best = { r: -1, lag: 0 };
  for (let lag = 0; lag <= maxLag; lag++) {
    const n = Math.min(a.length, b.length - lag);
    let sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    for (let i = 0; i < n; i++) {
      const x = a[i] as number;
      const y = b[i + lag] as number;
      sa += x; sb += y; saa += x * x; sbb += y * y; sab += x * y;
    }
    const r = (sab - (sa * sb) / n) / Math.sqrt((saa - (sa * sa) / n) * (sbb - (sb * sb) / n));
    if (r > best.r) best = { r, lag };
  }
  return best;
}

beforeAll(async () => {
  const wav = decodeWav16(readFileSync(SPEECH));
  expect(wav.sampleRate).toBe(16_000);
  source = wav.samples.slice(0, SECONDS * 16_000);
  dir = mkdtempSync(join(tmpdir(), 'opus-input-'));
  const path = join(dir, 'clip.wav');
  writeFileSync(path, encodeWav16(Int16Array.from(source, (v) => Math.round(v * 32767)), 16_000));
  packets = await encodeOpusClip(path, SECONDS);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('OpusInput', () => {
  it('decodes in-order packets to 16 kHz PCM that correlates with the source', () => {
    const { pcm, input } = run(rtp(packets));
    expect(packets.length).toBeGreaterThanOrEqual(SECONDS * 50 - 2); // the encoder keeps its look-ahead
    expect(Math.abs(pcm.length - source.length)).toBeLessThanOrEqual(2 * 320 + 40); // the last packets stay in the encoder
    const { r, lag } = bestCorrelation(source, pcm, 320);
    expect(r).toBeGreaterThan(0.9);
    expect(lag).toBeLessThan(320); // codec + resampler delay, well under 20 ms
    expect(input.toJSON()).toMatchObject({ packets: packets.length, lost: 0, late: 0, duplicates: 0, corrupt: 0, gapSamples: 0 });
  });

  it('puts reordered packets back in order: the same PCM as in order', () => {
    const inOrder = run(rtp(packets)).pcm;
    const list = rtp(packets);
    for (let i = 10; i + 1 < list.length; i += 7) [list[i], list[i + 1]] = [list[i + 1] as RtpAudioPacket, list[i] as RtpAudioPacket];
    const { pcm, input } = run(list);
    expect(pcm).toEqual(inOrder);
    expect(input.toJSON().reordered).toBeGreaterThan(10);
    expect(input.toJSON().lost).toBe(0);
  });

  it('fills lost packets with silence of their length, so the stream stays on the RTP clock', () => {
    const full = run(rtp(packets)).pcm;
    const list = rtp(packets).filter((p, i) => i < 60 || i >= 65);
    const { pcm, input } = run(list);
    expect(input.toJSON().lost).toBe(5);
    expect(input.toJSON().gapSamples).toBe(5 * 320);
    expect(Math.abs(pcm.length - full.length)).toBeLessThan(16);
    // the gap lies where the lost packets were (after the decoder's output for packet 59)
    const lostRegion = pcm.subarray(60 * 320 + 40, 65 * 320 - 40);
    expect(lostRegion.every((v) => v === 0)).toBe(true);
    // the audio after the gap is the source again
    expect(bestCorrelation(source.subarray(70 * 320), pcm.subarray(70 * 320), 320).r).toBeGreaterThan(0.85);
  });

  it('fills a pause in RTP time (a sender that stopped) with silence, capped at maxGapMs', () => {
    const list = rtp(packets.slice(0, 20));
    const later = rtp(packets.slice(20, 40), 1020, 123_456 + 20 * 960 + 48_000 * 3); // 3 s later, seq continuous
    const parts: Float32Array[] = [];
    const input = new OpusInput({ maxGapMs: 500, onPcm: (p) => parts.push(p) });
    for (const p of [...list, ...later]) input.push(p);
    expect(input.toJSON().gapSamples).toBe(8000);
    expect(input.toJSON().lost).toBe(0);
    input.close();
  });

  it('drops late and duplicate packets, survives sequence wrap, and ignores packets after close()', () => {
    const list = rtp(packets.slice(0, 30), 65_520);
    const withExtras = [...list.slice(0, 20), list[5] as RtpAudioPacket, list[19] as RtpAudioPacket, ...list.slice(20)];
    const got = run(withExtras);
    const clean = run(list);
    expect(got.pcm).toEqual(clean.pcm);
    expect(got.input.toJSON()).toMatchObject({ late: 2, lost: 0, gapSamples: 0 });
    const input = new OpusInput({ onPcm: () => {} });
    input.close();
    input.close();
    input.push(list[0] as RtpAudioPacket);
    expect(input.toJSON().packets).toBe(0);
  });

  it('counts a damaged packet and fills its time with silence', () => {
    const list = rtp(packets.slice(0, 20));
    (list[8] as RtpAudioPacket).payload = Buffer.from([0xff, 0xff, 0xff]);
    const { pcm, input } = run(list);
    expect(input.toJSON().corrupt).toBe(1);
    expect(Math.abs(pcm.length - 20 * 320)).toBeLessThan(200);
  });
});
