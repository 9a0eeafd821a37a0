// The audio-driven frame: DriveMix (camera / idle motion / voice mouth with the gate's weight) and VoiceRelay
// (the caller's voice sent back in order, each packet no earlier than its delay).
import { describe, expect, it } from 'vitest';
import { blendshapeIndex } from '../shared/src/blendshapes.js';
import { CONDITIONING_SIZE, emptyDrivingValues } from '../shared/src/driving-values.js';
import { parseJoinRequest, parseVoiceStats } from '../shared/src/signaling.js';
import { GeneratedIdleMotion } from '../server/src/audio/idle-motion.js';
import { VoiceRelay } from '../server/src/audio/voice-relay.js';
import { DriveMix } from '../server/src/session/drive-mix.js';

const JAW = blendshapeIndex('jawOpen');
const CLOSE = blendshapeIndex('mouthClose');
const BROW = blendshapeIndex('browInnerUp');
const B = 8; // blendshapes start after pose (6) and gaze (2)

function setup(): { mix: DriveMix; neutral: ReturnType<typeof emptyDrivingValues> } {
  const neutral = emptyDrivingValues();
  neutral.pose.set([0, 0, 0, 0, -1.8, -26]);
  neutral.blendshapes[JAW] = 0.05;
  return { mix: new DriveMix(neutral, new GeneratedIdleMotion(neutral), [JAW, CLOSE]), neutral };
}

describe('DriveMix', () => {
  it('microphone: idle head and eyes, the neutral mouth in silence, the voice mouth in speech, cross-faded by weight', () => {
    const { mix } = setup();
    const out = new Float32Array(CONDITIONING_SIZE);
    const values = Float32Array.from([0.8, 0.1]);
    mix.mix(1000, null, null, out);
    expect(out[B + JAW]).toBeCloseTo(0.05, 6);
    expect(out[5]).toBeCloseTo(-26, 5);
    const a = out[1];
    mix.mix(5000, null, null, out);
    expect(out[1]).not.toBe(a); // the head moves by itself
    mix.mix(5000, null, { values, weight: 0, streamMs: 0, arrivedAt: 0 }, out);
    expect(out[B + JAW]).toBeCloseTo(0.05, 6);
    mix.mix(5000, null, { values, weight: 1, streamMs: 0, arrivedAt: 0 }, out);
    expect(out[B + JAW]).toBeCloseTo(0.8, 6);
    expect(out[B + CLOSE]).toBeCloseTo(0.1, 6);
    mix.mix(5000, null, { values, weight: 0.5, streamMs: 0, arrivedAt: 0 }, out);
    expect(out[B + JAW]).toBeCloseTo(0.425, 6);
  });

  it('both: the camera drives everything but the voice mouth, which takes over in proportion to the weight', () => {
    const { mix } = setup();
    const camera = new Float32Array(CONDITIONING_SIZE);
    camera[1] = 0.3;
    camera[B + BROW] = 0.7;
    camera[B + JAW] = 0.2;
    const out = new Float32Array(CONDITIONING_SIZE);
    const values = Float32Array.from([0.6, 0]);
    mix.mix(0, camera, { values, weight: 1, streamMs: 0, arrivedAt: 0 }, out);
    expect(out[1]).toBeCloseTo(0.3, 6);
    expect(out[B + BROW]).toBeCloseTo(0.7, 6);
    expect(out[B + JAW]).toBeCloseTo(0.6, 6);
    mix.mix(0, camera, { values, weight: 0, streamMs: 0, arrivedAt: 0 }, out);
    expect(out[B + JAW]).toBeCloseTo(0.2, 6);
    expect(camera[B + JAW]).toBeCloseTo(0.2, 6); // the camera's vector is not modified
  });

  it('rejects output indices outside the 52 blendshapes', () => {
    const neutral = emptyDrivingValues();
    expect(() => new DriveMix(neutral, new GeneratedIdleMotion(neutral), [52])).toThrow(RangeError);
  });
});

describe('VoiceRelay', () => {
  it('sends every packet in order, none before its delay, and nothing after close()', async () => {
    const sent: Array<{ ts: number; at: number }> = [];
    const relay = new VoiceRelay({ delayMs: 60, send: (_p, ts) => sent.push({ ts, at: performance.now() }) });
    const pushedAt: number[] = [];
    for (let i = 0; i < 10; i++) {
      const now = performance.now();
      pushedAt.push(now);
      relay.push(Buffer.from([i]), 1000 + i * 960, now);
      if (i === 4) relay.setDelay(30); // a shorter delay never reorders
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 150));
    expect(sent.map((s) => s.ts)).toEqual(Array.from({ length: 10 }, (_, i) => 1000 + i * 960));
    for (const [i, s] of sent.entries()) expect(s.at).toBeGreaterThanOrEqual((pushedAt[i] as number) + (i <= 4 ? 60 : 30) - 1);
    expect(relay.toJSON()).toMatchObject({ relayed: 10, dropped: 0, queued: 0, delayMs: 30 });
    relay.push(Buffer.from([1]), 0, performance.now());
    relay.close();
    relay.close();
    await new Promise((r) => setTimeout(r, 60));
    expect(sent.length).toBe(10);
  });

  it('sends in RTP-timestamp order when packets arrive out of order, and drops one older than a packet sent', async () => {
    const sent: number[] = [];
    const relay = new VoiceRelay({ delayMs: 20, send: (_p, ts) => sent.push(ts) });
    const now = performance.now();
    relay.push(Buffer.from([0]), 0xffff_fc40, now); // just before the 32-bit wrap
    relay.push(Buffer.from([2]), 960, now);
    relay.push(Buffer.from([1]), 0, now);
    await new Promise((r) => setTimeout(r, 80));
    expect(sent).toEqual([0xffff_fc40, 0, 960]);
    relay.push(Buffer.from([9]), 0, performance.now());
    expect(relay.toJSON()).toMatchObject({ relayed: 3, late: 1, queued: 0 });
    relay.close();
  });

  it('holds at most maxQueued packets (the oldest go first)', () => {
    const relay = new VoiceRelay({ delayMs: 10_000, maxQueued: 3, send: () => {} });
    for (let i = 0; i < 5; i++) relay.push(Buffer.from([i]), i, performance.now());
    expect(relay.toJSON()).toMatchObject({ queued: 3, dropped: 2 });
    relay.close();
  });
});

describe('join mode and voice stats on the wire', () => {
  it('parses the drive mode (default camera) and refuses unknown ones', () => {
    expect(parseJoinRequest({ avatar: 'a' }).mode).toBe('camera');
    expect(parseJoinRequest({ avatar: 'a', mode: 'microphone' }).mode).toBe('microphone');
    expect(parseJoinRequest({ avatar: 'a', mode: 'both' }).mode).toBe('both');
    expect(() => parseJoinRequest({ avatar: 'a', mode: 'telepathy' })).toThrow(/join.mode/);
    expect(() => parseJoinRequest({ avatar: 'a', mode: 3 })).toThrow(/join.mode/);
  });

  it('validates voice-stats messages', () => {
    expect(parseVoiceStats({ speechToLipsMs: 120, voiceDelayMs: 118, speech: true })).toEqual({ speechToLipsMs: 120, voiceDelayMs: 118, speech: true });
    expect(parseVoiceStats({ speechToLipsMs: null, voiceDelayMs: 0, speech: 'yes' }).speech).toBe(false);
    expect(() => parseVoiceStats({ speechToLipsMs: 'x', voiceDelayMs: 0 })).toThrow();
    expect(() => parseVoiceStats({ speechToLipsMs: 1, voiceDelayMs: -5 })).toThrow();
  });
});
