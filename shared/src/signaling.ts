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
 *   (join's optional `mode`: camera | microphone | both, DriveMode below)
 * Server → client
 *   'offer'     SessionDescription                   the server offers (video sendonly + negotiated data channel id 0)
 *   'session-error' SessionError {message, code}     the session failed or timed out; it has been closed
 *   'voice-stats' VoiceStats                         about once a second in microphone/both mode: speech-to-lips delay
 *   'shutdown'  ShutdownNotice                       the server is stopping (SIGTERM/SIGINT): sessions end and the
 *                                                    socket is disconnected right after; joins are refused
 *
 * Every refusal (a join or calibrate ack with ok: false, 'session-error', and the handshake's connect_error data)
 * carries a machine-readable `code` (ErrorCode) besides its human-readable text: clients act on the code, never
 * on the wording.
 *
 * HTTP: GET /avatars → AvatarSummary[] (what the page's avatar picker shows).
 *
 * The data channel is negotiated on both sides: label 'driving', id 0, ordered: false, maxRetransmits: 0.
 * Client → server messages on it are driving frames (wire.ts); server → client messages are render
 * reports (render-report.ts).
 */
import { BLENDSHAPE_COUNT } from './blendshapes.js';
import type { DrivingValues } from './driving-values.js';
import { arr, bool, num, obj, oneOf, str } from './json-check.js';
import type { ParticipantInfo, ParticipantLeft, RoomAnswer, RoomIce, RoomJoinReply, RoomOffer } from './room-signaling.js';
import type { RoomEgressReply } from './egress-signaling.js';

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

/**
 * Why the server refused or ended something:
 *   bad-request        the payload failed validation (the text names the field)
 *   unknown-avatar     no such avatar (GET /avatars lists them)
 *   unsupported-avatar the avatar exists but this server cannot stream it (e.g. audio-driven)
 *   server-full        --max-sessions reached
 *   forbidden          Origin not allowed, join token missing/bad/expired, or not valid for this avatar
 *   rate-limited       too many joins from this address (--join-rate)
 *   too-many-sockets   this address already has --max-sockets-per-address signaling connections open (handshake)
 *   join-timeout       the connection had no session for --join-timeout-ms; it is disconnected right after
 *   busy               the server is busy: admission control measured no room for another session at its frame
 *                      rate (--admission), or a join on this socket is still being set up
 *   no-session         answer/ice/calibrate before a join
 *   shutting-down      the server is stopping
 *   connect-timeout    the WebRTC connection did not come up in time (--connect-timeout-ms)
 *   idle               no driving frames for --idle-timeout-ms
 *   peer-failed        the WebRTC connection failed
 *   render-failed      rendering or encoding failed (e.g. a hung model run)
 *   unknown-room       the server only admits the rooms of its --rooms list, and this is not one
 *   room-full          the room has --room-size participants already
 *   already-joined     this connection is already in a room (leave first)
 *   internal           anything else
 */
export const ERROR_CODES = [
  'bad-request',
  'unknown-avatar',
  'unsupported-avatar',
  'server-full',
  'forbidden',
  'rate-limited',
  'too-many-sockets',
  'join-timeout',
  'busy',
  'no-session',
  'shutting-down',
  'connect-timeout',
  'idle',
  'peer-failed',
  'render-failed',
  'unknown-room',
  'room-full',
  'already-joined',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface SessionError {
  message: string;
  code: ErrorCode;
}

/**
 * What drives the avatar, chosen by the caller at join:
 *   camera      the page tracks the caller's face and sends driving frames (the data channel)
 *   microphone  the caller's voice (an Opus track) drives the mouth; head, eyes and blinks follow the avatar's
 *               idle motion; no camera needed
 *   both        the camera drives head, eyes and brows, the voice drives the mouth while the caller speaks
 * With microphone or both, the server's offer has an Opus sendrecv transceiver: the caller's microphone goes up,
 * and their voice comes back next to the avatar's video (same stream), delayed to match the lips.
 */
export type DriveMode = 'camera' | 'microphone' | 'both';
const DRIVE_MODES: readonly DriveMode[] = ['camera', 'microphone', 'both'];

export interface JoinRequest {
  avatar: string;
  codec: VideoCodecName;
  /** Default 'camera'. */
  mode: DriveMode;
}

/** Server → caller about once a second in microphone and both modes ('voice-stats'). */
export interface VoiceStats {
  /** Median over the last frames: from the caller's audio arriving at the server to the video frame with those lips leaving it (ms). */
  speechToLipsMs: number | null;
  /** How long the server holds the relayed voice so that it plays with those lips (ms). */
  voiceDelayMs: number;
  /** The voice gate: the caller is speaking. */
  speech: boolean;
}
export type JoinReply = { ok: true; sessionId: string; avatar: AvatarSummary } | { ok: false; error: string; code: ErrorCode };
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
export type AckReply = { ok: true } | { ok: false; error: string; code: ErrorCode };
export interface ShutdownNotice {
  message: string;
}

/** The calibrate payload on the wire (DrivingValues as plain arrays; drivingValuesToJson). */
export interface CalibrateRequestJson {
  neutral: { pose: number[]; gaze: number[]; blendshapes: number[] };
}

/**
 * socket.io event maps (`Server<ClientToServerEvents, ServerToClientEvents>` on the server,
 * `Socket<ServerToClientEvents, ClientToServerEvents>` in clients). They type what each side *sends*; what
 * arrives is still `unknown` to the receiver and validated with the parse* functions (handlers declare `unknown`
 * parameters, which these maps allow).
 */
export interface ClientToServerEvents {
  join: (req: { avatar: string; codec?: VideoCodecName; mode?: DriveMode }, ack: (reply: JoinReply) => void) => void;
  answer: (desc: SessionDescription) => void;
  ice: (candidate: IceCandidate) => void;
  calibrate: (req: CalibrateRequestJson, ack: (reply: AckReply) => void) => void;
  leave: () => void;
  'room-join': (req: { room: string; avatar: string; codec?: VideoCodecName; selfView?: boolean; name?: string }, ack: (reply: RoomJoinReply) => void) => void;
  'room-answer': (answer: RoomAnswer) => void;
  'room-ice': (ice: RoomIce) => void;
  'room-calibrate': (req: CalibrateRequestJson, ack: (reply: AckReply) => void) => void;
  'room-leave': () => void;
  'room-egress': (req: { action: 'start' | 'stop' | 'list'; kind?: string; url?: string; id?: string }, ack: (reply: RoomEgressReply) => void) => void;
}
export interface ServerToClientEvents {
  offer: (desc: SessionDescription) => void;
  'session-error': (error: SessionError) => void;
  shutdown: (notice: ShutdownNotice) => void;
  'voice-stats': (stats: VoiceStats) => void;
  'room-offer': (offer: RoomOffer) => void;
  'participant-joined': (p: ParticipantInfo) => void;
  'participant-left': (p: ParticipantLeft) => void;
}

const MAX_SDP = 64 * 1024;

/** An error code from the server, validated (an unknown one reads as 'internal', so newer servers stay usable). */
export function parseErrorCode(v: unknown): ErrorCode {
  return typeof v === 'string' && (ERROR_CODES as readonly string[]).includes(v) ? (v as ErrorCode) : 'internal';
}

export function parseJoinRequest(v: unknown): JoinRequest {
  const o = obj(v, 'join');
  return {
    avatar: str(o.avatar, 'join.avatar', { nonEmpty: true, max: 200 }),
    codec: o.codec === undefined ? 'vp8' : oneOf(o.codec, 'join.codec', VIDEO_CODECS),
    mode: o.mode === undefined ? 'camera' : oneOf(o.mode, 'join.mode', DRIVE_MODES),
  };
}

/*
 * What the server sends back (acks, 'session-error', 'shutdown'), validated by the clients (page, Node callers)
 * before use. Each throws a SchemaError naming the bad field; an unknown error code reads as 'internal'.
 */

export function parseAvatarSummary(v: unknown, path: string): AvatarSummary {
  const o = obj(v, path);
  return {
    id: str(o.id, `${path}.id`, { nonEmpty: true, max: 200 }),
    name: str(o.name, `${path}.name`, { max: 200 }),
    width: num(o.width, `${path}.width`, { int: true, min: 1, max: 8192 }),
    height: num(o.height, `${path}.height`, { int: true, min: 1, max: 8192 }),
    fps: num(o.fps, `${path}.fps`, { min: 1, max: 240 }),
    driving: oneOf(o.driving, `${path}.driving`, ['expression', 'audio'] as const),
  };
}

/** A refusal ({ ok: false, error, code }) in any reply. */
export function parseRefusal(o: Record<string, unknown>, what: string): { ok: false; error: string; code: ErrorCode } {
  return { ok: false, error: str(o.error, `${what}.error`, { max: 2000 }), code: parseErrorCode(o.code) };
}

export function parseAckReply(v: unknown, what: string): AckReply {
  const o = obj(v, what);
  return bool(o.ok, `${what}.ok`) ? { ok: true } : parseRefusal(o, what);
}

export function parseJoinReply(v: unknown): JoinReply {
  const o = obj(v, 'join reply');
  if (!bool(o.ok, 'join reply.ok')) return parseRefusal(o, 'join reply');
  return {
    ok: true,
    sessionId: str(o.sessionId, 'join reply.sessionId', { nonEmpty: true, max: 200 }),
    avatar: parseAvatarSummary(o.avatar, 'join reply.avatar'),
  };
}

export function parseSessionError(v: unknown): SessionError {
  const o = obj(v, 'session-error');
  return { message: str(o.message, 'session-error.message', { max: 2000 }), code: parseErrorCode(o.code) };
}

/** 'shutdown': the server is stopping; the message says why. */
export function parseShutdownNotice(v: unknown): string {
  return str(obj(v, 'shutdown').message, 'shutdown.message', { max: 2000 });
}

/**
 * A socket.io listener for a server event that validates it first: `use` gets what `parse` returns, `bad` the
 * reason when the payload fails validation (a bad payload never throws into socket.io's emitter).
 */
export function validated<T>(parse: (v: unknown) => T, use: (v: T) => void, bad: (why: string) => void): (v: unknown) => void {
  return (v) => {
    let parsed: T;
    try {
      parsed = parse(v);
    } catch (err) {
      bad(err instanceof Error ? err.message : String(err));
      return;
    }
    use(parsed);
  };
}

/** A 'voice-stats' message from the server, validated. */
export function parseVoiceStats(v: unknown): VoiceStats {
  const o = obj(v, 'voice-stats');
  return {
    speechToLipsMs: o.speechToLipsMs === null ? null : num(o.speechToLipsMs, 'voice-stats.speechToLipsMs', { min: -10_000, max: 60_000 }),
    voiceDelayMs: num(o.voiceDelayMs, 'voice-stats.voiceDelayMs', { min: 0, max: 60_000 }),
    speech: o.speech === true,
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
