// The live page's pure modules (client/src): stats windows, latency matching, getStats counters,
// neutral calibration, the driving-frame sender, and the validators for what the server sends.
import { describe, expect, it } from 'vitest';
import { parseAvatarList } from '../client/src/avatars.js';
import { NeutralCalibrator } from '../client/src/calibration.js';
import { parseClientConfig } from '../client/src/config.js';
import { DrivingSender, type ChannelLike } from '../client/src/driving-sender.js';
import { cameraErrorMessage, connectionErrorMessage, trackerErrorMessage } from '../client/src/messages.js';
import { ServerRefusal } from '../client/src/replies.js';
import { parseAckReply, parseJoinReply, parseSessionError } from '../shared/src/signaling.js';
import { LatencyMatcher } from '../client/src/stats/latency-matcher.js';
import { formatKbps, formatMs } from '../client/src/stats/live-stats.js';
import { emptyCounters, ratesBetween, readRtcCounters } from '../client/src/stats/rtc-counters.js';
import { quantile, RateMeter, SampleWindow, summarize } from '../client/src/stats/window.js';
import { BLENDSHAPE_COUNT } from '../shared/src/blendshapes.js';
import { emptyDrivingValues, type DrivingValues } from '../shared/src/driving-values.js';
import { decodeDrivingFrame, DRIVING_FRAME_BYTES } from '../shared/src/wire.js';

function face(jaw: number, yaw = 0): DrivingValues {
  const v = emptyDrivingValues();
  v.pose.set([0.02, yaw, -0.01, -0.3, -0.8, -25.7]);
  v.gaze.set([0.05, -0.1]);
  v.blendshapes[25] = jaw;
  return v;
}

describe('stats windows', () => {
  it('quantile interpolates and summarize reports mean/median/p90', () => {
    expect(quantile([], 0.5)).toBeNaN();
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([10], 0.9)).toBe(10);
    const s = summarize([5, 1, 4, 2, 3, 6, 7, 8, 9, 10]);
    expect(s).toMatchObject({ count: 10, mean: 5.5, median: 5.5, min: 1, max: 10 });
    expect(s.p90).toBeCloseTo(9.1, 10);
    expect(summarize([]).count).toBe(0);
  });

  it('SampleWindow forgets samples older than the window and beyond the cap', () => {
    const w = new SampleWindow(1000, 3);
    w.add(0, 1);
    w.add(500, 2);
    w.add(900, 3);
    expect(w.values(900)).toEqual([1, 2, 3]);
    expect(w.values(1400)).toEqual([2, 3]);
    w.add(1400, 4);
    w.add(1450, 5);
    expect(w.values(1450)).toEqual([3, 4, 5]);
    expect(w.total).toBe(5);
    expect(w.summary(5000).count).toBe(0);
  });

  it('RateMeter reads a steady 25 Hz stream as 25 fps and 0 when it stops', () => {
    const r = new RateMeter(2000);
    for (let i = 0; i <= 100; i++) r.tick(i * 40);
    expect(r.rate(4000)).toBeCloseTo(25, 6);
    expect(r.total).toBe(101);
    expect(r.rate(10_000)).toBe(0);
  });
});

describe('LatencyMatcher', () => {
  it('matches report then presented frame, and presented frame then report', () => {
    const m = new LatencyMatcher();
    m.noteCapture(7, 1000);
    m.noteCapture(8, 1033);
    expect(m.noteReport({ seq: 7, rtpTimestamp: 90_000, renderMs: 5, encodeMs: 2 })).toBeNull();
    expect(m.notePresented(90_000, 1060)).toEqual({ seq: 7, rtpTimestamp: 90_000, latencyMs: 60, renderMs: 5, encodeMs: 2 });
    expect(m.notePresented(93_600, 1101)).toBeNull();
    expect(m.noteReport({ seq: 8, rtpTimestamp: 93_600, renderMs: 6, encodeMs: 3 })?.latencyMs).toBe(68);
    expect(m.counters()).toEqual({ reports: 2, presented: 2, matched: 2, unknownSeq: 0, inconsistent: 0 });
  });

  it('matches each RTP timestamp once and handles u32 wrap-around values', () => {
    const m = new LatencyMatcher();
    m.noteCapture(0xffffffff, 10);
    m.noteReport({ seq: 0xffffffff, rtpTimestamp: 0xfffffff0, renderMs: 1, encodeMs: 1 });
    expect(m.notePresented(0xfffffff0, 50)?.latencyMs).toBe(40);
    expect(m.notePresented(0xfffffff0, 60)).toBeNull();
  });

  it('counts reports whose driving frame is unknown, and forgets beyond its history', () => {
    const m = new LatencyMatcher(4);
    for (let s = 0; s < 10; s++) m.noteCapture(s, s * 10);
    m.noteReport({ seq: 1, rtpTimestamp: 1, renderMs: 0, encodeMs: 0 });
    expect(m.notePresented(1, 100)).toBeNull();
    expect(m.counters().unknownSeq).toBe(1);
    m.noteReport({ seq: 9, rtpTimestamp: 2, renderMs: 0, encodeMs: 0 });
    expect(m.notePresented(2, 130)?.latencyMs).toBe(40);
    for (let t = 100; t < 110; t++) m.notePresented(t, 0); // more presented frames than the history
    expect(m.noteReport({ seq: 9, rtpTimestamp: 100, renderMs: 0, encodeMs: 0 })).toBeNull();
  });
});

describe('LatencyMatcher consistency', () => {
  it('rejects a match that would show a frame before its driving frame was captured', () => {
    const m = new LatencyMatcher();
    m.noteCapture(3, 500);
    m.notePresented(7200, 440); // an earlier frame, shown before seq 3 existed
    expect(m.noteReport({ seq: 3, rtpTimestamp: 7200, renderMs: 1, encodeMs: 1 })).toBeNull();
    expect(m.counters()).toMatchObject({ matched: 0, inconsistent: 1 });
  });
});

describe('getStats counters', () => {
  const snapshot = (t: number, sent: number, recv: number, decoded: number) => [
    { id: 'T01', type: 'transport', timestamp: t, bytesSent: sent, bytesReceived: recv, selectedCandidatePairId: 'CP1' },
    { id: 'CP1', type: 'candidate-pair', timestamp: t, currentRoundTripTime: 0.002 },
    { id: 'CP2', type: 'candidate-pair', timestamp: t, currentRoundTripTime: 0.5 },
    { id: 'IT01V', type: 'inbound-rtp', kind: 'video', timestamp: t, bytesReceived: recv - 100, framesDecoded: decoded, framesReceived: decoded + 1, framesDropped: 2, codecId: 'C1', frameWidth: 256, frameHeight: 256, decoderImplementation: 'libvpx' },
    { id: 'IT01A', type: 'inbound-rtp', kind: 'audio', timestamp: t, bytesReceived: 1e6 },
    { id: 'C1', type: 'codec', mimeType: 'video/VP8' },
    { id: 'D1', type: 'data-channel', timestamp: t, messagesSent: decoded, bytesSent: decoded * 78, messagesReceived: 5 },
  ];

  it('reads the page counters from a stats report', () => {
    const c = readRtcCounters(snapshot(1000, 5000, 90_000, 100));
    expect(c).toMatchObject({ timestampMs: 1000, transportBytesSent: 5000, transportBytesReceived: 90_000, videoBytesReceived: 89_900, framesDecoded: 100, framesReceived: 101, framesDropped: 2, codec: 'video/VP8', frameWidth: 256, decoderImplementation: 'libvpx', dataMessagesSent: 100, dataBytesSent: 7800, dataMessagesReceived: 5 });
    expect(c.rttMs).toBeCloseTo(2, 6);
    expect(readRtcCounters([]).rttMs).toBeNaN();
  });

  it('computes kbit/s and fps between two snapshots', () => {
    const a = readRtcCounters(snapshot(1000, 5000, 90_000, 100));
    const b = readRtcCounters(snapshot(3000, 10_000, 340_000, 150));
    const r = ratesBetween(a, b);
    expect(r.uplinkKbps).toBeCloseTo(20, 6);
    expect(r.downlinkKbps).toBeCloseTo(1000, 6);
    expect(r.decodedFps).toBeCloseTo(25, 6);
    expect(ratesBetween(b, a)).toEqual({ uplinkKbps: 0, downlinkKbps: 0, videoKbps: 0, decodedFps: 0 });
    expect(ratesBetween(emptyCounters(), emptyCounters()).uplinkKbps).toBe(0);
  });

  it('formats for the panel', () => {
    expect(formatKbps(18.72)).toBe('18.7 kbit/s');
    expect(formatKbps(1520)).toBe('1.52 Mbit/s');
    expect(formatMs(summarize([40, 50, 60]))).toBe('50 ms (p90 58)');
    expect(formatMs(summarize([]))).toBe('–');
  });
});

describe('NeutralCalibrator', () => {
  it('averages ~1 s of face frames, skipping frames without a face', () => {
    const c = new NeutralCalibrator(0);
    expect(c.push(face(0.1), 0)).toEqual({ done: false, progress: 0 });
    expect(c.push(null, 33)).toMatchObject({ done: false });
    let step = c.push(face(0.3), 500);
    expect(step).toMatchObject({ done: false, progress: 0.5 });
    for (let t = 533; t < 1000; t += 33) c.push(face(0.2), t);
    step = c.push(face(0.2), 1000);
    if (!step.done || !step.ok) throw new Error('calibration should have finished');
    expect(step.missed).toBe(1);
    const frames = step.frames;
    expect(frames).toBe(2 + 15 + 1);
    expect(step.neutral.blendshapes[25]).toBeCloseTo((0.1 + 0.3 + 0.2 * (frames - 2)) / frames, 5);
    expect(step.neutral.pose[5]).toBeCloseTo(-25.7, 4);
    expect(step.neutral.blendshapes).toHaveLength(BLENDSHAPE_COUNT);
  });

  it('fails clearly when the face was not in view', () => {
    const c = new NeutralCalibrator(100, { durationMs: 500, minFrames: 5 });
    for (let t = 100; t < 600; t += 50) c.push(t % 200 === 0 ? face(0) : null, t);
    const step = c.push(null, 650);
    expect(step.done && !step.ok && step.error).toMatch(/only \d+ of \d+ camera frames had a face/);
  });

  it('keeps its own copy of the values', () => {
    const c = new NeutralCalibrator(0, { durationMs: 10, minFrames: 1 });
    const v = face(0.4);
    c.push(v, 0);
    v.blendshapes[25] = 1;
    const step = c.push(null, 20);
    expect(step.done && step.ok && step.neutral.blendshapes[25]).toBeCloseTo(0.4, 6);
  });
});

describe('DrivingSender', () => {
  class FakeChannel implements ChannelLike {
    readyState = 'open';
    bufferedAmount = 0;
    sent: Uint8Array[] = [];
    send(data: Uint8Array<ArrayBuffer>): void {
      this.sent.push(data);
    }
  }

  it('sends one wire frame per call with increasing seq and the capture time', () => {
    const ch = new FakeChannel();
    const s = new DrivingSender();
    s.attach(ch);
    expect(s.send(face(0.25, 0.1), 1234.7)).toEqual({ seq: 0, captureMs: 1234.7 });
    expect(s.send(face(0.5), 1268)).toEqual({ seq: 1, captureMs: 1268 });
    expect(ch.sent).toHaveLength(2);
    expect(ch.sent[0]).toHaveLength(DRIVING_FRAME_BYTES);
    const d = decodeDrivingFrame(ch.sent[0]!);
    if (!d.ok) throw new Error(d.error);
    expect(d.frame).toMatchObject({ seq: 0, captureMs: 1234, faceFound: true });
    expect(d.frame.pose[1]).toBeCloseTo(0.1, 4);
    expect(d.frame.blendshapes[25]).toBeCloseTo(0.25, 2);
  });

  it('repeats the last values with faceFound false when the face is lost', () => {
    const ch = new FakeChannel();
    const s = new DrivingSender();
    s.attach(ch);
    s.send(face(0.6), 10);
    s.send(null, 43);
    const d = decodeDrivingFrame(ch.sent[1]!);
    if (!d.ok) throw new Error(d.error);
    expect(d.frame.faceFound).toBe(false);
    expect(d.frame.seq).toBe(1);
    expect(d.frame.blendshapes[25]).toBeCloseTo(0.6, 2);
  });

  it('skips frames while the channel is closed or backed up, and counts encode errors', () => {
    const ch = new FakeChannel();
    const s = new DrivingSender(200);
    expect(s.send(face(0), 0)).toBeNull(); // not attached
    s.attach(ch);
    ch.readyState = 'connecting';
    expect(s.send(face(0), 1)).toBeNull();
    ch.readyState = 'open';
    ch.bufferedAmount = 201;
    expect(s.send(face(0), 2)).toBeNull();
    ch.bufferedAmount = 0;
    const bad = face(0);
    bad.pose[0] = Number.NaN;
    expect(s.send(bad, 3)).toBeNull();
    expect(s.send(face(0), 4)).toEqual({ seq: 0, captureMs: 4 });
    expect(s.counters()).toEqual({ sent: 1, skipped: 3, encodeErrors: 1 });
  });
});

describe('validators for server payloads', () => {
  const avatar = { id: 'alice', name: 'Alice', width: 256, height: 256, fps: 25, driving: 'expression' };

  it('parseClientConfig accepts the documented shape and defaults iceServers to none', () => {
    expect(parseClientConfig({ trackerModelUrl: '/models/face_landmarker.task' })).toEqual({ trackerModelUrl: '/models/face_landmarker.task', iceServers: [] });
    expect(parseClientConfig({ trackerModelUrl: 'm', iceServers: [{ urls: ['turn:t.example:3478'], username: 'u', credential: 'c' }, { urls: 'stun:s.example' }] }).iceServers).toEqual([
      { urls: ['turn:t.example:3478'], username: 'u', credential: 'c' },
      { urls: 'stun:s.example' },
    ]);
  });
  it.each([
    [null, /config\.json: expected an object/],
    [{}, /trackerModelUrl: expected a string/],
    [{ trackerModelUrl: '' }, /trackerModelUrl: must not be empty/],
    [{ trackerModelUrl: 'm', iceServers: {} }, /iceServers: expected an array/],
    [{ trackerModelUrl: 'm', iceServers: [{}] }, /iceServers\[0\]\.urls: expected a string/],
    [{ trackerModelUrl: 'm', iceServers: [{ urls: [] }] }, /iceServers\[0\]\.urls: expected at least 1/],
    [{ trackerModelUrl: 'm', iceServers: [{ urls: 's', username: 5 }] }, /iceServers\[0\]\.username: expected a string/],
  ])('parseClientConfig rejects %j', (v, msg) => {
    expect(() => parseClientConfig(v)).toThrow(msg);
  });

  it('parseAvatarList accepts summaries and rejects bad ones by path', () => {
    expect(parseAvatarList([avatar, { ...avatar, id: 'bob', driving: 'audio' }])).toHaveLength(2);
    expect(parseAvatarList([])).toEqual([]);
    expect(() => parseAvatarList({})).toThrow(/avatars: expected an array/);
    expect(() => parseAvatarList([avatar, { ...avatar, width: 0 }])).toThrow(/avatars\[1\]\.width: must be >= 1/);
    expect(() => parseAvatarList([{ ...avatar, driving: 'video' }])).toThrow(/avatars\[0\]\.driving/);
    expect(() => parseAvatarList([{ ...avatar, id: '' }])).toThrow(/avatars\[0\]\.id: must not be empty/);
  });

  it('parseJoinReply, parseAckReply and parseSessionError', () => {
    expect(parseJoinReply({ ok: true, sessionId: 's1', avatar })).toEqual({ ok: true, sessionId: 's1', avatar });
    expect(parseJoinReply({ ok: false, error: 'no such avatar', code: 'unknown-avatar' })).toEqual({ ok: false, error: 'no such avatar', code: 'unknown-avatar' });
    expect(parseJoinReply({ ok: false, error: 'x', code: 'from-a-newer-server' })).toEqual({ ok: false, error: 'x', code: 'internal' });
    expect(() => parseJoinReply({ ok: true, avatar })).toThrow(/join reply\.sessionId/);
    expect(() => parseJoinReply({ ok: true, sessionId: 's', avatar: { ...avatar, fps: 'x' } })).toThrow(/join reply\.avatar\.fps/);
    expect(() => parseJoinReply({ ok: 'yes' })).toThrow(/join reply\.ok: expected true or false/);
    expect(parseAckReply({ ok: true }, 'calibrate reply')).toEqual({ ok: true });
    expect(parseAckReply({ ok: false, error: 'bad', code: 'no-session' }, 'calibrate reply')).toEqual({ ok: false, error: 'bad', code: 'no-session' });
    expect(() => parseAckReply({ ok: false }, 'calibrate reply')).toThrow(/calibrate reply\.error/);
    expect(parseSessionError({ message: 'renderer failed', code: 'render-failed' })).toEqual({ message: 'renderer failed', code: 'render-failed' });
    expect(() => parseSessionError('x')).toThrow(/session-error: expected an object/);
  });
});

describe('user messages', () => {
  it('explains camera, tracker and connection failures', () => {
    expect(cameraErrorMessage({ name: 'NotAllowedError', message: 'Permission denied' })).toMatch(/permission was denied/i);
    expect(cameraErrorMessage({ name: 'NotFoundError' })).toMatch(/No usable camera/);
    expect(cameraErrorMessage({ name: 'NotReadableError' })).toMatch(/in use/);
    expect(cameraErrorMessage(new Error('weird'))).toMatch(/could not be opened: weird/);
    expect(trackerErrorMessage(new Error('404'), '/models/face_landmarker.task')).toMatch(/tracker model could not be loaded from \/models\/face_landmarker\.task \(404\)/);
    expect(connectionErrorMessage(new Error('timed out'))).toMatch(/connection to the avatar server failed: timed out/);
    expect(connectionErrorMessage(new ServerRefusal('server-full', 'server is full (8 sessions)'))).toMatch(/busy with other callers/);
    expect(connectionErrorMessage(new ServerRefusal('forbidden', 'forbidden: token expired'))).toMatch(/Ask for a new link/);
    expect(connectionErrorMessage(new ServerRefusal('internal', 'odd'))).toMatch(/failed: odd/);
    // MediaPipe's multi-line errors are cut to their first line; bare events are named
    const mp = trackerErrorMessage(new Error('UNKNOWN: Unable to open zip archive.; StartGraph failed\n=== Source Location Trace: ===\nthird_party/x.cc:53'), '/m.task');
    expect(mp).toBe("The face tracker model could not be loaded from /m.task (UNKNOWN: Unable to open zip archive.; StartGraph failed). Check the server's tracker model setting and reload the page.");
    expect(trackerErrorMessage({ type: 'error' }, '/m.task')).toMatch(/\(a network or file error \('error' event\)\)/);
    expect(cameraErrorMessage(new Error('x'.repeat(500))).length).toBeLessThan(260);
  });
});
