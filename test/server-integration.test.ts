/**
 * Live server, end to end, with real components: a Node caller (werift + socket.io-client) drives a real
 * server on 127.0.0.1:0 with a recorded sequence of driving frames (MediaPipe output on a real video,
 * mapped with shared/src/tracker-mapping.ts), receives the video over WebRTC, depacketises and decodes it
 * (node-av), and compares the pictures with the avatar's own offline render (ORT directly) of the same
 * vector.
 *
 * The avatar is UNTRAINED (random smooth weights from `train export --untrained`): this is a transport
 * test — it checks that what the server streams is what the model renders for the vector sent, not that
 * the avatar looks like anyone.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONDITIONING_SIZE, flattenDrivingValues, type DrivingValues } from '../shared/src/driving-values.js';
import { retarget } from '../shared/src/retarget.js';
import { mapTrackerFace } from '../shared/src/tracker-mapping.js';
import { decodeDrivingFrame, encodeDrivingFrame, type DrivingFrame } from '../shared/src/wire.js';
import type { RenderReport } from '../shared/src/render-report.js';
import type { VideoCodecName } from '../shared/src/signaling.js';
import { RtcClient, type ReceivedFrame } from '../server/src/bench/rtc-client.js';
import { makeUntrainedAvatar, type TestAvatar } from './support/test-avatar.js';
import { metricValue, startTestServer, type TestServer } from './support/server.js';
import { OfflineRenderer, psnr, yuv420pToRgbFfmpeg } from './support/video-compare.js';

// the project reads its test data from ../shared/data beside the repository
const REFERENCE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'data', 'portrait-man-talking.tracker-reference.json');
const AVATAR_ID = 'untrained256';

interface RefFrame {
  faces: number;
  blendshapes: number[];
  matrix: number[];
}

function loadRecordedDriving(): DrivingValues[] {
  const json = JSON.parse(readFileSync(REFERENCE, 'utf8')) as { frames: RefFrame[] };
  return json.frames.filter((f) => f.faces > 0).map((f) => mapTrackerFace({ blendshapes: f.blendshapes, matrix: f.matrix }));
}

/** What the server will see for a frame: the values after wire quantisation. */
function quantised(f: DrivingFrame): DrivingValues {
  const r = decodeDrivingFrame(encodeDrivingFrame(f));
  if (!r.ok) throw new Error(r.error);
  return r.frame;
}

function flat(v: DrivingValues): Float32Array {
  return flattenDrivingValues(v, new Float32Array(CONDITIONING_SIZE));
}

/** Collects render reports and decoded frames of one client and matches them by RTP timestamp. */
class Receiver {
  readonly reports: RenderReport[] = [];
  private readonly tsBySeq = new Map<number, number[]>();
  private readonly frames = new Map<number, ReceivedFrame>();
  keyframes = 0;
  decoded = 0;

  constructor(readonly client: RtcClient) {
    client.onReport = (r) => {
      this.reports.push(r);
      const list = this.tsBySeq.get(r.seq) ?? [];
      list.push(r.rtpTimestamp);
      this.tsBySeq.set(r.seq, list);
    };
    client.onFrame = (f) => {
      this.decoded++;
      if (f.key) this.keyframes++;
      this.frames.set(f.rtpTimestamp, f);
      if (this.frames.size > 120) {
        const oldest = this.frames.keys().next().value;
        if (oldest !== undefined) this.frames.delete(oldest);
      }
    };
  }

  /** The most recent decoded frame, whatever it carries. */
  async latestFrame(timeoutMs = 8000): Promise<ReceivedFrame> {
    const until = performance.now() + timeoutMs;
    while (performance.now() < until) {
      const last = [...this.frames.values()].pop();
      if (last) return last;
      await sleep(10);
    }
    throw new Error(`no decoded frame within ${timeoutMs} ms`);
  }

  /** The most recent decoded frame that carries driving frame `seq`. */
  async frameFor(seq: number, timeoutMs = 8000): Promise<ReceivedFrame> {
    const until = performance.now() + timeoutMs;
    while (performance.now() < until) {
      const tss = this.tsBySeq.get(seq) ?? [];
      for (let i = tss.length - 1; i >= 0; i--) {
        const f = this.frames.get(tss[i] as number);
        if (f) return f;
      }
      await sleep(10);
    }
    throw new Error(`no decoded frame for driving seq ${seq} within ${timeoutMs} ms (${this.reports.length} reports, ${this.decoded} frames decoded)`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe('live server (untrained avatar: transport test)', () => {
  let tmp: string;
  let avatar: TestAvatar;
  let srv: TestServer;
  let offline: OfflineRenderer;
  let recorded: DrivingValues[];
  let seq = 0;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-int-'));
    avatar = await makeUntrainedAvatar(join(tmp, 'avatars', AVATAR_ID), { size: 256, seed: 1 });
    srv = await startTestServer(join(tmp, 'avatars'));
    offline = await OfflineRenderer.open(avatar.modelPath, avatar.manifest);
    recorded = loadRecordedDriving();
  });

  afterAll(async () => {
    await srv?.close();
    await offline?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  function drivingFrame(v: DrivingValues): DrivingFrame {
    seq++;
    return { seq, captureMs: Math.floor(performance.now()), faceFound: true, pose: v.pose, gaze: v.gaze, blendshapes: v.blendshapes };
  }

  /** Sends `v` `times` times at ~30 Hz (new seq each) and returns the last frame sent. */
  async function hold(client: RtcClient, v: DrivingValues, times: number): Promise<DrivingFrame> {
    let f = drivingFrame(v);
    for (let i = 0; i < times; i++) {
      if (i > 0) f = drivingFrame(v);
      client.send(encodeDrivingFrame(f));
      await sleep(33);
    }
    return f;
  }

  async function decodedRgb(rx: Receiver, s: number): Promise<Uint8Array> {
    const f = await rx.frameFor(s);
    expect([f.width, f.height]).toEqual([avatar.manifest.width, avatar.manifest.height]);
    return yuv420pToRgbFfmpeg(f.yuv, f.width, f.height);
  }

  it('lists the avatar and serves health, config and metrics', async () => {
    const list = (await (await fetch(`${srv.url}/avatars`)).json()) as unknown[];
    expect(list).toEqual([{ id: AVATAR_ID, name: avatar.manifest.name, width: 256, height: 256, fps: 25, driving: 'expression' }]);
    expect(await (await fetch(`${srv.url}/healthz`)).json()).toMatchObject({ ok: true, avatars: 1 });
    const config = (await (await fetch(`${srv.url}/config.json`)).json()) as { trackerModelUrl: string; iceServers: unknown[] };
    expect(config.iceServers).toEqual([]);
    expect(config.trackerModelUrl).toMatch(/^https:\/\/storage\.googleapis\.com\/.*face_landmarker\.task$/);
    expect((await fetch(`${srv.url}/models/face_landmarker.task`)).status).toBe(404);
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    for (const name of ['dnp_sessions', 'dnp_render_ms', 'dnp_encode_ms', 'dnp_frames_sent_total', 'dnp_driving_frames_received_total', 'dnp_driving_frames_rejected_total', 'dnp_bytes_up_total', 'dnp_bytes_down_total']) {
      expect(metrics).toContain(`# TYPE ${name} `);
    }
  });

  it('streams VP8 that matches the offline render of each recorded vector, and changes with it', async () => {
    const client = await RtcClient.connect({ url: srv.url, avatar: AVATAR_ID, codec: 'vp8' });
    try {
      const rx = new Receiver(client);
      // Before any driving frame the avatar's neutral face is shown, without render reports (no driving
      // frame is in it, so there is no latency to measure).
      const first = await rx.latestFrame();
      expect([first.width, first.height]).toEqual([avatar.manifest.width, avatar.manifest.height]);
      const neutral = yuv420pToRgbFfmpeg(first.yuv, first.width, first.height);
      expect(rx.reports).toEqual([]);
      const neutralRef = await offline.render(flat({ pose: Float32Array.from(avatar.manifest.neutral.pose), gaze: Float32Array.from(avatar.manifest.neutral.gaze), blendshapes: Float32Array.from(avatar.manifest.neutral.blendshapes) }));
      expect(psnr(neutral, neutralRef)).toBeGreaterThanOrEqual(30);

      // Play 90 recorded frames at ~30 Hz (3 s), like a caller talking.
      const sentBefore = await metricValue(srv.url, 'dnp_driving_frames_received_total');
      for (let i = 0; i < 90; i++) {
        client.send(encodeDrivingFrame(drivingFrame(recorded[i % recorded.length] as DrivingValues)));
        await sleep(33);
      }
      // Checkpoints: hold a recorded vector (as a still caller would), compare with the offline render.
      const checkpoints = [0, 60, 150, 230].map((i) => recorded[i % recorded.length] as DrivingValues);
      const decoded: Uint8Array[] = [];
      const refs: Uint8Array[] = [];
      for (const v of checkpoints) {
        const last = await hold(client, v, 8);
        const got = await decodedRgb(rx, last.seq);
        const ref = await offline.render(flat(quantised(last)));
        const p = psnr(got, ref);
        if (process.env.DNP_TEST_VERBOSE) process.stderr.write(`psnr seq ${last.seq}: ${p.toFixed(2)} dB\n`);
        expect(p, `PSNR of the streamed frame for seq ${last.seq} against the offline render`).toBeGreaterThanOrEqual(30);
        decoded.push(got);
        refs.push(ref);
      }
      // Different vectors give visibly different pictures (the stream follows the driving).
      const between = psnr(decoded[0] as Uint8Array, decoded[2] as Uint8Array);
      expect(between).toBeLessThan(psnr(decoded[0] as Uint8Array, refs[0] as Uint8Array) - 5);

      expect(rx.reports.length).toBeGreaterThan(40);
      expect(rx.reports.every((r) => r.renderMs >= 0 && r.encodeMs > 0)).toBe(true);
      expect(rx.keyframes).toBeGreaterThanOrEqual(1);
      const received = (await metricValue(srv.url, 'dnp_driving_frames_received_total')) - sentBefore;
      expect(received).toBeGreaterThanOrEqual(90 + 4 * 8 - 5); // loopback: next to nothing lost
      expect(await metricValue(srv.url, 'dnp_sessions')).toBe(1);
      expect(await metricValue(srv.url, 'dnp_frames_sent_total')).toBeGreaterThan(40);
      expect([client.sessionErrors, client.malformedEvents]).toEqual([[], []]);
    } finally {
      await client.close();
    }
    // Leaving ends the session.
    for (let i = 0; i < 100 && (await metricValue(srv.url, 'dnp_sessions')) !== 0; i++) await sleep(20);
    expect(await metricValue(srv.url, 'dnp_sessions')).toBe(0);
  });

  it('retargets onto the avatar neutral after calibration', async () => {
    const client = await RtcClient.connect({ url: srv.url, avatar: AVATAR_ID });
    try {
      const rx = new Receiver(client);
      const callerNeutral = recorded[10] as DrivingValues;
      expect(await client.calibrate(callerNeutral)).toEqual({ ok: true });
      const v = recorded[120] as DrivingValues;
      const last = await hold(client, v, 8);
      const m = avatar.manifest.neutral;
      const avatarNeutral = { pose: Float32Array.from(m.pose), gaze: Float32Array.from(m.gaze), blendshapes: Float32Array.from(m.blendshapes) };
      // The server received the calibration as JSON numbers (float64 → its Float32Array): same as here.
      const q = quantised(last);
      const expected = retarget(q, { pose: Float32Array.from(callerNeutral.pose), gaze: Float32Array.from(callerNeutral.gaze), blendshapes: Float32Array.from(callerNeutral.blendshapes) }, avatarNeutral, {
        pose: new Float32Array(6),
        gaze: new Float32Array(2),
        blendshapes: new Float32Array(52),
      });
      const got = await decodedRgb(rx, last.seq);
      expect(psnr(got, await offline.render(flat(expected)))).toBeGreaterThanOrEqual(30);
      // …and not the un-retargeted vector.
      expect(psnr(got, await offline.render(flat(q)))).toBeLessThan(30);
    } finally {
      await client.close();
    }
  });

  it('keeps the stream alive while the caller pauses, and answers a PLI with a keyframe', async () => {
    const client = await RtcClient.connect({ url: srv.url, avatar: AVATAR_ID });
    try {
      const rx = new Receiver(client);
      await hold(client, recorded[5] as DrivingValues, 3);
      await sleep(300);
      const before = rx.decoded;
      await sleep(1200); // no driving frames: keepalive re-sends (every 250 ms)
      expect(rx.decoded - before).toBeGreaterThanOrEqual(3);
      const keysBefore = rx.keyframes;
      await client.requestKeyframe();
      for (let i = 0; i < 100 && rx.keyframes === keysBefore; i++) await sleep(20);
      expect(rx.keyframes).toBeGreaterThan(keysBefore);
    } finally {
      await client.close();
    }
  });

  it('streams H.264 that matches the offline render too', async () => {
    const codec: VideoCodecName = 'h264';
    const client = await RtcClient.connect({ url: srv.url, avatar: AVATAR_ID, codec });
    try {
      const rx = new Receiver(client);
      const last = await hold(client, recorded[200] as DrivingValues, 8);
      const got = await decodedRgb(rx, last.seq);
      expect(psnr(got, await offline.render(flat(quantised(last))))).toBeGreaterThanOrEqual(30);
    } finally {
      await client.close();
    }
  });

  it.each([
    ['one render worker', 1],
    ['two render workers (frames of the two callers render in parallel)', 2],
  ])('serves several callers at once from %s', async (_what, renderWorkers) => {
    const server = renderWorkers === 1 ? srv : await startTestServer(join(tmp, 'avatars'), { renderWorkers });
    const a = await RtcClient.connect({ url: server.url, avatar: AVATAR_ID });
    const b = await RtcClient.connect({ url: server.url, avatar: AVATAR_ID });
    try {
      expect(await metricValue(server.url, `dnp_render_workers{avatar="${AVATAR_ID}"}`)).toBe(renderWorkers);
      const ra = new Receiver(a);
      const rb = new Receiver(b);
      expect(await metricValue(server.url, 'dnp_sessions')).toBe(2);
      const va = recorded[30] as DrivingValues;
      const vb = recorded[250] as DrivingValues;
      let fa = drivingFrame(va);
      let fb = drivingFrame(vb);
      for (let i = 0; i < 8; i++) {
        fa = drivingFrame(va);
        fb = drivingFrame(vb);
        a.send(encodeDrivingFrame(fa));
        b.send(encodeDrivingFrame(fb));
        await sleep(33);
      }
      expect(psnr(await decodedRgb(ra, fa.seq), await offline.render(flat(quantised(fa))))).toBeGreaterThanOrEqual(30);
      expect(psnr(await decodedRgb(rb, fb.seq), await offline.render(flat(quantised(fb))))).toBeGreaterThanOrEqual(30);
    } finally {
      await a.close();
      await b.close();
      if (server !== srv) await server.close();
    }
  });
});
