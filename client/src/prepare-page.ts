/**
 * The tracking page that `dnp prepare` drives in headless Chromium. It tracks the frames the local
 * prepare server hands out with the very FaceTracker the live page uses (face-tracker.ts: CPU delegate,
 * VIDEO mode, shared tracker mapping), and sends the driving values back.
 *
 * Protocol (all same-origin, served by server/src/prepare/tracking-server.ts):
 *   POST /next/:i   body: JSON array of results so far not sent   → frame i as raw RGBA
 *                   (headers X-Width, X-Height, X-Timestamp-Ms), or 204 when there are no more frames
 *   POST /done      body: JSON array of the remaining results
 *   POST /error     body: text of an error that stopped tracking
 * The next frame is requested before the current one is tracked, so transfer overlaps tracking.
 */
import { FaceTracker } from './tracking/face-tracker.js';

interface PageFrame {
  index: number;
  width: number;
  height: number;
  timestampMs: number;
  rgba: ArrayBuffer;
}

/** One tracked frame as sent to the server; null fields when no face was found. */
interface PageResult {
  i: number;
  found: boolean;
  pose: number[] | null;
  gaze: number[] | null;
  blendshapes: number[] | null;
  box: [number, number, number, number] | null;
}

function header(res: Response, name: string): number {
  const v = Number(res.headers.get(name));
  if (!Number.isFinite(v)) throw new Error(`frame response lacks a numeric ${name} header`);
  return v;
}

async function requestFrame(index: number, results: PageResult[]): Promise<PageFrame | null> {
  const res = await fetch(`/next/${index}`, { method: 'POST', body: JSON.stringify(results), headers: { 'content-type': 'application/json' } });
  if (res.status === 204) return null;
  if (!res.ok) throw new Error(`frame ${index}: HTTP ${res.status}`);
  const width = header(res, 'x-width');
  const height = header(res, 'x-height');
  const timestampMs = header(res, 'x-timestamp-ms');
  const rgba = await res.arrayBuffer();
  if (rgba.byteLength !== width * height * 4) throw new Error(`frame ${index}: ${rgba.byteLength} bytes for ${width}x${height} RGBA`);
  return { index, width, height, timestampMs, rgba };
}

async function run(): Promise<void> {
  const wasmUrl = new URL('/wasm', location.href).href;
  const modelUrl = new URL('/model.task', location.href).href;
  const tracker = await FaceTracker.create({ wasmUrl, modelUrl });
  try {
    let pending: PageResult[] = [];
    let next = requestFrame(0, pending);
    for (let i = 0; ; i++) {
      const frame = await next;
      if (!frame) break;
      const gathered = pending; // results of earlier frames, not yet sent
      pending = [];
      next = requestFrame(i + 1, gathered); // sends them and fetches the next frame while this one is tracked
      const image = new ImageData(new Uint8ClampedArray(frame.rgba), frame.width, frame.height);
      const r = tracker.detect(image, frame.timestampMs);
      pending.push(
        r
          ? {
              i: frame.index,
              found: true,
              pose: Array.from(r.values.pose),
              gaze: Array.from(r.values.gaze),
              blendshapes: Array.from(r.values.blendshapes),
              box: r.box ? [r.box.x0, r.box.y0, r.box.x1, r.box.y1] : null,
            }
          : { i: frame.index, found: false, pose: null, gaze: null, blendshapes: null, box: null },
      );
    }
    await fetch('/done', { method: 'POST', body: JSON.stringify(pending), headers: { 'content-type': 'application/json' } });
  } finally {
    tracker.close();
  }
}

run().catch(async (err: unknown) => {
  const msg = err instanceof Error ? `${err.message}` : String(err);
  await fetch('/error', { method: 'POST', body: msg }).catch(() => undefined);
});
