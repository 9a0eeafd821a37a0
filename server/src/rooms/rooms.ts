/**
 * Rooms: the server's call rooms, by name. A room exists while it has participants (the first join creates it,
 * the last leave removes it); `allowed` restricts the names (--rooms), `maxParticipants` caps each room
 * (--room-size). Owns every Participant until it leaves. Each participant's Publisher is registered in the
 * TapDirectory as ROOM/PARTICIPANT (WHEP viewers and egress find it there).
 *
 * Join: the participant is created and admitted (ack), then `connect()` sends its own offer and wires it both
 * ways with everyone already there (a Feed each way, announced with 'participant-joined'). Leave: its feeds at
 * the others close and they get 'participant-left'.
 */
import { randomBytes } from 'node:crypto';
import type { ParticipantInfo } from '../../../shared/src/room-signaling.js';
import type { VideoCodecName } from '../../../shared/src/signaling.js';
import type { AvatarEntry } from '../avatars/registry.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { IceOptions, IceServerConfig } from '../session/peer.js';
import { TokenBuckets } from '../access/token-bucket.js';
import type { EncodePool } from '../media/encode-pool.js';
import { JoinRefused } from '../session/sessions.js';
import type { TapDirectory } from '../stream/tap-directory.js';
import { Participant, type ParticipantEnd, type ParticipantSink } from './participant.js';

export { ROOM_DEFAULTS } from './room-defaults.js';

export interface RoomsOptions {
  /** Room names admitted; null = any name. */
  allowed: string[] | null;
  maxParticipants: number;
  ice: IceOptions;
  /** ICE servers for each new peer (fresh TURN credentials); default ice.iceServers. */
  iceServers?: () => IceServerConfig[];
  connectTimeoutMs: number;
  bitrate: number;
  keepaliveMs: number;
  keyframeMinIntervalMs: number;
  maxDrivingHz: number;
  /** Room joins per minute per client address (token bucket, burst = the same number; --join-rate). */
  joinsPerMinute: number;
  /** Where the participants' streams are encoded (media/encode-pool.ts). */
  encodePool: EncodePool;
}

export interface RoomJoin {
  room: string;
  name: string;
  avatar: AvatarEntry;
  codec: VideoCodecName;
  selfView: boolean;
}

export class Rooms {
  private readonly rooms = new Map<string, Map<string, Participant>>();
  private readonly roomOf = new Map<Participant, string>();
  private closed = false;
  /** Room joins per client address (the same rate as single-user joins, counted apart). */
  readonly joinBuckets: TokenBuckets;

  constructor(
    private readonly opts: RoomsOptions,
    private readonly taps: TapDirectory,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.joinBuckets = new TokenBuckets(opts.joinsPerMinute, opts.joinsPerMinute / 60);
  }

  get size(): number {
    return this.rooms.size;
  }

  get maxParticipants(): number {
    return this.opts.maxParticipants;
  }

  participants(room: string): ParticipantInfo[] {
    return [...(this.rooms.get(room)?.values() ?? [])].map((p) => p.info);
  }

  /**
   * Admits a caller to a room, or throws JoinRefused (shutting-down, unknown-room, room-full). `onEnded` runs
   * when the participant's own connection ends it (not on leave()).
   */
  join(req: RoomJoin, sink: ParticipantSink, onEnded: (end: ParticipantEnd) => void): Participant {
    if (this.closed) throw new JoinRefused('shutting-down', 'server is shutting down');
    if (this.opts.allowed && !this.opts.allowed.includes(req.room)) throw new JoinRefused('unknown-room', `unknown room "${req.room}" (this server admits only its --rooms)`);
    const members = this.rooms.get(req.room) ?? new Map<string, Participant>();
    if (members.size >= this.opts.maxParticipants) throw new JoinRefused('room-full', `room "${req.room}" is full (${this.opts.maxParticipants} participants)`);
    let id = `p${randomBytes(4).toString('hex')}`;
    while (members.has(id)) id = `p${randomBytes(4).toString('hex')}`;
    const o = this.opts;
    const p = new Participant(
      {
        id,
        room: req.room,
        name: req.name,
        avatar: req.avatar,
        codec: req.codec,
        selfView: req.selfView,
        ice: o.iceServers ? { ...o.ice, iceServers: o.iceServers() } : o.ice,
        connectTimeoutMs: o.connectTimeoutMs,
        bitrate: o.bitrate,
        keepaliveMs: o.keepaliveMs,
        keyframeMinIntervalMs: o.keyframeMinIntervalMs,
        encodePool: o.encodePool,
        maxDrivingHz: o.maxDrivingHz,
      },
      sink,
      this.metrics,
      this.log,
    );
    p.onEnded = (end) => {
      void this.leave(p);
      onEnded(end);
    };
    if (!this.rooms.has(req.room)) {
      this.rooms.set(req.room, members);
      this.metrics.rooms.set(this.rooms.size);
    }
    members.set(id, p);
    this.roomOf.set(p, req.room);
    this.metrics.roomParticipants.inc();
    this.taps.register({ room: req.room, participant: id, avatar: req.avatar.id, tap: p.publisher });
    this.log.info({ room: req.room, participant: id, avatar: req.avatar.id, participants: members.size }, 'participant joined');
    return p;
  }

  /** After the join was acknowledged: the participant's own offer, then a feed each way with everyone else. */
  async connect(p: Participant): Promise<void> {
    const room = this.roomOf.get(p);
    if (!room) return;
    await p.start();
    const others = [...(this.rooms.get(room)?.values() ?? [])].filter((q) => q !== p);
    await Promise.all(
      others.map(async (q) => {
        q.announceJoined(p.info);
        await Promise.all([q.addFeed(p.info, p.publisher), p.addFeed(q.info, q.publisher)]);
      }),
    );
  }

  /** Removes a participant (leave, disconnect, its connection failed); idempotent. */
  async leave(p: Participant): Promise<void> {
    const room = this.roomOf.get(p);
    if (room === undefined) return;
    this.roomOf.delete(p);
    const members = this.rooms.get(room);
    members?.delete(p.id);
    this.metrics.roomParticipants.dec();
    if (members && members.size === 0) {
      this.rooms.delete(room);
      this.metrics.rooms.set(this.rooms.size);
    }
    for (const q of members?.values() ?? []) q.announceLeft(p.id);
    this.log.info({ room, participant: p.id, participants: members?.size ?? 0 }, 'participant left');
    await p.close();
  }

  toJSON(): Record<string, unknown[]> {
    return Object.fromEntries([...this.rooms].map(([name, m]) => [name, [...m.values()].map((p) => p.toJSON())]));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.roomOf.keys()].map((p) => this.leave(p)));
  }
}
