/**
 * Bad input never takes the live server down: garbage and oversized data-channel messages, malformed
 * signaling, unknown avatars and bad avatar folders are rejected, counted in /metrics, and the session
 * and the server keep working. Real server, real WebRTC caller; the avatar is untrained (transport test).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLENDSHAPE_COUNT } from '../shared/src/blendshapes.js';
import { parseAckReply, parseJoinReply, parseSessionDescription, type AckReply, type ClientToServerEvents, type ServerToClientEvents } from '../shared/src/signaling.js';
import { encodeDrivingFrame, type DrivingFrame } from '../shared/src/wire.js';
import { RtcClient } from '../server/src/bench/rtc-client.js';
import { makeUntrainedAvatar, type TestAvatar } from './support/test-avatar.js';
import { metricValue, startTestServer, type TestServer } from './support/server.js';

const GOOD = 'good';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function frame(seq: number, yaw = 0): DrivingFrame {
  return {
    seq,
    captureMs: seq * 33,
    faceFound: true,
    pose: Float32Array.from([0, yaw, 0, 0, 0, -40]),
    gaze: new Float32Array(2),
    blendshapes: new Float32Array(BLENDSHAPE_COUNT),
  };
}

/** Writes an avatar folder `name` under `root` from `src` with an edited manifest (and optionally no model). */
function variant(root: string, src: TestAvatar, name: string, edit: (m: Record<string, unknown>) => void, model: 'copy' | 'none' | 'garbage' = 'copy'): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const m = JSON.parse(readFileSync(join(src.dir, 'avatar.json'), 'utf8')) as Record<string, unknown>;
  edit(m);
  writeFileSync(join(dir, 'avatar.json'), JSON.stringify(m));
  if (model === 'copy') copyFileSync(src.modelPath, join(dir, 'avatar.onnx'));
  if (model === 'garbage') writeFileSync(join(dir, 'avatar.onnx'), Buffer.from('this is not an onnx model'));
  return dir;
}

describe('live server under bad input (untrained avatar: transport test)', () => {
  let tmp: string;
  let root: string;
  let srv: TestServer;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-bad-'));
    root = join(tmp, 'avatars');
    const good = await makeUntrainedAvatar(join(root, GOOD), { size: 128 });
    // Bad avatar folders next to the good one.
    mkdirSync(join(root, 'broken-json'));
    writeFileSync(join(root, 'broken-json', 'avatar.json'), '{"format": "dnp-avatar", ');
    copyFileSync(good.modelPath, join(root, 'broken-json', 'avatar.onnx'));
    variant(root, good, 'missing-onnx', () => undefined, 'none');
    variant(root, good, 'garbage-onnx', () => undefined, 'garbage');
    // Manifest says 256x256 but the model renders 128x128: caught by the warm-up render.
    variant(root, good, 'wrong-size', (m) => {
      m.width = 256;
      m.height = 256;
      (m.model as { outputs: unknown[] }).outputs = [{ name: 'rgb', dtype: 'float32', shape: ['batch', 3, 256, 256] }];
    });
    variant(root, good, 'wrong-input-name', (m) => {
      (m.model as { inputs: unknown[] }).inputs = [{ name: 'x', dtype: 'float32', shape: ['batch', 60] }];
    });
    variant(root, good, 'bad-std', (m) => {
      ((m.conditioning as { std: number[] }).std)[4] = -1;
    });
    // A symbolic link to an avatar folder is an avatar too; a dangling link is ignored.
    symlinkSync(good.dir, join(root, 'linked'));
    symlinkSync(join(tmp, 'nowhere'), join(root, 'dangling'));
    srv = await startTestServer(root);
  });

  afterAll(async () => {
    await srv?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('skips each bad avatar folder with an error naming the file and the problem, and serves the good ones', async () => {
    const list = (await (await fetch(`${srv.url}/avatars`)).json()) as Array<{ id: string }>;
    expect(list.map((a) => a.id)).toEqual([GOOD, 'linked']);
    expect(await metricValue(srv.url, 'dnp_avatar_load_errors_total')).toBe(6);
    const errors = srv.server.avatars.errors;
    const byDir = (name: string): string => errors.find((e) => e.dir.endsWith(`/${name}`))?.error ?? '(not reported)';
    expect(byDir('broken-json')).toMatch(/broken-json\/avatar\.json: not valid JSON/);
    expect(byDir('missing-onnx')).toMatch(/missing-onnx\/avatar\.onnx: missing/);
    expect(byDir('garbage-onnx')).toMatch(/garbage-onnx\/avatar\.onnx: cannot load the ONNX model/);
    expect(byDir('wrong-size')).toMatch(/wrong-size\/avatar\.onnx: .*\[1, 3, 128, 128\], expected (float32 )?\[1, 3, 256, 256\]/);
    expect(byDir('wrong-input-name')).toMatch(/wrong-input-name\/avatar\.onnx: model inputs are \[cond\], manifest expects \["x"\]/);
    expect(byDir('bad-std')).toMatch(/bad-std\/avatar\.json: conditioning\.std\[4\]: must be > 0/);
    // …and each was logged at error level.
    const logged = srv.logs.filter((l) => l.level === 50 && typeof l.msg === 'string' && l.msg.startsWith('avatar skipped'));
    expect(logged.length).toBe(6);
  });

  it('rejects and counts garbage, oversized and text data-channel messages; the session keeps streaming', async () => {
    const client = await RtcClient.connect({ url: srv.url, avatar: GOOD });
    try {
      const seen = new Set<number>();
      client.onReport = (r) => seen.add(r.seq);
      const rejected = async (reason: string): Promise<number> => metricValue(srv.url, `dnp_driving_frames_rejected_total{reason="${reason}"}`);
      const before = { malformed: await rejected('malformed'), oversized: await rejected('oversized'), text: await rejected('text') };

      client.send(encodeDrivingFrame(frame(1)));
      const good = encodeDrivingFrame(frame(2));
      const badVersion = good.slice();
      badVersion[0] = 9;
      const badFlags = good.slice();
      badFlags[1] = 0xff;
      const badAngle = good.slice();
      new DataView(badAngle.buffer).setInt16(10, 32000, true);
      const garbage = Uint8Array.from({ length: 78 }, (_, i) => (i * 37 + 11) & 0xff);
      for (const m of [badVersion, badFlags, badAngle, garbage, new Uint8Array(5), good.slice(0, 77)]) client.send(m);
      for (const size of [79, 1000, 4000]) client.send(new Uint8Array(size).fill(1));
      client.send('{"pose": [0, 0, 0]}');
      await sleep(300);
      // Valid frames after the garbage are still rendered and streamed.
      for (let s = 3; s <= 8; s++) {
        client.send(encodeDrivingFrame(frame(s, 0.05 * s)));
        await sleep(40);
      }
      for (let i = 0; i < 200 && !seen.has(8); i++) await sleep(20);
      expect(seen.has(8)).toBe(true);
      expect((await rejected('malformed')) - before.malformed).toBe(6);
      expect((await rejected('oversized')) - before.oversized).toBe(3);
      expect((await rejected('text')) - before.text).toBe(1);
      const s = srv.server.sessions.get(client.sessionId);
      expect(s?.isClosed).toBe(false);
      expect(s?.driving.toJSON().rejected).toBe(10);
      expect(await metricValue(srv.url, 'dnp_session_errors_total')).toBe(0);
    } finally {
      await client.close();
    }
  });

  describe('malformed signaling', () => {
    // untyped on purpose: these tests send events the event maps (shared/src/signaling.ts) would not let through
    let socket: Socket;

    beforeAll(async () => {
      socket = io(srv.url, { transports: ['websocket'], reconnection: false });
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', reject);
      });
    });

    afterAll(() => {
      socket?.disconnect();
    });

    /** The ack of a join or calibrate, validated (a successful join reads as { ok: true }). */
    const ask = async (event: string, payload: unknown): Promise<AckReply> => parseAckReply(await socket.timeout(5000).emitWithAck(event, payload), `${event} reply`);

    it('answers bad join requests with an error naming the problem, and counts them', async () => {
      const before = await metricValue(srv.url, 'dnp_signaling_rejected_total{event="join"}');
      expect(await ask('join', 'good')).toEqual({ ok: false, error: 'join: expected an object', code: 'bad-request' });
      expect(await ask('join', {})).toEqual({ ok: false, error: 'join.avatar: expected a string', code: 'bad-request' });
      expect(await ask('join', { avatar: 42 })).toEqual({ ok: false, error: 'join.avatar: expected a string', code: 'bad-request' });
      expect(await ask('join', { avatar: GOOD, codec: 'av1' })).toMatchObject({ error: expect.stringMatching(/^join\.codec: expected one of/) });
      expect(await ask('join', { avatar: 'x'.repeat(5000) })).toMatchObject({ error: expect.stringMatching(/^join\.avatar: longer than/) });
      expect(await ask('join', { avatar: 'nobody' })).toMatchObject({ code: 'unknown-avatar', error: expect.stringMatching(/unknown avatar "nobody"/) as unknown });
      expect(await ask('join', { avatar: 'wrong-size' })).toMatchObject({ error: expect.stringMatching(/unknown avatar "wrong-size"/) });
      expect((await metricValue(srv.url, 'dnp_signaling_rejected_total{event="join"}')) - before).toBe(7);
      expect(srv.server.sessions.size).toBe(0);
    });

    it('rejects answers, candidates and calibrations that are malformed or come without a session', async () => {
      const count = async (event: string): Promise<number> => metricValue(srv.url, `dnp_signaling_rejected_total{event="${event}"}`);
      const before = { answer: await count('answer'), ice: await count('ice'), calibrate: await count('calibrate') };
      socket.emit('answer', { type: 'answer', sdp: 'v=0\r\n' }); // no session yet
      socket.emit('answer', { type: 'offer', sdp: 'v=0' });
      socket.emit('answer', { type: 'answer', sdp: 'x'.repeat(70_000) }); // huge SDP (over the 64 KiB schema limit, under the 80 KiB message cap)
      socket.emit('answer', null);
      socket.emit('ice', { candidate: 7 });
      socket.emit('ice', { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: -1 });
      expect(await ask('calibrate', { neutral: { pose: [0, 0], gaze: [0, 0], blendshapes: [] } })).toMatchObject({ error: expect.stringMatching(/calibrate\.neutral\.pose: expected 6 items/) });
      expect(await ask('calibrate', { neutral: { pose: [0, 0, 0, 0, 0, 0], gaze: [0, 0], blendshapes: new Array(52).fill(0) } })).toMatchObject({ code: 'no-session', error: expect.stringMatching(/without a session/) as unknown });
      await sleep(200);
      expect((await count('answer')) - before.answer).toBe(4);
      expect((await count('ice')) - before.ice).toBe(2);
      expect((await count('calibrate')) - before.calibrate).toBe(2);
      expect(socket.connected).toBe(true);
    });

    it('still joins and offers on the same socket afterwards', async () => {
      const offer = new Promise<unknown>((resolve) => socket.once('offer', resolve));
      const reply = await ask('join', { avatar: GOOD, codec: 'vp8' });
      expect(reply.ok).toBe(true);
      const o = parseSessionDescription(await offer, 'offer');
      expect(o.sdp).toContain('m=video');
      expect(o.sdp).toContain('VP8/90000');
      expect(o.sdp).toContain('m=application');
      expect(srv.server.sessions.size).toBe(1);
      socket.emit('leave');
      for (let i = 0; i < 100 && srv.server.sessions.size > 0; i++) await sleep(20);
      expect(srv.server.sessions.size).toBe(0);
    });

    it('drops a socket that sends a message over the size limit, and keeps serving others', async () => {
      const big = io(srv.url, { transports: ['websocket'], reconnection: false });
      await new Promise<void>((resolve) => big.once('connect', () => resolve()));
      const gone = new Promise<string>((resolve) => big.once('disconnect', (reason) => resolve(reason)));
      big.emit('answer', { type: 'answer', sdp: 'x'.repeat(1_000_000) });
      expect(await gone).toBe('transport close');
      big.disconnect();
      expect((await fetch(`${srv.url}/healthz`)).status).toBe(200);
      expect(await ask('join', { avatar: 'nobody' })).toMatchObject({ ok: false });
    });
  });

  it('ends a session whose caller never completes the handshake (no leak)', async () => {
    const s: Socket<ServerToClientEvents, ClientToServerEvents> = io(srv.url, { transports: ['websocket'], reconnection: false });
    try {
      await new Promise<void>((resolve) => s.once('connect', () => resolve()));
      const reply = parseJoinReply(await s.timeout(5000).emitWithAck('join', { avatar: GOOD }));
      expect(reply.ok).toBe(true);
      expect(srv.server.sessions.size).toBe(1);
    } finally {
      s.disconnect();
    }
    for (let i = 0; i < 100 && srv.server.sessions.size > 0; i++) await sleep(20);
    expect(srv.server.sessions.size).toBe(0);
  });
});
