// End to end with join tokens: the real page in headless Chromium (camera = a Y4M of portrait-man-talking.mp4)
// against a server started with a token secret. Opened with a valid `?token=`, the page passes it in the socket.io
// handshake and goes live; with an expired one, or none, it is refused and says why (code `forbidden`).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signJoinToken } from '../server/src/access/join-token.js';
import { fakeCameraArgs, HeadlessChromium } from '../server/src/browser/chromium.js';
import { makeFakeCamera, type FakeCamera } from './support/fake-camera.js';
import { metricValue, startTestServer, type TestServer } from './support/server.js';
import { makeUntrainedAvatar, REPO_ROOT } from './support/test-avatar.js';

const DATA = join(REPO_ROOT, '..', 'shared', 'data');
const SECRET = 'e2e-token-secret-0123456789abcdef01234567';

interface PageGlobals {
  dnpDebug?: { readonly state: string; stats(): { message: string; framesDecoded: number } };
}

function waitForState(p: Page, state: string, timeoutMs: number): Promise<unknown> {
  return p.waitForFunction((want) => (globalThis as unknown as PageGlobals).dnpDebug?.state === want, state, { timeout: timeoutMs });
}

const message = (p: Page): Promise<string> => p.evaluate(() => (globalThis as unknown as PageGlobals).dnpDebug?.stats().message ?? '');

let tmp = '';
let camera: FakeCamera | null = null;
let server: TestServer | null = null;
let browser: HeadlessChromium | null = null;

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, 'client', 'dist', 'main.js'))) throw new Error('client/dist is not built: run `npm run build`');
  tmp = mkdtempSync(join(tmpdir(), 'dnp-e2e-token-'));
  await makeUntrainedAvatar(join(tmp, 'avatars', 'e2e'), { size: 128, name: 'e2e' });
  camera = await makeFakeCamera(join(DATA, 'portrait-man-talking.mp4'), { seconds: 2, fps: 30, width: 384, height: 360 });
  server = await startTestServer(join(tmp, 'avatars'), { trackerModelPath: join(DATA, 'face_landmarker.task'), tokenSecret: SECRET });
  browser = await HeadlessChromium.launch({ extraArgs: fakeCameraArgs(camera.file) });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  camera?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the page with join tokens', () => {
  it('is refused without a valid token, and says so', async () => {
    const expired = signJoinToken({ avatar: '*', role: 'caller', exp: Math.floor(Date.now() / 1000) - 5 }, SECRET);
    for (const search of [`?token=${expired}`, '']) {
      const page = await browser!.page();
      await page.goto(`${server!.url}/${search}`);
      await waitForState(page, 'idle', 15_000);
      await page.click('#start');
      await waitForState(page, 'error', 60_000);
      expect(await message(page), search).toMatch(/link does not admit you/);
      await page.close();
    }
    expect(await metricValue(server!.url, 'dnp_access_refused_total{reason="token"}')).toBe(2);
    expect(await metricValue(server!.url, 'dnp_sessions_total')).toBe(0);
  }, 120_000);

  it('goes live with a valid ?token= (sent in the socket.io handshake)', async () => {
    const token = signJoinToken({ avatar: 'e2e', role: 'caller', exp: Math.floor(Date.now() / 1000) + 600 }, SECRET);
    const page = await browser!.page();
    await page.goto(`${server!.url}/?token=${token}`);
    await waitForState(page, 'idle', 15_000);
    await page.click('#start');
    await waitForState(page, 'live', 60_000);
    await page.waitForFunction(() => ((globalThis as unknown as PageGlobals).dnpDebug?.stats().framesDecoded ?? 0) >= 10, undefined, { timeout: 30_000 });
    expect(await metricValue(server!.url, 'dnp_sessions_total')).toBe(1);
    await page.click('#stop');
    await waitForState(page, 'idle', 10_000);
    await page.close();
  }, 120_000);
});
