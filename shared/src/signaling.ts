/**
 * socket.io signaling protocol (version 1). Every payload that arrives is validated with the parse*
 * functions below before use; a malformed one is answered with an error and counted, never trusted.
 *
 * Client → server
 *   'join'      JoinRequest, ack(JoinReply)          pick an avatar; the server creates a Session and then emits 'offer'
 *   'answer'    SessionDescription                   the page's SDP answer to the server's offer
 *   'ice'       IceCandidate                         optional trickled candidate from the page
 *   'calibrate' CalibrateRequest, ack(AckReply)      the caller's neutral face (mean of ~1 s of tracked frames)
 *   'leave'     (no payload)                         end the session (disconnecting does the same)
 * Server → client
 *   'offer'     SessionDescription                   the server offers (video sendonly + negotiated data channel id 0)
 *   'session-error' { message: string }              the session failed; it has been closed
 *   'shutdown'  ShutdownNotice                       the server is stopping (SIGTERM/SIGINT): sessions end and the
 *                                                    socket is disconnected right after; joins are refused
 *
 * HTTP: GET /avatars → AvatarSummary[] (what the page's avatar picker shows).
 *
 * The data channel is negotiated on both sides: label 'driving', id 0, ordered: false, maxRetransmits: 0.
 * Client → server messages on it are driving frames (wire.ts); server → client messages are render
 * reports (render-report.ts).
 */
import { BLENDSHAPE_COUNT } from './blendshapes.js';
import type { DrivingValues } from './driving-values.js';
import { arr, num, obj, oneOf, str } from './json-check.js';

export const DATA_CHANNEL_LABEL = 'driving';
export const DATA_CHANNEL_ID = 0;

export type VideoCodecName = 'vp8' | 'h264';
export const VIDEO_CODECS: readonly VideoCodecName[] = ['vp8', 'h264'];

export interface AvatarSummary {
  id: string;
  name: string;
  width: number;
  height: number;
  fps: number;
  driving: 'expression' | 'audio';
}

export interface JoinRequest {
  avatar: string;
  codec: VideoCodecName;
}
export type JoinReply = { ok: true; sessionId: string; avatar: AvatarSummary } | { ok: false; error: string };
export interface SessionDescription {
  type: 'offer' | 'answer';
  sdp: string;
}
export interface IceCandidate {
  candidate: string;
  sdpMid: string | null;
  sdpMLineIndex: number | null;
}
export interface CalibrateRequest {
  neutral: DrivingValues;
}
export type AckReply = { ok: true } | { ok: false; error: string };
export interface ShutdownNotice {
  message: string;
}

const MAX_SDP = 64 * 1024;

export function parseJoinRequest(v: unknown): JoinRequest {
  const o = obj(v, 'join');
  return {
    avatar: str(o.avatar, 'join.avatar', { nonEmpty: true, max: 200 }),
    codec: o.codec === undefined ? 'vp8' : oneOf(o.codec, 'join.codec', VIDEO_CODECS),
  };
}

export function parseSessionDescription(v: unknown, expected: 'offer' | 'answer'): SessionDescription {
  const o = obj(v, expected);
  const type = oneOf(o.type, `${expected}.type`, [expected]);
  return { type, sdp: str(o.sdp, `${expected}.sdp`, { nonEmpty: true, max: MAX_SDP }) };
}

export function parseIceCandidate(v: unknown): IceCandidate {
  const o = obj(v, 'ice');
  return {
    candidate: str(o.candidate, 'ice.candidate', { max: 2048 }),
    sdpMid: o.sdpMid === null || o.sdpMid === undefined ? null : str(o.sdpMid, 'ice.sdpMid', { max: 64 }),
    sdpMLineIndex: o.sdpMLineIndex === null || o.sdpMLineIndex === undefined ? null : num(o.sdpMLineIndex, 'ice.sdpMLineIndex', { int: true, min: 0, max: 64 }),
  };
}

export function parseCalibrateRequest(v: unknown): CalibrateRequest {
  const o = obj(v, 'calibrate');
  const n = obj(o.neutral, 'calibrate.neutral');
  const f32 = (x: unknown, path: string, len: number, lo: number, hi: number): Float32Array =>
    Float32Array.from(arr(x, path, { len }).map((e, i) => num(e, `${path}[${i}]`, { min: lo, max: hi })));
  return {
    neutral: {
      pose: f32(n.pose, 'calibrate.neutral.pose', 6, -400, 400),
      gaze: f32(n.gaze, 'calibrate.neutral.gaze', 2, -Math.PI, Math.PI),
      blendshapes: f32(n.blendshapes, 'calibrate.neutral.blendshapes', BLENDSHAPE_COUNT, 0, 1),
    },
  };
}

/** DrivingValues → plain JSON arrays for socket.io. */
export function drivingValuesToJson(v: DrivingValues): { pose: number[]; gaze: number[]; blendshapes: number[] } {
  return { pose: Array.from(v.pose), gaze: Array.from(v.gaze), blendshapes: Array.from(v.blendshapes) };
}
