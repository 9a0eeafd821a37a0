/**
 * Re-tracks a sequence of pictures (renders or ground-truth frames) with the very tracker `dnp prepare` uses:
 * the prepare tracking server + headless Chromium + the live client's FaceTracker (server/src/prepare/
 * tracking-server.ts). One TrackingSession per sequence (VIDEO mode: the tracker's temporal state must not
 * carry over from one sequence to the next); each is closed before this returns.
 */
import { CONDITIONING_SIZE } from '../../../shared/src/driving-values.js';
import { LANDMARK_COUNT } from '../../../shared/src/face-landmarks.js';
import { GAZE_SIZE, POSE_SIZE } from '../../../shared/src/pose.js';
import { Progress } from '../prepare/progress.js';
import { TrackingSession } from '../prepare/tracking-server.js';
import { rgbaFromRgb, type RgbImage } from './image.js';

export interface TrackerSetup {
  /** face_landmarker.task bytes. */
  model: Buffer;
  /** client/dist (prepare-page.js and wasm/). */
  clientDist: string;
  chromiumPath?: string;
  onPageLog?: (text: string) => void;
}

export interface Retracked {
  /** 1 where a face was found. */
  found: Uint8Array;
  /** [count × 60] driving values (zeros where no face). */
  cond: Float32Array;
  /** [count × 478 × 2] landmarks in pixels of the pictures, NaN where no face. */
  landmarks: Float32Array;
}

/** Tracks `count` pictures in order, at `fps` (timestamps i × 1000 / fps ms). */
export async function retrack(setup: TrackerSetup, count: number, picture: (k: number) => RgbImage, fps: number, label: string): Promise<Retracked> {
  const session = await TrackingSession.start({
    model: setup.model,
    clientDist: setup.clientDist,
    ...(setup.chromiumPath ? { chromiumPath: setup.chromiumPath } : {}),
    ...(setup.onPageLog ? { onPageLog: setup.onPageLog } : {}),
  });
  try {
    const bar = new Progress(label, count);
    session.onResult = (n) => bar.update(n);
    const size: Array<{ w: number; h: number }> = [];
    const pushing = (async () => {
      for (let k = 0; k < count; k++) {
        const img = picture(k);
        size.push({ w: img.width, h: img.height });
        await session.push(k, rgbaFromRgb(img), img.width, img.height, Math.round((k * 1000) / fps));
      }
      session.end();
    })();
    pushing.catch(() => undefined);
    const results = await session.results();
    await pushing;
    bar.finish();
    const found = new Uint8Array(count);
    const cond = new Float32Array(count * CONDITIONING_SIZE);
    const per = LANDMARK_COUNT * 2;
    const landmarks = new Float32Array(count * per).fill(NaN);
    results.forEach((r, k) => {
      if (!r.found || !r.pose || !r.gaze || !r.blendshapes) return;
      found[k] = 1;
      cond.set(r.pose, k * CONDITIONING_SIZE);
      cond.set(r.gaze, k * CONDITIONING_SIZE + POSE_SIZE);
      cond.set(r.blendshapes, k * CONDITIONING_SIZE + POSE_SIZE + GAZE_SIZE);
      const s = size[k];
      if (r.landmarks && s) {
        for (let j = 0; j < per; j += 2) {
          landmarks[k * per + j] = (r.landmarks[j] as number) * s.w;
          landmarks[k * per + j + 1] = (r.landmarks[j + 1] as number) * s.h;
        }
      }
    });
    return { found, cond, landmarks };
  } finally {
    await session.close();
  }
}
