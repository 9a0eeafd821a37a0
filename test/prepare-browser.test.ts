// The reusable headless-Chromium launcher (server/src/browser/chromium.ts): system Chromium with a fresh
// profile folder, WebGL2 available under --disable-gpu (FaceLandmarker needs it), extra flags passed
// through, idempotent close() that removes the profile, and a clear error when Chromium is missing.
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ChromiumNotFoundError, HeadlessChromium, fakeCameraArgs, resolveChromiumPath } from '../server/src/browser/chromium.js';

const opened: HeadlessChromium[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()));
});

describe('HeadlessChromium', () => {
  it('launches the system Chromium with WebGL2 and extra flags; close() is idempotent and removes the profile', async () => {
    const b = await HeadlessChromium.launch({ extraArgs: ['--lang=de-DE', '--accept-lang=de-DE'] });
    opened.push(b);
    const profile = b.profileDir;
    expect(profile && existsSync(profile)).toBe(true);
    const page = await b.page();
    // evaluated in the page (a string: this file is type-checked without DOM types)
    const r = (await page.evaluate("({ webgl2: document.createElement('canvas').getContext('webgl2') !== null, lang: navigator.language })")) as {
      webgl2: boolean;
      lang: string;
    };
    expect(r.webgl2).toBe(true);
    expect(r.lang).toBe('de-DE');
    await Promise.all([b.close(), b.close()]);
    await b.close();
    expect(b.closed).toBe(true);
    expect(b.profileDir).toBeNull();
    expect(existsSync(profile as string)).toBe(false);
    await expect(b.page()).rejects.toThrow(/closed/);
  });

  it('names apt-get install chromium when the binary is missing', async () => {
    expect(() => resolveChromiumPath('/nonexistent/chromium')).toThrow(ChromiumNotFoundError);
    expect(() => resolveChromiumPath('/nonexistent/chromium')).toThrow(/apt-get install chromium.*DNP_CHROMIUM/);
    const saved = process.env.DNP_CHROMIUM;
    process.env.DNP_CHROMIUM = '/nonexistent/from-env';
    try {
      expect(() => resolveChromiumPath()).toThrow(/\/nonexistent\/from-env/);
      await expect(HeadlessChromium.launch()).rejects.toThrow(/apt-get install chromium/);
    } finally {
      if (saved === undefined) delete process.env.DNP_CHROMIUM;
      else process.env.DNP_CHROMIUM = saved;
    }
    expect(existsSync(resolveChromiumPath())).toBe(true);
  });

  it('builds fake-camera flags', () => {
    expect(fakeCameraArgs('/tmp/clip.y4m')).toEqual([
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--use-file-for-fake-video-capture=/tmp/clip.y4m',
    ]);
  });
});
