/**
 * Fault isolation: a model run that throws or hangs, or an encoder that fails, ends only the sessions it
 * touched (their callers get `session-error` with code render-failed and the reason), is counted by avatar and
 * cause, and leaves the other avatar's callers — and new callers of the same avatar — streaming. Faults are
 * injected with test-only hooks (Renderer.testFaultNextRun, Session.testFailNextEncode).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, startTestServer, type TestServer } from './support/server.js';
import { DrivingCaller } from './support/driving-caller.js';
import { makeUntrainedAvatar } from './support/test-avatar.js';
import { waitFor } from './support/wait.js';

describe('fault isolation', () => {
  let tmp: string;
  let srv: TestServer;
  const callers: DrivingCaller[] = [];
  const open = async (avatar: string): Promise<DrivingCaller> => {
    const c = await DrivingCaller.open(srv.url, avatar, 50);
    callers.push(c);
    return c;
  };
  const closeAll = async (): Promise<void> => {
    for (const c of callers.splice(0)) await c.close();
    await waitFor('no sessions', () => srv.server.sessions.size === 0, 30_000);
  };
  const renderer = (id: string): NonNullable<ReturnType<TestServer['server']['avatars']['get']>>['renderer'] => {
    const a = srv.server.avatars.get(id);
    if (!a) throw new Error(`no avatar ${id}`);
    return a.renderer;
  };

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-faults-'));
    await makeUntrainedAvatar(join(tmp, 'avatars', 'a'), { size: 128 });
    await makeUntrainedAvatar(join(tmp, 'avatars', 'b'), { size: 128, seed: 2 });
    srv = await startTestServer(join(tmp, 'avatars'), { renderTimeoutMs: 1000 });
  }, 180_000);
  afterAll(async () => {
    for (const c of callers.splice(0)) await c.close();
    await srv?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  for (const mode of ['throw', 'spin'] as const) {
    it(`a model run that ${mode === 'throw' ? 'throws' : 'hangs'} ends only that avatar's callers in the run; the other avatar streams on`, async () => {
      try {
      const a1 = await open('a');
      const a2 = await open('a');
      const b = await open('b');
      const before = await metricValue(srv.url, 'dnp_session_failures_total{avatar="a",cause="render"}');
      renderer('a').testFaultNextRun(mode);
      await waitFor('a failed caller', () => a1.failed || a2.failed, 20_000);
      const failed = [a1, a2].filter((c) => c.failed);
      for (const c of failed) {
        expect(c.client.sessionErrorCodes).toEqual(['render-failed']);
        expect(c.client.sessionErrors[0]).toMatch(mode === 'throw' ? /render failed: injected model failure/ : /render failed: model run did not finish within 1000 ms/);
      }
      expect(b.failed).toBe(false);
      expect(await b.streaming()).toBe(true);
      expect((await metricValue(srv.url, 'dnp_session_failures_total{avatar="a",cause="render"}')) - before).toBe(failed.length);
      expect(await metricValue(srv.url, 'dnp_session_failures_total{avatar="b",cause="render"}')).toBe(0);
      if (mode === 'spin') expect(await metricValue(srv.url, 'dnp_render_hung_total{avatar="a"}')).toBe(1);
      // avatar a recovers (the same worker after a throw, a replacement after a hang): a new caller streams
      const again = await open('a');
      expect(await again.streaming()).toBe(true);
      } finally {
        await closeAll();
      }
    }, 120_000);
  }

  it('an encoder failure ends only its own session', async () => {
    try {
    const x = await open('b');
    const y = await open('b');
    const session = srv.server.sessions.get(x.client.sessionId);
    expect(session).toBeDefined();
    session?.testFailNextEncode();
    await waitFor('the failed encode', () => x.failed, 20_000);
    expect(x.client.sessionErrorCodes).toEqual(['render-failed']);
    expect(x.client.sessionErrors[0]).toMatch(/encode failed: injected encoder failure/);
    expect(y.failed).toBe(false);
    expect(await y.streaming()).toBe(true);
    expect(await metricValue(srv.url, 'dnp_session_failures_total{avatar="b",cause="encode"}')).toBe(1);
    expect((await fetch(`${srv.url}/healthz`)).status).toBe(200);
    } finally {
      await closeAll();
    }
  }, 120_000);
});
