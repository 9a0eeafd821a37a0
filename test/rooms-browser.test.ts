/**
 * Two real Chromium pages in a call (`/?room=duo`), all real: each has its own fake camera (a Y4M from one of the
 * two clips in ../shared/data) and the speech WAV as its fake microphone; the real server (127.0.0.1) with an
 * untrained avatar and the local tracker model. Each page tracks its face and sends driving frames and its
 * voice; each shows the other's avatar (decoded at the avatar's size, with the "AI-generated video" label) and
 * receives their voice. The A/V offset of each tile (voice playout minus video playout, from getStats'
 * estimatedPlayoutTimestamp: both on the server's clock through its sender reports) is measured and printed, with
 * the voice's and the face's lag (mouth-to-ear, capture-to-eye: page and server share this machine's clock) and
 * the voice delay the page's lip sync set (client/src/call-lip-sync.ts). Mute, and Leave: the other page's tile goes.
 * Longer windows, before/after the page's lip sync: scripts/rooms-av-sync.ts.
 *
 * DNP_CALL_SCREENSHOT=FILE.png keeps a screenshot of the first page in the call.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallPages, tileReady } from './support/call-pages.js';
import { metricValue, startTestServer, type TestServer } from './support/server.js';
import { makeUntrainedAvatar, REPO_ROOT } from './support/test-avatar.js';
import { sleep } from './support/wait.js';

const DATA = join(REPO_ROOT, '..', 'shared', 'data');
const CLIPS = [join(DATA, 'portrait-man-talking.mp4'), join(DATA, 'driver-woman-talking.mp4')];
const SPEECH = join(DATA, 'speech-english-16k.wav');
const MODEL = join(DATA, 'face_landmarker.task');
const ROOM = 'duo';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor(s.length / 2)] as number) : Number.NaN;
}

describe('two Chromium pages in a call', () => {
  let tmp = '';
  let server: TestServer | null = null;
  let call: CallPages | null = null;
  let pages: Page[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(join(REPO_ROOT, 'client', 'dist', 'main.js'))) throw new Error('client/dist is not built: run `npm run build`');
    tmp = mkdtempSync(join(tmpdir(), 'dnp-call-'));
    await makeUntrainedAvatar(join(tmp, 'avatars', 'e2e'), { size: 256, name: 'e2e' });
    server = await startTestServer(join(tmp, 'avatars'), { trackerModelPath: MODEL });
    call = await CallPages.launch({ clips: CLIPS, speech: SPEECH, onError: (m) => pageErrors.push(m) });
    pages = call.pages;
  }, 120_000);

  afterAll(async () => {
    await call?.close();
    await server?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('each page shows the other avatar and receives the voice; A/V offset measured', { timeout: 240_000 }, async () => {
    const [a, b] = pages as [Page, Page];
    const c = call as CallPages;
    const url = (server as TestServer).url;
    await c.join(url, ROOM, ['ann', 'bob']);
    for (const p of pages) expect(await p.inputValue('#call-link')).toBe(`${url}/?room=${ROOM}`);
    const sa = await c.waitFor(a, "bob's avatar and voice at ann", tileReady, 90_000);
    const sb = await c.waitFor(b, "ann's avatar and voice at bob", tileReady, 90_000);
    expect(sa.tiles[0]?.name).toBe('bob');
    expect(sb.tiles[0]?.name).toBe('ann');
    for (const s of [sa, sb]) {
      expect(s.framesSent).toBeGreaterThan(30); // the tracker found the face and driving frames went out
      expect([s.tiles[0]?.width, s.tiles[0]?.height]).toEqual([256, 256]);
    }
    expect(await a.textContent(`.tile[data-participant="${sb.participantId}"] .ai-label`)).toBe('AI-generated video');
    expect(await metricValue(url, 'dnp_room_participants')).toBe(2);

    // At least 12 s of samples, one a second: A/V offset per tile (the browser's lip sync converges over seconds),
    // lags, bit rates. On a loaded machine a tile's playout estimate can be missing for a few seconds (two pages
    // tracking and a server rendering on two cores), so sampling goes on, up to 40 s, until each page has enough.
    const offsets: number[][] = [[], []];
    const up: number[][] = [[], []];
    const down: number[][] = [[], []];
    const lags: number[][] = [[], []];
    const jb: string[] = ['', ''];
    const states: string[] = ['', ''];
    const MIN_SAMPLES = 12;
    const MAX_SAMPLES = 40;
    const enough = (i: number): boolean => (offsets[i]?.length ?? 0) >= 6 && (lags[i]?.length ?? 0) >= 12;
    for (let k = 0; k < MAX_SAMPLES && (k < MIN_SAMPLES || !enough(0) || !enough(1)); k++) {
      await sleep(1000);
      for (const [i, p] of pages.entries()) {
        const s = await c.stats(p);
        const t = s.tiles[0];
        if (t?.avOffsetMs != null) offsets[i]?.push(t.avOffsetMs);
        for (const lag of [t?.voiceLagMs, t?.faceLagMs]) if (lag != null) lags[i]?.push(lag);
        up[i]?.push(s.uplinkKbps);
        down[i]?.push(t?.downlinkKbps ?? 0);
        states[i] = `${s.state}${s.message ? ` (${s.message})` : ''}, ${s.tiles.length} tile(s), ${t?.framesDecoded ?? 0} frames decoded`;
        jb[i] =
          `video ${t?.videoJitterBufferMs?.toFixed(0)} ms, audio ${t?.audioJitterBufferMs?.toFixed(0)} ms; lags: voice ${t?.voiceLagMs?.toFixed(0)} ms, face ${t?.faceLagMs?.toFixed(0)} ms; ` +
          `voice delay set: ${t?.voiceTargetMs ?? '–'} ms`;
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
          `uplink median ${median(up[i] as number[]).toFixed(1)} kbit/s; downlink median ${median(down[i] as number[]).toFixed(1)} kbit/s; jitter buffers: ${jb[i]}; ` +
          `${(up[i] as number[]).length} samples; last state: ${states[i]}\n`,
      );
      // Measured and reported, not held to the ±40 ms goal here: with two pages tracking their cameras on a 2-core
      // machine the avatars come at a few frames per second and the offset swings by a frame and more (the numbers
      // are in docs/calls.md, from scripts/rooms-av-sync.ts). What must hold: both playout estimates exist (sender
      // reports on both SSRCs of one media stream, or Chrome does not sync them) and are finite, and both lags are
      // causal (page and server share this machine's clock: nothing plays before it was captured; a wrong epoch or
      // sign is off by seconds or decades). The sender reports themselves: sender-reports.test.ts, rooms-call "lip sync".
      expect(o.length, `A/V offset samples at page ${i} (${states[i]})`).toBeGreaterThanOrEqual(6);
      expect(o.every((x) => Number.isFinite(x))).toBe(true);
      const l = lags[i] as number[];
      expect(l.length, 'voice and face lag samples').toBeGreaterThanOrEqual(12);
      expect(l.every((x) => Number.isFinite(x) && x > -100), `lags ${l.map((x) => x.toFixed(0)).join(', ')}`).toBe(true);
    }
    expect(pageErrors).toEqual([]);
  });

  it('mute, then leave: the other page loses the tile', { timeout: 60_000 }, async () => {
    const [a, b] = pages as [Page, Page];
    const c = call as CallPages;
    for (const p of pages) {
      const s = await c.stats(p);
      expect(`${s.state}${s.message ? `: ${s.message}` : ''}`, 'each page is still in the call').toBe('in-call');
    }
    await b.click('#mute');
    expect((await c.stats(b)).muted).toBe(true);
    expect(await b.textContent('#mute')).toBe('Unmute');
    await b.click('#stop');
    await c.waitFor(b, 'idle', (s) => s.state === 'idle', 10_000);
    await c.waitFor(a, 'the tile gone', (s) => s.tiles.length === 0, 15_000);
    expect(await a.locator('.tile[data-participant]').count()).toBe(0);
    await c.leave(a);
    const url = (server as TestServer).url;
    for (let i = 0; i < 100 && (await metricValue(url, 'dnp_peers')) !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await metricValue(url, 'dnp_peers')).toBe(0);
  });
});
