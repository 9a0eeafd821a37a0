/**
 * WHEP viewers (server/src/whep/): werift viewers watch a real MediaTap (test pattern through the real encoder +
 * RTP muxer, real Opus from the speech WAV) registered in a real DnpServer; 10 viewers share the one encode;
 * bad requests are refused with the right status.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signJoinToken } from '../server/src/access/join-token.js';
import { encodeOpusClip } from './support/opus-clip.js';
import { PatternTap } from './support/pattern-tap.js';
import { metricValue, startTestServer, type TestServer } from './support/server.js';
import { WhepClient } from './support/whep-client.js';

const SPEECH = join(import.meta.dirname, '..', '..', 'shared', 'data', 'speech-english-16k.wav');

describe('WHEP', () => {
  let dir: string;
  let ts: TestServer;
  let tap: PatternTap;
  let endpoint: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnp-whep-'));
    ts = await startTestServer(dir);
    const opus = await encodeOpusClip(SPEECH, 4);
    tap = new PatternTap({ id: 'presenter', opus, encodeCounter: ts.server.metrics.streamEncodes });
    ts.server.taps.register({ room: 'stage', participant: 'presenter', avatar: 'default', tap });
    endpoint = `${ts.url}/whep/stage/presenter`;
  }, 30_000);

  afterAll(async () => {
    tap?.close();
    await ts?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a werift viewer receives decodable video and Opus; DELETE ends it', async () => {
    const v = await WhepClient.connect({ url: endpoint });
    try {
      await v.until(() => v.framesDecoded >= 10 && v.opusSamples >= 48_000 * 0.4, 20_000, 'video and audio');
      const pic = v.pictures[v.pictures.length - 1];
      expect(pic?.width).toBe(320);
      expect(pic?.height).toBe(240);
      expect(v.opusPackets).toBeGreaterThan(10);
      expect(await metricValue(ts.url, 'dnp_whep_viewers')).toBe(1);
      expect(v.resource).toMatch(/\/whep\/stage\/presenter\/[0-9a-f-]{36}$/);
      // no trickle: PATCH is refused
      const patch = await fetch(v.resource as string, { method: 'PATCH', headers: { 'content-type': 'application/trickle-ice-sdpfrag' }, body: 'a=end-of-candidates\r\n' });
      expect(patch.status).toBe(405);
    } finally {
      expect(await v.stop()).toBe(200);
    }
    expect(await metricValue(ts.url, 'dnp_whep_viewers')).toBe(0);
    expect(tap.subscribers.rtp).toBe(0);
    const again = await fetch(v.resource as string, { method: 'DELETE' });
    expect(again.status).toBe(404);
  }, 40_000);

  it('10 viewers share one encode', async () => {
    const viewers: WhepClient[] = [];
    try {
      for (let i = 0; i < 10; i++) viewers.push(await WhepClient.connect({ url: endpoint }));
      await Promise.all(viewers.map((v) => v.until(() => v.framesDecoded >= 5, 60_000, 'first frames')));
      expect(await metricValue(ts.url, 'dnp_whep_viewers')).toBe(10);
      const e0 = await metricValue(ts.url, 'dnp_stream_encodes_total{stream="presenter"}');
      const f0 = viewers.map((v) => v.framesDecoded);
      await Promise.all(viewers.map((v, i) => v.until(() => v.framesDecoded >= (f0[i] as number) + 25, 60_000, '25 more frames')));
      const e1 = await metricValue(ts.url, 'dnp_stream_encodes_total{stream="presenter"}');
      const got = viewers.map((v, i) => v.framesDecoded - (f0[i] as number));
      const total = got.reduce((a, b) => a + b, 0);
      // Every viewer decoded >= 25 new pictures, 10 viewers >= 250 in all, from fewer encodes than one viewer's
      // pictures plus what was in flight: N viewers do not cost N encodes.
      expect(total).toBeGreaterThanOrEqual(250);
      expect(e1 - e0).toBeLessThan(Math.max(...got) * 1.5 + 10);
      expect(e1 - e0).toBeLessThan(total / 5);
      expect(tap.subscribers.rtp).toBe(10);
      expect(await metricValue(ts.url, 'dnp_encoders{codec="vp8"}')).toBe(0); // no per-viewer encoder opened
    } finally {
      await Promise.all(viewers.map((v) => v.stop()));
    }
    expect(tap.subscribers.rtp).toBe(0);
  }, 150_000);

  it('refuses bad requests: malformed SDP 400, wrong type 415, unknown participant 404, oversized 413, GET 405, foreign origin 403', async () => {
    const post = (url: string, body: string, headers: Record<string, string> = { 'content-type': 'application/sdp' }): Promise<Response> => fetch(url, { method: 'POST', headers, body });
    const malformed = await post(endpoint, 'hello, this is no SDP');
    expect(malformed.status).toBe(400);
    expect(await malformed.text()).toMatch(/malformed SDP/);
    expect((await post(endpoint, 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n')).status).toBe(400); // no ICE credentials
    expect((await post(endpoint, 'v=0\r\n', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post(`${ts.url}/whep/stage/nobody`, 'v=0\r\n')).status).toBe(404);
    expect((await post(`${ts.url}/whep/nowhere/presenter`, 'v=0\r\n')).status).toBe(404);
    expect((await post(`${ts.url}/whep/${'x'.repeat(300)}/presenter`, 'v=0\r\n')).status).toBe(404);
    expect((await post(endpoint, `v=0\r\n${'a=x\r\n'.repeat(10_000)}`)).status).toBe(413);
    expect((await fetch(endpoint)).status).toBe(405);
    expect((await post(endpoint, 'v=0\r\n', { 'content-type': 'application/sdp', origin: 'https://evil.example' })).status).toBe(403);
    // an offer that only sends video cannot watch
    const sendonly = 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n';
    expect((await post(endpoint, sendonly)).status).toBe(400);
    expect(await metricValue(ts.url, 'dnp_whep_viewers')).toBe(0);
  }, 30_000);

  it('with join tokens, a viewer needs a Bearer token scoped to the avatar', async () => {
    const secret = 's'.repeat(40);
    const tts = await startTestServer(dir, { tokenSecret: secret });
    tts.server.taps.register({ room: 'stage', participant: 'presenter', avatar: 'default', tap });
    const url = `${tts.url}/whep/stage/presenter`;
    try {
      const exp = Math.floor(Date.now() / 1000) + 600;
      const none = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: 'v=0\r\n' });
      expect(none.status).toBe(401);
      const other = signJoinToken({ avatar: 'someone-else', role: 'caller', exp }, secret);
      const wrong = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: `Bearer ${other}` }, body: 'v=0\r\n' });
      expect(wrong.status).toBe(403);
      const v = await WhepClient.connect({ url, token: signJoinToken({ avatar: 'default', role: 'caller', exp }, secret) });
      try {
        await v.until(() => v.framesDecoded >= 3, 20_000, 'video');
      } finally {
        expect(await v.stop()).toBe(200);
      }
    } finally {
      await tts.close();
    }
  }, 40_000);
});
