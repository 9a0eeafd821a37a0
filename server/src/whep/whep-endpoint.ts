/**
 * WHEP (RFC 9725, WebRTC-HTTP egress protocol) for viewers of a room participant:
 *
 *   POST   /whep/ROOM/PARTICIPANT        application/sdp offer → 201, SDP answer, Location: /whep/ROOM/PARTICIPANT/ID
 *   DELETE /whep/ROOM/PARTICIPANT/ID     ends that viewer → 200
 *   PATCH  /whep/ROOM/PARTICIPANT/ID     405: no trickle ICE or ICE restart (the answer carries all candidates)
 *   OPTIONS                              CORS pre-flight for allowed origins → 204
 *
 * The access policy applies as to the page: a browser's Origin must be on the allow-list; with join tokens in use
 * the request needs `Authorization: Bearer TOKEN` whose scope admits the participant's avatar. Every viewer gets
 * the tap's one shared encode.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge } from 'prom-client';
import type { AccessPolicy } from '../access/access-policy.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { IceOptions, IceServerConfig } from '../session/peer.js';
import { TAP_NAME_RE, type TapDirectory, type TapEntry } from '../stream/tap-directory.js';
import { checkWhepOffer, MAX_OFFER_BYTES, WhepError } from './whep-sdp.js';
import { WhepViewer } from './whep-viewer.js';
import type { TapBandwidth } from '../stream/tap-bandwidth.js';

const WHEP_PREFIX = '/whep/';

export interface WhepOptions {
  ice: IceOptions;
  iceServers: () => IceServerConfig[];
  /** Most viewers at once (all taps together). */
  maxViewers: number;
  /** A viewer not connected this long after its answer is dropped (ms). */
  connectTimeoutMs: number;
}

interface ViewerRecord {
  viewer: WhepViewer;
  entry: TapEntry;
  timer: NodeJS.Timeout | null;
  offClosed: () => void;
  detachBandwidth: () => void;
}

class WhepMetrics {
  readonly viewers: Gauge;
  readonly requests: Counter<'method' | 'status'>;
  constructor(m: Metrics) {
    this.viewers = new Gauge({ name: 'dnp_whep_viewers', help: 'WHEP viewers (answered, not yet ended)', registers: [m.registry] });
    this.requests = new Counter({ name: 'dnp_whep_requests_total', help: 'WHEP HTTP requests by method and response status', labelNames: ['method', 'status'], registers: [m.registry] });
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > limit) {
      reject(new WhepError(413, `body larger than ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new WhepError(413, `body larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export class WhepEndpoint {
  private readonly viewers = new Map<string, ViewerRecord>();
  private readonly metrics: WhepMetrics;
  private closed = false;
  /** Called with each new viewer. */
  onViewer: ((viewer: WhepViewer, entry: TapEntry) => void) | null = null;
  /** The bandwidth policy every viewer's RTCP feeds (set by the server). */
  bandwidth: TapBandwidth | null = null;

  constructor(
    private readonly opts: WhepOptions,
    private readonly taps: TapDirectory,
    private readonly access: AccessPolicy,
    metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.metrics = new WhepMetrics(metrics);
  }

  get size(): number {
    return this.viewers.size;
  }

  handles(url: string | undefined): boolean {
    return url !== undefined && url.startsWith(WHEP_PREFIX);
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? 'GET';
    this.route(req, res, method).catch((err: unknown) => {
      const e = err instanceof WhepError ? err : new WhepError(500, 'internal error');
      if (!(err instanceof WhepError)) this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'whep request failed');
      this.reply(res, method, e.status, `${e.message}\n`);
    });
  }

  private reply(res: ServerResponse, method: string, status: number, body: string, headers: Record<string, string> = {}): void {
    this.metrics.requests.inc({ method, status: String(status) });
    if (res.headersSent) return;
    const type = headers['content-type'] ?? 'text/plain; charset=utf-8';
    res.writeHead(status, { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  }

  private cors(req: IncomingMessage): Record<string, string> {
    const origin = req.headers.origin;
    if (origin === undefined) return {};
    return { 'access-control-allow-origin': origin, 'access-control-expose-headers': 'Location', vary: 'Origin' };
  }

  private async route(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    if (this.closed) throw new WhepError(503, 'server closing');
    if (!this.access.origins.allows(req.headers.origin)) throw new WhepError(403, 'forbidden origin');
    let parts: string[];
    try {
      parts = new URL(req.url ?? '/', 'http://x').pathname.slice(WHEP_PREFIX.length).split('/').map(decodeURIComponent);
    } catch {
      throw new WhepError(400, 'bad URL');
    }
    if (parts.length < 2 || parts.length > 3 || !parts.every((p) => TAP_NAME_RE.test(p))) throw new WhepError(404, 'not a WHEP endpoint (/whep/ROOM/PARTICIPANT)');
    const [room, participant, viewerId] = parts as [string, string, string | undefined];
    if (method === 'OPTIONS') {
      this.reply(res, method, 204, '', {
        ...this.cors(req),
        allow: viewerId ? 'DELETE, OPTIONS' : 'POST, OPTIONS',
        'access-control-allow-methods': viewerId ? 'DELETE, PATCH, OPTIONS' : 'POST, OPTIONS',
        'access-control-allow-headers': 'Content-Type, Authorization',
        ...(viewerId ? {} : { 'accept-post': 'application/sdp' }),
      });
      return;
    }
    if (viewerId === undefined) {
      if (method !== 'POST') {
        this.reply(res, method, 405, 'method not allowed (POST an SDP offer)\n', { allow: 'POST, OPTIONS' });
        return;
      }
      await this.post(req, res, room, participant);
      return;
    }
    const rec = this.viewers.get(viewerId);
    if (!rec || rec.entry.room !== room || rec.entry.participant !== participant) throw new WhepError(404, 'no such WHEP session');
    this.checkAuth(req, rec.entry);
    if (method === 'DELETE') {
      await this.drop(viewerId, 'delete');
      this.reply(res, method, 200, '', this.cors(req));
      return;
    }
    // PATCH (trickle ICE, ICE restart) is not supported: the answer carries every server candidate.
    this.reply(res, method, 405, 'method not allowed (no trickle ICE or ICE restart; DELETE ends the session)\n', { ...this.cors(req), allow: 'DELETE, OPTIONS' });
  }

  private checkAuth(req: IncomingMessage, entry: TapEntry): void {
    if (!this.access.tokensRequired) return;
    const m = /^Bearer ([\x21-\x7e]{1,1024})$/.exec(req.headers.authorization ?? '');
    let claims;
    try {
      claims = this.access.checkToken(m?.[1]);
    } catch (err) {
      throw new WhepError(401, err instanceof Error ? err.message : 'bad token');
    }
    if (!this.access.allowsAvatar(claims, entry.avatar)) throw new WhepError(403, 'token not valid for this avatar');
  }

  private async post(req: IncomingMessage, res: ServerResponse, room: string, participant: string): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/sdp') throw new WhepError(415, 'Content-Type must be application/sdp');
    const body = await readBody(req, MAX_OFFER_BYTES);
    const entry = this.taps.find(room, participant);
    if (!entry) throw new WhepError(404, `no participant ${participant} streaming in room ${room}`);
    this.checkAuth(req, entry);
    if (this.viewers.size >= this.opts.maxViewers) throw new WhepError(503, 'too many viewers');
    const offer = checkWhepOffer(body, entry.tap.video.codec);
    const id = randomUUID();
    const viewer = new WhepViewer(id, entry.tap, { ice: this.opts.ice, iceServers: this.opts.iceServers() }, this.log);
    const rec: ViewerRecord = { viewer, entry, timer: null, offClosed: () => {}, detachBandwidth: () => {} };
    this.viewers.set(id, rec);
    this.metrics.viewers.set(this.viewers.size);
    rec.offClosed = entry.tap.onClosed(() => void this.drop(id, 'tap closed'));
    let answer: string;
    try {
      answer = await viewer.answer(offer);
    } catch (err) {
      await this.drop(id, 'negotiation failed');
      throw err instanceof WhepError ? err : new WhepError(400, `offer not usable: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!this.viewers.has(id)) throw new WhepError(503, 'the stream ended while negotiating');
    rec.timer = setTimeout(() => {
      if (viewer.connectionState !== 'connected') void this.drop(id, 'connect timeout');
    }, this.opts.connectTimeoutMs);
    viewer.onState = (s) => {
      if (s === 'failed' || s === 'closed') void this.drop(id, `peer ${s}`);
    };
    if (this.bandwidth) rec.detachBandwidth = this.bandwidth.attach(entry.tap, id, () => viewer.sender.videoSsrc, (cb) => (viewer.sender.onFeedback = cb));
    this.onViewer?.(viewer, entry);
    this.log.info({ viewer: id, room, participant, viewers: this.viewers.size }, 'whep viewer added');
    this.reply(res, 'POST', 201, answer, { ...this.cors(req), 'content-type': 'application/sdp', location: `${WHEP_PREFIX}${encodeURIComponent(room)}/${encodeURIComponent(participant)}/${id}` });
  }

  private async drop(id: string, reason: string): Promise<void> {
    const rec = this.viewers.get(id);
    if (!rec) return;
    this.viewers.delete(id);
    this.metrics.viewers.set(this.viewers.size);
    if (rec.timer) clearTimeout(rec.timer);
    rec.offClosed();
    rec.detachBandwidth();
    this.log.info({ viewer: id, reason, viewers: this.viewers.size }, 'whep viewer ended');
    await rec.viewer.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.viewers.keys()].map((id) => this.drop(id, 'server closing')));
  }
}
