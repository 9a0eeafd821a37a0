/**
 * HTTP routes: the page (static files from client/dist), /healthz, /metrics, /avatars, /config.json and
 * the tracker model at /models/face_landmarker.task (from DNP_TRACKER_MODEL; 404 when not configured, and
 * /config.json then points the page at the official model URL).
 */
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, dirname, join, resolve } from 'node:path';
import type { AccessPolicy } from '../access/access-policy.js';
import type { AvatarRegistry } from '../avatars/registry.js';
import { OFFICIAL_TRACKER_MODEL_URL } from '../../../shared/src/tracker-model.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { serveStatic, type StaticRoot } from './static-files.js';

const TRACKER_MODEL_PATH = '/models/face_landmarker.task';

export interface HttpOptions {
  clientDir: string;
  trackerModelPath: string | null;
  /** false when /metrics is on its own loopback port (then 404 here). */
  serveMetrics: boolean;
}

export interface HttpContext {
  avatars: AvatarRegistry;
  metrics: Metrics;
  access: AccessPolicy;
  sessionCount: () => number;
  log: Logger;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headOnly = false): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(headOnly ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, v: unknown, headOnly = false): void {
  send(res, status, 'application/json', JSON.stringify(v), headOnly);
}

export function createHttpHandler(opts: HttpOptions, ctx: HttpContext): (req: IncomingMessage, res: ServerResponse) => void {
  const clientDir = resolve(opts.clientDir);
  const trackerModelUrl = opts.trackerModelPath ? TRACKER_MODEL_PATH : OFFICIAL_TRACKER_MODEL_URL;
  const page: StaticRoot = { root: clientDir, index: ['index.html'], dotfiles: 'ignore' };
  // the model is served as the one file of its folder, under its own (encoded) name
  const model: StaticRoot | null = opts.trackerModelPath ? { root: dirname(resolve(opts.trackerModelPath)), index: [], dotfiles: 'allow' } : null;
  const modelUrlPath = opts.trackerModelPath ? `/${encodeURIComponent(basename(opts.trackerModelPath))}` : '';

  return (req, res) => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      // Every state-changing request is checked against the Origin allow-list first (CSRF), before routing.
      const origin = req.headers.origin;
      if (!ctx.access.origins.allows(origin)) {
        ctx.metrics.accessRefused.inc({ reason: 'origin' });
        ctx.log.warn({ origin, method, url: req.url }, 'request from a foreign origin refused');
        send(res, 403, 'text/plain; charset=utf-8', 'forbidden origin\n');
        return;
      }
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    const head = method === 'HEAD';
    let path: string;
    let urlPath: string;
    let query: URLSearchParams;
    try {
      const u = new URL(req.url ?? '/', 'http://x');
      urlPath = u.pathname;
      path = decodeURIComponent(urlPath);
      query = u.searchParams;
    } catch {
      send(res, 400, 'text/plain; charset=utf-8', 'bad URL\n');
      return;
    }
    switch (path) {
      case '/healthz':
        sendJson(res, 200, { ok: true, avatars: ctx.avatars.size, sessions: ctx.sessionCount() }, head);
        return;
      case '/metrics':
        if (!opts.serveMetrics) break; // on its own loopback port: a 404 here
        ctx.metrics.text().then(
          (text) => send(res, 200, ctx.metrics.contentType, text, head),
          (err: unknown) => send(res, 500, 'text/plain; charset=utf-8', `metrics failed: ${String(err)}\n`),
        );
        return;
      case '/avatars':
        sendJson(res, 200, ctx.avatars.summaries(), head);
        return;
      case '/config.json':
        // TURN credentials are derived per request and short-lived; with tokens in use, only for a valid ?token=.
        sendJson(res, 200, { trackerModelUrl, iceServers: ctx.access.iceServersForPage(query.get('token') ?? undefined) }, head);
        return;
      case TRACKER_MODEL_PATH:
        if (!model) {
          send(res, 404, 'text/plain; charset=utf-8', 'no local tracker model (set DNP_TRACKER_MODEL); the page uses the official URL from /config.json\n', head);
        } else {
          serveStatic(req, res, modelUrlPath, model, ctx.log);
        }
        return;
      default:
        break;
    }
    // Static page files.
    if (!existsSync(join(clientDir, 'index.html'))) {
      send(res, 503, 'text/plain; charset=utf-8', `The web page is not built (no ${join(clientDir, 'index.html')}). Run \`npm run build\` and reload.\n`, head);
      return;
    }
    serveStatic(req, res, urlPath, page, ctx.log);
  };
}

/** The handler of the separate loopback metrics port: GET /metrics only. */
export function createMetricsHandler(metrics: Metrics): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if ((req.method !== 'GET' && req.method !== 'HEAD') || path !== '/metrics') {
      send(res, 404, 'text/plain; charset=utf-8', 'not found (only GET /metrics here)\n');
      return;
    }
    metrics.text().then(
      (text) => send(res, 200, metrics.contentType, text, req.method === 'HEAD'),
      (err: unknown) => send(res, 500, 'text/plain; charset=utf-8', `metrics failed: ${String(err)}\n`),
    );
  };
}
