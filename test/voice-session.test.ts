// Voice-driven callers (werift) send Opus from a speech clip with silences around it; the server drives the
// shipped default avatar with the audio-to-expression model and sends back video + the caller's voice. The
// avatar's mouth region moves while the clip speaks and rests in its silences (microphone only: the head held
// still, idleMotion 'still', so that only the voice changes the picture; camera + microphone: the camera's head
// pose too); the voice comes back; the speech-to-lips delay is reported.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_AUDIO_EXPRESSION_DIR } from '../server/src/audio/expression-model.js';
import { emptyDrivingValues } from '../shared/src/driving-values.js';
import { encodeDrivingFrame } from '../shared/src/wire.js';
import { RtcClient, type ReceivedFrame } from '../server/src/bench/rtc-client.js';
import { decodeWav16, encodeWav16 } from '../server/src/prepare/wav.js';
import { mouthChange, median } from './support/mouth-region.js';
import { encodeOpusClip } from './support/opus-clip.js';
import { startTestServer, type TestServer } from './support/server.js';
import { REPO_ROOT } from './support/test-avatar.js';

const SPEECH = new URL('../../shared/data/speech-english-16k.wav', import.meta.url).pathname;
const AVATARS = join(REPO_ROOT, 'avatars', 'default');
/** The clip: 2 s of silence, 4 s of speech (3.0-7.0 s of the WAV), 3 s of silence. */
const LEAD_S = 2;
const SPEECH_S = 4;
const TAIL_S = 3;
let tmp: string;
let packets: Buffer[];
let server: TestServer | null = null;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'voice-session-'));
  const wav = decodeWav16(readFileSync(SPEECH));
  const clip = new Int16Array((LEAD_S + SPEECH_S + TAIL_S) * 16_000);
  const speech = wav.samples.subarray(3 * 16_000, (3 + SPEECH_S) * 16_000);
  clip.set(Int16Array.from(speech, (v) => Math.round(v * 32767)), LEAD_S * 16_000);
  const path = join(tmp, 'clip.wav');
  writeFileSync(path, encodeWav16(clip, 16_000));
  packets = await encodeOpusClip(path, LEAD_S + SPEECH_S + TAIL_S);
  server = await startTestServer(AVATARS, { idleMotion: 'still', audioModelDir: process.env.DNP_AUDIO_MODEL ?? DEFAULT_AUDIO_EXPRESSION_DIR });
});

afterAll(async () => {
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Spoken {
  frames: ReceivedFrame[];
  /** The last picture before any audio (the resting mouth). */
  rest: ReceivedFrame;
  /** performance.now() when the first packet was sent. */
  t0: number;
  delay: number;
  voicePackets: number;
}

/** Sends the clip's Opus packets in real time (calling `tick` every 40 ms, e.g. to send camera frames) and collects the frames. */
async function speakClip(client: RtcClient, tick: (i: number) => void = () => {}): Promise<Spoken> {
  const frames: ReceivedFrame[] = [];
  client.onFrame = (f) => frames.push(f);
  let voicePackets = 0;
  client.onVoice = () => voicePackets++;
  for (let i = 0; frames.length < 5; i++) {
    if (i > 1000) throw new Error('timed out waiting for the first frames');
    if (i % 2 === 0) tick(i / 2);
    await new Promise((r) => setTimeout(r, 20));
  }
  const rest = frames[frames.length - 1] as ReceivedFrame;
  const t0 = performance.now();
  for (const [i, p] of packets.entries()) {
    const wait = t0 + i * 20 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    client.sendOpus(p, 12345 + i * 960);
    if (i % 2 === 0) tick(i / 2);
  }
  await new Promise((r) => setTimeout(r, 1500));
  if (process.env.DNP_VOICE_VERBOSE) process.stderr.write(`voice session: ${JSON.stringify(server!.server.sessions.toJSON())}\n`);
  const delay = client.voiceStats?.speechToLipsMs ?? Number.NaN;
  return { frames, rest, t0, delay, voicePackets };
}

/**
 * The mouth moves (against the resting picture) while the clip speaks and rests in its silences: speech frames
 * change the mouth box `factor` times more than silent ones.
 */
function expectTalking(r: Spoken, factor: number): void {
  expect(r.delay).toBeGreaterThan(0); // its size is measured, not asserted (docs/audio-driven.md)
  expect(r.voicePackets).toBeGreaterThan(packets.length * 0.9);
  // each frame shows the lips of the audio sent `delay` ms before it arrived
  const at = (f: ReceivedFrame): number => (f.arrivedAt - r.t0 - r.delay) / 1000;
  const inWindow = (lo: number, hi: number): ReceivedFrame[] => r.frames.filter((f) => at(f) >= lo && at(f) < hi);
  const change = (lo: number, hi: number): number[] => inWindow(lo, hi).map((f) => mouthChange(f, r.rest));
  const before = change(0.2, LEAD_S - 0.2);
  const during = change(LEAD_S + 0.3, LEAD_S + SPEECH_S - 0.2);
  const after = change(LEAD_S + SPEECH_S + 0.8, LEAD_S + SPEECH_S + TAIL_S - 0.1); // gate release + cross-fade
  if (process.env.DNP_VOICE_VERBOSE) {
    process.stderr.write(`frames ${before.length}/${during.length}/${after.length}; delay ${r.delay} ms, mouth change before ${median(before).toFixed(2)}, during ${median(during).toFixed(2)} (max ${Math.max(...during).toFixed(2)}), after ${median(after).toFixed(2)}\n`);
  }
  expect(before.length).toBeGreaterThanOrEqual(2); // frames come at the avatar's rate, far less on a loaded machine
  expect(during.length).toBeGreaterThanOrEqual(4);
  expect(after.length).toBeGreaterThanOrEqual(3);
  // silence: the mouth is at rest (only the encoder's noise); speech: it moves, many times more
  expect(median(before)).toBeLessThan(2);
  expect(median(after)).toBeLessThan(2);
  // (the upper fifth of the speech frames: speech has its own short pauses, and a loaded machine shows few frames)
  const sorted = [...during].sort((a, b) => a - b);
  expect(sorted[Math.floor(0.8 * (sorted.length - 1))]).toBeGreaterThan(factor * Math.max(median(before), median(after), 0.5));
  // and it keeps moving: the mouth differs between one speaking frame and the next but one
  const speaking = inWindow(LEAD_S + 0.3, LEAD_S + SPEECH_S - 0.2);
  const steps = speaking.slice(2).map((f, i) => mouthChange(f, speaking[i] as ReceivedFrame));
  expect(median(steps)).toBeGreaterThan(0.5); // well over the encoder's noise on a still picture (~0.2)
}

/** Mean absolute luma difference of two whole pictures. */
function pictureChange(a: ReceivedFrame, b: ReceivedFrame): number {
  let s = 0;
  const n = a.width * a.height;
  for (let i = 0; i < n; i++) s += Math.abs((a.yuv[i] as number) - (b.yuv[i] as number));
  return s / n;
}

let neutralRest: ReceivedFrame | null = null;

describe('voice-driven callers over WebRTC', () => {
  it("microphone only: the avatar's mouth moves while the caller speaks, rests in silence, and the voice comes back", async () => {
    const client = await RtcClient.connect({ url: server!.url, avatar: 'default', mode: 'microphone' });
    try {
      const r = await speakClip(client);
      neutralRest = r.rest;
      expectTalking(r, 3);
    } finally {
      await client.close();
    }
  });

  it('camera + microphone: the camera turns the head, the voice moves the mouth', async () => {
    const client = await RtcClient.connect({ url: server!.url, avatar: 'default', mode: 'both' });
    try {
      const face = emptyDrivingValues();
      face.pose.set([0.05, 0.12, 0, 0, -1.8, -26]); // a slightly turned, nodding head, the camera's mouth closed
      const r = await speakClip(client, (i) => client.send(encodeDrivingFrame({ ...face, seq: i + 1, captureMs: Math.round(performance.now()), faceFound: true })));
      expect(neutralRest).not.toBeNull();
      expect(pictureChange(r.rest, neutralRest as ReceivedFrame)).toBeGreaterThan(3); // the head follows the camera
      // the turned head moves part of the mouth out of the fixed box and puts more edges (encoder noise) in it
      expectTalking(r, 2);
    } finally {
      await client.close();
    }
  });

  it('refuses a voice join with an unknown mode', async () => {
    await expect(RtcClient.connect({ url: server!.url, avatar: 'default', mode: 'telepathy' as 'microphone' })).rejects.toThrow(/join.mode/);
  });
});

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
