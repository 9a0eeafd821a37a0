/** Sessions: the live sessions of one server, by id. Owns each Session until it closes. */
import { randomUUID } from 'node:crypto';
import type { DriveMode, ErrorCode, VideoCodecName } from '../../../shared/src/signaling.js';
import type { MouthModel } from '../audio/voice-driver.js';
import type { AvatarEntry } from '../avatars/registry.js';
import type { Logger } from '../log.js';
import type { EncodePool } from '../media/encode-pool.js';
import type { Metrics } from '../metrics.js';
import type { Admission } from './admission.js';
import type { IceOptions, IceServerConfig } from './peer.js';
import { Session, type SessionEndReason } from './session.js';

/** A join the server refuses (full, shutting down), with the code the caller gets. */
export class JoinRefused extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'JoinRefused';
  }
}

export interface SessionsOptions {
  ice: IceOptions;
  /** ICE servers for each new session's peer (fresh short-lived TURN credentials); default ice.iceServers. */
  iceServers?: () => IceServerConfig[];
  keepaliveMs: number;
  connectTimeoutMs: number;
  bitrate: number;
  maxSessions: number;
  idleTimeoutMs: number;
  maxDrivingHz: number;
  keyframeMinIntervalMs: number;
  /** Admission control on measured load (null = only maxSessions). */
  admission?: Admission | null;
  /** The audio-to-expression model (null: only camera-driven joins). */
  voiceModel?: MouthModel | null;
  /** Head and eyes of microphone-only callers: the avatar's idle motion (default) or still. */
  idleMotion?: 'avatar' | 'still';
  /** Where sessions encode (media/encode-pool.ts). */
  encodePool: EncodePool;
}

export class Sessions {
  private readonly live = new Map<string, Session>();
  private closed = false;

  constructor(
    private readonly opts: SessionsOptions,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.live.size;
  }

  get(id: string): Session | undefined {
    return this.live.get(id);
  }

  /** Creates a session, or throws when the server is closing or full. */
  create(avatar: AvatarEntry, codec: VideoCodecName, onClosed: (reason: SessionEndReason, error?: string) => void, mode: DriveMode = 'camera'): Session {
    if (this.closed) throw new JoinRefused('shutting-down', 'server is shutting down');
    const voiceModel = this.opts.voiceModel ?? null;
    if (mode !== 'camera' && !voiceModel) throw new JoinRefused('bad-request', `join.mode ${mode}: this server has no audio-to-expression model (see dnp serve --help, --audio-model)`);
    if (this.live.size >= this.opts.maxSessions) throw new JoinRefused('server-full', `server is full (${this.opts.maxSessions} sessions)`);
    const admission = this.opts.admission ?? null;
    if (admission) {
      const refusal = admission.check(
        { avatar: avatar.id, fps: avatar.manifest.fps },
        [...this.live.values()].map((l) => ({ avatar: l.avatar.id, fps: l.avatar.manifest.fps })),
      );
      if (refusal) {
        this.metrics.admissionRefused.inc({ avatar: avatar.id, limit: refusal.limit });
        this.log.warn({ avatar: avatar.id, limit: refusal.limit, sessions: this.live.size, ...admission.perFrame(avatar.id) }, refusal.message);
        throw new JoinRefused('busy', refusal.message);
      }
    }
    const s = new Session(
      {
        id: randomUUID(),
        avatar,
        codec,
        ice: this.opts.iceServers ? { ...this.opts.ice, iceServers: this.opts.iceServers() } : this.opts.ice,
        keepaliveMs: this.opts.keepaliveMs,
        connectTimeoutMs: this.opts.connectTimeoutMs,
        bitrate: this.opts.bitrate,
        idleTimeoutMs: this.opts.idleTimeoutMs,
        maxDrivingHz: this.opts.maxDrivingHz,
        keyframeMinIntervalMs: this.opts.keyframeMinIntervalMs,
        observeEncode: admission ? (ms) => admission.observeEncode(avatar.id, ms) : null,
        mode,
        voiceModel,
        idleMotion: this.opts.idleMotion ?? 'avatar',
        encodePool: this.opts.encodePool,
      },
      this.metrics,
      this.log,
    );
    this.live.set(s.id, s);
    this.metrics.sessions.set(this.live.size);
    this.metrics.sessionsTotal.inc();
    s.onClosed = (reason, error) => {
      this.live.delete(s.id);
      this.metrics.sessions.set(this.live.size);
      if (reason === 'error') this.metrics.sessionErrors.inc();
      this.metrics.sessionsEnded.inc({ reason });
      onClosed(reason, error);
    };
    return s;
  }

  toJSON(): unknown[] {
    return [...this.live.values()].map((s) => s.toJSON());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.live.values()].map((s) => s.close('server-close')));
  }
}
