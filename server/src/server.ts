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
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { VideoCodecName } from '../../shared/src/signaling.js';
import { AvatarRegistry } from './avatars/registry.js';
import { createHttpHandler } from './http/http-handler.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import type { RenderDevice } from './render/ort-session.js';
import { DEFAULT_RUN_TIMEOUT_MS } from './render/renderer.js';
import type { IceOptions } from './session/peer.js';
import { Sessions } from './session/sessions.js';
import { Signaling } from './signaling.js';

export interface ServerOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  /** A folder of avatar folders, or one avatar folder. */
  avatarsDir: string;
  device: RenderDevice;
  /** ORT intra-op threads per avatar (0 = ORT default: one per core). */
  threads: number;
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
  maxSessions: number;
  /** Codec for a join request that names none. */
  defaultCodec: VideoCodecName;
  /** Start even when no avatar loaded (tests of bad avatars; the CLI refuses). */
  allowNoAvatars: boolean;
  /** A model run not finished after this long is abandoned (worker replaced); default 10 s. */
  renderTimeoutMs?: number;
}

export class DnpServer {
  readonly metrics: Metrics;
  private closed = false;

  private constructor(
    readonly options: ServerOptions,
    readonly avatars: AvatarRegistry,
    readonly sessions: Sessions,
    private readonly http: HttpServer,
    private readonly signaling: Signaling,
    metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.metrics = metrics;
  }

  static async start(options: ServerOptions, log: Logger): Promise<DnpServer> {
    const metrics = new Metrics();
    const avatars = await AvatarRegistry.load(options.avatarsDir, { device: options.device, threads: options.threads, maxBatch: options.maxBatch, runTimeoutMs: options.renderTimeoutMs ?? DEFAULT_RUN_TIMEOUT_MS }, log);
    metrics.avatars.set(avatars.size);
    metrics.avatarLoadErrors.inc(avatars.errors.length);
    for (const a of avatars.list()) {
      a.renderer.onRun = (ms, batch) => {
        metrics.renderMs.observe({ avatar: a.id }, ms);
        metrics.renderBatch.observe(batch);
      };
      a.renderer.onBehind = () => metrics.renderBehind.inc({ avatar: a.id });
      a.renderer.onHung = () => metrics.renderHung.inc({ avatar: a.id });
    }
    if (avatars.size === 0 && !options.allowNoAvatars) {
      await avatars.close();
      const why = avatars.errors.length ? ` (${avatars.errors.length} skipped: ${avatars.errors.map((e) => e.error).join('; ')})` : '';
      throw new Error(`no usable avatar in ${options.avatarsDir}${why}`);
    }
    const sessions = new Sessions(
      { ice: options.ice, keepaliveMs: options.keepaliveMs, connectTimeoutMs: options.connectTimeoutMs, bitrate: options.bitrate, maxSessions: options.maxSessions },
      metrics,
      log,
    );
    const http = createServer();
    const handler = createHttpHandler(
      { clientDir: options.clientDir, trackerModelPath: options.trackerModelPath, iceServers: options.ice.iceServers },
      { avatars, metrics, sessionCount: () => sessions.size, log },
    );
    // socket.io handles its own path; everything else goes to the handler.
    http.on('request', (req, res) => {
      if (req.url?.startsWith('/socket.io/')) return;
      handler(req, res);
    });
    const signaling = new Signaling(http, avatars, sessions, metrics, log, options.defaultCodec);
    try {
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(options.port, options.host, () => {
          http.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await signaling.close();
      await avatars.close();
      throw new Error(`cannot listen on ${options.host}:${options.port}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const server = new DnpServer(options, avatars, sessions, http, signaling, metrics, log);
    log.info({ url: server.url, avatars: avatars.list().map((a) => a.id), device: options.device }, 'dnp server listening');
    return server;
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  get url(): string {
    const host = this.options.host === '0.0.0.0' || this.options.host === '::' ? '127.0.0.1' : this.options.host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
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
    await this.sessions.close();
    await this.signaling.close();
    this.http.closeAllConnections();
    await httpClosed;
    await this.avatars.close();
    this.log.info('dnp server closed');
  }
}
