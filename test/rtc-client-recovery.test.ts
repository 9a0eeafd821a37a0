/**
 * The Node caller (server/src/bench/rtc-client.ts, used by the bench and the integration tests) recovers from
 * a lost video packet as a browser does: it stops decoding inter frames, sends a PLI, and resumes at the
 * keyframe the server sends back. Without this, a caller that lost one packet of the first keyframe decoded
 * nothing for the whole session (seen once in `dnp bench --callers 4`: one caller at 0 fps).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RtcClient, type ReceivedFrame } from '../server/src/bench/rtc-client.js';
import { makeUntrainedAvatar } from './support/test-avatar.js';
import { startTestServer, type TestServer } from './support/server.js';
import { waitFor } from './support/wait.js';

describe('rtc-client loss recovery', () => {
  let tmp: string;
  let srv: TestServer;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-loss-'));
    await makeUntrainedAvatar(join(tmp, 'avatars', 'a'), { size: 128, seed: 3 });
    // keepalive re-sends the picture every 60 ms, so frames flow without driving
    srv = await startTestServer(join(tmp, 'avatars'), { keepaliveMs: 60 });
  });

  afterAll(async () => {
    await srv?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('drops inter frames after a loss, asks for a keyframe and resumes on it', async () => {
    const client = await RtcClient.connect({ url: srv.url, avatar: 'a', codec: 'vp8' });
    try {
      const frames: ReceivedFrame[] = [];
      client.onFrame = (f) => frames.push(f);
      await waitFor('three decoded frames', () => frames.length >= 3, 10_000);
      expect(frames[0]?.key, 'the first decoded frame is a keyframe').toBe(true);
      const before = frames.length;
      const plisBefore = client.stats.keyframeRequests;
      client.testDropReceived(1);
      await waitFor('the loss to be noticed', () => client.stats.framesIncomplete > 0, 10_000);
      await waitFor('decoding to resume', () => frames.length > before + 3, 10_000);
      expect(client.stats.keyframeRequests).toBeGreaterThan(plisBefore);
      const after = frames.slice(before);
      expect(after[0]?.key, 'the first frame decoded after the loss is a keyframe').toBe(true);
      expect(after.slice(1).some((f) => !f.key), 'inter frames follow the keyframe').toBe(true);
    } finally {
      await client.close();
    }
  }, 40_000);
});
