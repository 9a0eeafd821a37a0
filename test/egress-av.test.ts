/**
 * RTMP and MP4 egress (H.264 + AAC through node-av): an MP4 recording of a real MediaTap (test pattern + speech)
 * decodes with node-av with both tracks and the right duration; RTMP into an FFmpeg RTMP listener on 127.0.0.1
 * (node-av Demuxer with listen=1) decodes too, and an egress started before the listener exists retries until
 * it connects.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../server/src/log.js';
import { EncodePool } from '../server/src/media/encode-pool.js';
import { Mp4Recorder } from '../server/src/egress/mp4-recorder.js';
import { AV_ENCODE_DEFAULTS, checkRtmpUrl, RtmpEgress } from '../server/src/egress/rtmp-egress.js';
import { decodeMedia } from './support/media-file.js';
import { encodeOpusClip } from './support/opus-clip.js';
import { PatternTap } from './support/pattern-tap.js';
import { until } from './support/whep-client.js';

const SPEECH = join(import.meta.dirname, '..', '..', 'shared', 'data', 'speech-english-16k.wav');
const log = createLogger('silent');
const ENC = { ...AV_ENCODE_DEFAULTS, videoBitrate: 400_000 };

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('RTMP and MP4 egress', () => {
  let dir: string;
  let tap: PatternTap;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnp-egress-'));
    tap = new PatternTap({ id: 'presenter', opus: (await encodeOpusClip(SPEECH, 8)).slice(150) }); // speech starts at ~3 s
  }, 30_000);

  afterAll(() => {
    tap?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['on this thread', 0],
    ['in an encode worker', 1],
  ])('records a valid MP4 (video encoded %s): H.264 + AAC, the duration of what was written, speech in the audio', async (_where, workers) => {
    const path = join(dir, `rec-${workers}.mp4`);
    const pool = workers > 0 ? new EncodePool({ workers, log }) : null;
    const rec = new Mp4Recorder('rec', tap, { ...ENC, path, encodePool: pool }, log);
    await rec.start();
    expect(rec.state).toBe('live');
    await until(() => (rec.writerStats?.pictures ?? 0) >= 75, 20_000, '3 s of pictures');
    await rec.stop();
    expect(rec.state).toBe('stopped');
    const w = rec.writerStats;
    if (!w) throw new Error('no writer stats');
    expect(statSync(path).size).toBeGreaterThanOrEqual(rec.bytes); // every packet counted is in the file
    const m = await decodeMedia(path);
    expect(m.videoCodec).toBe('h264');
    expect(m.audioCodec).toBe('aac');
    expect([m.width, m.height]).toEqual([320, 240]);
    expect(m.videoFrames).toBe(w.pictures);
    expect(w.picturesDropped).toBeLessThanOrEqual(w.pictures / 10); // a picture is dropped only while the last one still encodes
    const frameS = 1 / tap.video.fps;
    // the pictures' time span as written, within a frame
    expect(Math.abs(m.lastVideoS - m.firstVideoS - (w.lastVideoMs - w.firstVideoMs) / 1000)).toBeLessThanOrEqual(frameS + 1e-3);
    expect(m.keyframes).toBeGreaterThanOrEqual(2); // one every 2 s
    const videoS = m.lastVideoS - m.firstVideoS + frameS;
    expect(Math.abs(m.audioSamples / m.audioRate - videoS)).toBeLessThan(0.35);
    expect(m.audioPeak).toBeGreaterThan(0.05); // speech, not the silence filler (digital zero)
    await rec.stop(); // idempotent
    if (pool) {
      expect(pool.live).toMatchObject({ workers: 1, streams: 0, failures: 0 }); // the recorder's encoder went with it
      await pool.close();
    }
  }, 60_000);

  it('a recording into a folder that does not exist stops with the error (no retry for files)', async () => {
    const rec = new Mp4Recorder('bad', tap, { ...ENC, path: join(dir, 'missing', 'x.mp4') }, log);
    await rec.start();
    expect(rec.state).toBe('stopped');
    expect(rec.lastError).toMatch(/open .*x\.mp4/);
    expect(rec.reconnects).toBe(0);
  });

  it('RTMP: retries until the listener is up, then the listener decodes H.264 + AAC', async () => {
    expect(() => checkRtmpUrl('http://example.com/live')).toThrow(/rtmp/);
    const port = await freePort();
    const url = `rtmp://127.0.0.1:${port}/live/test`;
    const egress = new RtmpEgress('rtmp1', tap, { ...ENC, url, backoff: { baseMs: 200, maxMs: 400, maxAttempts: 0 } }, log);
    try {
      await egress.start();
      expect(egress.state).toBe('retrying'); // nothing listens yet
      const received = decodeMedia(url, { options: { listen: '1', timeout: '20' }, maxVideoFrames: 50 });
      await until(() => egress.state === 'live', 20_000, 'live');
      expect(egress.reconnects).toBeGreaterThanOrEqual(1);
      const m = await received;
      expect(m.videoCodec).toBe('h264');
      expect(m.audioCodec).toBe('aac');
      expect(m.videoFrames).toBeGreaterThanOrEqual(50);
      expect([m.width, m.height]).toEqual([320, 240]);
      expect(m.audioSamples).toBeGreaterThan(48_000);
      expect(egress.bytes).toBeGreaterThan(10_000);
      // the listener went away: the egress notices (write error) and retries
      await until(() => egress.state === 'retrying' || egress.state === 'connecting', 20_000, 'retrying after the listener left');
    } finally {
      await egress.stop();
    }
    expect(egress.state).toBe('stopped');
    expect(tap.subscribers.pictures).toBe(0);
  }, 90_000);
});
