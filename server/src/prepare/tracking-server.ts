/**
 * Tracks frames with the live client's FaceTracker in headless Chromium. A small HTTP server on
 * 127.0.0.1:0 serves the tracking page (client/dist/prepare-page.js), MediaPipe's wasm (client/dist/wasm)
 * and the model, and hands out raw RGBA frames (GET /frame/:i, fetched a few frames ahead by a worker in
 * the page) from a bounded queue the decoder fills; the page posts the driving values back in batches
 * (see client/src/prepare-page.ts for the protocol). A watchdog fails the session when the page stalls.
 */
import { readFileSync, existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { HeadlessChromium } from '../browser/chromium.js';
import { BLENDSHAPE_COUNT } from '../../../shared/src/blendshapes.js';
import { LANDMARK_COUNT } from '../../../shared/src/face-landmarks.js';
import { GAZE_SIZE, POSE_SIZE } from '../../../shared/src/pose.js';

export interface TrackedFrame {
  found: boolean;
  pose: Float32Array | null;
  gaze: Float32Array | null;
  blendshapes: Float32Array | null;
  /** Landmark extent, normalised to the tracked image: [x0, y0, x1, y1]. */
  box: [number, number, number, number] | null;
  /** The 478 face landmarks as flat [x, y, …], normalised to the tracked image; null when none reported. */
  landmarks: Float32Array | null;
  /** Time the page spent tracking this frame (ms). */
  ms: number;
}

export interface TrackingOptions {
  /** face_landmarker.task bytes. */
  model: Buffer;
  /** Folder holding prepare-page.js and wasm/ (client/dist). */
  clientDist: string;
  chromiumPath?: string;
  /** Frames decoded ahead of the tracker (memory bound). */
  queueFrames?: number;
  onPageLog?: (text: string) => void;
  /** See ChromiumLaunchOptions.handleSignals. */
  handleSignals?: boolean;
  /** Fail when the page makes no progress (loads, asks for a frame, returns results) for this long (default 60 s). */
  stallTimeoutMs?: number;
}

const PAGE_HTML = '<!doctype html><meta charset="utf-8"><title>dnp prepare</title><script type="module" src="/prepare-page.js"></script>';

interface PageFiles {
  page: Buffer;
  map: Buffer | null;
  wasmDir: string;
}

interface QueuedFrame {
  pixels: Buffer;
  width: number;
  height: number;
  timestampMs: number;
}

function finiteArray(v: unknown, len: number, what: string): Float32Array {
  if (!Array.isArray(v) || v.length !== len) throw new Error(`${what}: expected ${len} numbers`);
  const out = new Float32Array(len);
  v.forEach((x, k) => {
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`${what}[${k}]: not a finite number`);
    out[k] = x;
  });
  return out;
}

/** Validates the JSON results array the page sent. */
export function parsePageResults(v: unknown, maxIndex: number): Array<{ i: number; r: TrackedFrame }> {
  if (!Array.isArray(v)) throw new Error('tracking page results: expected an array');
  return v.map((e: unknown, k) => {
    if (typeof e !== 'object' || e === null) throw new Error(`tracking page result ${k}: expected an object`);
    const o = e as Record<string, unknown>;
    const i = o.i;
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i > maxIndex) throw new Error(`tracking page result ${k}: bad frame index`);
    const ms = typeof o.ms === 'number' && Number.isFinite(o.ms) && o.ms >= 0 ? o.ms : 0;
    if (o.found !== true) return { i, r: { found: false, pose: null, gaze: null, blendshapes: null, box: null, landmarks: null, ms } };
    const box = o.box === null ? null : finiteArray(o.box, 4, `frame ${i} box`);
    const landmarks = o.landmarks === null || o.landmarks === undefined ? null : finiteArray(o.landmarks, LANDMARK_COUNT * 2, `frame ${i} landmarks`);
    return {
      i,
      r: {
        found: true,
        pose: finiteArray(o.pose, POSE_SIZE, `frame ${i} pose`),
        gaze: finiteArray(o.gaze, GAZE_SIZE, `frame ${i} gaze`),
        blendshapes: finiteArray(o.blendshapes, BLENDSHAPE_COUNT, `frame ${i} blendshapes`),
        box: box ? [box[0] as number, box[1] as number, box[2] as number, box[3] as number] : null,
        landmarks,
        ms,
      },
    };
  });
}

async function readBody(req: IncomingMessage, limit = 8 << 20): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > limit) throw new Error('request body too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export class TrackingSession {
  #server: Server;
  #browser: HeadlessChromium | null = null;
  #opts: TrackingOptions;
  #frames = new Map<number, QueuedFrame>();
  #frameWaiters = new Map<number, () => void>();
  #spaceWaiters: Array<() => void> = [];
  #ended = false;
  #pushed = 0;
  #results: TrackedFrame[] = [];
  #resultCount = 0;
  #finished: Promise<TrackedFrame[]>;
  #resolve!: (r: TrackedFrame[]) => void;
  #reject!: (e: Error) => void;
  #failed: Error | null = null;
  #closed: Promise<void> | null = null;
  #files: PageFiles;
  #lastActivity = performance.now();
  #watchdog: NodeJS.Timeout | null = null;
  /** Called after each tracked result arrives (progress). */
  onResult: ((tracked: number) => void) | null = null;

  private constructor(opts: TrackingOptions, server: Server, files: PageFiles) {
    this.#opts = opts;
    this.#server = server;
    this.#files = files;
    this.#finished = new Promise<TrackedFrame[]>((res, rej) => {
      this.#resolve = res;
      this.#reject = rej;
    });
    this.#finished.catch(() => undefined);
  }

  static async start(opts: TrackingOptions): Promise<TrackingSession> {
    const pagePath = join(opts.clientDist, 'prepare-page.js');
    const wasmDir = join(opts.clientDist, 'wasm');
    if (!existsSync(pagePath) || !existsSync(wasmDir)) {
      throw new Error(`the tracking page is not built (${pagePath} or ${wasmDir} missing): run \`npm run build\``);
    }
    const mapPath = `${pagePath}.map`;
    const files = { page: readFileSync(pagePath), map: existsSync(mapPath) ? readFileSync(mapPath) : null, wasmDir };
    const server = createServer();
    const session = new TrackingSession(opts, server, files);
    server.on('request', (req, res) => session.#handle(req, res));
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(0, '127.0.0.1', () => res());
    });
    try {
      const browser = await HeadlessChromium.launch({
        ...(opts.chromiumPath ? { executablePath: opts.chromiumPath } : {}),
        handleSignals: opts.handleSignals ?? true,
        onConsole: (type, text) => opts.onPageLog?.(`${type}: ${text}`),
      });
      session.#browser = browser;
      const page = await browser.page();
      page.on('pageerror', (e) => session.#fail(new Error(`tracking page error: ${e.message}`)));
      page.on('crash', () => session.#fail(new Error('the tracking page crashed')));
      const port = (server.address() as AddressInfo).port;
      await page.goto(`http://127.0.0.1:${port}/prepare.html`);
      const stall = opts.stallTimeoutMs ?? 60_000;
      session.#lastActivity = performance.now();
      session.#watchdog = setInterval(() => {
        // idle is fine while we have no frame for the page; a stall is the page not taking or tracking frames
        const waitingForUs = session.#frames.size === 0 && !session.#ended;
        if (!waitingForUs && performance.now() - session.#lastActivity > stall) {
          session.#fail(new Error(`the tracking page made no progress for ${Math.round(stall / 1000)} s`));
        }
        if (waitingForUs) session.#lastActivity = performance.now();
      }, 1000);
      session.#watchdog.unref();
    } catch (err) {
      await session.close();
      throw err;
    }
    return session;
  }

  #fail(err: Error): void {
    if (this.#failed) return;
    this.#failed = err;
    this.#reject(err);
    for (const w of this.#spaceWaiters.splice(0)) w();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    this.#lastActivity = performance.now();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const p = url.pathname;
    const send = (code: number, body: Buffer | string, type = 'text/plain'): void => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method === 'GET') {
      if (p.startsWith('/frame/')) {
        const i = Number(p.slice('/frame/'.length));
        if (!Number.isInteger(i) || i < 0) return send(400, 'bad frame index');
        this.#frameFor(i).then(
          (f) => {
            if (!f) return send(204, '');
            res.writeHead(200, {
              'content-type': 'application/octet-stream',
              'x-width': String(f.width),
              'x-height': String(f.height),
              'x-timestamp-ms': String(f.timestampMs),
              'cache-control': 'no-store',
            });
            res.end(f.pixels);
          },
          (err: unknown) => send(500, String(err)),
        );
        return;
      }
      if (p === '/prepare.html') return send(200, PAGE_HTML, 'text/html; charset=utf-8');
      if (p === '/favicon.ico') return send(204, '');
      if (p === '/prepare-page.js') return send(200, this.#files.page, 'text/javascript');
      if (p === '/prepare-page.js.map' && this.#files.map) return send(200, this.#files.map, 'application/json');
      if (p === '/model.task') return send(200, this.#opts.model, 'application/octet-stream');
      if (p.startsWith('/wasm/')) {
        const name = basename(p);
        const file = join(this.#files.wasmDir, name);
        if (name.length > 0 && !name.startsWith('.') && existsSync(file)) {
          return send(200, readFileSync(file), name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
        }
      }
      return send(404, 'not found');
    }
    if (req.method !== 'POST') return send(405, 'method not allowed');
    readBody(req)
      .then((body) => {
        if (p === '/error') {
          this.#fail(new Error(`tracking page: ${body.slice(0, 500)}`));
          return send(200, 'ok');
        }
        if (p === '/results' || p === '/done') {
          this.#accept(body);
          if (p === '/done') this.#complete();
          return send(200, 'ok');
        }
        send(404, 'not found');
      })
      .catch((err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        this.#fail(e);
        if (!res.headersSent) send(400, e.message);
      });
  }

  #accept(body: string): void {
    const parsed = parsePageResults(JSON.parse(body) as unknown, Math.max(0, this.#pushed - 1));
    // (a result can only name a frame that was handed out, i.e. pushed)
    for (const { i, r } of parsed) {
      if (this.#results[i] === undefined) this.#resultCount++;
      this.#results[i] = r;
    }
    if (parsed.length > 0) this.onResult?.(this.#resultCount);
  }

  #complete(): void {
    if (!this.#ended) return this.#fail(new Error('tracking page finished before the last frame'));
    if (this.#resultCount !== this.#pushed) {
      return this.#fail(new Error(`tracking page returned ${this.#resultCount} results for ${this.#pushed} frames`));
    }
    this.#resolve(this.#results);
  }

  async #frameFor(i: number): Promise<QueuedFrame | null> {
    while (!this.#frames.has(i) && !(this.#ended && i >= this.#pushed) && !this.#failed) {
      await new Promise<void>((r) => this.#frameWaiters.set(i, r));
    }
    const f = this.#frames.get(i) ?? null;
    this.#frames.delete(i);
    for (const w of this.#spaceWaiters.splice(0)) w();
    return f;
  }

  /** Queues frame `index` (must be the next one) for tracking; waits while the queue is full. */
  async push(index: number, pixels: Buffer, width: number, height: number, timestampMs: number): Promise<void> {
    if (index !== this.#pushed) throw new Error(`frames must be pushed in order (got ${index}, expected ${this.#pushed})`);
    if (this.#ended) throw new Error('push after end');
    const max = this.#opts.queueFrames ?? 8;
    while (this.#frames.size >= max && !this.#failed) await new Promise<void>((r) => this.#spaceWaiters.push(r));
    if (this.#failed) throw this.#failed;
    this.#frames.set(index, { pixels, width, height, timestampMs });
    this.#pushed++;
    const w = this.#frameWaiters.get(index);
    this.#frameWaiters.delete(index);
    w?.();
  }

  /** No more frames. */
  end(): void {
    this.#ended = true;
    for (const [, w] of this.#frameWaiters) w();
    this.#frameWaiters.clear();
  }

  /** Resolves with one result per pushed frame once the page has tracked them all. */
  results(): Promise<TrackedFrame[]> {
    return this.#finished;
  }

  /** Rejects the pending results (e.g. on SIGINT) and releases waiting producers. */
  abort(reason: Error): void {
    this.#fail(reason);
    for (const [, w] of this.#frameWaiters) w();
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.abort(new Error('tracking session closed'));
      if (this.#watchdog) clearInterval(this.#watchdog);
      await this.#browser?.close();
      this.#server.closeAllConnections();
      await new Promise<void>((r) => this.#server.close(() => r()));
    })();
    return this.#closed;
  }
}
