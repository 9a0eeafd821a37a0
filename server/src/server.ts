/**
 * DnpServer: the live avatar server. Owns (and closes, in reverse order) the HTTP server, Signaling
 * (socket.io), Sessions and the AvatarRegistry (one Renderer per avatar).
 *
 *   Server ─┬─ HTTP (page, /healthz, /metrics, /avatars, /config.json, tracker model) ── Metrics
 *           ├─ Signaling (socket.io)
 *           ├─ AvatarRegistry ── Renderer per avatar
 *           └─ Sessions ── Session ─┬─ Peer ─ DrivingChannel
 *                                   └─ VideoOutput (Encoder → RTP muxer → track)
 */
import { existsSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import { availableParallelism } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_AUDIO_EXPRESSION_DIR } from './audio/expression-model.js';
import { VoiceModel } from './audio/voice-model.js';
import type { VideoCodecName } from '../../shared/src/signaling.js';
import { AvatarRegistry } from './avatars/registry.js';
import { AccessPolicy } from './access/access-policy.js';
import { defaultAllowedOrigins } from './access/origins.js';
import type { TurnOptions } from './access/turn-credentials.js';
import { createHttpHandler, createMetricsHandler } from './http/http-handler.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { defaultEncodeWorkers, EncodePool } from './media/encode-pool.js';
import type { RenderDevice } from './render/ort-session.js';
import { defaultRenderWorkers } from './render/render-pool.js';
import { DEFAULT_RUN_TIMEOUT_MS } from './render/renderer.js';
import { Admission } from './session/admission.js';
import type { IceOptions } from './session/peer.js';
import { Sessions } from './session/sessions.js';
import { LIMIT_DEFAULTS } from './server-limits.js';
import { Signaling } from './signaling.js';
import { attachRoomSignaling, roomMemberships, socketsInRooms } from './rooms/room-signaling.js';
import { ROOM_DEFAULTS, Rooms } from './rooms/rooms.js';
import { TapDirectory } from './stream/tap-directory.js';
import { WhepEndpoint } from './whep/whep-endpoint.js';
import { EGRESS_CONFIG_DEFAULTS, EgressManager, type EgressConfig } from './egress/egress-manager.js';
import { attachEgressControl } from './egress/egress-control.js';
import { TapBandwidth } from './stream/tap-bandwidth.js';

export interface ServerOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  /** A folder of avatar folders, or one avatar folder. */
  avatarsDir: string;
  device: RenderDevice;
  /** ORT intra-op threads per avatar (0 = ORT default: one per core). */
  threads: number;
  /** Render worker threads per avatar (each its own model session, `threads` threads a run); default one per core, at most 4. */
  renderWorkers?: number;
  /** Encode worker threads (0 = encode on the main thread); default half the cores, at least one. */
  encodeWorkers?: number;
  maxBatch: number;
  ice: IceOptions;
  /** Folder of the built page (client/dist). */
  clientDir: string;
  /** Local copy of face_landmarker.task, or null. */
  trackerModelPath: string | null;
  keepaliveMs: number;
  connectTimeoutMs: number;
  /** Video bitrate in bit/s; 0 = from the avatar's size and fps. */
  bitrate: number;
  /** libvpx `cpu-used` of the VP8 streams, 0..16 (default DEFAULT_VP8_CPU_USED). */
  vp8CpuUsed?: number;
  maxSessions: number;
  /** Codec for a join request that names none. */
  defaultCodec: VideoCodecName;
  /** Start even when no avatar loaded (tests of bad avatars; the CLI refuses). */
  allowNoAvatars: boolean;
  /** A model run not finished after this long is abandoned (worker replaced); default 10 s. */
  renderTimeoutMs?: number;
  /** Page origins allowed to open signaling and send state-changing requests; null = the server's own origins. */
  allowedOrigins?: string[] | null;
  /** HMAC secret for join tokens; when set, every socket needs a valid token (`dnp token`). */
  tokenSecret?: string | null;
  /** Short-lived TURN credentials derived from a shared secret (coturn use-auth-secret). */
  turn?: TurnOptions | null;
  /** Serve /metrics on 127.0.0.1:metricsPort only (0 = any free port), instead of on the main port. */
  metricsPort?: number | null;
  /** Joins per minute per client address (token bucket); default 20. */
  joinsPerMinute?: number;
  /** Admission control on measured load (refuse a join with `busy` rather than degrade everybody); default on. */
  admission?: boolean;
  /** Admission: predicted load × this must fit each budget (≥ 1); default 1.25. */
  admissionHeadroom?: number;
  /** Open signaling sockets per client address, joined or not; default 16. */
  maxSocketsPerAddress?: number;
  /** Disconnect a signaling socket without a session after this long (ms; 0 = never); default 30 s. */
  joinTimeoutMs?: number;
  /** Close a connected session after this long without a driving frame (ms; 0 = never); default 120 s. */
  idleTimeoutMs?: number;
  /** Most driving-frame messages per second per session; default 120. */
  maxDrivingHz?: number;
  /** Serve every avatar at this frame rate at most (an avatar trained at more is rendered and sent at this);
   *  absent: each avatar's own rate. */
  maxFps?: number | null;
  /** PLI-triggered keyframes at most once per this many ms per stream; default 500. */
  keyframeMinIntervalMs?: number;
  /** Most WHEP viewers at once (all streams together); default 100. */
  maxWhepViewers?: number;
  /** Egress outputs (RTMP, WHIP, MP4 recording); absent = none configured (control messages still need it). */
  egress?: EgressConfig;
  /** Call rooms admitted by name (`--rooms a,b`); null/absent = any name. */
  rooms?: string[] | null;
  /** Most participants per room (`--room-size`); default 4. */
  roomSize?: number;
  /**
   * Folder of the audio-to-expression model for microphone/both joins (model.json + model.onnx); undefined =
   * assets/audio-expression when it is there; null = none (voice joins are refused).
   */
  audioModelDir?: string | null;
  /** Head and eyes of microphone-only callers: the avatar's idle motion (default) or still (measurements, tests). */
  idleMotion?: 'avatar' | 'still';
}

function listen(http: HttpServer, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
}

function closeHttp(http: HttpServer): Promise<void> {
  return new Promise<void>((resolve) => {
    if (!http.listening) {
      resolve();
      return;
    }
    http.close(() => resolve());
    http.closeAllConnections();
  });
}

export class DnpServer {
  readonly metrics: Metrics;
  /** Live participant streams by room and participant (WHEP viewers and egress find them here). */
  readonly taps = new TapDirectory();
  /** Call rooms (set in start()). */
  rooms: Rooms | null = null;
  /** POST /whep/ROOM/PARTICIPANT (set in start()). */
  whep: WhepEndpoint | null = null;
  /** Egress outputs (set in start()). */
  egress: EgressManager | null = null;
  /** Bandwidth policy of the shared encodes: receivers' RTCP → encoder bitrate (set in start()). */
  bandwidth: TapBandwidth | null = null;
  /** The audio-to-expression model of microphone/both sessions (set in start(); null = none). */
  voiceModel: VoiceModel | null = null;
  /** The encode worker threads every session and room stream encodes in (owned here, closed last but one). */
  encodePool: EncodePool | null = null;
  private closed = false;

  private constructor(
    readonly options: ServerOptions,
    readonly avatars: AvatarRegistry,
    readonly sessions: Sessions,
    private readonly http: HttpServer,
    private readonly signaling: Signaling,
    private readonly metricsHttp: HttpServer | null,
    readonly access: AccessPolicy,
    metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.metrics = metrics;
  }

  static async start(options: ServerOptions, log: Logger): Promise<DnpServer> {
    const metrics = new Metrics();
    const encodeWorkers = options.encodeWorkers ?? defaultEncodeWorkers(availableParallelism());
    const renderWorkers = options.renderWorkers ?? defaultRenderWorkers(availableParallelism());
    const encodePool = new EncodePool({ workers: encodeWorkers, log, ...(options.vp8CpuUsed === undefined ? {} : { vp8CpuUsed: options.vp8CpuUsed }) });
    encodePool.onWorkerFailed = () => metrics.encodeWorkerFailures.inc();
    metrics.liveEncodePool = () => encodePool.live;
    const admission = new Admission({
      enabled: options.admission ?? LIMIT_DEFAULTS.admission,
      headroom: options.admissionHeadroom ?? LIMIT_DEFAULTS.admissionHeadroom,
      cores: availableParallelism(),
      renderThreads: options.threads,
      renderWorkers,
      encodeWorkers,
    });
    const avatars = await AvatarRegistry.load(options.avatarsDir, { device: options.device, threads: options.threads, workers: renderWorkers, maxBatch: options.maxBatch, runTimeoutMs: options.renderTimeoutMs ?? DEFAULT_RUN_TIMEOUT_MS }, log, { maxFps: options.maxFps ?? undefined });
    metrics.avatars.set(avatars.size);
    metrics.avatarLoadErrors.inc(avatars.errors.length);
    for (const a of avatars.list()) {
      a.renderer.onRun = (ms, batch) => {
        metrics.renderMs.observe({ avatar: a.id }, ms);
        metrics.renderBatch.observe(batch);
        admission.observeRender(a.id, ms, batch);
      };
      a.renderer.onBehind = () => metrics.renderBehind.inc({ avatar: a.id });
      a.renderer.onHung = () => metrics.renderHung.inc({ avatar: a.id });
      a.renderer.onRestart = () => metrics.renderRestarts.inc({ avatar: a.id });
    }
    metrics.liveRenderers = () => avatars.list().map((a) => ({ avatar: a.id, ...a.renderer.live }));
    if (avatars.size === 0 && !options.allowNoAvatars) {
      await avatars.close();
      const why = avatars.errors.length ? ` (${avatars.errors.length} skipped: ${avatars.errors.map((e) => e.error).join('; ')})` : '';
      throw new Error(`no usable avatar in ${options.avatarsDir}${why}`);
    }
    const http = createServer();
    let metricsHttp: HttpServer | null = null;
    try {
      await listen(http, options.port, options.host);
      if (options.metricsPort !== undefined && options.metricsPort !== null) {
        metricsHttp = createServer(createMetricsHandler(metrics));
        await listen(metricsHttp, options.metricsPort, '127.0.0.1');
      }
    } catch (err) {
      await closeHttp(http);
      if (metricsHttp) await closeHttp(metricsHttp);
      await avatars.close();
      throw new Error(`cannot listen on ${options.host}:${options.port}${options.metricsPort != null ? ` (metrics: 127.0.0.1:${options.metricsPort})` : ''}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const port = (http.address() as AddressInfo).port;
    const access = new AccessPolicy({
      origins: options.allowedOrigins ?? defaultAllowedOrigins(options.host, port),
      tokenSecret: options.tokenSecret ?? null,
      turn: options.turn ?? null,
      staticIceServers: options.ice.iceServers,
    });
    let voiceModel: VoiceModel | null = null;
    const modelDir = options.audioModelDir === undefined ? (existsSync(join(DEFAULT_AUDIO_EXPRESSION_DIR, 'model.json')) ? DEFAULT_AUDIO_EXPRESSION_DIR : null) : options.audioModelDir;
    if (modelDir === null) log.info('no audio-to-expression model: microphone and both joins are refused');
    else {
      try {
        voiceModel = await VoiceModel.load(modelDir, log);
      } catch (err) {
        await closeHttp(http);
        if (metricsHttp) await closeHttp(metricsHttp);
        await avatars.close();
        throw err;
      }
    }
    const sessions = new Sessions(
      {
        ice: options.ice,
        iceServers: () => access.iceServersForSession(),
        keepaliveMs: options.keepaliveMs,
        connectTimeoutMs: options.connectTimeoutMs,
        bitrate: options.bitrate,
        maxSessions: options.maxSessions,
        idleTimeoutMs: options.idleTimeoutMs ?? LIMIT_DEFAULTS.idleTimeoutMs,
        maxDrivingHz: options.maxDrivingHz ?? LIMIT_DEFAULTS.maxDrivingHz,
        keyframeMinIntervalMs: options.keyframeMinIntervalMs ?? LIMIT_DEFAULTS.keyframeMinIntervalMs,
        admission,
        voiceModel,
        idleMotion: options.idleMotion ?? 'avatar',
        encodePool,
      },
      metrics,
      log,
    );
    const handler = createHttpHandler(
      { clientDir: options.clientDir, trackerModelPath: options.trackerModelPath, serveMetrics: metricsHttp === null },
      { avatars, metrics, access, sessionCount: () => sessions.size, log },
    );
    let whep: WhepEndpoint | null = null;
    // socket.io handles its own path; /whep/ goes to WHEP; everything else goes to the handler.
    http.on('request', (req, res) => {
      if (req.url?.startsWith('/socket.io/')) return;
      if (whep?.handles(req.url)) whep.handle(req, res);
      else handler(req, res);
    });
    const signaling = new Signaling(http, avatars, sessions, access, metrics, log, options.defaultCodec, {
      joinsPerMinute: options.joinsPerMinute ?? LIMIT_DEFAULTS.joinsPerMinute,
      maxSocketsPerAddress: options.maxSocketsPerAddress ?? LIMIT_DEFAULTS.maxSocketsPerAddress,
      joinTimeoutMs: options.joinTimeoutMs ?? LIMIT_DEFAULTS.joinTimeoutMs,
    });
    const server = new DnpServer(options, avatars, sessions, http, signaling, metricsHttp, access, metrics, log);
    server.encodePool = encodePool;
    server.voiceModel = voiceModel;
    whep = new WhepEndpoint(
      { ice: options.ice, iceServers: () => access.iceServersForSession(), maxViewers: options.maxWhepViewers ?? 100, connectTimeoutMs: options.connectTimeoutMs },
      server.taps,
      access,
      metrics,
      log,
    );
    server.whep = whep;
    server.bandwidth = new TapBandwidth(metrics);
    whep.bandwidth = server.bandwidth;
    const egress = new EgressManager(options.egress ?? EGRESS_CONFIG_DEFAULTS, server.taps, options.ice, () => access.iceServersForSession(), metrics, log);
    egress.encodePool = encodePool;
    server.egress = egress;
    const rooms = new Rooms(
      {
        allowed: options.rooms ?? null,
        maxParticipants: options.roomSize ?? ROOM_DEFAULTS.maxParticipants,
        ice: options.ice,
        iceServers: () => access.iceServersForSession(),
        connectTimeoutMs: options.connectTimeoutMs,
        bitrate: options.bitrate,
        keepaliveMs: options.keepaliveMs,
        keyframeMinIntervalMs: options.keyframeMinIntervalMs ?? LIMIT_DEFAULTS.keyframeMinIntervalMs,
        maxDrivingHz: options.maxDrivingHz ?? LIMIT_DEFAULTS.maxDrivingHz,
        joinsPerMinute: options.joinsPerMinute ?? LIMIT_DEFAULTS.joinsPerMinute,
        encodePool,
      },
      server.taps,
      metrics,
      log,
    );
    server.rooms = rooms;
    signaling.socketHeld = (socket) => socketsInRooms.has(socket);
    signaling.io.on('connection', (socket) => attachRoomSignaling(socket, { rooms, avatars, access, metrics, log, accepting: () => !server.closed }));
    signaling.io.on('connection', (socket) => attachEgressControl(socket, { manager: egress, taps: server.taps, membership: (s) => roomMemberships.get(s), metrics, log }));
    log.info(
      {
        url: server.url,
        avatars: avatars.list().map((a) => a.id),
        device: options.device,
        renderWorkers,
        encodeWorkers,
        allowedOrigins: access.origins.list(),
        tokens: access.tokensRequired,
        turn: options.turn ? options.turn.urls : null,
        metricsUrl: server.metricsUrl,
      },
      'dnp server listening',
    );
    return server;
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  get url(): string {
    const host = this.options.host === '0.0.0.0' || this.options.host === '::' ? '127.0.0.1' : this.options.host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  /** Where /metrics is served: the separate loopback port, or the main URL. */
  get metricsUrl(): string {
    if (!this.metricsHttp) return `${this.url}/metrics`;
    return `http://127.0.0.1:${(this.metricsHttp.address() as AddressInfo).port}/metrics`;
  }

  toJSON(): Record<string, unknown> {
    return { url: this.url, avatars: this.avatars.toJSON(), sessions: this.sessions.toJSON() };
  }

  /**
   * Stops accepting (no new connections, joins refused), tells every connected caller why (`shutdown`), closes
   * the sessions, signaling, HTTP and the renderers. Bounded: each part has its own time limit. Idempotent.
   */
  async close(reason = 'the server is shutting down'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.log.info({ reason }, 'dnp server closing');
    const httpClosed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.signaling.notifyShutdown(reason);
    await this.whep?.close();
    await this.egress?.close();
    this.bandwidth?.close();
    await this.sessions.close();
    await this.rooms?.close();
    await this.signaling.close();
    this.http.closeAllConnections();
    await httpClosed;
    if (this.metricsHttp) await closeHttp(this.metricsHttp);
    await this.avatars.close();
    await this.encodePool?.close();
    await this.voiceModel?.close();
    this.log.info('dnp server closed');
  }
}
