/**
 * Call rooms refuse what they must, with codes, and leave nothing behind: an unknown room (--rooms), malformed
 * and oversized names, an unknown avatar, joining twice on one connection, answers without a room or for no
 * peer, leaving and disconnecting in the middle of the negotiation (the caller's own and a feed), the join rate
 * per address, and the room options' validation.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRoomJoinReply, parseRoomOffer, type RoomJoinReply, type RoomOffer } from '../shared/src/room-signaling.js';
import { resolveServeOptions } from '../server/src/cli/serve-options.js';
import { RoomClient, until } from './support/room-client.js';
import { metricValue, startTestServer, type TestServer } from './support/server.js';
import { makeUntrainedAvatar } from './support/test-avatar.js';

const AVATAR_ID = 'untrained256';

describe('call rooms: bad input', () => {
  let tmp: string;
  let srv: TestServer;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-rooms-bad-'));
    await makeUntrainedAvatar(join(tmp, 'avatars', AVATAR_ID), { size: 256, seed: 2 });
    srv = await startTestServer(join(tmp, 'avatars'), { rooms: ['lobby', 'pair'], roomSize: 2 });
  });

  afterAll(async () => {
    for (const s of sockets) s.disconnect();
    await srv?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** Untyped on purpose: these tests send payloads the event maps (shared/src/signaling.ts) would not let through. */
  async function socket(): Promise<Socket> {
    const s = io(srv.url, { transports: ['websocket'], reconnection: false });
    sockets.push(s);
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('connect_error', reject);
    });
    return s;
  }

  const roomJoin = async (s: Socket, payload: unknown): Promise<RoomJoinReply> => parseRoomJoinReply(await s.timeout(15_000).emitWithAck('room-join', payload));

  async function settled(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const open = (await metricValue(srv.url, 'dnp_peers')) + (await metricValue(srv.url, 'dnp_room_participants')) + (await metricValue(srv.url, 'dnp_encoders{codec="vp8"}'));
      if (open === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('peers, participants or encoders left open');
  }

  it('refuses bad joins with their codes', async () => {
    const s = await socket();
    const cases: [unknown, string, RegExp][] = [
      [{ room: 'elsewhere', avatar: AVATAR_ID }, 'unknown-room', /unknown room "elsewhere"/],
      [{ room: 'x'.repeat(65), avatar: AVATAR_ID }, 'bad-request', /room-join\.room/],
      [{ room: 'a/b', avatar: AVATAR_ID }, 'bad-request', /room-join\.room must be/],
      [{ room: '', avatar: AVATAR_ID }, 'bad-request', /room-join\.room/],
      [{ room: 'lobby' }, 'bad-request', /room-join\.avatar/],
      [{ room: 'lobby', avatar: AVATAR_ID, selfView: 'yes' }, 'bad-request', /room-join\.selfView/],
      [{ room: 'lobby', avatar: AVATAR_ID, name: 'x'.repeat(41) }, 'bad-request', /room-join\.name/],
      [{ room: 'lobby', avatar: AVATAR_ID, codec: 'av1' }, 'bad-request', /room-join\.codec/],
      ['lobby', 'bad-request', /room-join/],
      [{ room: 'lobby', avatar: 'nobody' }, 'unknown-avatar', /unknown avatar "nobody"/],
    ];
    for (const [payload, code, text] of cases) {
      const r = await roomJoin(s, payload);
      expect(r, JSON.stringify(payload).slice(0, 80)).toMatchObject({ ok: false, code });
      if (!r.ok) expect(r.error).toMatch(text);
    }
    expect(await metricValue(srv.url, 'dnp_room_joins_refused_total{code="bad-request"}')).toBe(8);
    expect(await metricValue(srv.url, 'dnp_room_joins_refused_total{code="unknown-room"}')).toBe(1);
    // answers and candidates without a room, or malformed
    const before = await metricValue(srv.url, 'dnp_signaling_rejected_total{event="room-answer"}');
    s.emit('room-answer', { peer: 'abc', sdp: 'v=0' });
    s.emit('room-answer', { peer: '../x', sdp: 'v=0' });
    s.emit('room-ice', { peer: 'abc', candidate: { candidate: 'x'.repeat(5000) } });
    for (let i = 0; i < 50 && (await metricValue(srv.url, 'dnp_signaling_rejected_total{event="room-answer"}')) < before + 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await metricValue(srv.url, 'dnp_signaling_rejected_total{event="room-answer"}')).toBe(before + 2);
    expect(await metricValue(srv.url, 'dnp_signaling_rejected_total{event="room-ice"}')).toBe(1);
    await settled();
  });

  it('refuses a second join on one connection (already-joined), and leaving mid-negotiation leaves nothing', { timeout: 30_000 }, async () => {
    const s = await socket();
    const offers: RoomOffer[] = [];
    s.on('room-offer', (o: unknown) => offers.push(parseRoomOffer(o)));
    const first = await roomJoin(s, { room: 'lobby', avatar: AVATAR_ID });
    expect(first.ok).toBe(true);
    expect(await roomJoin(s, { room: 'pair', avatar: AVATAR_ID })).toMatchObject({ ok: false, code: 'already-joined' });
    await until(() => offers.length === 1, 10_000, 'the offer');
    // never answered: leave in the middle of the negotiation
    s.emit('room-leave');
    await settled();
    // the same connection may join again
    const again = await roomJoin(s, { room: 'lobby', avatar: AVATAR_ID });
    expect(again.ok).toBe(true);
    await until(() => offers.length === 2, 10_000, 'the second offer');
    s.emit('room-answer', { peer: 'not-a-peer-of-mine', sdp: 'v=0' });
    // disconnecting mid-negotiation cleans up too
    s.disconnect();
    await settled();
  });

  it('a participant who leaves while the others are still negotiating its feed is removed cleanly', { timeout: 40_000 }, async () => {
    const a = await RoomClient.join({ url: srv.url, room: 'pair', avatar: AVATAR_ID, name: 'a' });
    try {
      const s = await socket();
      const offers: RoomOffer[] = [];
      s.on('room-offer', (o: unknown) => offers.push(parseRoomOffer(o)));
      const r = await roomJoin(s, { room: 'pair', avatar: AVATAR_ID });
      expect(r.ok).toBe(true);
      // the room holds 2
      const third = await socket();
      expect(await roomJoin(third, { room: 'pair', avatar: AVATAR_ID })).toMatchObject({ ok: false, code: 'room-full' });
      await until(() => offers.length === 2 && a.joined.length === 1, 10_000, 'offers to the newcomer, and the announcement to a');
      s.emit('room-leave');
      const id = r.ok ? r.participantId : '';
      await a.until(() => a.left.includes(id), 5000, 'participant-left');
      for (let i = 0; i < 100 && (await metricValue(srv.url, 'dnp_peers')) !== 1; i++) await new Promise((res) => setTimeout(res, 50));
      expect(await metricValue(srv.url, 'dnp_peers')).toBe(1); // a's own peer
      expect(await metricValue(srv.url, 'dnp_room_participants')).toBe(1);
    } finally {
      await a.close();
    }
    await settled();
  });

  it('limits room joins per address (--join-rate)', { timeout: 30_000 }, async () => {
    const limited = await startTestServer(join(tmp, 'avatars'), { joinsPerMinute: 2 });
    try {
      const s = io(limited.url, { transports: ['websocket'], reconnection: false });
      sockets.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('connect', () => resolve());
        s.once('connect_error', reject);
      });
      // two refused for another reason still take a token each; the third is over the rate
      expect(await roomJoin(s, { room: 'a b', avatar: AVATAR_ID })).toMatchObject({ ok: false, code: 'bad-request' });
      expect(await roomJoin(s, { room: 'a b', avatar: AVATAR_ID })).toMatchObject({ ok: false, code: 'bad-request' });
      expect(await roomJoin(s, { room: 'lobby', avatar: AVATAR_ID })).toMatchObject({ ok: false, code: 'rate-limited' });
      expect(await metricValue(limited.url, 'dnp_joins_rate_limited_total')).toBe(1);
      s.disconnect();
    } finally {
      await limited.close();
    }
  });

  it('validates --rooms and --room-size', () => {
    expect(resolveServeOptions(['--rooms', 'a,b,a'], {}).rooms).toEqual(['a', 'b']);
    expect(resolveServeOptions([], { DNP_ROOM_SIZE: '6' }).roomSize).toBe(6);
    expect(resolveServeOptions([], {}).rooms).toBeNull();
    expect(() => resolveServeOptions(['--rooms', 'bad name'], {})).toThrow(/--rooms: "bad name" is not a room name/);
    expect(() => resolveServeOptions(['--room-size', '1'], {})).toThrow(/--room-size/);
  });
});
