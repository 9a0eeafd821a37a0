/**
 * Limits: per-address join rate, the signaling message cap, the driving-frame rate per session, PLI-triggered
 * keyframes throttled per stream, connect and idle timeouts that free the slot, and the error `code` of every
 * refusal (the client acts on codes, not on wording).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeDrivingFrame } from '../shared/src/wire.js';
import { BLENDSHAPE_COUNT } from '../shared/src/blendshapes.js';
import { parseJoinReply, parseSessionError, type ClientToServerEvents, type JoinReply, type ServerToClientEvents, type SessionError } from '../shared/src/signaling.js';
import { JoinRefusedError, RtcClient } from '../server/src/bench/rtc-client.js';
import { TokenBucket, TokenBuckets } from '../server/src/access/token-bucket.js';
import { metricValue, startTestServer, type TestServer } from './support/server.js';
import { makeUntrainedAvatar } from './support/test-avatar.js';
import { sleep, waitFor } from './support/wait.js';


function frame(seq: number): Uint8Array {
  return encodeDrivingFrame({
    seq,
    captureMs: seq * 33,
    faceFound: true,
    pose: new Float32Array(6),
    gaze: new Float32Array(2),
    blendshapes: new Float32Array(BLENDSHAPE_COUNT).fill(0.1),
  });
}

type Client = Socket<ServerToClientEvents, ClientToServerEvents>;

async function connect(url: string): Promise<Client> {
  const s: Client = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('connect_error', reject);
  });
  return s;
}

/** Joins `avatar`; the reply validated. */
const ask = async (s: Client, avatar: string): Promise<JoinReply> => parseJoinReply(await s.timeout(10_000).emitWithAck('join', { avatar }));

let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'dnp-limits-'));
  mkdirSync(join(tmp, 'empty'));
  await makeUntrainedAvatar(join(tmp, 'avatars', 'a'), { size: 128 });
}, 120_000);
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('token buckets', () => {
  it('allow the burst, then the refill rate', () => {
    const b = new TokenBucket(3, 1, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(500)).toBe(false);
    expect(b.take(1000)).toBe(true);
    expect(b.isFull(10_000)).toBe(true);
    const many = new TokenBuckets(1, 1, 2);
    expect([many.take('x', 0), many.take('x', 0), many.take('y', 0)]).toEqual([true, false, true]);
    expect(many.take('z', 5000)).toBe(true); // over maxKeys: the full buckets were forgotten
    expect(many.size).toBe(1);
  });
});

describe('joins and signaling messages', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(join(tmp, 'empty'), { joinsPerMinute: 3 });
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('limits joins per address (token bucket), answering rate-limited', async () => {
    const a = await connect(srv.url);
    const b = await connect(srv.url);
    try {
      expect(await ask(a, 'nobody')).toMatchObject({ code: 'unknown-avatar' });
      expect(await ask(b, 'nobody')).toMatchObject({ code: 'unknown-avatar' });
      const untyped: Socket = a; // a malformed join on purpose: through the socket untyped
      expect(parseJoinReply(await untyped.timeout(10_000).emitWithAck('join', 'malformed'))).toMatchObject({ code: 'bad-request' }); // counts too
      const limited = await ask(b, 'nobody'); // same address, another socket
      expect(limited).toMatchObject({ ok: false, code: 'rate-limited', error: expect.stringMatching(/too many joins/) });
      expect(await metricValue(srv.url, 'dnp_joins_rate_limited_total')).toBe(1);
    } finally {
      a.close();
      b.close();
    }
  });

  it('drops a socket whose message is over the 80 KiB cap; under it, the schema rejects an over-long SDP', async () => {
    const s = await connect(srv.url);
    const before = await metricValue(srv.url, 'dnp_signaling_rejected_total{event="answer"}');
    s.emit('answer', { type: 'answer', sdp: 'x'.repeat(70_000) });
    await waitFor('the answer rejection', async () => (await metricValue(srv.url, 'dnp_signaling_rejected_total{event="answer"}')) === before + 1);
    expect(s.connected).toBe(true);
    const gone = new Promise<string>((resolve) => s.once('disconnect', (r) => resolve(r)));
    s.emit('answer', { type: 'answer', sdp: 'x'.repeat(82 * 1024) });
    expect(await gone).toBe('transport close');
    s.close();
  });
});

describe('sessions under limits', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(join(tmp, 'avatars'), {
      maxSessions: 1,
      connectTimeoutMs: 4000, // long enough for a real handshake on a loaded machine
      idleTimeoutMs: 3000,
      maxDrivingHz: 20,
      keyframeMinIntervalMs: 1000,
      joinsPerMinute: 1000,
    });
  }, 60_000);
  afterAll(async () => {
    await srv?.close();
  });
  const noSessions = (): Promise<void> => waitFor('no sessions', () => srv.server.sessions.size === 0, 30_000);

  it('a caller that joins but never answers frees its slot after the connect timeout (code connect-timeout)', async () => {
    const s = await connect(srv.url);
    try {
      const errors: SessionError[] = [];
      s.on('session-error', (e: unknown) => errors.push(parseSessionError(e)));
      expect((await ask(s, 'a')).ok).toBe(true);
      const other = await connect(srv.url);
      expect(await ask(other, 'a')).toMatchObject({ ok: false, code: 'server-full' });
      await waitFor('the connect timeout', () => errors.length > 0, 15_000);
      expect(errors[0]).toMatchObject({ code: 'connect-timeout' });
      expect(srv.server.sessions.size).toBe(0);
      expect(await metricValue(srv.url, 'dnp_sessions_ended_total{reason="connect-timeout"}')).toBe(1);
      expect((await ask(other, 'a')).ok).toBe(true); // the slot is free again
      other.close();
    } finally {
      s.close();
    }
    await noSessions();
  });

  it('refuses a second join on one socket while the first is being set up (code busy)', async () => {
    const s = await connect(srv.url);
    try {
      const [first, second] = await Promise.all([ask(s, 'a'), ask(s, 'a')]);
      expect(first.ok).toBe(true);
      expect(second).toMatchObject({ ok: false, code: 'busy' });
    } finally {
      s.close();
    }
    await noSessions();
  });

  it('drops driving frames over the per-session rate and counts them', async () => {
    const client = await RtcClient.connect({ url: srv.url, avatar: 'a' });
    try {
      const rate = (): Promise<number> => metricValue(srv.url, 'dnp_driving_frames_rejected_total{reason="rate"}');
      const accepted = (): Promise<number> => metricValue(srv.url, 'dnp_driving_frames_received_total');
      const before = await rate();
      const receivedBefore = await accepted();
      const t0 = performance.now();
      for (let i = 0; i < 400; i++) client.send(frame(i + 1)); // a burst far over 20/s
      // the channel is unreliable (no retransmits): count what arrived, once the counts stop moving
      let last = -1;
      for (let i = 0; i < 50; i++) {
        await sleep(200);
        const now = (await rate()) + (await accepted());
        if (now === last) break;
        last = now;
      }
      const elapsedS = (performance.now() - t0) / 1000;
      const dropped = (await rate()) - before;
      const received = (await accepted()) - receivedBefore;
      expect(received).toBeGreaterThanOrEqual(10);
      expect(received).toBeLessThanOrEqual(20 + Math.ceil(20 * elapsedS) + 1); // the 1 s burst + the refill meanwhile
      expect(dropped).toBeGreaterThanOrEqual(30);
      expect(received + dropped).toBeLessThanOrEqual(400);
    } finally {
      await client.close();
    }
    await noSessions();
  });

  it('throttles PLI-triggered keyframes to one per window, with one deferred keyframe for the rest', async () => {
    const client = await RtcClient.connect({ url: srv.url, avatar: 'a' });
    let seq = 1;
    const feeder = setInterval(() => client.send(frame(seq++)), 100); // stays under the rate and is not idle
    try {
      await waitFor('the first frames', () => client.stats.framesDecoded >= 3, 30_000);
      const honoured = (): Promise<number> => metricValue(srv.url, 'dnp_keyframe_requests_total{outcome="honoured"}');
      const throttled = (): Promise<number> => metricValue(srv.url, 'dnp_keyframe_requests_total{outcome="throttled"}');
      const keyframes = (): Promise<number> => metricValue(srv.url, 'dnp_keyframes_sent_total');
      await sleep(1100); // out of any window from start-up
      const h0 = await honoured();
      const t0 = await throttled();
      const k0 = await keyframes();
      for (let i = 0; i < 5; i++) {
        await client.requestKeyframe();
        await sleep(20);
      }
      await waitFor('the PLIs to arrive', async () => (await honoured()) - h0 + ((await throttled()) - t0) >= 5, 3000);
      expect((await honoured()) - h0).toBe(1);
      expect((await throttled()) - t0).toBe(4);
      expect((await keyframes()) - k0).toBe(1);
      await sleep(1200); // the window ends: one deferred keyframe covers the 4 throttled requests
      expect((await honoured()) - h0).toBe(2);
      expect((await keyframes()) - k0).toBe(2);
    } finally {
      clearInterval(feeder);
      await client.close();
    }
    await noSessions();
  });

  it('ends a connected session that sends no driving frames (code idle) and frees the slot', async () => {
    const client = await RtcClient.connect({ url: srv.url, avatar: 'a' });
    try {
      await waitFor('the idle timeout', () => client.sessionErrorCodes.length > 0, 15_000);
      expect(client.sessionErrorCodes).toEqual(['idle']);
      expect(client.sessionErrors[0]).toMatch(/no driving frames for 3 s/);
      await noSessions();
      expect(await metricValue(srv.url, 'dnp_sessions_ended_total{reason="idle"}')).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('the bench client reports a refused join with its code', async () => {
    const holder = await RtcClient.connect({ url: srv.url, avatar: 'a' });
    try {
      const err = await RtcClient.connect({ url: srv.url, avatar: 'a' }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(JoinRefusedError);
      expect((err as JoinRefusedError).code).toBe('server-full');
    } finally {
      await holder.close();
    }
    await noSessions();
  });
});

describe('sockets that connect but never join', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(join(tmp, 'avatars'), { maxSocketsPerAddress: 3, joinTimeoutMs: 1500 });
  });
  afterAll(async () => {
    await srv?.close();
  });

  const connectRefusal = (url: string): Promise<unknown> =>
    connect(url).then(
      (s) => {
        s.close();
        return null;
      },
      (e: unknown) => e,
    );

  it('caps open sockets per address at the handshake (too-many-sockets) and frees the slot on close', async () => {
    const open = [await connect(srv.url), await connect(srv.url), await connect(srv.url)];
    try {
      expect(await metricValue(srv.url, 'dnp_signaling_sockets')).toBe(3);
      const err = await connectRefusal(srv.url);
      expect(err).toBeInstanceOf(Error);
      expect((err as { data?: { code?: string } }).data?.code).toBe('too-many-sockets');
      expect(await metricValue(srv.url, 'dnp_signaling_sockets_refused_total')).toBe(1);
      open.pop()?.close();
      await waitFor('the slot to free', async () => (await metricValue(srv.url, 'dnp_signaling_sockets')) === 2);
      open.push(await connect(srv.url));
    } finally {
      for (const s of open) s.close();
    }
    await waitFor('all sockets closed', async () => (await metricValue(srv.url, 'dnp_signaling_sockets')) === 0);
  });

  it('disconnects a socket without a session after the join timeout (code join-timeout); a joined one stays until it leaves', async () => {
    const idle = await connect(srv.url);
    const joined = await connect(srv.url);
    const idleCodes: string[] = [];
    idle.on('session-error', (e: unknown) => idleCodes.push(parseSessionError(e).code));
    const joinedCodes: string[] = [];
    joined.on('session-error', (e: unknown) => joinedCodes.push(parseSessionError(e).code));
    try {
      const idleGone = new Promise<void>((resolve) => idle.once('disconnect', () => resolve()));
      expect((await ask(joined, 'a')).ok).toBe(true);
      await idleGone;
      expect(idleCodes).toEqual(['join-timeout']);
      expect(await metricValue(srv.url, 'dnp_signaling_join_timeouts_total')).toBe(1);
      await sleep(2000); // past the join timeout: the socket with a session is still there
      expect(joined.connected).toBe(true);
      const joinedGone = new Promise<void>((resolve) => joined.once('disconnect', () => resolve()));
      joined.emit('leave');
      await joinedGone; // no session again: the timer runs anew
      expect(joinedCodes).toEqual(['join-timeout']);
      expect(await metricValue(srv.url, 'dnp_signaling_join_timeouts_total')).toBe(2);
      await waitFor('all sockets closed', async () => (await metricValue(srv.url, 'dnp_signaling_sockets')) === 0);
      await waitFor('no sessions', async () => (await metricValue(srv.url, 'dnp_sessions')) === 0);
    } finally {
      idle.close();
      joined.close();
    }
  });
});
