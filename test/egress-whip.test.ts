/**
 * WHIP egress (server/src/egress/whip-egress.ts) into a WHIP endpoint the test runs on 127.0.0.1 (werift):
 * decodable video and Opus arrive; refused POSTs and a dropped connection are retried with back-off; stop()
 * DELETEs the resource; state, bytes and reconnects show in /metrics.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../server/src/log.js';
import { Metrics } from '../server/src/metrics.js';
import { backoffDelay } from '../server/src/egress/egress.js';
import { EgressMetrics } from '../server/src/egress/egress-metrics.js';
import { WhipEgress } from '../server/src/egress/whip-egress.js';
import { encodeOpusClip } from './support/opus-clip.js';
import { PatternTap } from './support/pattern-tap.js';
import { parseMetrics } from './support/server.js';
import { until } from './support/whep-client.js';
import { TestWhipEndpoint } from './support/whip-endpoint.js';

const SPEECH = join(import.meta.dirname, '..', '..', 'shared', 'data', 'speech-english-16k.wav');
const ICE = { additionalHostAddresses: ['127.0.0.1'], publicIp: null, iceServers: [], portRange: null };
const log = createLogger('silent');

describe('WHIP egress', () => {
  let tap: PatternTap;
  let ep: TestWhipEndpoint;
  const metrics = new Metrics({ processMetrics: false });
  const observer = new EgressMetrics(metrics);

  beforeAll(async () => {
    tap = new PatternTap({ id: 'presenter', opus: await encodeOpusClip(SPEECH, 4) });
    ep = await TestWhipEndpoint.start();
  }, 30_000);

  afterAll(async () => {
    tap?.close();
    await ep?.close();
  });

  const sample = async (s: string): Promise<number> => parseMetrics(await metrics.text()).samples.get(s) ?? NaN;

  it('back-off doubles from the base up to the cap', () => {
    const b = { baseMs: 500, maxMs: 5000, maxAttempts: 0 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, b))).toEqual([500, 1000, 2000, 4000, 5000, 5000]);
  });

  it('sends decodable video and Opus; retries refused POSTs and a dropped connection; stop DELETEs', async () => {
    ep.refuseNext = 2;
    const egress = new WhipEgress('w1', tap, { url: ep.url, token: 'secret-token', ice: ICE, iceServers: () => [], backoff: { baseMs: 100, maxMs: 400, maxAttempts: 0 }, timeoutMs: 10_000, silenceMs: 2000 }, log);
    egress.observer = observer;
    const states: string[] = [];
    const orig = observer.state.bind(observer);
    egress.observer = { ...observer, state: (e, s) => (states.push(s), orig(e, s)), bytes: observer.bytes.bind(observer), reconnect: observer.reconnect.bind(observer) };
    try {
      await egress.start();
      await until(() => egress.state === 'live', 20_000, 'live');
      expect(ep.posts).toBe(3); // two refused, the third accepted
      expect(egress.reconnects).toBe(2);
      const s1 = ep.live;
      expect(s1?.authorization).toBe('Bearer secret-token');
      await until(() => (s1?.rx.framesDecoded ?? 0) >= 10 && (s1?.rx.opusSamples ?? 0) >= 48_000 * 0.4, 20_000, 'video + audio at the endpoint');
      expect(s1?.rx.pictures[0]?.pic.width).toBe(320);
      expect(await sample('dnp_egress_state{egress="w1",kind="whip",state="live"}')).toBe(1);
      expect(await sample('dnp_egress_bytes_total{egress="w1",kind="whip"}')).toBeGreaterThan(10_000);

      // the ingest side goes away: the egress notices, backs off and comes back on a new session
      await ep.dropAll();
      await until(() => ep.sessions.length === 2 && egress.state === 'live', 30_000, 'reconnected');
      const s2 = ep.live;
      await until(() => (s2?.rx.framesDecoded ?? 0) >= 5, 20_000, 'video after reconnecting');
      expect(egress.reconnects).toBe(3);
      expect(await sample('dnp_egress_reconnects_total{egress="w1",kind="whip"}')).toBe(3);
      expect(states).toContain('retrying');
    } finally {
      await egress.stop();
    }
    expect(egress.state).toBe('stopped');
    expect(ep.sessions[1]?.deleted).toBe(true); // stop() DELETEd the resource
    expect(await sample('dnp_egress_state{egress="w1",kind="whip",state="stopped"}')).toBe(1);
    expect(tap.subscribers.rtp).toBe(0);
    await egress.stop(); // idempotent
  }, 90_000);

  it('gives up after maxAttempts against an endpoint that never answers 201, and stops when the tap closes', async () => {
    ep.refuseNext = 100;
    const egress = new WhipEgress('w2', tap, { url: ep.url, token: null, ice: ICE, iceServers: () => [], backoff: { baseMs: 50, maxMs: 100, maxAttempts: 2 }, timeoutMs: 5000 }, log);
    await egress.start();
    await until(() => egress.state === 'stopped', 10_000, 'stopped');
    expect(egress.reconnects).toBe(2);
    expect(egress.lastError).toMatch(/gave up after 2 attempts: WHIP endpoint answered 503/);
    ep.refuseNext = 0;

    const own = new PatternTap({ id: 'short' });
    const e3 = new WhipEgress('w3', own, { url: ep.url, token: null, ice: ICE, iceServers: () => [], backoff: { baseMs: 50, maxMs: 100, maxAttempts: 0 }, timeoutMs: 10_000 }, log);
    await e3.start();
    await until(() => e3.state === 'live', 20_000, 'live');
    own.close();
    await until(() => e3.state === 'stopped', 5000, 'stopped with the tap');
    expect(e3.lastError).toBe('the stream ended');
  }, 60_000);
});
