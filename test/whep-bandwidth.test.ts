/**
 * Bandwidth policy end to end: a WHEP viewer (werift) sends real RTCP over its connection — a REMB, then receiver
 * reports with 30 % loss, then clean ones — and the shared encode's bitrate follows (TapBandwidth →
 * BitrateController → VideoEncoder.setBitrate re-opening the encoder), visible in /metrics.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReceiverEstimatedMaxBitrate, RtcpPayloadSpecificFeedback, RtcpReceiverInfo, RtcpRrPacket, type RtcpPacket } from 'werift';
import { PatternTap } from './support/pattern-tap.js';
import { metricValue, startTestServer, type TestServer } from './support/server.js';
import { until, WhepClient } from './support/whep-client.js';

describe('bandwidth policy over WHEP', () => {
  let dir: string;
  let ts: TestServer;
  let tap: PatternTap;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnp-bw-'));
    ts = await startTestServer(dir);
    tap = new PatternTap({ id: 'presenter', bitrate: 800_000 });
    ts.server.taps.register({ room: 'stage', participant: 'presenter', avatar: 'default', tap });
  });

  afterAll(async () => {
    tap?.close();
    await ts?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('REMB caps the bitrate; heavy loss lowers it further; the encoder is re-opened each time', async () => {
    const v = await WhepClient.connect({ url: `${ts.url}/whep/stage/presenter` });
    const send = (p: RtcpPacket): void => void v.pc.getTransceivers()[0]?.dtlsTransport.sendRtcp([p]);
    const gauge = (): Promise<number> => metricValue(ts.url, 'dnp_stream_bitrate_bps{stream="presenter"}');
    let timer: NodeJS.Timeout | null = null;
    try {
      await v.until(() => v.framesDecoded >= 5 && v.videoSsrc !== 0, 20_000, 'video');
      expect(await gauge()).toBe(800_000);
      const media = v.videoSsrc;
      timer = setInterval(() => send(new RtcpPayloadSpecificFeedback({ feedback: new ReceiverEstimatedMaxBitrate({ senderSsrc: 1, mediaSsrc: 0, uniqueID: 'REMB', ssrcNum: 1, brExp: 1, brMantissa: 150_000, ssrcFeedbacks: [media] }) })), 300);
      await until(() => tap.videoBitrate() === 300_000 && tap.bitrateChanges >= 1, 10_000, 'the REMB cap'); // re-opened at the next picture
      expect(await gauge()).toBe(300_000);
      expect(tap.bitrateChanges).toBe(1);
      clearInterval(timer);
      timer = setInterval(() => send(new RtcpRrPacket({ ssrc: 1, reports: [new RtcpReceiverInfo({ ssrc: media, fractionLost: 77, packetsLost: 10, highestSequence: 0, jitter: 0, lsr: 0, dlsr: 0 })] })), 300);
      await until(() => tap.videoBitrate() < 250_000 && tap.bitrateChanges >= 2, 15_000, 'a lower bitrate after loss');
      expect(await metricValue(ts.url, 'dnp_stream_bitrate_changes_total{stream="presenter",direction="down"}')).toBeGreaterThanOrEqual(2);
      expect(tap.bitrateChanges).toBeGreaterThanOrEqual(2);
      const frames = v.framesDecoded;
      await v.until(() => v.framesDecoded >= frames + 10, 10_000, 'video keeps coming after the re-open');
    } finally {
      if (timer) clearInterval(timer);
      await v.stop();
    }
  }, 60_000);
});
