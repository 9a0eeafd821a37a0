// The page's voice-mode pieces that run without a browser: audio counters and playout positions from getStats(),
// and the microphone's error texts.
import { describe, expect, it } from 'vitest';
import { microphoneErrorMessage } from '../client/src/messages.js';
import { readRtcCounters } from '../client/src/stats/rtc-counters.js';

describe('voice stats from getStats()', () => {
  it('reads the microphone sent, the relayed voice received and both playout positions', () => {
    const c = readRtcCounters([
      { id: 'o1', type: 'outbound-rtp', kind: 'audio', packetsSent: 150, timestamp: 1000 },
      { id: 'i1', type: 'inbound-rtp', kind: 'audio', packetsReceived: 140, estimatedPlayoutTimestamp: 3_900_000_120.5 },
      { id: 'i2', type: 'inbound-rtp', kind: 'video', framesDecoded: 70, estimatedPlayoutTimestamp: 3_900_000_100 },
    ]);
    expect(c.audioPacketsSent).toBe(150);
    expect(c.audioPacketsReceived).toBe(140);
    expect(c.audioPlayoutNtpMs - c.videoPlayoutNtpMs).toBeCloseTo(20.5, 3);
    expect(c.framesDecoded).toBe(70);
  });

  it('leaves the playout positions unknown (NaN) when the browser gives none (camera mode, before sender reports)', () => {
    const c = readRtcCounters([{ id: 'i2', type: 'inbound-rtp', kind: 'video', framesDecoded: 3 }]);
    expect(Number.isNaN(c.audioPlayoutNtpMs)).toBe(true);
    expect(Number.isNaN(c.videoPlayoutNtpMs)).toBe(true);
    expect(c.audioPacketsReceived).toBe(0);
  });
});

describe('microphone errors', () => {
  it('names the microphone, not the camera', () => {
    expect(microphoneErrorMessage({ name: 'NotAllowedError', message: 'x' })).toMatch(/^Microphone permission was denied/);
    expect(microphoneErrorMessage({ name: 'NotFoundError' })).toMatch(/No usable microphone/);
    expect(microphoneErrorMessage({ name: 'Weird', message: 'boom' })).toBe('The microphone could not be opened: boom.');
  });
});
