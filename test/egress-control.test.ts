/**
 * 'room-egress' control messages over socket.io from a real room participant (werift caller, untrained avatar):
 * start a recording of their own stream, list, stop it (a valid MP4 results); refused: a URL outside
 * --egress-allow, a malformed request, someone else's egress, and any request before joining a room.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRoomEgressReply, type RoomEgressReply } from '../shared/src/egress-signaling.js';
import type { ClientToServerEvents, ServerToClientEvents } from '../shared/src/signaling.js';
import { EGRESS_CONFIG_DEFAULTS } from '../server/src/egress/egress-manager.js';
import { decodeMedia } from './support/media-file.js';
import { RoomClient } from './support/room-client.js';
import { metricValue, startTestServer, type TestServer } from './support/server.js';
import { makeUntrainedAvatar } from './support/test-avatar.js';

const AVATAR_ID = 'untrained128';

describe('room-egress control messages', () => {
  let tmp: string;
  let recordDir: string;
  let srv: TestServer;
  const clients: RoomClient[] = [];

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-egress-control-'));
    recordDir = join(tmp, 'rec');
    mkdirSync(recordDir);
    await makeUntrainedAvatar(join(tmp, 'avatars', AVATAR_ID), { size: 128, seed: 3 });
    // --record without --egress-source filtering nothing automatically: source is a room nobody joins
    srv = await startTestServer(join(tmp, 'avatars'), { egress: { ...EGRESS_CONFIG_DEFAULTS, recordDir, source: { room: 'nobody-joins-this', participant: '*' }, allowedUrls: ['rtmp://127.0.0.1:1/allowed/'] } });
  }, 180_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** room-egress on the caller's connection; the request is `unknown` on purpose (bad requests are sent too), so it goes through the socket untyped. */
  const ask = async (c: RoomClient, req: unknown): Promise<RoomEgressReply> => {
    const untyped: Socket = c.socket;
    return parseRoomEgressReply(await untyped.timeout(10_000).emitWithAck('room-egress', req));
  };

  it('a participant records their own stream, lists and stops it; bad requests are refused', async () => {
    const a = await RoomClient.join({ url: srv.url, room: 'studio', avatar: AVATAR_ID, name: 'ann' });
    clients.push(a);
    const b = await RoomClient.join({ url: srv.url, room: 'studio', avatar: AVATAR_ID, name: 'bob' });
    clients.push(b);
    expect(await ask(a, { action: 'list' })).toEqual({ ok: true, egress: [] });

    const started = await ask(a, { action: 'start', kind: 'mp4' });
    if (!started.ok) throw new Error(started.error);
    expect(started.egress).toHaveLength(1);
    const id = started.egress[0]?.id as string;
    expect(started.egress[0]?.participant).toBe(a.participantId);

    const refused = async (req: unknown, code: string, msg: RegExp, who = a): Promise<void> => {
      const r = await ask(who, req);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.code).toBe(code);
        expect(r.error).toMatch(msg);
      }
    };
    await refused({ action: 'start', kind: 'rtmp', url: 'rtmp://evil.example/live/key' }, 'forbidden', /--egress-allow/);
    await refused({ action: 'start', kind: 'rtmp' }, 'bad-request', /url/);
    await refused({ action: 'start', kind: 'flv' }, 'bad-request', /kind/);
    await refused({ action: 'explode' }, 'bad-request', /action/);
    await refused('start', 'bad-request', /room-egress/);
    await refused({ action: 'stop', id }, 'bad-request', /no egress/, b); // not bob's
    expect(await metricValue(srv.url, 'dnp_signaling_rejected_total{event="room-egress"}')).toBe(6);

    await new Promise((r) => setTimeout(r, 1500));
    const listed = await ask(b, { action: 'list' });
    expect(listed.ok && listed.egress.map((e) => e.id)).toEqual([id]); // the room's outputs
    const stopped = await ask(a, { action: 'stop', id });
    expect(stopped).toEqual({ ok: true, egress: [] });
    const files = readdirSync(recordDir);
    expect(files).toHaveLength(1);
    const m = await decodeMedia(join(recordDir, files[0] as string));
    expect([m.videoCodec, m.audioCodec]).toEqual(['h264', 'aac']);
    expect(m.videoFrames).toBeGreaterThan(0);
  }, 90_000);

  it('before joining a room, room-egress is refused', async () => {
    const s: Socket<ServerToClientEvents, ClientToServerEvents> = io(srv.url, { transports: ['websocket'], reconnection: false });
    try {
      const r = parseRoomEgressReply(await s.timeout(10_000).emitWithAck('room-egress', { action: 'list' }));
      expect(r).toMatchObject({ ok: false, code: 'no-session' });
    } finally {
      s.close();
    }
  }, 30_000);
});
