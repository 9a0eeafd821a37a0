/**
 * The page's viewer mode (`/?watch=ROOM/PARTICIPANT`) in real headless Chromium watches a MediaTap over WHEP:
 * video frames decoded at the tap's size and Opus packets received; leaving the page ends the WHEP session.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WatchStats } from '../client/src/watch-stats.js';
import { HeadlessChromium } from '../server/src/browser/chromium.js';
import { encodeOpusClip } from './support/opus-clip.js';
import { PatternTap } from './support/pattern-tap.js';
import { metricValue, startTestServer, type TestServer } from './support/server.js';

const SPEECH = join(import.meta.dirname, '..', '..', 'shared', 'data', 'speech-english-16k.wav');

interface PageGlobals {
  dnpWatch?: { readonly state: string; stats(): Promise<WatchStats> };
}

describe('WHEP viewer mode of the page (Chromium)', () => {
  let dir: string;
  let ts: TestServer;
  let tap: PatternTap;
  let browser: HeadlessChromium | null = null;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnp-whep-browser-'));
    ts = await startTestServer(dir);
    tap = new PatternTap({ id: 'presenter', opus: await encodeOpusClip(SPEECH, 4) });
    ts.server.taps.register({ room: 'stage', participant: 'presenter', avatar: 'default', tap });
    browser = await HeadlessChromium.launch({ extraArgs: ['--autoplay-policy=no-user-gesture-required'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    tap?.close();
    await ts?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows the stream and plays its audio; leaving ends the viewer', async () => {
    const page = await (browser as HeadlessChromium).page();
    await page.goto(`${ts.url}/?watch=stage/presenter`);
    const read = (): Promise<WatchStats> =>
      page.evaluate(() => {
        const w = (globalThis as unknown as PageGlobals).dnpWatch;
        if (!w) throw new Error('window.dnpWatch is missing');
        return w.stats();
      });
    const end = Date.now() + 30_000;
    let s = await read();
    while (!(s.framesDecoded >= 20 && s.audioPacketsReceived >= 20)) {
      if (s.state === 'error') throw new Error(`viewer page error: ${s.message}`);
      if (Date.now() > end) throw new Error(`timed out; last stats ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 250));
      s = await read();
    }
    expect(s.state).toBe('playing');
    expect(s.width).toBe(320);
    expect(s.height).toBe(240);
    expect(await metricValue(ts.url, 'dnp_whep_viewers')).toBe(1);
    await page.goto('about:blank'); // pagehide → DELETE
    const until = Date.now() + 10_000;
    while ((await metricValue(ts.url, 'dnp_whep_viewers')) !== 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(await metricValue(ts.url, 'dnp_whep_viewers')).toBe(0);
  }, 60_000);

  it('a bad watch target shows an error, not a crash', async () => {
    const page = await (browser as HeadlessChromium).page();
    await page.goto(`${ts.url}/?watch=stage/nobody`);
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).dnpWatch?.state === 'error', undefined, { timeout: 15_000 });
    const s = await page.evaluate(() => (globalThis as unknown as PageGlobals).dnpWatch?.stats());
    expect(s?.message).toMatch(/no participant nobody/);
  }, 30_000);
});
