/**
 * Headless Chromium pages in a call, for tests and scripts: each has its own fake camera (a Y4M from a clip) and
 * the speech WAV as its fake microphone, joins `/?room=NAME` on a running server and is read through
 * window.dnpCall (client/src/call-page.ts). One owner: close() (idempotent) closes the browsers and removes the
 * cameras.
 */
import type { Page } from 'playwright-core';
import type { CallStatsSnapshot } from '../../client/src/stats/call-stats.js';
import { fakeCameraArgs, HeadlessChromium } from '../../server/src/browser/chromium.js';
import { makeFakeCamera, type FakeCamera } from './fake-camera.js';
import { sleep } from './wait.js';

interface PageGlobals {
  dnpCall?: { readonly state: string; stats(): Promise<CallStatsSnapshot>; leave(): void };
}

export interface CallPagesOptions {
  /** one page per clip: the clip is its camera */
  clips: string[];
  /** the fake microphone of every page (a WAV) */
  speech: string;
  /** console errors and page errors of any page */
  onError: (message: string) => void;
}

/** A tile has ≥ 30 decoded frames and ≥ 100 voice packets. */
export const tileReady = (s: CallStatsSnapshot): boolean => s.tiles.length === 1 && (s.tiles[0]?.framesDecoded ?? 0) >= 30 && (s.tiles[0]?.audioPacketsReceived ?? 0) >= 100;

export class CallPages {
  private closing: Promise<void> | null = null;

  private constructor(
    readonly pages: Page[],
    private readonly browsers: HeadlessChromium[],
    private readonly cameras: FakeCamera[],
  ) {}

  static async launch(o: CallPagesOptions): Promise<CallPages> {
    const out = new CallPages([], [], []);
    try {
      for (const clip of o.clips) {
        const cam = await makeFakeCamera(clip, { seconds: 3, fps: 30, width: 384, height: 360 });
        out.cameras.push(cam);
        const b = await HeadlessChromium.launch({
          extraArgs: [...fakeCameraArgs(cam.file), `--use-file-for-fake-audio-capture=${o.speech}`, '--autoplay-policy=no-user-gesture-required'],
          onConsole: (type, text) => {
            if (type === 'error' && !text.includes('XNNPACK')) o.onError(text);
          },
        });
        out.browsers.push(b);
        const p = await b.page();
        p.on('pageerror', (e) => o.onError(`pageerror: ${e.message}`));
        await p.setViewportSize({ width: 1100, height: 800 });
        out.pages.push(p);
      }
      return out;
    } catch (e) {
      await out.close();
      throw e;
    }
  }

  stats(p: Page): Promise<CallStatsSnapshot> {
    return p.evaluate(() => {
      const c = (globalThis as unknown as PageGlobals).dnpCall;
      if (!c) throw new Error('window.dnpCall is missing');
      return c.stats();
    });
  }

  leave(p: Page): Promise<void> {
    return p.evaluate(() => (globalThis as unknown as PageGlobals).dnpCall?.leave());
  }

  /** Polls page `p`'s stats until `ok`; throws naming `what` after `ms` or when the page shows an error. */
  async waitFor(p: Page, what: string, ok: (s: CallStatsSnapshot) => boolean, ms: number): Promise<CallStatsSnapshot> {
    const end = Date.now() + ms;
    let s = await this.stats(p);
    while (!ok(s)) {
      if (s.state === 'error') throw new Error(`page error while waiting for ${what}: ${s.message}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(s)}`);
      await sleep(250);
      s = await this.stats(p);
    }
    return s;
  }

  /** Every page opens `url/?room=ROOM&QUERY`, takes its name from `names` and joins, one after the other. */
  async join(url: string, room: string, names: string[], query = ''): Promise<void> {
    for (const [i, p] of this.pages.entries()) {
      await p.goto(`${url}/?room=${room}${query ? `&${query}` : ''}`);
      await this.waitFor(p, 'idle', (s) => s.state === 'idle', 20_000);
      await p.fill('#call-name', names[i] ?? `guest${i}`);
      await p.click('#start');
      await this.waitFor(p, 'in-call', (s) => s.state === 'in-call', 90_000);
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const b of this.browsers) await b.close();
      for (const c of this.cameras) c.close();
    })();
    return this.closing;
  }
}
