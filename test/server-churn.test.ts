/**
 * Churn: 200 join/leave cycles of a werift caller against one server (an untrained 64² avatar). Each cycle
 * joins, completes the WebRTC handshake, receives at least one decoded frame, leaves, and waits until the
 * server has dropped the session. Afterwards the process RSS (server and caller share it) has grown < 10 %
 * over a baseline taken after a 40-cycle warm-up, and /metrics shows no live sessions, peers, encoders,
 * sockets, model runs or queued frames, and no render workers beyond the baseline.
 *
 * The RSS curve (every 20 cycles) is printed with DNP_TEST_VERBOSE=1; docs/server.md has a recorded run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BLENDSHAPE_COUNT } from '../shared/src/blendshapes.js';
import { encodeDrivingFrame } from '../shared/src/wire.js';
import { RtcClient } from '../server/src/bench/rtc-client.js';
import { metricTotal, metricValue, startTestServer, type TestServer } from './support/server.js';
import { makeUntrainedAvatar } from './support/test-avatar.js';
import { waitFor } from './support/wait.js';

const CYCLES = 200;
/** RSS keeps settling (allocator arenas, JIT) for the first 40–60 cycles on a loaded 2-core machine: 191–211 MiB at cycle 20, flat from ~60. */
const WARMUP = 40;
const SAMPLE_EVERY = 20;
/** The whole churn must finish within this (a bound, not a speed claim: a hang fails instead of running on). */
const CHURN_LIMIT_MS = 15 * 60_000;
const verbose = process.env.DNP_TEST_VERBOSE === '1';


/** A full collection before each RSS sample, so that the curve shows what is retained, not what is pending. */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function memoryMiB(): { rss: number; heap: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: Math.round((m.rss / 2 ** 20) * 10) / 10, heap: Math.round((m.heapUsed / 2 ** 20) * 10) / 10 };
}

let tmp: string;
let srv: TestServer;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'dnp-churn-'));
  await makeUntrainedAvatar(join(tmp, 'avatars', 'a'), { size: 64 });
  srv = await startTestServer(join(tmp, 'avatars'), { maxSessions: 4 });
}, 120_000);
afterAll(async () => {
  await srv?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

it(`${CYCLES} join/leave cycles leave no live resources and RSS within 10 % of the warmed-up baseline`, async () => {
  const started = Date.now();
  const curve: Array<{ cycle: number; rssMiB: number; heapMiB: number; s: number }> = [];
  let workersBaseline = -1;
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    if (Date.now() - started > CHURN_LIMIT_MS) throw new Error(`churn took longer than ${CHURN_LIMIT_MS / 60_000} min (at cycle ${cycle})`);
    const client = await RtcClient.connect({ url: srv.url, avatar: 'a', timeoutMs: 30_000 });
    try {
      client.send(encodeDrivingFrame({ seq: cycle, captureMs: cycle * 40, faceFound: true, pose: new Float32Array(6), gaze: new Float32Array(2), blendshapes: new Float32Array(BLENDSHAPE_COUNT).fill((cycle % 10) / 10) }));
      await waitFor(`a decoded frame in cycle ${cycle}`, () => client.stats.framesDecoded >= 1, 20_000, 10);
      expect(client.sessionErrorCodes).toEqual([]);
    } finally {
      await client.close();
    }
    await waitFor(`the session of cycle ${cycle} to end`, () => srv.server.sessions.size === 0, 20_000, 10);
    if (cycle % SAMPLE_EVERY === 0) {
      // let the closes settle (peers, sockets) before sampling
      await waitFor('the sockets to close', async () => (await metricValue(srv.url, 'dnp_signaling_sockets')) === 0, 20_000, 10);
      srv.logs.length = 0; // the test harness keeps every log line: not the server's memory
      const mem = memoryMiB();
      curve.push({ cycle, rssMiB: mem.rss, heapMiB: mem.heap, s: Math.round((Date.now() - started) / 100) / 10 });
      if (cycle === WARMUP) workersBaseline = await metricTotal(srv.url, 'dnp_render_workers');
      if (verbose) console.log(`churn: cycle ${cycle}: rss ${mem.rss} MiB, JS heap ${mem.heap} MiB after ${curve.at(-1)?.s} s`);
    }
  }
  const baseline = curve.find((p) => p.cycle === WARMUP);
  const last = curve.at(-1);
  if (!baseline || !last) throw new Error('no RSS samples');
  const growth = (last.rssMiB - baseline.rssMiB) / baseline.rssMiB;
  if (verbose) console.log(`churn: RSS curve ${JSON.stringify(curve)}; growth after warm-up ${(growth * 100).toFixed(1)} %`);
  expect(growth).toBeLessThan(0.1);

  await waitFor('peers to close', async () => (await metricValue(srv.url, 'dnp_peers')) === 0, 20_000, 10);
  expect(await metricValue(srv.url, 'dnp_sessions')).toBe(0);
  expect(await metricTotal(srv.url, 'dnp_encoders')).toBe(0);
  expect(await metricValue(srv.url, 'dnp_signaling_sockets')).toBe(0);
  expect(await metricTotal(srv.url, 'dnp_render_runs_in_flight')).toBe(0);
  expect(await metricTotal(srv.url, 'dnp_render_queued_frames')).toBe(0);
  expect(workersBaseline).toBe(1);
  expect(await metricTotal(srv.url, 'dnp_render_workers')).toBe(workersBaseline);
  // the encode pool keeps its threads (at most half the cores) but no stream's encoder
  expect(await metricValue(srv.url, 'dnp_encode_worker_streams')).toBe(0);
  expect(await metricValue(srv.url, 'dnp_encode_workers')).toBeLessThanOrEqual(Math.max(1, Math.floor(availableParallelism() / 2)));
  expect(await metricValue(srv.url, 'dnp_encode_worker_failures_total')).toBe(0);
  expect(await metricValue(srv.url, 'dnp_sessions_total')).toBe(CYCLES);
  expect(await metricTotal(srv.url, 'dnp_session_failures_total')).toBe(0);
}, CHURN_LIMIT_MS + 60_000);
