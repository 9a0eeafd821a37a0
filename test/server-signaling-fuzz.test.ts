/**
 * Fuzz test of the signaling handlers: a few thousand malformed and near-valid socket.io events (random JSON,
 * mutated joins, garbage SDP and ICE candidates that pass the schema and reach werift, unknown events, with and
 * without acks) on a socket that also holds a live session. The server must answer every ack with a code, keep
 * the socket, stay healthy, and still serve a real WebRTC caller afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, parseJoinReply } from '../shared/src/signaling.js';
import { RtcClient } from '../server/src/bench/rtc-client.js';
import { metricTotal, startTestServer, type TestServer } from './support/server.js';
import { makeUntrainedAvatar } from './support/test-avatar.js';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const r = rng(0xf022);
const pick = <T>(list: readonly T[]): T => list[Math.floor(r() * list.length)] as T;
const int = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));

function randomString(max: number): string {
  const alphabet = ['a', 'Z', '0', ' ', '\n', '\r\n', '=', ':', '"', '\\', '\u0000', 'é', '😀', '<', '%', '.', '-', 'v=0', 'm=video', 'candidate:'];
  let s = '';
  const n = int(0, max);
  while (s.length < n) s += pick(alphabet);
  return s;
}

function randomJson(depth = 0): unknown {
  const k = int(0, depth > 2 ? 5 : 8);
  switch (k) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return pick([0, -1, 1e308, -1e308, 0.5, NaN, Infinity, 2 ** 53, -0, 64, 65]);
    case 3:
      return randomString(40);
    case 4:
      return undefined;
    case 5:
      return randomString(int(0, 3000));
    case 6:
      return Array.from({ length: int(0, 6) }, () => randomJson(depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = int(0, 5); i > 0; i--) o[pick(['avatar', 'codec', 'type', 'sdp', 'candidate', 'sdpMid', 'sdpMLineIndex', 'neutral', 'pose', 'gaze', 'blendshapes', '__proto__', 'constructor', randomString(8)])] = randomJson(depth + 1);
      return o;
    }
  }
}

/** Near-valid payloads: the right shape with one part wrong, or valid-looking strings with garbage inside. */
function nearValid(event: string): unknown {
  switch (event) {
    case 'join':
      return { avatar: pick(['a', 'A', 'a ', '', '../a', 'nobody', randomString(10)]), codec: pick(['vp8', 'h264', 'VP8', 'av1', undefined, 3]) };
    case 'answer':
      return { type: pick(['answer', 'offer', 'pranswer', '']), sdp: pick(['v=0\r\n', `v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n${randomString(200)}`, randomString(500)]) };
    case 'ice':
      return { candidate: pick(['', `candidate:${randomString(30)}`, 'candidate:1 1 udp 2122260223 10.0.0.1 9 typ host', 'candidate:x 1 tcp 1 999.1.1.1 70000 typ relay']), sdpMid: pick(['0', '1', null, '', randomString(5)]), sdpMLineIndex: pick([0, 1, null, 64, 65, -1, 0.5]) };
    case 'calibrate': {
      const arr = (n: number): unknown[] => Array.from({ length: n }, () => (r() < 0.9 ? r() : pick([NaN, -1, 2, '0.5', null, 1e9])));
      return { neutral: { pose: arr(pick([6, 5, 7])), gaze: arr(pick([2, 1, 3])), blendshapes: arr(pick([52, 51, 0])) } };
    }
    default:
      return randomJson();
  }
}

describe('signaling fuzz', () => {
  let tmp: string;
  let srv: TestServer;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-sigfuzz-'));
    await makeUntrainedAvatar(join(tmp, 'avatars', 'a'), { size: 128 });
    srv = await startTestServer(join(tmp, 'avatars'), { joinsPerMinute: 100_000, maxSessions: 4 });
  }, 120_000);
  afterAll(async () => {
    await srv?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('3,000 malformed and near-valid events: every ack has a code, the socket and the server survive, a real caller still works', async () => {
    // untyped on purpose: the fuzzer sends events and payloads the event maps (shared/src/signaling.ts) would not let through
    const socket: Socket = io(srv.url, { transports: ['websocket'], reconnection: false, forceNew: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    let disconnected = false;
    socket.on('disconnect', () => (disconnected = true));
    try {
      // a live session on this socket, so that answers and candidates reach werift
      expect(parseJoinReply(await socket.timeout(10_000).emitWithAck('join', { avatar: 'a' })).ok).toBe(true);
      const events = ['join', 'answer', 'ice', 'calibrate', 'leave', 'offer', 'session-error', 'shutdown', '__proto__', 'toString', 'x', randomString(6)];
      const acks: Array<Promise<unknown>> = [];
      for (let i = 0; i < 3000; i++) {
        const event = pick(events);
        if (event === 'join' && r() < 0.7) continue; // joins replace the session: keep most events aimed at a live one
        const payload = r() < 0.5 ? nearValid(event) : randomJson();
        if (r() < 0.4) acks.push(socket.timeout(10_000).emitWithAck(event, payload).catch((e: unknown) => ({ timeout: String(e) })));
        else if (r() < 0.1) socket.emit(event); // no payload at all
        else socket.emit(event, payload, randomJson()); // an extra argument that is not an ack
        if (i % 200 === 0) await new Promise((res) => setTimeout(res, 5));
      }
      const replies = await Promise.all(acks);
      let answered = 0;
      for (const reply of replies) {
        if (typeof reply === 'object' && reply !== null && 'ok' in reply) {
          answered++;
          const o = reply as { ok: boolean; code?: unknown; error?: unknown };
          if (!o.ok) {
            expect(ERROR_CODES).toContain(o.code);
            expect(typeof o.error).toBe('string');
          }
        }
      }
      expect(answered).toBeGreaterThan(100); // join and calibrate always answer; other events have no ack
      expect(disconnected).toBe(false);
      expect(socket.connected).toBe(true);
      expect(await metricTotal(srv.url, 'dnp_signaling_rejected_total')).toBeGreaterThan(500);
      expect((await fetch(`${srv.url}/healthz`)).status).toBe(200);
    } finally {
      socket.close();
    }
    for (let i = 0; i < 200 && srv.server.sessions.size > 0; i++) await new Promise((res) => setTimeout(res, 25));
    expect(srv.server.sessions.size).toBe(0);
    // a real caller still gets video
    const client = await RtcClient.connect({ url: srv.url, avatar: 'a' });
    try {
      for (let i = 0; i < 200 && client.stats.framesDecoded < 3; i++) await new Promise((res) => setTimeout(res, 25));
      expect(client.stats.framesDecoded).toBeGreaterThanOrEqual(3);
    } finally {
      await client.close();
    }
  }, 180_000);
});
