/**
 * Call rooms over the socket.io signaling (events declared in signaling.ts's event maps). Every payload that
 * arrives is validated with the parse* functions below.
 *
 * Client → server
 *   'room-join'      RoomJoinRequest, ack(RoomJoinReply)  join room `room` with an avatar; the server then sends
 *                                                        'room-offer' for the caller's own peer, and one per other
 *                                                        participant
 *   'room-answer'    RoomAnswer                           the answer to a 'room-offer' (by peer id)
 *   'room-ice'       RoomIce                              an optional trickled candidate for one peer
 *   'room-calibrate' CalibrateRequest, ack(AckReply)      the caller's neutral face (as 'calibrate')
 *   'room-leave'     (no payload)                         leave the room (disconnecting does the same)
 * Server → client
 *   'room-offer'         RoomOffer       a peer to answer: participant null = the caller's own peer (driving data
 *                                         channel + microphone up, optional self-view down); otherwise one remote
 *                                         participant's avatar video + voice (sendonly, one media stream)
 *   'participant-joined' ParticipantInfo  someone joined (their 'room-offer' follows)
 *   'participant-left'   ParticipantLeft  someone left: their peer is closed, remove the tile
 *   'session-error'      SessionError     the caller's room membership ended (peer failed, timed out...)
 *
 * Design: one peer connection per remote participant (and one of the caller's own), each negotiated once by a
 * server offer. A join or leave never renegotiates a live connection: it adds or closes whole peers.
 */
import { arr, bool, num, obj, oneOf, str } from './json-check.js';
import { parseIceCandidate, parseRefusal, VIDEO_CODECS, type ErrorCode, type IceCandidate, type VideoCodecName } from './signaling.js';

/** Room and participant names: URL path segments (also /whep/ROOM/PARTICIPANT). */
export const ROOM_NAME_RE = /^[A-Za-z0-9_.~-]{1,64}$/;
const MAX_DISPLAY_NAME = 40;

export interface RoomJoinRequest {
  room: string;
  avatar: string;
  codec: VideoCodecName;
  /** Also send the caller their own avatar (the shared encode) on their own peer. */
  selfView: boolean;
  /** Shown on the caller's tile at the others (default 'guest'). */
  name: string;
}

export interface ParticipantInfo {
  id: string;
  name: string;
  avatar: string;
}

export type RoomJoinReply =
  | { ok: true; room: string; participantId: string; participants: ParticipantInfo[]; maxParticipants: number }
  | { ok: false; error: string; code: ErrorCode };

export interface RoomOffer {
  peer: string;
  /** null: the caller's own peer; else the remote participant whose media this peer carries. */
  participant: string | null;
  sdp: string;
}
export interface RoomAnswer {
  peer: string;
  sdp: string;
}
export interface RoomIce {
  peer: string;
  candidate: IceCandidate;
}
export interface ParticipantLeft {
  participant: string;
}

const MAX_SDP = 64 * 1024;
const PEER_ID_RE = /^[A-Za-z0-9-]{1,64}$/;

export function parseRoomName(v: unknown, path: string): string {
  const s = str(v, path, { nonEmpty: true, max: 64 });
  if (!ROOM_NAME_RE.test(s)) throw new Error(`${path} must be 1-64 of A-Z a-z 0-9 _ . ~ -`);
  return s;
}

export function parseRoomJoinRequest(v: unknown): RoomJoinRequest {
  const o = obj(v, 'room-join');
  const name = o.name === undefined ? 'guest' : str(o.name, 'room-join.name', { nonEmpty: true, max: MAX_DISPLAY_NAME });
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new Error('room-join.name has control characters');
  return {
    room: parseRoomName(o.room, 'room-join.room'),
    avatar: str(o.avatar, 'room-join.avatar', { nonEmpty: true, max: 200 }),
    codec: o.codec === undefined ? 'vp8' : oneOf(o.codec, 'room-join.codec', VIDEO_CODECS),
    selfView: o.selfView === undefined ? false : bool(o.selfView, 'room-join.selfView'),
    name,
  };
}

function peerId(v: unknown, path: string): string {
  const s = str(v, path, { nonEmpty: true, max: 64 });
  if (!PEER_ID_RE.test(s)) throw new Error(`${path} is not a peer id`);
  return s;
}

export function parseRoomAnswer(v: unknown): RoomAnswer {
  const o = obj(v, 'room-answer');
  return { peer: peerId(o.peer, 'room-answer.peer'), sdp: str(o.sdp, 'room-answer.sdp', { nonEmpty: true, max: MAX_SDP }) };
}

export function parseRoomIce(v: unknown): RoomIce {
  const o = obj(v, 'room-ice');
  return { peer: peerId(o.peer, 'room-ice.peer'), candidate: parseIceCandidate(o.candidate) };
}

export function parseRoomOffer(v: unknown): RoomOffer {
  const o = obj(v, 'room-offer');
  return {
    peer: peerId(o.peer, 'room-offer.peer'),
    participant: o.participant === null ? null : parseRoomName(o.participant, 'room-offer.participant'),
    sdp: str(o.sdp, 'room-offer.sdp', { nonEmpty: true, max: MAX_SDP }),
  };
}

export function parseParticipantInfo(v: unknown): ParticipantInfo {
  const o = obj(v, 'participant');
  return {
    id: parseRoomName(o.id, 'participant.id'),
    name: str(o.name, 'participant.name', { nonEmpty: true, max: MAX_DISPLAY_NAME }),
    avatar: str(o.avatar, 'participant.avatar', { nonEmpty: true, max: 200 }),
  };
}

/** The 'room-join' ack, validated by the callers. */
export function parseRoomJoinReply(v: unknown): RoomJoinReply {
  const o = obj(v, 'room-join reply');
  if (!bool(o.ok, 'room-join reply.ok')) return parseRefusal(o, 'room-join reply');
  return {
    ok: true,
    room: parseRoomName(o.room, 'room-join reply.room'),
    participantId: parseRoomName(o.participantId, 'room-join reply.participantId'),
    participants: arr(o.participants, 'room-join reply.participants').map(parseParticipantInfo),
    maxParticipants: num(o.maxParticipants, 'room-join reply.maxParticipants', { int: true, min: 2, max: 1000 }),
  };
}

export function parseParticipantLeft(v: unknown): ParticipantLeft {
  return { participant: parseRoomName(obj(v, 'participant-left').participant, 'participant-left.participant') };
}
