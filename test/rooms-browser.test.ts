/**
 * Two real Chromium pages in a call (`/?room=duo`), all real: each has its own fake camera (a Y4M from one of the
 * two clips in ../shared/data) and the speech WAV as its fake microphone; the real server (127.0.0.1) with an
 * untrained avatar and the local tracker model. Each page tracks its face and sends driving frames and its
 * voice; each shows the other's avatar (decoded at the avatar's size, with the "AI-generated video" label) and
 * receives their voice. The A/V offset of each tile (voice playout minus video playout, from getStats'
 * estimatedPlayoutTimestamp: both on the server's clock through its sender reports) is measured and printed.
 * Mute, and Leave: the other page's tile goes.
 *
 * DNP_CALL_SCREENSHOT=FILE.png keeps a screenshot of the first page in the call.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallStatsSnapshot } from '../client/src/stats/call-stats.js';
import { fakeCameraArgs, HeadlessChromium } from '../server/src/browser/chromium.js';
import { makeFakeCamera, type FakeCamera } from './support/fake-camera.js';
import { metricValue, startTestServer, type TestServer } from './support/server.js';
import { makeUntrainedAvatar, REPO_ROOT } from './support/test-avatar.js';

const DATA = join(REPO_ROOT, '..', 'shared', 'data');
const CLIPS = [join(DATA, 'portrait-man-talking.mp4'), join(DATA, 'driver-woman-talking.mp4')];
const SPEECH = join(DATA, 'speech-english-16k.wav');
const MODEL = join(DATA, 'face_landmarker.task');
const ROOM = 'duo';

interface PageGlobals {
  dnpCall?: { readonly state: string; stats(): Promise<CallStatsSnapshot>; leave(): void };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor(s.length / 2)] as number) : Number.NaN;
}

describe('two Chromium pages in a call', () => {
  let tmp = '';
  let server: TestServer | null = null;
  const cameras: FakeCamera[] = [];
  const browsers: HeadlessChromium[] = [];
  const pages: Page[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(join(REPO_ROOT, 'client', 'dist', 'main.js'))) throw new Error('client/dist is not built: run `npm run build`');
    tmp = mkdtempSync(join(tmpdir(), 'dnp-call-'));
    await makeUntrainedAvatar(join(tmp, 'avatars', 'e2e'), { size: 256, name: 'e2e' });
    server = await startTestServer(join(tmp, 'avatars'), { trackerModelPath: MODEL });
    for (const clip of CLIPS) {
      const cam = await makeFakeCamera(clip, { seconds: 3, fps: 30, width: 384, height: 360 });
      cameras.push(cam);
      const b = await HeadlessChromium.launch({
        extraArgs: [...fakeCameraArgs(cam.file), `--use-file-for-fake-audio-capture=${SPEECH}`, '--autoplay-policy=no-user-gesture-required'],
        onConsole: (type, text) => {
          if (type === 'error' && !text.includes('XNNPACK')) pageErrors.push(text);
        },
      });
      browsers.push(b);
      const p = await b.page();
      p.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
      await p.setViewportSize({ width: 1100, height: 800 });
      pages.push(p);
    }
  }, 120_000);

  afterAll(async () => {
    for (const b of browsers) await b.close();
    await server?.close();
    for (const c of cameras) c.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const stats = (p: Page): Promise<CallStatsSnapshot> =>
    p.evaluate(() => {
      const c = (globalThis as unknown as PageGlobals).dnpCall;
      if (!c) throw new Error('window.dnpCall is missing');
      return c.stats();
    });

  async function waitFor(p: Page, what: string, ok: (s: CallStatsSnapshot) => boolean, ms: number): Promise<CallStatsSnapshot> {
    const end = Date.now() + ms;
    let s = await stats(p);
    while (!ok(s)) {
      if (s.state === 'error') throw new Error(`page error while waiting for ${what}: ${s.message}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 250));
      s = await stats(p);
    }
    return s;
  }

  it('each page shows the other avatar and receives the voice; A/V offset measured', { timeout: 240_000 }, async () => {
    const [a, b] = pages as [Page, Page];
    const url = (server as TestServer).url;
    for (const [i, p] of pages.entries()) {
      await p.goto(`${url}/?room=${ROOM}`);
      await waitFor(p, 'idle', (s) => s.state === 'idle', 20_000);
      expect(await p.inputValue('#call-link')).toBe(`${url}/?room=${ROOM}`);
      await p.fill('#call-name', i === 0 ? 'ann' : 'bob');
      await p.click('#start');
      await waitFor(p, 'in-call', (s) => s.state === 'in-call', 90_000);
    }
    const ready = (s: CallStatsSnapshot): boolean => s.tiles.length === 1 && (s.tiles[0]?.framesDecoded ?? 0) >= 30 && (s.tiles[0]?.audioPacketsReceived ?? 0) >= 100;
    const sa = await waitFor(a, "bob's avatar and voice at ann", ready, 90_000);
    const sb = await waitFor(b, "ann's avatar and voice at bob", ready, 90_000);
    expect(sa.tiles[0]?.name).toBe('bob');
    expect(sb.tiles[0]?.name).toBe('ann');
    for (const s of [sa, sb]) {
      expect(s.framesSent).toBeGreaterThan(30); // the tracker found the face and driving frames went out
      expect([s.tiles[0]?.width, s.tiles[0]?.height]).toEqual([256, 256]);
    }
    expect(await a.textContent(`.tile[data-participant="${sb.participantId}"] .ai-label`)).toBe('AI-generated video');
    expect(await metricValue(url, 'dnp_room_participants')).toBe(2);

    // ~12 s of samples: A/V offset per tile (the browser's lip sync converges over seconds), bit rates
    const SAMPLES = 12;
    const offsets: number[][] = [[], []];
    const up: number[][] = [[], []];
    const down: number[][] = [[], []];
    const jb: string[] = [];
    for (let k = 0; k < SAMPLES; k++) {
      await new Promise((r) => setTimeout(r, 1000));
      for (const [i, p] of pages.entries()) {
        const s = await stats(p);
        const t = s.tiles[0];
        if (t?.avOffsetMs != null) offsets[i]?.push(t.avOffsetMs);
        up[i]?.push(s.uplinkKbps);
        down[i]?.push(t?.downlinkKbps ?? 0);
        if (k === SAMPLES - 1) jb.push(`video ${t?.videoJitterBufferMs?.toFixed(0)} ms, audio ${t?.audioJitterBufferMs?.toFixed(0)} ms`);
      }
    }
    if (process.env.DNP_TEST_VERBOSE) {
      const m = await (await fetch(`${url}/metrics`)).text();
      process.stderr.write(m.split('\n').filter((l) => /^dnp_(server_latency_ms|render_ms|encode_ms)_(sum|count)/.test(l)).join('\n') + '\n');
    }
    if (process.env.DNP_CALL_SCREENSHOT) await a.screenshot({ path: process.env.DNP_CALL_SCREENSHOT });
    for (const i of [0, 1]) {
      const o = offsets[i] as number[];
      process.stderr.write(
        `call page ${i}: A/V offset (voice − video playout) median ${median(o).toFixed(1)} ms, samples [${o.map((x) => x.toFixed(0)).join(', ')}]; ` +
          `uplink median ${median(up[i] as number[]).toFixed(1)} kbit/s; downlink median ${median(down[i] as number[]).toFixed(1)} kbit/s; jitter buffers: ${jb[i]}\n`,
      );
      expect(o.length, 'A/V offset samples').toBeGreaterThanOrEqual(6);
      // Measured and reported, not held to the ±40 ms goal here: on a loaded 2-core machine the avatar frames come
      // out of the server up to a second after their voice, and the browser's sync needs longer than this test to
      // catch up (docs/calls.md). A clock or sign error (seconds) still fails. The sender reports themselves are
      // checked to a few ms in sender-reports.test.ts.
      expect(o.every((x) => Number.isFinite(x))).toBe(true);
      expect(Math.abs(median(o.slice(-6)))).toBeLessThan(1500);
    }
    expect(pageErrors).toEqual([]);
  });

  it('mute, then leave: the other page loses the tile', { timeout: 60_000 }, async () => {
    const [a, b] = pages as [Page, Page];
    await b.click('#mute');
    expect((await stats(b)).muted).toBe(true);
    expect(await b.textContent('#mute')).toBe('Unmute');
    await b.click('#stop');
    await waitFor(b, 'idle', (s) => s.state === 'idle', 10_000);
    await waitFor(a, 'the tile gone', (s) => s.tiles.length === 0, 15_000);
    expect(await a.locator('.tile[data-participant]').count()).toBe(0);
    await a.evaluate(() => (globalThis as unknown as PageGlobals).dnpCall?.leave());
    const url = (server as TestServer).url;
    for (let i = 0; i < 100 && (await metricValue(url, 'dnp_peers')) !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await metricValue(url, 'dnp_peers')).toBe(0);
  });
});
