/**
 * Participant: one caller in a room. Owns
 *  - its own Peer ("main"): the driving data channel and the microphone (Opus recvonly) come up on it; with
 *    self-view, the caller's own avatar (the shared encode) goes down on it;
 *  - its Publisher (MediaTap): the caller's avatar rendered and encoded once, plus the relayed microphone;
 *  - one Feed per other participant: that participant's avatar + voice, forwarded from their Publisher.
 * Talks to its caller only through a ParticipantSink (signaling). close() is idempotent.
 */
import { randomUUID } from 'node:crypto';
import type { DrivingValues } from '../../../shared/src/driving-values.js';
import type { ParticipantInfo, ParticipantLeft, RoomOffer } from '../../../shared/src/room-signaling.js';
import type { ErrorCode, IceCandidate, VideoCodecName } from '../../../shared/src/signaling.js';
import { TokenBucket } from '../access/token-bucket.js';
import type { AvatarEntry } from '../avatars/registry.js';
import type { Logger } from '../log.js';
import type { EncodePool } from '../media/encode-pool.js';
import type { Metrics } from '../metrics.js';
import { avatarNeutral, DrivingChannel, meteredCounters } from '../session/driving-channel.js';
import { Peer, type IceOptions } from '../session/peer.js';
import type { MediaTap, Unsubscribe } from '../stream/media-tap.js';
import { Publisher } from '../stream/publisher.js';
import { Feed } from './feed.js';

export interface ParticipantSink {
  offer(o: RoomOffer): void;
  joined(p: ParticipantInfo): void;
  left(p: ParticipantLeft): void;
}

export interface ParticipantOptions {
  id: string;
  room: string;
  name: string;
  avatar: AvatarEntry;
  codec: VideoCodecName;
  selfView: boolean;
  ice: IceOptions;
  connectTimeoutMs: number;
  bitrate: number;
  keepaliveMs: number;
  keyframeMinIntervalMs: number;
  maxDrivingHz: number;
  /** Where the participant's stream is encoded. */
  encodePool: EncodePool;
}

/** The microphone's Opus rate in calls: speech at 24 kbit/s keeps the caller's whole uplink near 50 kbit/s. */
export const CALL_OPUS_MAX_BITRATE = 24_000;

export type ParticipantEnd = { code: ErrorCode; message: string };

export class Participant {
  readonly id: string;
  readonly info: ParticipantInfo;
  readonly publisher: Publisher;
  readonly driving: DrivingChannel;
  private readonly main: Peer;
  private readonly mainId = randomUUID();
  private readonly feeds = new Map<string, Feed>();
  private readonly log: Logger;
  private readonly unsubs: Unsubscribe[] = [];
  private connectTimer: NodeJS.Timeout | null = null;
  private connected = false;
  private closed = false;
  readonly counts = { drivingOverRate: 0, opusPackets: 0, opusBytes: 0 };
  /** The caller's own connection failed or never came up: the room removes this participant and tells them. */
  onEnded: ((end: ParticipantEnd) => void) | null = null;

  constructor(
    private readonly opts: ParticipantOptions,
    private readonly sink: ParticipantSink,
    private readonly metrics: Metrics,
    log: Logger,
  ) {
    this.id = opts.id;
    this.info = { id: opts.id, name: opts.name, avatar: opts.avatar.id };
    this.log = log.child({ room: opts.room, participant: opts.id });
    this.driving = new DrivingChannel(avatarNeutral(opts.avatar.manifest.neutral), meteredCounters(metrics));
    this.publisher = new Publisher(
      { id: `${opts.room}.${opts.id}`, avatar: opts.avatar, codec: opts.codec, bitrate: opts.bitrate, keepaliveMs: opts.keepaliveMs, keyframeMinIntervalMs: opts.keyframeMinIntervalMs, encodePool: opts.encodePool },
      metrics,
      this.log,
    );
    this.publisher.drive(this.driving);
    const clock = (): number => this.publisher.clockMs();
    this.main = new Peer(opts.codec, opts.ice, this.log, { audio: 'recvonly', streamId: this.publisher.id, videoRtpNow: () => clock() * 90, opusMaxBitrate: CALL_OPUS_MAX_BITRATE });
    metrics.peers.inc();
    const bucket = new TokenBucket(opts.maxDrivingHz, opts.maxDrivingHz);
    this.main.channel.onMessage.subscribe((msg) => {
      if (this.closed) return;
      if (!bucket.take()) {
        this.counts.drivingOverRate++;
        metrics.drivingRejected.inc({ reason: 'rate' });
        return;
      }
      this.driving.handleMessage(msg);
    });
    this.unsubs.push(
      this.main.onAudioRtp((p) => {
        this.counts.opusPackets++;
        this.counts.opusBytes += p.payload.length;
        metrics.bytesUp.inc(p.payload.length);
        this.publisher.pushOpus(p.payload, p.timestamp, p.arrivedAt);
      }),
    );
    this.main.onKeyframeRequest = () => this.publisher.requestKeyframe('self-view PLI');
    this.main.onState = (s) => {
      if (s === 'connected') this.onMainConnected();
      else if (s === 'failed') this.end('peer-failed', 'the WebRTC connection failed');
      else if (s === 'closed') this.end('peer-failed', 'the WebRTC connection closed');
    };
  }

  /** Sends the offer of the caller's own peer. */
  async start(): Promise<void> {
    const sdp = await this.main.createOffer();
    if (this.closed) return;
    this.connectTimer = setTimeout(() => this.end('connect-timeout', `not connected within ${this.opts.connectTimeoutMs} ms`), this.opts.connectTimeoutMs);
    this.sink.offer({ peer: this.mainId, participant: null, sdp });
  }

  private onMainConnected(): void {
    if (this.closed || this.connected) return;
    this.connected = true;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    if (this.opts.selfView) {
      this.unsubs.push(this.publisher.subscribeVideoRtp((rtp) => this.main.track.writeRtp(rtp)));
      this.publisher.requestKeyframe('self-view');
    }
    this.log.info({ selfView: this.opts.selfView }, 'participant connected');
  }

  private end(code: ErrorCode, message: string): void {
    if (this.closed) return;
    const cb = this.onEnded;
    this.onEnded = null;
    cb?.({ code, message });
  }

  /** Another participant's media comes to this caller on a new peer of its own. */
  async addFeed(remote: ParticipantInfo, tap: MediaTap): Promise<void> {
    if (this.closed || this.feeds.has(remote.id)) return;
    const feed = new Feed(randomUUID(), tap, this.opts.codec, this.opts.ice, this.opts.connectTimeoutMs, this.metrics, this.log);
    this.feeds.set(remote.id, feed);
    feed.onEnded = (why) => {
      this.log.warn({ feed: feed.id, remote: remote.id, why }, 'feed ended');
      if (this.feeds.get(remote.id) === feed) this.feeds.delete(remote.id);
      void feed.close();
    };
    try {
      const sdp = await feed.offer();
      if (!this.closed && this.feeds.get(remote.id) === feed) this.sink.offer({ peer: feed.id, participant: remote.id, sdp });
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'feed offer failed');
      this.dropFeed(remote.id);
    }
  }

  dropFeed(remoteId: string): void {
    const feed = this.feeds.get(remoteId);
    this.feeds.delete(remoteId);
    void feed?.close();
  }

  /** Tells the caller that someone joined / left. */
  announceJoined(p: ParticipantInfo): void {
    if (!this.closed) this.sink.joined(p);
  }
  announceLeft(id: string): void {
    this.dropFeed(id);
    if (!this.closed) this.sink.left({ participant: id });
  }

  private peerById(id: string): Peer | null {
    if (id === this.mainId) return this.main;
    for (const f of this.feeds.values()) if (f.id === id) return f.peer;
    return null;
  }

  /** Applies the caller's answer to one of its peers; false when there is no such peer (left meanwhile). */
  async answer(peerId: string, sdp: string): Promise<boolean> {
    const peer = this.peerById(peerId);
    if (!peer || this.closed) return false;
    await peer.setAnswer(sdp);
    return true;
  }

  async addCandidate(peerId: string, c: IceCandidate): Promise<boolean> {
    const peer = this.peerById(peerId);
    if (!peer || this.closed) return false;
    await peer.addCandidate(c);
    return true;
  }

  calibrate(neutral: DrivingValues): void {
    this.driving.calibrate(neutral);
  }

  toJSON(): Record<string, unknown> {
    return {
      ...this.info,
      connected: this.connected,
      ...this.counts,
      main: this.main.toJSON(),
      publisher: this.publisher.toJSON(),
      feeds: [...this.feeds.values()].map((f) => f.toJSON()),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onEnded = null;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    for (const u of this.unsubs.splice(0)) u();
    const feeds = [...this.feeds.values()];
    this.feeds.clear();
    await Promise.all([
      ...feeds.map((f) => f.close()),
      this.publisher.close(),
      this.main.close().finally(() => this.metrics.peers.dec()),
    ]);
  }
}
