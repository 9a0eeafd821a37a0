/**
 * Units of the call rooms: the tap's arrival clock (late packets keep their spacing), RTP unwrapping, the room
 * protocol's parsers, and the page's per-tile stats (A/V offset from estimatedPlayoutTimestamp).
 */
import { describe, expect, it } from 'vitest';
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
  });
});
