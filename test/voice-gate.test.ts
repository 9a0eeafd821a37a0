// VoiceGate on the real speech WAV: ~3 s of room noise, speech from ~3.0 s to ~11.4 s, then digital silence.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { VoiceGate, type VoiceGateEvent } from '../server/src/audio/voice-gate.js';
import { decodeWav16 } from '../server/src/prepare/wav.js';

const SPEECH = new URL('../../shared/data/speech-english-16k.wav', import.meta.url).pathname;
let clip: Float32Array;

beforeAll(() => {
  const wav = decodeWav16(readFileSync(SPEECH));
  clip = new Float32Array(12 * 16_000 + 24_000); // 12 s of the clip, then 1.5 s of silence
  clip.set(wav.samples.subarray(0, 12 * 16_000));
});

/** Runs the gate over `pcm` in 20 ms chunks (as Opus packets arrive); returns its events and per-10-ms states. */
function gate(pcm: Float32Array, g = new VoiceGate()): { events: VoiceGateEvent[]; states: boolean[] } {
  const events: VoiceGateEvent[] = [];
  const states: boolean[] = [];
  g.onChange = (e) => events.push(e);
  for (let i = 0; i < pcm.length; i += 320) {
    g.push(pcm.subarray(i, i + 160));
    states.push(g.speech);
    g.push(pcm.subarray(i + 160, i + 320));
    states.push(g.speech);
  }
  return { events, states };
}

const fraction = (states: boolean[], fromMs: number, toMs: number): number => {
  const part = states.slice(fromMs / 10, toMs / 10);
  return part.filter(Boolean).length / part.length;
};

describe('VoiceGate', () => {
  it('opens shortly after speech begins, stays open through it and closes after it ends', () => {
    const { events, states } = gate(clip);
    const first = events[0];
    expect(first?.speech).toBe(true);
    expect(first?.atMs).toBeGreaterThanOrEqual(2850);
    expect(first?.atMs).toBeLessThanOrEqual(3150);
    expect(fraction(states, 0, 2800)).toBe(0);
    expect(fraction(states, 3200, 11_200)).toBeGreaterThan(0.95);
    const last = events[events.length - 1];
    expect(last?.speech).toBe(false);
    expect(last?.atMs).toBeGreaterThanOrEqual(11_200);
    expect(last?.atMs).toBeLessThanOrEqual(12_050); // the clip is cut at 12.0 s, in a pause with breath noise
    expect(fraction(states, 12_400, 13_500)).toBe(0); // declared releaseMs after the last loud frame
    // hysteresis: syllable gaps do not flap the gate
    expect(events.length).toBeLessThanOrEqual(4);
  });

  it('works the same at 20 dB less microphone gain', () => {
    const quiet = clip.map((v) => v * 0.1);
    const a = gate(clip).events;
    const b = gate(quiet).events;
    expect(b.map((e) => e.speech)).toEqual(a.map((e) => e.speech));
    expect(Math.abs((b[0]?.atMs ?? 0) - (a[0]?.atMs ?? 0))).toBeLessThanOrEqual(60);
    // the stop: the pause's breath noise sits 10 dB over the room noise; at low gain it falls under minDb sooner
    for (const ev of [a, b]) expect(ev[ev.length - 1]?.atMs).toBeGreaterThanOrEqual(11_200);
    for (const ev of [a, b]) expect(ev[ev.length - 1]?.atMs).toBeLessThanOrEqual(12_050);
  });

  it('never opens on steady noise, on a quiet hum, or on silence', () => {
    let seed = 1;
    const noise = Float32Array.from({ length: 5 * 16_000 }, () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return ((seed / 2 ** 32) * 2 - 1) * 0.05; // white noise about -30 dBFS
    });
    expect(gate(noise).events).toEqual([]);
    const hum = Float32Array.from({ length: 3 * 16_000 }, (_, i) => 0.001 * Math.sin((2 * Math.PI * 100 * i) / 16_000));
    expect(gate(hum).events).toEqual([]);
    expect(gate(new Float32Array(16_000)).events).toEqual([]);
  });

  it('rejects contradictory thresholds', () => {
    expect(() => new VoiceGate({ onDb: 6, offDb: 10 })).toThrow(RangeError);
  });
});
