// End to end, all real: headless Debian Chromium whose camera is a Y4M made from portrait-man-talking.mp4,
// the real server (DnpServer on 127.0.0.1, port 0) with an untrained avatar and the local tracker model,
// and the real page (client/dist). The page tracks the face, sends driving frames, calibrates, and plays
// the video the server renders; render reports give latency samples.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LiveStats } from '../client/src/stats/live-stats.js';
import { fakeCameraArgs, HeadlessChromium } from '../server/src/browser/chromium.js';
import { makeFakeCamera, type FakeCamera } from './support/fake-camera.js';
import { metricTotal, metricValue, startTestServer, type TestServer } from './support/server.js';
import { makeUntrainedAvatar, REPO_ROOT } from './support/test-avatar.js';

const DATA = join(REPO_ROOT, '..', 'shared', 'data');
const VIDEO = join(DATA, 'portrait-man-talking.mp4');
const MODEL = join(DATA, 'face_landmarker.task');

let tmp = '';
let camera: FakeCamera | null = null;
let server: TestServer | null = null;
let browser: HeadlessChromium | null = null;
let extraBrowser: HeadlessChromium | null = null;
let badServer: TestServer | null = null;
let avatarsDir = '';
let page: Page;
const pageErrors: string[] = [];

/** What the page exposes (client/src/debug-hook.ts); the test's tsconfig has no DOM types, hence globalThis. */
interface PageGlobals {
  dnpDebug?: { readonly state: string; stats(): LiveStats };
}

function waitForState(p: Page, state: string, timeoutMs: number): Promise<unknown> {
  return p.waitForFunction((want) => (globalThis as unknown as PageGlobals).dnpDebug?.state === want, state, { timeout: timeoutMs });
}

async function stats(): Promise<LiveStats> {
  return page.evaluate(() => {
    const hook = (globalThis as unknown as PageGlobals).dnpDebug;
    if (!hook) throw new Error('window.dnpDebug is missing');
    return hook.stats();
  });
}

/** Polls the page's stats until `ok` holds; on timeout fails with the last stats. */
async function waitForStats(what: string, ok: (s: LiveStats) => boolean, timeoutMs: number): Promise<LiveStats> {
  const end = Date.now() + timeoutMs;
  let last = await stats();
  while (!ok(last)) {
    if (last.state === 'error') throw new Error(`page error while waiting for ${what}: ${last.message}`);
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last stats: ${JSON.stringify({ ...last, latencySamples: last.latencySamples.length })}`);
    await new Promise((r) => setTimeout(r, 250));
    last = await stats();
  }
  return last;
}

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, 'client', 'dist', 'main.js'))) throw new Error('client/dist is not built: run `npm run build`');
  tmp = mkdtempSync(join(tmpdir(), 'dnp-e2e-'));
  avatarsDir = join(tmp, 'avatars');
  await makeUntrainedAvatar(join(avatarsDir, 'e2e'), { size: 256, name: 'e2e' });
  camera = await makeFakeCamera(VIDEO, { seconds: 3, fps: 30, width: 384, height: 360 });
  server = await startTestServer(avatarsDir, { trackerModelPath: MODEL });
  browser = await HeadlessChromium.launch({
    extraArgs: fakeCameraArgs(camera.file),
    onConsole: (type, text) => {
      if (type === 'error' && !text.includes('XNNPACK')) pageErrors.push(text);
    },
  });
  page = await browser.page();
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  await page.setViewportSize({ width: 1100, height: 800 });
});

afterAll(async () => {
  await extraBrowser?.close();
  await browser?.close();
  await badServer?.close();
  await server?.close();
  camera?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('live page in headless Chromium against the real server', () => {
  it('loads the avatar list and the configuration', async () => {
    await page.goto(`${server!.url}/`);
    await waitForState(page, 'idle', 15_000);
    const options = await page.$$eval('#avatar option', (os) => os.map((o) => ({ value: o.getAttribute('value'), disabled: o.hasAttribute('disabled') })));
    expect(options).toEqual([{ value: 'e2e', disabled: false }]);
    expect(await page.textContent('.ai-label')).toBe('AI-generated video');
    expect(await page.isEnabled('#start')).toBe(true);
    expect(await page.isEnabled('#calibrate')).toBe(false);
  });

  it('tracks the camera face, drives the avatar and plays the returned video with latency measured', async () => {
    await page.click('#start');
    await waitForState(page, 'live', 60_000);
    const s = await waitForStats('60 decoded frames and 20 latency samples', (x) => x.framesDecoded >= 60 && x.latencyCount >= 20, 90_000);

    // the tracker found the face in the camera frames and driving frames went out
    expect(s.cameraFrames).toBeGreaterThan(30);
    expect(s.trackErrors).toBe(0);
    expect(s.facesFound / s.cameraFrames).toBeGreaterThan(0.9);
    expect(s.trackingMs.count).toBeGreaterThan(0);
    expect(s.framesSent).toBeGreaterThan(30);
    // the server accepted them: none rejected, and it counted what arrived
    const received = await metricValue(server!.url, 'dnp_driving_frames_received_total');
    expect(received).toBeGreaterThan(30);
    expect(received).toBeLessThanOrEqual((await stats()).framesSent); // read after the metric: frames keep flowing
    expect(await metricTotal(server!.url, 'dnp_signaling_rejected_total')).toBe(0); // every series (per event)
    const metrics = await (await fetch(`${server!.url}/metrics`)).text();
    expect(metrics).not.toMatch(/^dnp_driving_frames_rejected_total\{[^}]*\} [1-9]/m);

    // the video came back at the avatar's size and decodes without errors
    expect(s.codec).toBe('video/VP8');
    expect(s.frameWidth).toBe(256);
    expect(s.frameHeight).toBe(256);
    expect(s.framesPresented).toBeGreaterThan(0);
    expect(s.videoErrors).toBe(0);
    expect(s.badMessages).toBe(0);
    expect(s.reports).toBeGreaterThan(0);
    expect(s.decodedFps).toBeGreaterThan(0);
    expect(s.downlinkKbps).toBeGreaterThan(0);
    expect(s.uplinkKbps).toBeGreaterThan(0);

    // latency samples: capture → presentation on the page's own clock, so positive; a sample off by a
    // clock or wrap error would be negative or enormous
    expect(s.latencySamples.length).toBeGreaterThanOrEqual(20);
    for (const l of s.latencySamples) {
      expect(Number.isFinite(l)).toBe(true);
      expect(l).toBeGreaterThan(0);
      expect(l).toBeLessThan(10_000);
    }
    expect(s.latencyMs.count).toBeGreaterThan(0);
    if (process.env.DNP_E2E_VERBOSE) process.stderr.write(`e2e stats: ${JSON.stringify({ ...s, latencySamples: s.latencySamples.length })}\n`);
    expect(s.renderMs.count).toBeGreaterThan(0);

    // keeps playing: more frames decoded a moment later
    const later = await waitForStats('more decoded frames', (x) => x.framesDecoded > s.framesDecoded + 10, 30_000);
    expect(later.framesDecoded).toBeGreaterThan(s.framesDecoded);
    expect(later.state).toBe('live');
  });

  it('calibrates the neutral face with the server', async () => {
    expect(await page.isEnabled('#calibrate')).toBe(true);
    await page.click('#calibrate');
    const s = await waitForStats('calibration acknowledged', (x) => x.calibration.startsWith('done') || x.calibration === 'failed', 20_000);
    expect(s.calibration).toMatch(/^done \(\d+ frames\)$/);
    expect(s.state).toBe('live');
  });

  it('stops cleanly and the server ends the session', async () => {
    await page.click('#stop');
    await waitForState(page, 'idle', 10_000);
    const end = Date.now() + 10_000;
    while ((await metricValue(server!.url, 'dnp_sessions')) !== 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    expect(await metricValue(server!.url, 'dnp_sessions')).toBe(0);
    expect(await metricValue(server!.url, 'dnp_sessions_total')).toBe(1);
    expect(await metricValue(server!.url, 'dnp_session_errors_total')).toBe(0);
    expect(pageErrors).toEqual([]);

    // the server's own account of the session (its 'session closed' log line): the frames it got carried a
    // face, none was malformed, and the calibration reached it
    // (logged at the end of Session.close(), after the peer closed: a moment after dnp_sessions drops)
    for (let i = 0; i < 50 && !server!.logs.some((l) => l.msg === 'session closed'); i++) await new Promise((r) => setTimeout(r, 100));
    const closed = server!.logs.find((l) => l.msg === 'session closed');
    const driving = (closed?.stats as { driving?: Record<string, unknown> } | undefined)?.driving;
    expect(driving, 'session closed log with driving stats').toBeDefined();
    const received = driving!.received as number;
    expect(received).toBeGreaterThan(30);
    expect(driving!.noFace as number).toBeLessThan(received * 0.1);
    expect(driving!.rejected).toBe(0);
    expect(driving!.calibrated).toBe(true);
  });
});

describe('failure messages', () => {
  async function waitForError(p: Page): Promise<string> {
    await waitForState(p, 'error', 30_000);
    return p.evaluate(() => (globalThis as unknown as PageGlobals).dnpDebug?.stats().message ?? '');
  }

  it('says so when camera permission is denied', async () => {
    // no --use-fake-ui-for-media-stream: headless Chromium then denies the permission prompt
    extraBrowser = await HeadlessChromium.launch({ extraArgs: ['--use-fake-device-for-media-stream'] });
    const p = await extraBrowser.page();
    await p.goto(`${server!.url}/`);
    await waitForState(p, 'idle', 15_000);
    await p.click('#start');
    expect(await waitForError(p)).toMatch(/^Camera permission was denied\./);
    expect(await p.isVisible('#message')).toBe(true);
    expect(await p.isEnabled('#start')).toBe(true);
    await extraBrowser.close();
  });

  it('says so when the server cannot be reached', async () => {
    // the page still has its tracker loaded from the live run; now the server goes away
    await server!.close();
    await page.click('#start');
    expect(await waitForError(page)).toMatch(/^The connection to the avatar server failed: cannot reach the server/);
  });

  it('says so when the tracker model cannot be loaded', async () => {
    const badModel = join(tmp, 'not-a-model.task');
    writeFileSync(badModel, 'this is not a FaceLandmarker model bundle');
    badServer = await startTestServer(avatarsDir, { trackerModelPath: badModel });
    await page.goto(`${badServer.url}/`);
    await waitForState(page, 'idle', 15_000);
    await page.click('#start');
    const msg = await waitForError(page);
    expect(msg).toMatch(/^The face tracker model could not be loaded from http:\/\/127\.0\.0\.1:\d+\/models\/face_landmarker\.task \(/);
    expect(msg).not.toContain('\n');
  });
});
