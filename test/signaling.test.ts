// shared/src/signaling.ts validators (socket.io payloads) and shared/src/render-report.ts.
import { describe, expect, it } from 'vitest';
import { BLENDSHAPE_COUNT } from '../shared/src/blendshapes.js';
import { SchemaError } from '../shared/src/json-check.js';
import { decodeRenderReport, encodeRenderReport, RENDER_REPORT_BYTES } from '../shared/src/render-report.js';
import {
  DATA_CHANNEL_ID,
  DATA_CHANNEL_LABEL,
  drivingValuesToJson,
  parseCalibrateRequest,
  parseIceCandidate,
  parseJoinRequest,
  parseSessionDescription,
} from '../shared/src/signaling.js';

const goodNeutral = () => ({
  pose: [0.01, -0.05, 0.02, -0.3, -0.8, -25.7],
  gaze: [0.02, -0.1],
  blendshapes: Array.from({ length: BLENDSHAPE_COUNT }, (_, i) => (i % 10) / 10),
});

describe('data channel constants', () => {
  it('are the negotiated driving channel', () => {
    expect(DATA_CHANNEL_LABEL).toBe('driving');
    expect(DATA_CHANNEL_ID).toBe(0);
  });
});

describe('parseJoinRequest', () => {
  it('accepts an avatar with or without a codec (vp8 by default)', () => {
    expect(parseJoinRequest({ avatar: 'alice' })).toEqual({ avatar: 'alice', codec: 'vp8', mode: 'camera' });
    expect(parseJoinRequest({ avatar: 'alice', codec: 'h264' })).toEqual({ avatar: 'alice', codec: 'h264', mode: 'camera' });
  });
  it.each([
    ['not an object', 'alice', /join: expected an object/],
    ['null', null, /join: expected an object/],
    ['an array', ['alice'], /join: expected an object/],
    ['no avatar', {}, /join\.avatar: expected a string/],
    ['empty avatar', { avatar: '' }, /join\.avatar: must not be empty/],
    ['numeric avatar', { avatar: 7 }, /join\.avatar: expected a string/],
    ['too long avatar', { avatar: 'a'.repeat(201) }, /join\.avatar: longer than 200/],
    ['unknown codec', { avatar: 'alice', codec: 'av1' }, /join\.codec: expected one of "vp8", "h264"/],
    ['codec of wrong type', { avatar: 'alice', codec: 1 }, /join\.codec/],
  ])('rejects %s', (_what, payload, msg) => {
    expect(() => parseJoinRequest(payload)).toThrow(SchemaError);
    expect(() => parseJoinRequest(payload)).toThrow(msg);
  });
});

describe('parseSessionDescription', () => {
  it('accepts the expected type', () => {
    expect(parseSessionDescription({ type: 'answer', sdp: 'v=0\r\n' }, 'answer')).toEqual({ type: 'answer', sdp: 'v=0\r\n' });
    expect(parseSessionDescription({ type: 'offer', sdp: 'v=0\r\n', extra: 1 }, 'offer')).toEqual({ type: 'offer', sdp: 'v=0\r\n' });
  });
  it.each([
    ['a string', 'v=0', /answer: expected an object/],
    ['the wrong type', { type: 'offer', sdp: 'v=0' }, /answer\.type: expected one of "answer"/],
    ['no type', { sdp: 'v=0' }, /answer\.type/],
    ['no sdp', { type: 'answer' }, /answer\.sdp: expected a string/],
    ['empty sdp', { type: 'answer', sdp: '' }, /answer\.sdp: must not be empty/],
    ['oversized sdp', { type: 'answer', sdp: 'x'.repeat(64 * 1024 + 1) }, /answer\.sdp: longer than/],
  ])('rejects %s', (_what, payload, msg) => {
    expect(() => parseSessionDescription(payload, 'answer')).toThrow(msg);
  });
});

describe('parseIceCandidate', () => {
  it('accepts a full candidate, and null/absent mid and index', () => {
    const c = { candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', sdpMid: '0', sdpMLineIndex: 0 };
    expect(parseIceCandidate(c)).toEqual(c);
    expect(parseIceCandidate({ candidate: '', sdpMid: null, sdpMLineIndex: null })).toEqual({ candidate: '', sdpMid: null, sdpMLineIndex: null });
    expect(parseIceCandidate({ candidate: 'x' })).toEqual({ candidate: 'x', sdpMid: null, sdpMLineIndex: null });
  });
  it.each([
    ['not an object', 42, /ice: expected an object/],
    ['no candidate', { sdpMid: '0' }, /ice\.candidate: expected a string/],
    ['too long candidate', { candidate: 'x'.repeat(2049) }, /ice\.candidate: longer than 2048/],
    ['numeric mid', { candidate: 'x', sdpMid: 0 }, /ice\.sdpMid: expected a string/],
    ['negative index', { candidate: 'x', sdpMLineIndex: -1 }, /ice\.sdpMLineIndex: must be >= 0/],
    ['fractional index', { candidate: 'x', sdpMLineIndex: 0.5 }, /ice\.sdpMLineIndex: expected an integer/],
    ['string index', { candidate: 'x', sdpMLineIndex: '0' }, /ice\.sdpMLineIndex: expected a finite number/],
  ])('rejects %s', (_what, payload, msg) => {
    expect(() => parseIceCandidate(payload)).toThrow(msg);
  });
});

describe('parseCalibrateRequest', () => {
  it('accepts a neutral face and returns typed arrays', () => {
    const r = parseCalibrateRequest({ neutral: goodNeutral() });
    expect(r.neutral.pose).toBeInstanceOf(Float32Array);
    expect(r.neutral.pose).toHaveLength(6);
    expect(r.neutral.gaze).toHaveLength(2);
    expect(r.neutral.blendshapes).toHaveLength(BLENDSHAPE_COUNT);
    expect(r.neutral.pose[5]).toBeCloseTo(-25.7, 5);
    expect(r.neutral.blendshapes[9]).toBeCloseTo(0.9, 6);
  });

  it('round-trips drivingValuesToJson', () => {
    const r = parseCalibrateRequest({ neutral: goodNeutral() });
    const again = parseCalibrateRequest(JSON.parse(JSON.stringify({ neutral: drivingValuesToJson(r.neutral) })));
    expect(Array.from(again.neutral.pose)).toEqual(Array.from(r.neutral.pose));
    expect(Array.from(again.neutral.gaze)).toEqual(Array.from(r.neutral.gaze));
    expect(Array.from(again.neutral.blendshapes)).toEqual(Array.from(r.neutral.blendshapes));
    expect(Array.isArray(drivingValuesToJson(r.neutral).pose)).toBe(true);
  });

  const variant = (f: (n: ReturnType<typeof goodNeutral>) => unknown) => {
    const n = goodNeutral();
    return { neutral: f(n) };
  };
  it.each([
    ['no neutral', {}, /calibrate\.neutral: expected an object/],
    ['not an object', [], /calibrate: expected an object/],
    ['pose of 5', variant((n) => ({ ...n, pose: n.pose.slice(0, 5) })), /calibrate\.neutral\.pose: expected 6 items, got 5/],
    ['pose not an array', variant((n) => ({ ...n, pose: 'x' })), /calibrate\.neutral\.pose: expected an array/],
    ['NaN in pose', variant((n) => ({ ...n, pose: [0, 0, 0, 0, 0, Number.NaN] })), /calibrate\.neutral\.pose\[5\]: expected a finite number/],
    ['null in pose', variant((n) => ({ ...n, pose: [0, 0, null, 0, 0, 0] })), /calibrate\.neutral\.pose\[2\]: expected a finite number/],
    ['translation out of range', variant((n) => ({ ...n, pose: [0, 0, 0, 0, 0, -500] })), /calibrate\.neutral\.pose\[5\]: must be >= -400/],
    ['gaze of 3', variant((n) => ({ ...n, gaze: [0, 0, 0] })), /calibrate\.neutral\.gaze: expected 2 items, got 3/],
    ['gaze beyond π', variant((n) => ({ ...n, gaze: [4, 0] })), /calibrate\.neutral\.gaze\[0\]: must be <=/],
    ['51 blendshapes', variant((n) => ({ ...n, blendshapes: n.blendshapes.slice(1) })), /calibrate\.neutral\.blendshapes: expected 52 items, got 51/],
    ['blendshape above 1', variant((n) => ({ ...n, blendshapes: n.blendshapes.map((b, i) => (i === 3 ? 1.5 : b)) })), /calibrate\.neutral\.blendshapes\[3\]: must be <= 1/],
    ['negative blendshape', variant((n) => ({ ...n, blendshapes: n.blendshapes.map((b, i) => (i === 0 ? -0.1 : b)) })), /calibrate\.neutral\.blendshapes\[0\]: must be >= 0/],
    ['string blendshape', variant((n) => ({ ...n, blendshapes: n.blendshapes.map((b, i) => (i === 51 ? '0.5' : b)) })), /calibrate\.neutral\.blendshapes\[51\]: expected a finite number/],
  ])('rejects %s', (_what, payload, msg) => {
    expect(() => parseCalibrateRequest(payload)).toThrow(SchemaError);
    expect(() => parseCalibrateRequest(payload)).toThrow(msg);
  });
});

describe('render report', () => {
  it('round-trips, saturating the times', () => {
    const b = encodeRenderReport({ seq: 0xfffffffe, rtpTimestamp: 123456789, renderMs: 12.34, encodeMs: 9999 });
    expect(b.byteLength).toBe(RENDER_REPORT_BYTES);
    expect(decodeRenderReport(b)).toEqual({ seq: 0xfffffffe, rtpTimestamp: 123456789, renderMs: 12.3, encodeMs: 6553.5 });
    expect(decodeRenderReport(new Uint8Array(b).buffer)).not.toBeNull();
  });
  it('rejects the wrong length, version or kind', () => {
    const b = encodeRenderReport({ seq: 1, rtpTimestamp: 2, renderMs: 3, encodeMs: 4 });
    expect(decodeRenderReport(b.subarray(0, 15))).toBeNull();
    expect(decodeRenderReport(new Uint8Array(17))).toBeNull();
    const v = b.slice();
    v[0] = 2;
    expect(decodeRenderReport(v)).toBeNull();
    const k = b.slice();
    k[1] = 0x53;
    expect(decodeRenderReport(k)).toBeNull();
  });
});
