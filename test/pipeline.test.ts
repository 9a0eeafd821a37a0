/**
 * The whole offline-to-live path on a real recording: `dnp prepare` on the first seconds of
 * portrait-man-talking.mp4 → `dnp train` (a few iterations: this checks the seams, not the quality) → the
 * avatar folder loads in a real server and streams video that follows the dataset's own tracked vectors.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAvatarManifest, type AvatarManifest } from '../shared/src/avatar-manifest.js';
import { parseDatasetManifest, type DatasetManifest } from '../shared/src/dataset-schema.js';
import { decodeDrivingFrame, encodeDrivingFrame } from '../shared/src/wire.js';
import { RtcClient, type ReceivedFrame } from '../server/src/bench/rtc-client.js';
import { DATA, MODEL, ROOT, ensureClientBuilt, readNpy, runPrepareCli } from './support/prepare-helpers.js';
import { startTestServer, type TestServer } from './support/server.js';
import { OfflineRenderer, psnr, yuv420pToRgbFfmpeg } from './support/video-compare.js';

const VIDEO = join(DATA, 'portrait-man-talking.mp4');

let tmp = '';
let dataset = '';
let avatarDir = '';
let ds: DatasetManifest;
let manifest: AvatarManifest;
let server: TestServer | null = null;
let offline: OfflineRenderer | null = null;

beforeAll(() => {
  ensureClientBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'dnp-pipeline-'));
  dataset = join(tmp, 'data', 'man');
  avatarDir = join(tmp, 'avatars', 'man');
});

afterAll(async () => {
  await offline?.close();
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('prepare → train → serve on a real recording', () => {
  it('prepares a dataset from the first 3 s of the video', async () => {
    const r = await runPrepareCli([VIDEO, '--out', dataset, '--max-seconds', '3', '--size', '256', '--tracker-model', MODEL]);
    expect(r.code, r.stderr).toBe(0);
    ds = parseDatasetManifest(JSON.parse(readFileSync(join(dataset, 'dataset.json'), 'utf8')));
    expect(ds.frameCount).toBe(90);
    expect(ds.split.test[1]).toBe(90);
  });

  it('trains an avatar on it and exports a manifest that names the dataset', () => {
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'bin', 'dnp.js'), 'train', '--data', dataset, '--out', avatarDir, '--iterations', '12', '--eval-every', '6', '--checkpoint-every', '12', '--no-progress'],
      { cwd: ROOT, encoding: 'utf8', timeout: 240_000 },
    );
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    manifest = parseAvatarManifest(JSON.parse(readFileSync(join(avatarDir, 'avatar.json'), 'utf8')));
    expect([manifest.width, manifest.height, manifest.fps]).toEqual([256, 256, ds.fps]);
    expect(manifest.driving).toBe('expression');
    const trained = manifest.training as { provenance?: string; dataset?: { manifestSha256?: string; sourceSha256?: string } };
    expect(trained.provenance).toBe('trained');
    expect(trained.dataset?.sourceSha256).toBe(ds.source.sha256);
    const dsHash = createHash('sha256').update(readFileSync(join(dataset, 'dataset.json'))).digest('hex');
    expect(trained.dataset?.manifestSha256).toBe(dsHash);
  });

  it('serves the trained avatar, and the stream follows the tracked vectors of the dataset', async () => {
    server = await startTestServer(join(tmp, 'avatars'));
    const list = (await (await fetch(`${server.url}/avatars`)).json()) as Array<{ id: string; width: number }>;
    expect(list.map((a) => a.id)).toEqual(['man']);

    const pose = readNpy(join(dataset, 'pose.npy')).data as Float32Array;
    const gaze = readNpy(join(dataset, 'gaze.npy')).data as Float32Array;
    const blend = readNpy(join(dataset, 'blendshapes.npy')).data as Float32Array;
    const row = (i: number) => ({ pose: pose.slice(i * 6, i * 6 + 6), gaze: gaze.slice(i * 2, i * 2 + 2), blendshapes: blend.slice(i * 52, i * 52 + 52) });

    offline = await OfflineRenderer.open(join(avatarDir, 'avatar.onnx'), manifest);
    const client = await RtcClient.connect({ url: server.url, avatar: 'man', codec: 'vp8' });
    try {
      const bySeq = new Map<number, number>();
      const frames = new Map<number, ReceivedFrame>();
      client.onReport = (r) => bySeq.set(r.seq, r.rtpTimestamp);
      client.onFrame = (f) => frames.set(f.rtpTimestamp, f);
      // Hold one tracked frame of the dataset (as a still caller would) and compare with the offline render.
      const i = 45;
      const values = row(i);
      let seq = 0;
      let got: ReceivedFrame | undefined;
      for (let n = 0; n < 150 && !got; n++) {
        client.send(encodeDrivingFrame({ seq: ++seq, captureMs: 0, faceFound: true, ...values }));
        await new Promise((r) => setTimeout(r, 40));
        for (let s = seq; s > Math.max(0, seq - 10) && !got; s--) {
          const ts = bySeq.get(s);
          if (ts !== undefined) got = frames.get(ts);
        }
      }
      expect(got, 'a decoded frame carrying the dataset vector').toBeDefined();
      const decoded = yuv420pToRgbFfmpeg(got!.yuv, got!.width, got!.height);
      // The wire quantises the vector; render the same quantised values offline.
      const sent = encodeDrivingFrame({ seq: 0, captureMs: 0, faceFound: true, ...values });
      const q = decodeDrivingFrame(sent);
      if (!q.ok) throw new Error(q.error);
      const cond = new Float32Array(60);
      cond.set(q.frame.pose, 0);
      cond.set(q.frame.gaze, 6);
      cond.set(q.frame.blendshapes, 8);
      const ref = await offline.render(cond);
      expect(psnr(decoded, ref)).toBeGreaterThanOrEqual(30);
    } finally {
      await client.close();
    }
  });
});
