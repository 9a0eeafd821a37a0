/**
 * Viewers and recording of a real room presenter: a werift caller joins a call room alone with an UNTRAINED
 * avatar (a transport test) and sends recorded driving frames and Opus from the speech WAV; three WHEP viewers
 * watch /whep/ROOM/PARTICIPANT and decode its avatar video and voice from the one shared encode (the publisher's
 * dnp_stream_encodes_total does not grow with viewers); the server's --record makes a valid MP4 of it,
 * finalised when the presenter leaves.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapTrackerFace } from '../shared/src/tracker-mapping.js';
import { encodeDrivingFrame } from '../shared/src/wire.js';
import { EGRESS_CONFIG_DEFAULTS } from '../server/src/egress/egress-manager.js';
import { decodeMedia } from './support/media-file.js';
import { encodeOpusClip } from './support/opus-clip.js';
import { RoomClient } from './support/room-client.js';
import { metricTotal, startTestServer, type TestServer } from './support/server.js';
import { makeUntrainedAvatar } from './support/test-avatar.js';
import { waitFor } from './support/wait.js';
import { until, WhepClient } from './support/whep-client.js';

const DATA = join(import.meta.dirname, '..', '..', 'shared', 'data');
const AVATAR_ID = 'untrained128';

describe('WHEP viewers and recording of a room presenter', () => {
  let tmp: string;
  let recordDir: string;
  let srv: TestServer;
  let presenter: RoomClient | null = null;
  let talking: NodeJS.Timeout | null = null;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-whep-room-'));
    recordDir = join(tmp, 'rec');
    await makeUntrainedAvatar(join(tmp, 'avatars', AVATAR_ID), { size: 128, seed: 2 });
    srv = await startTestServer(join(tmp, 'avatars'), { egress: { ...EGRESS_CONFIG_DEFAULTS, recordDir, source: { room: 'stage', participant: '*' }, encode: { ...EGRESS_CONFIG_DEFAULTS.encode, videoBitrate: 300_000 } } });
  }, 180_000);

  afterAll(async () => {
    if (talking) clearInterval(talking);
    await presenter?.close();
    await srv?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('three viewers decode the presenter from one encode; the recording is valid', async () => {
    mkdirSync(recordDir, { recursive: true });
    const ref = JSON.parse(readFileSync(join(DATA, 'portrait-man-talking.tracker-reference.json'), 'utf8')) as { frames: { faces: number; blendshapes: number[]; matrix: number[] }[] };
    const driving = ref.frames.filter((f) => f.faces > 0).map((f) => mapTrackerFace({ blendshapes: f.blendshapes, matrix: f.matrix }));
    const opus = (await encodeOpusClip(join(DATA, 'speech-english-16k.wav'), 8)).slice(150); // speech starts at ~3 s
    const p = await RoomClient.join({ url: srv.url, room: 'stage', avatar: AVATAR_ID, name: 'presenter' });
    presenter = p;
    let tick = 0;
    talking = setInterval(() => {
      p.sendOpus(opus[tick % opus.length] as Buffer, 960 * tick);
      if (tick % 2 === 0) {
        const v = driving[tick % driving.length];
        if (v) p.sendDriving(encodeDrivingFrame({ seq: tick + 1, captureMs: Math.floor(performance.now()), faceFound: true, pose: v.pose, gaze: v.gaze, blendshapes: v.blendshapes }));
      }
      tick++;
    }, 20);
    const viewers: WhepClient[] = [];
    try {
      for (let i = 0; i < 3; i++) viewers.push(await WhepClient.connect({ url: `${srv.url}/whep/stage/${p.participantId}` }));
      await Promise.all(viewers.map((v) => v.until(() => v.framesDecoded >= 5 && v.opusSamples > 0, 60_000, 'avatar video and voice')));
      expect(viewers[0]?.pictures[0]?.width).toBe(128);
      const e0 = await metricTotal(srv.url, 'dnp_stream_encodes_total');
      const f0 = viewers.map((v) => v.framesDecoded);
      await Promise.all(viewers.map((v, i) => v.until(() => v.framesDecoded >= (f0[i] as number) + 20, 60_000, '20 more frames')));
      const e1 = await metricTotal(srv.url, 'dnp_stream_encodes_total');
      const most = Math.max(...viewers.map((v, i) => v.framesDecoded - (f0[i] as number)));
      expect(e1 - e0).toBeLessThan(most * 1.5 + 10); // one encode serves every viewer (and the recording)
    } finally {
      await Promise.all(viewers.map((v) => v.stop()));
    }
    clearInterval(talking);
    talking = null;
    await p.close(); // the presenter leaves: the recording is finalised
    presenter = null;
    await until(() => (srv.server.egress?.size ?? 1) === 0, 20_000, 'the recording to finish');
    const files = readdirSync(recordDir);
    expect(files).toHaveLength(1);
    const m = await decodeMedia(join(recordDir, files[0] as string));
    expect([m.videoCodec, m.audioCodec]).toEqual(['h264', 'aac']);
    expect([m.width, m.height]).toEqual([128, 128]);
    expect(m.videoFrames).toBeGreaterThan(20);
    expect(m.audioPeak).toBeGreaterThan(0.05); // the presenter's voice (the gap filler is digital silence)
  }, 180_000);

  it("an encode worker that crashes does not end a room stream: the publisher takes a fresh encoder and the viewer's video goes on", async () => {
    const pool = srv.server.encodePool;
    if (!pool) throw new Error('the server has no encode pool');
    const p = await RoomClient.join({ url: srv.url, room: 'green', avatar: AVATAR_ID, name: 'solo' });
    presenter = p;
    let seq = 1;
    talking = setInterval(() => p.sendDriving(encodeDrivingFrame({ seq: seq++, captureMs: Math.floor(performance.now()), faceFound: true, pose: new Float32Array(6), gaze: new Float32Array(2), blendshapes: new Float32Array(52).fill((seq % 20) / 20) })), 40);
    const viewer = await WhepClient.connect({ url: `${srv.url}/whep/green/${p.participantId}` });
    try {
      await viewer.until(() => viewer.framesDecoded >= 5, 60_000, 'the first frames');
      const failures0 = await metricTotal(srv.url, 'dnp_encode_worker_failures_total');
      pool.testFault('crash'); // the worker dies at its next encode
      await waitFor('the worker to fail', async () => (await metricTotal(srv.url, 'dnp_encode_worker_failures_total')) > failures0, 30_000);
      const n = viewer.framesDecoded;
      await viewer.until(() => viewer.framesDecoded >= n + 10, 60_000, '10 frames after the crash');
      expect(await metricTotal(srv.url, 'dnp_encoders')).toBe(1); // replaced, not added
    } finally {
      await viewer.stop();
      clearInterval(talking);
      talking = null;
      await p.close();
      presenter = null;
    }
  }, 120_000);
});
