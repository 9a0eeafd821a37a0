/**
 * Admission control on measured load (--admission, --admission-headroom): a join is refused with code `busy`
 * ("server is busy") when the measured render + encode time per frame says one more session would push the
 * running ones below their frame rate; the admitted sessions keep streaming.
 *
 * Renders are made slow deterministically with a test hook (Renderer.testSlowRuns: every model run takes at
 * least N ms per frame), so the decisions do not depend on how fast or busy the test machine is. Assertions are
 * on admission decisions and on delivery (frames the caller decoded against frames the server sent it), never
 * on the machine's speed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JoinRefusedError } from '../server/src/bench/rtc-client.js';
import { Admission } from '../server/src/session/admission.js';
import { metricValue, startTestServer, type TestServer } from './support/server.js';
import { DrivingCaller } from './support/driving-caller.js';
import { makeUntrainedAvatar } from './support/test-avatar.js';
import { sleep, waitFor } from './support/wait.js';

const verbose = process.env.DNP_TEST_VERBOSE === '1';

/** Joins one more caller; the refusal's code when the server refuses it. */
async function tryJoin(url: string, avatar: string): Promise<DrivingCaller | { refused: string; message: string }> {
  try {
    return await DrivingCaller.open(url, avatar, 40, 30_000); // 25 Hz
  } catch (err) {
    if (err instanceof JoinRefusedError) return { refused: err.code, message: err.message };
    throw err;
  }
}

/** Every admitted session got at least 80 % of what the server sent it, and no session error. */
function expectDelivered(d: Array<{ decoded: number; sent: number }>, callers: DrivingCaller[]): void {
  for (const x of d) {
    expect(x.sent).toBeGreaterThan(0);
    expect(x.decoded).toBeGreaterThanOrEqual(Math.floor(x.sent * 0.8));
  }
  for (const c of callers) expect(c.client.sessionErrorCodes).toEqual([]);
}

/** Over `ms`: frames each caller decoded, and frames the server sent its session (rendered + re-sent). */
async function delivery(srv: TestServer, callers: DrivingCaller[], ms: number): Promise<Array<{ decoded: number; sent: number }>> {
  const sentBy = (c: DrivingCaller): number => {
    const j = srv.server.sessions.get(c.client.sessionId)?.toJSON() as { rendered?: number; resent?: number } | undefined;
    return (j?.rendered ?? 0) + (j?.resent ?? 0);
  };
  const before = callers.map((c) => ({ decoded: c.client.stats.framesDecoded, sent: sentBy(c) }));
  await sleep(ms);
  return callers.map((c, i) => ({ decoded: c.client.stats.framesDecoded - (before[i]?.decoded ?? 0), sent: sentBy(c) - (before[i]?.sent ?? 0) }));
}

describe('Admission (unit)', () => {
  const running = (n: number): Array<{ avatar: string; fps: number }> => Array.from({ length: n }, () => ({ avatar: 'a', fps: 25 }));

  it('admits while nothing runs; an avatar without measurements; then as many sessions as its render worker holds with the headroom', () => {
    const a = new Admission({ enabled: true, headroom: 1.25, cores: 4, renderThreads: 1 });
    expect(a.check({ avatar: 'a', fps: 25 }, running(5))).toBeNull();
    for (let i = 0; i < 10; i++) a.observeRender('a', 24, 2); // 12 ms per frame in batches of 2
    a.observeRender('a', 500, 1); // one stall: the median ignores it
    expect(a.perFrame('a').renderMs).toBe(12);
    expect(a.check({ avatar: 'a', fps: 25 }, [])).toBeNull();
    // n · 12 · 25 · 1.25 ≤ 1000 ⇔ n ≤ 2
    expect(a.check({ avatar: 'a', fps: 25 }, running(1))).toBeNull();
    expect(a.check({ avatar: 'a', fps: 25 }, running(2))?.limit).toBe('render');
    expect(a.check({ avatar: 'a', fps: 25 }, running(2))?.message).toMatch(/^server is busy/);
    expect(new Admission({ enabled: false, headroom: 1.25, cores: 4, renderThreads: 1 }).check({ avatar: 'a', fps: 25 }, running(50))).toBeNull();
  });

  it('counts encoding on the main thread and everything over the cores', () => {
    const enc = new Admission({ enabled: true, headroom: 1, cores: 8, renderThreads: 1 });
    enc.observeRender('a', 1, 1);
    enc.observeRender('b', 1, 1);
    enc.observeEncode('a', 10);
    enc.observeEncode('b', 10);
    // encode: 10 ms · 25 fps = 250 ms/s per session: the 5th would need 1250 on the main thread
    const mixed = [...running(2), { avatar: 'b', fps: 25 }, { avatar: 'b', fps: 25 }];
    expect(enc.check({ avatar: 'a', fps: 25 }, mixed.slice(0, 3))).toBeNull();
    expect(enc.check({ avatar: 'a', fps: 25 }, mixed)?.limit).toBe('encode');
    const cores = new Admission({ enabled: true, headroom: 1, cores: 2, renderThreads: 0 });
    cores.observeRender('a', 30, 1);
    cores.observeRender('b', 30, 1);
    // per avatar 30 · 25 = 750 ms/s fits one worker, but with 2 threads per run: 2 · 2 · 30 · 25 = 3000 > 2000
    expect(cores.check({ avatar: 'b', fps: 25 }, running(1))?.limit).toBe('cores');
  });
});

describe('admission on a running server', () => {
  let tmp: string;
  let srv: TestServer;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-admission-'));
    // one avatar per test: each has its own render worker and measurement windows
    await makeUntrainedAvatar(join(tmp, 'avatars', 'a'), { size: 64 });
    await makeUntrainedAvatar(join(tmp, 'avatars', 'b'), { size: 64, seed: 2 });
    srv = await startTestServer(join(tmp, 'avatars'), { admission: true, admissionHeadroom: 1.25, maxSessions: 12, maxBatch: 1 });
  }, 120_000);
  afterAll(async () => {
    await srv?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('refuses the third caller with busy when renders take 12 ms per frame; the admitted two keep streaming', async () => {
    const renderer = srv.server.avatars.get('a')?.renderer;
    if (!renderer) throw new Error('avatar a not loaded');
    renderer.testSlowRuns(12, true); // every run measures 12 ms per frame; 25 fps: n · 12 · 25 · 1.25 ≤ 1000 ⇔ n ≤ 2
    const callers: DrivingCaller[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const c = await tryJoin(srv.url, 'a');
        if (!(c instanceof DrivingCaller)) throw new Error(`caller ${i + 1} refused: ${c.message}`);
        callers.push(c);
      }
      const third = await tryJoin(srv.url, 'a');
      if (third instanceof DrivingCaller) {
        callers.push(third);
        throw new Error('the third caller was admitted');
      }
      expect(third.refused).toBe('busy');
      expect(third.message).toMatch(/server is busy/);
      expect(await metricValue(srv.url, 'dnp_admission_refused_total{avatar="a",limit="render"}')).toBe(1);
      const d = await delivery(srv, callers, 2000);
      if (verbose) console.log(`admission: slow renders, 2 admitted: ${JSON.stringify(d)}`);
      expectDelivered(d, callers);
    } finally {
      renderer.testSlowRuns(0);
      await Promise.all(callers.map((c) => c.close()));
    }
    await waitFor('no sessions', () => srv.server.sessions.size === 0, 20_000);
  });

  it('load: adds callers one by one until admission refuses; every admitted session keeps receiving what the server sends', async () => {
    const renderer = srv.server.avatars.get('b')?.renderer;
    if (!renderer) throw new Error('avatar b not loaded');
    // 5 ms per frame at least, plus whatever the machine adds (measured): refused by the 7th caller at the latest
    renderer.testSlowRuns(5);
    const callers: DrivingCaller[] = [];
    let refusal: { refused: string; message: string } | null = null;
    try {
      for (let i = 0; i < 8 && !refusal; i++) {
        const c = await tryJoin(srv.url, 'b');
        if (c instanceof DrivingCaller) {
          callers.push(c);
          await sleep(1000); // let the window measure the new load
        } else refusal = c;
      }
      if (verbose) console.log(`admission: ${callers.length} admitted, then ${refusal?.message ?? 'none refused'}`);
      expect(refusal?.refused).toBe('busy');
      expect(callers.length).toBeGreaterThanOrEqual(1);
      expect(callers.length).toBeLessThanOrEqual(6);
      const d = await delivery(srv, callers, 3000);
      if (verbose) console.log(`admission: delivery over 3 s (decoded/sent per session; fps = decoded / 3): ${JSON.stringify(d)}`);
      expectDelivered(d, callers);
    } finally {
      renderer.testSlowRuns(0);
      await Promise.all(callers.map((c) => c.close()));
    }
    await waitFor('no sessions', () => srv.server.sessions.size === 0, 20_000);
  });
});
