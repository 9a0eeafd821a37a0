// The real page in headless Chromium, "Drive with: Microphone only", with a fake microphone playing a speech clip
// (1 s of silence, 6 s of speech, 5 s of silence, looped by Chromium): no camera is opened, the microphone goes up
// as Opus, the avatar comes back talking — its mouth region moves in stretches and rests in others (head held
// still: idleMotion 'still') — with the voice, and the page shows the speech-to-lips delay.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LiveStats } from '../client/src/stats/live-stats.js';
import { DEFAULT_AUDIO_EXPRESSION_DIR } from '../server/src/audio/expression-model.js';
import { HeadlessChromium } from '../server/src/browser/chromium.js';
import { decodeWav16, encodeWav16 } from '../server/src/prepare/wav.js';
import { DEFAULT_MOUTH_BOX, median, mouthChange } from './support/mouth-region.js';
import { startTestServer, type TestServer } from './support/server.js';
import { REPO_ROOT } from './support/test-avatar.js';

const SPEECH = new URL('../../shared/data/speech-english-16k.wav', import.meta.url).pathname;

interface PageGlobals {
  dnpDebug?: { state: string; stats(): LiveStats };
}

let tmp: string;
let server: TestServer | null = null;
let browser: HeadlessChromium | null = null;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, 'client', 'dist', 'main.js'))) throw new Error('client/dist is not built: run `npm run build`');
  tmp = mkdtempSync(join(tmpdir(), 'voice-browser-'));
  const wav = decodeWav16(readFileSync(SPEECH));
  const clip = new Int16Array(12 * 16_000); // 1 s silence, 6 s speech, 5 s silence (audio-path.md: pad, do not %noloop)
  clip.set(Int16Array.from(wav.samples.subarray(3 * 16_000, 9 * 16_000), (v) => Math.round(v * 32767)), 16_000);
  const mic = join(tmp, 'mic.wav');
  writeFileSync(mic, encodeWav16(clip, 16_000));
  server = await startTestServer(join(REPO_ROOT, 'avatars', 'default'), { idleMotion: 'still', audioModelDir: process.env.DNP_AUDIO_MODEL ?? DEFAULT_AUDIO_EXPRESSION_DIR });
  browser = await HeadlessChromium.launch({
    extraArgs: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-audio-capture=${mic}`, '--autoplay-policy=no-user-gesture-required'],
    onConsole: (type, text) => {
      if (type === 'error') pageErrors.push(text);
    },
  });
  page = await browser.page();
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  await page.setViewportSize({ width: 1100, height: 800 });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** In the page: every 80 ms for `ms`, draws #remote into a canvas and keeps the luma of the mouth box (row-major). */
const SAMPLE_MOUTH = `async (b, ms) => {
  const video = document.getElementById('remote');
  const canvas = document.createElement('canvas');
  canvas.width = 256;
  canvas.height = 256;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const out = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (video.videoWidth === 256) {
      ctx.drawImage(video, 0, 0);
      const px = ctx.getImageData(b.x, b.y, b.w, b.h).data;
      const luma = new Array(b.w * b.h);
      for (let i = 0; i < luma.length; i++) luma[i] = Math.round(0.299 * px[4 * i] + 0.587 * px[4 * i + 1] + 0.114 * px[4 * i + 2]);
      out.push({ t: performance.now(), luma });
    }
    await new Promise((r) => setTimeout(r, 80));
  }
  return out;
}`;

const stats = (): Promise<LiveStats> => page.evaluate(() => (globalThis as unknown as PageGlobals).dnpDebug?.stats() as LiveStats);

describe('live page, microphone only, fake microphone', () => {
  it('shows a talking avatar with the voice, without opening a camera', async () => {
    await page.goto(`${server!.url}/`);
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).dnpDebug?.state === 'idle', undefined, { timeout: 20_000 });
    await page.selectOption('#mode', 'microphone');
    await page.click('#start');
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).dnpDebug?.state === 'live', undefined, { timeout: 60_000 });

    // sample the mouth region of the shown video every 80 ms for 14 s (longer than one loop of the clip)
    const box = DEFAULT_MOUTH_BOX;
    const samples = (await page.evaluate(`(${SAMPLE_MOUTH})(${JSON.stringify(box)}, 14000)`)) as Array<{ t: number; luma: number[] }>;
    const s = await stats();
    if (process.env.DNP_VOICE_VERBOSE) {
      process.stderr.write(`voice browser stats: ${JSON.stringify({ ...s, latencySamples: undefined })}\n`);
      process.stderr.write(`voice browser server: ${JSON.stringify(server!.server.sessions.toJSON())}\n`);
    }

    // no camera: the page never opened one
    expect(s.mode).toBe('microphone');
    expect(s.cameraFrames).toBe(0);
    expect(await page.$eval('#preview', (el) => (el as unknown as { srcObject: unknown }).srcObject)).toBeNull();
    // the microphone went up, the voice came back, frames were shown, the delay is on the page
    expect(s.audioPacketsSent).toBeGreaterThan(300); // 50 a second
    expect(s.audioPacketsReceived).toBeGreaterThan(300);
    expect(s.framesDecoded).toBeGreaterThan(20); // the avatar's rate, much less on a loaded machine
    expect(s.speechToLipsMs).not.toBeNull();
    expect(s.speechToLipsMs as number).toBeGreaterThan(0); // its size is measured, not asserted (docs/audio-driven.md)
    expect(await page.textContent('#s-lips')).toMatch(/\d+ ms/);

    // a talking avatar: the mouth moves over ~240 ms in some stretches (speech) and rests in others (silence)
    expect(samples.length).toBeGreaterThan(60);
    const pics = samples.map((x) => ({ width: box.w, yuv: Uint8Array.from(x.luma) }));
    const whole = { x: 0, y: 0, w: box.w, h: box.h }; // the samples hold only the box
    const motion = pics.slice(3).map((p, i) => mouthChange(p, pics[i] as (typeof pics)[number], whole));
    const sorted = [...motion].sort((a, b) => a - b);
    const q = (f: number): number => sorted[Math.floor(f * (sorted.length - 1))] as number;
    if (process.env.DNP_VOICE_VERBOSE) process.stderr.write(`mouth motion quantiles 0.2 ${q(0.2).toFixed(2)} 0.5 ${median(motion).toFixed(2)} 0.8 ${q(0.8).toFixed(2)}\n`);
    expect(q(0.2)).toBeLessThan(1.5); // resting in the silences
    expect(q(0.8)).toBeGreaterThan(4 * Math.max(q(0.2), 0.5)); // moving while it speaks
    expect(pageErrors).toEqual([]);
    await page.click('#stop');
  });
});
