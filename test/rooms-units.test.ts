/**
 * Units of the call rooms: the tap's arrival clock (late packets keep their spacing), RTP unwrapping, the room
 * protocol's parsers, the page's per-tile stats (A/V offset from estimatedPlayoutTimestamp) and its lip sync (the
 * voice delay it sets from the measured offset).
 */
import { describe, expect, it } from 'vitest';
import { LipSync, MAX_TARGET_MS, type DelayableReceiver } from '../client/src/call-lip-sync.js';
import { readTileStats, tileStatsLine } from '../client/src/stats/call-stats.js';
import { parseRoomAnswer, parseRoomJoinRequest, parseRoomOffer } from '../shared/src/room-signaling.js';
import { ArrivalClock, RtpUnwrapper } from '../server/src/stream/arrival-clock.js';

describe('ArrivalClock', () => {
  it('maps sender time with the smallest transit seen: late arrivals keep their spacing', () => {
    const c = new ArrivalClock();
    expect(c.map(1000, 50)).toBe(50); // first: transit -950
    expect(c.map(1020, 400)).toBe(70); // 330 ms late (a busy server): still 20 ms after
    expect(c.map(1040, 80)).toBe(80); // on time again
    expect(c.map(1060, 95)).toBe(95); // 5 ms earlier than any before: the offset moves
    expect(c.map(1080, 115)).toBe(115);
  });

  it('starts over when the sender clock jumps', () => {
    const c = new ArrivalClock(2000);
    c.map(1000, 50);
    expect(c.map(900_000, 5000)).toBe(5000);
  });
});

describe('RtpUnwrapper', () => {
  it('unwraps 32-bit timestamps across the wrap and backwards', () => {
    const u = new RtpUnwrapper();
    expect(u.unwrap(2 ** 32 - 960)).toBe(0);
    expect(u.unwrap(0)).toBe(960);
    expect(u.unwrap(960)).toBe(1920);
    expect(u.unwrap(0)).toBe(960);
  });
});

describe('room protocol parsers', () => {
  it('fills defaults and rejects what is not allowed', () => {
    expect(parseRoomJoinRequest({ room: 'a.b-c_d~1', avatar: 'x' })).toEqual({ room: 'a.b-c_d~1', avatar: 'x', codec: 'vp8', selfView: false, name: 'guest' });
    expect(() => parseRoomJoinRequest({ room: 'a b', avatar: 'x' })).toThrow(/room-join\.room/);
    expect(() => parseRoomJoinRequest({ room: 'a', avatar: 'x', name: 'bad\u0007name' })).toThrow(/control characters/);
    expect(() => parseRoomAnswer({ peer: 'x y', sdp: 'v=0' })).toThrow(/peer id/);
    expect(() => parseRoomAnswer({ peer: 'abc', sdp: 'x'.repeat(70_000) })).toThrow(/room-answer\.sdp/);
    expect(parseRoomOffer({ peer: 'abc', participant: null, sdp: 'v=0' })).toEqual({ peer: 'abc', participant: null, sdp: 'v=0' });
  });
});

describe('call tile stats', () => {
  const snapshot = (t: number, frames: number, bytes: number, audioPlayout: number, videoPlayout: number): Record<string, unknown>[] => [
    { id: 'T', type: 'transport', timestamp: t, bytesReceived: bytes, bytesSent: 0 },
    { id: 'V', type: 'inbound-rtp', kind: 'video', timestamp: t, framesDecoded: frames, bytesReceived: bytes - 1000, frameWidth: 256, frameHeight: 256, estimatedPlayoutTimestamp: videoPlayout, jitterBufferDelay: 2, jitterBufferEmittedCount: 40 },
    { id: 'A', type: 'inbound-rtp', kind: 'audio', timestamp: t, packetsReceived: 50, bytesReceived: 1000, estimatedPlayoutTimestamp: audioPlayout, jitterBufferDelay: 1500, jitterBufferEmittedCount: 30_000 },
  ];

  it('reads fps, bit rate, voice packets and the A/V offset', () => {
    const first = readTileStats(snapshot(1000, 10, 10_000, 5020, 5000), null);
    expect(first.stats.avOffsetMs).toBe(20);
    const next = readTileStats(snapshot(2000, 35, 20_000, 6000, 6010), first);
    expect(next.stats.fps).toBe(25);
    expect(next.stats.downlinkKbps).toBe(80);
    expect(next.stats.avOffsetMs).toBe(-10);
    expect(next.stats.audioPacketsReceived).toBe(50);
    expect(next.stats.videoJitterBufferMs).toBe(50);
    expect(next.stats.audioJitterBufferMs).toBe(50);
    expect(tileStatsLine(next.stats)).toBe('25 fps · 80 kbit/s · voice −10 ms');
  });

  it('has no offset without both playout estimates', () => {
    const s = readTileStats([{ id: 'V', type: 'inbound-rtp', kind: 'video', framesDecoded: 1 }], null);
    expect(s.stats.avOffsetMs).toBeNull();
    expect(s.stats.voiceLagMs).toBeNull();
  });

  it("reads the voice's and the face's lag on the page's clock and the recent voice jitter buffer", () => {
    const ntp = 2_208_988_800_000; // estimatedPlayoutTimestamp is NTP time (ms since 1900)
    const now = 1_800_000_000_000;
    const first = readTileStats(snapshot(1000, 10, 10_000, ntp + now - 150, ntp + now - 100), null, now);
    expect(first.stats.voiceLagMs).toBe(150);
    expect(first.stats.faceLagMs).toBe(100);
    expect(first.stats.audioJitterBufferRecentMs).toBeNull();
    const later = snapshot(2000, 35, 20_000, 0, 0);
    const audio = later[2] as Record<string, unknown>;
    audio.jitterBufferDelay = 1500 + 100 * 0.2; // 100 more samples at 200 ms each
    audio.jitterBufferEmittedCount = 30_100;
    const video = later[1] as Record<string, unknown>;
    video.jitterBufferDelay = 2 + 10 * 0.05; // 10 more frames at 50 ms
    video.jitterBufferEmittedCount = 50;
    expect(readTileStats(later, first).stats.audioJitterBufferRecentMs).toBeCloseTo(200, 6);
    expect(readTileStats(later, first).stats.videoJitterBufferRecentMs).toBeCloseTo(50, 6);
    expect(readTileStats(later, first).stats.voiceLagMs).toBeNull(); // no page clock given
  });
});

describe('lip sync (the voice delay from the A/V offset)', () => {
  const sample = (avOffsetMs: number | null, audioJitterBufferRecentMs: number | null = 30) => ({ avOffsetMs, audioJitterBufferRecentMs });

  it('steps on a steady gap: three offsets in a row on one side, within 80 ms, by their median', () => {
    const rx: DelayableReceiver = { jitterBufferTarget: null };
    const sync = new LipSync(rx);
    expect(sync.update(sample(200))).toBeNull();
    expect(sync.update(sample(900))).toBeNull(); // one late frame: not steady
    expect(sync.update(sample(180))).toBeNull();
    expect(sync.update(sample(170))).toBeNull();
    expect(sync.update(sample(220))).toBe(210); // 180, 170, 220: median 180, + 30 ms of voice buffer
    expect(rx.jitterBufferTarget).toBe(210);
    // the next step only after three new samples, all outside ±40 ms on one side
    for (const o of [60, -20, 80, 30, 90]) expect(sync.update(sample(o, 210))).toBeNull();
    // a stall: big offsets on one side, but not steady
    for (const o of [300, 900, 500, 1200]) expect(sync.update(sample(o, 210))).toBeNull();
    expect(sync.steps).toBe(1);
  });

  it('the voice behind: takes back only the voice delay it added, never below 0', () => {
    const rx: DelayableReceiver = { jitterBufferTarget: null };
    const sync = new LipSync(rx);
    for (const o of [-150, -150, -150]) expect(sync.update(sample(o, 30))).toBeNull(); // nothing added: Chrome's
    for (const o of [100, 100, 100]) sync.update(sample(o, 20));
    expect(sync.targetMs).toBe(120);
    for (const o of [-50, -60]) expect(sync.update(sample(o, 125))).toBeNull();
    expect(sync.update(sample(-55, 125))).toBe(65);
    for (const o of [-150, -150]) sync.update(sample(o, 70));
    expect(sync.update(sample(-150, 70))).toBe(0);
    expect(rx.jitterBufferTarget).toBe(0);
  });

  it('drops a target under a voice buffer the browser holds for its own reasons', () => {
    const sync = new LipSync({ jitterBufferTarget: null });
    for (const o of [100, 100, 100]) sync.update(sample(o, 20));
    // the voice buffer at 300 ms (jitter), far above the 120 ms set: the target does nothing, it goes
    for (const o of [-80, -80]) sync.update(sample(o, 300));
    expect(sync.update(sample(-80, 300))).toBe(0);
  });

  it('ignores missing, non-finite and absurd offsets and clamps the target', () => {
    const rx: DelayableReceiver = { jitterBufferTarget: null };
    const sync = new LipSync(rx);
    for (const o of [null, Number.NaN, Number.POSITIVE_INFINITY, 60_000, -9_000]) expect(sync.update(sample(o))).toBeNull();
    expect(rx.jitterBufferTarget).toBeNull();
    for (const o of [4_500, 4_500]) sync.update(sample(o, Number.NaN));
    expect(sync.update(sample(4_500, Number.NaN))).toBe(MAX_TARGET_MS);
  });

  it('falls back to playoutDelayHint (seconds) and survives a refusing or missing receiver', () => {
    const old: DelayableReceiver = {};
    const a = new LipSync(old);
    for (const o of [100, 100]) a.update(sample(o, 20));
    expect(a.update(sample(100, 20))).toBe(120);
    expect(old.playoutDelayHint).toBe(0.12);
    const refusing = {
      get jitterBufferTarget(): number | null {
        return null;
      },
      set jitterBufferTarget(_v: number | null) {
        throw new RangeError('refused');
      },
    };
    const b = new LipSync(refusing);
    for (const o of [100, 100]) b.update(sample(o));
    expect(b.update(sample(100))).toBeNull();
    expect(b.targetMs).toBeNull();
    const c = new LipSync(null);
    for (const o of [100, 100]) c.update(sample(o));
    expect(c.update(sample(100))).toBeNull();
  });
});
