/**
 * The tracking page that `dnp prepare` drives in headless Chromium. It tracks the frames the local
 * prepare server hands out with the very FaceTracker the live page uses (face-tracker.ts: CPU delegate,
 * VIDEO mode, shared tracker mapping), and sends the driving values back.
 *
 * Protocol (all same-origin, served by server/src/prepare/tracking-server.ts):
 *   GET  /frame/:i  → frame i as raw RGBA (headers X-Width, X-Height, X-Timestamp-Ms), 204 after the last
 *   POST /results   body: JSON array of tracked frames (sent in batches)
 *   POST /done      body: JSON array of the remaining tracked frames; tracking is over
 *   POST /error     body: text of an error that stopped tracking
 * Frames are fetched by a small worker a few frames ahead and transferred (not copied) to this page, so
 * the download overlaps detectForVideo, which blocks this page's thread.
 */
import { FaceTracker } from './tracking/face-tracker.js';

interface PageFrame {
  i: number;
  w: number;
  h: number;
  ts: number;
  buf: ArrayBuffer;
}

type WorkerMessage = { frame: PageFrame } | { end: true } | { error: string };

/** One tracked frame as sent to the server; null fields when no face was found. */
interface PageResult {
  i: number;
  found: boolean;
  pose: number[] | null;
  gaze: number[] | null;
  blendshapes: number[] | null;
  box: [number, number, number, number] | null;
  /** The 478 landmarks as flat [x, y, …], normalised to the frame (5 decimals); null when none. */
  landmarks: number[] | null;
  /** Milliseconds spent in the tracker (ImageData + detectForVideo) for this frame. */
  ms: number;
}

const AHEAD = 3; // frames the worker may hold before this page takes them
const BATCH = 30; // results per POST

// The fetching worker, inline so the page stays one bundle. `credit` messages allow one more frame.
const workerSource = (origin: string): string => `
const origin = ${JSON.stringify(origin)};
let credits = ${AHEAD};
let wake = null;
onmessage = () => { credits++; if (wake) { const w = wake; wake = null; w(); } };
(async () => {
  for (let i = 0; ; i++) {
    while (credits <= 0) await new Promise((r) => (wake = r));
    credits--;
    const res = await fetch(origin + '/frame/' + i);
    if (res.status === 204) { postMessage({ end: true }); return; }
    if (!res.ok) throw new Error('frame ' + i + ': HTTP ' + res.status);
    const num = (n) => { const v = Number(res.headers.get(n)); if (!Number.isFinite(v)) throw new Error('frame ' + i + ': no ' + n); return v; };
    const w = num('x-width'), h = num('x-height'), ts = num('x-timestamp-ms');
    const buf = await res.arrayBuffer();
    if (buf.byteLength !== w * h * 4) throw new Error('frame ' + i + ': ' + buf.byteLength + ' bytes for ' + w + 'x' + h + ' RGBA');
    postMessage({ frame: { i, w, h, ts, buf } }, [buf]);
  }
})().catch((e) => postMessage({ error: String(e && e.message ? e.message : e) }));
`;

class FrameSource {
  #worker: Worker;
  #queue: WorkerMessage[] = [];
  #waiter: ((m: WorkerMessage) => void) | null = null;

  constructor() {
    const url = URL.createObjectURL(new Blob([workerSource(location.origin)], { type: 'text/javascript' }));
    this.#worker = new Worker(url);
    URL.revokeObjectURL(url);
    this.#worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
      if (this.#waiter) {
        const w = this.#waiter;
        this.#waiter = null;
        w(e.data);
      } else {
        this.#queue.push(e.data);
      }
    };
    this.#worker.onerror = (e) => {
      const m: WorkerMessage = { error: `frame worker: ${e.message}` };
      if (this.#waiter) this.#waiter(m);
      else this.#queue.push(m);
    };
  }

  /** The next frame, or null after the last one. */
  async next(): Promise<PageFrame | null> {
    const m = this.#queue.shift() ?? (await new Promise<WorkerMessage>((r) => (this.#waiter = r)));
    if ('error' in m) throw new Error(m.error);
    if ('end' in m) return null;
    this.#worker.postMessage('credit');
    return m.frame;
  }

  close(): void {
    this.#worker.terminate();
  }
}

async function post(path: string, results: PageResult[]): Promise<void> {
  const res = await fetch(path, { method: 'POST', body: JSON.stringify(results), headers: { 'content-type': 'application/json' } });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
}

async function run(): Promise<void> {
  const wasmUrl = new URL('/wasm', location.href).href;
  const modelUrl = new URL('/model.task', location.href).href;
  const tracker = await FaceTracker.create({ wasmUrl, modelUrl });
  const frames = new FrameSource();
  try {
    let pending: PageResult[] = [];
    const posts: Array<Promise<void>> = [];
    for (;;) {
      const frame = await frames.next();
      if (!frame) break;
      const t0 = performance.now();
      const image = new ImageData(new Uint8ClampedArray(frame.buf), frame.w, frame.h);
      const r = tracker.detect(image, frame.ts);
      const ms = performance.now() - t0;
      pending.push(
        r
          ? {
              i: frame.i,
              found: true,
              pose: Array.from(r.values.pose),
              gaze: Array.from(r.values.gaze),
              blendshapes: Array.from(r.values.blendshapes),
              box: r.box ? [r.box.x0, r.box.y0, r.box.x1, r.box.y1] : null,
              landmarks: r.points ? Array.from(r.points, (x) => Math.round(x * 1e5) / 1e5) : null,
              ms,
            }
          : { i: frame.i, found: false, pose: null, gaze: null, blendshapes: null, box: null, landmarks: null, ms },
      );
      if (pending.length >= BATCH) {
        posts.push(post('/results', pending));
        pending = [];
      }
    }
    await Promise.all(posts);
    await post('/done', pending);
  } finally {
    frames.close();
    tracker.close();
  }
}

run().catch(async (err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  await fetch('/error', { method: 'POST', body: msg }).catch(() => undefined);
});
