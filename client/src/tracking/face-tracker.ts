/**
 * FaceLandmarker wrapper shared by the live page and by `dnp prepare`'s tracking page, so that live
 * driving and training data come from the very same tracker configuration and mapping.
 * CPU delegate, VIDEO mode, one face, blendshapes + transformation matrix.
 */
import { FaceLandmarker, FilesetResolver } from '@mediapipe/tasks-vision';
import { mapTrackerFace, trackerFaceFromResult, type TrackerFace } from '../../../shared/src/tracker-mapping.js';
import type { DrivingValues } from '../../../shared/src/driving-values.js';

export interface FaceTrackerOptions {
  /** URL of the folder holding MediaPipe's wasm files (served by our server at /wasm). */
  wasmUrl: string;
  /** URL of face_landmarker.task. */
  modelUrl: string;
}

/** Extent of the 478 face landmarks, normalised to the image (0..1, may exceed it slightly). */
export interface FaceBox {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface TrackResult {
  face: TrackerFace;
  values: DrivingValues;
  /** Bounding box of the face landmarks (used by `dnp prepare` to place its crop); null if none reported. */
  box: FaceBox | null;
  /**
   * The face landmarks (478) as flat [x0, y0, x1, y1, …], normalised to the image like `box`; null if none
   * reported. `dnp prepare` stores them (dataset v2) and `dnp eval` places its mouth/eye regions with them.
   */
  points: Float32Array | null;
}

function landmarkPoints(points: ReadonlyArray<{ x: number; y: number }> | undefined): Float32Array | null {
  if (!points || points.length === 0) return null;
  const out = new Float32Array(points.length * 2);
  points.forEach((p, k) => {
    out[2 * k] = p.x;
    out[2 * k + 1] = p.y;
  });
  return out;
}

function landmarkBox(points: ReadonlyArray<{ x: number; y: number }> | undefined): FaceBox | null {
  if (!points || points.length === 0) return null;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const p of points) {
    if (p.x < x0) x0 = p.x;
    if (p.x > x1) x1 = p.x;
    if (p.y < y0) y0 = p.y;
    if (p.y > y1) y1 = p.y;
  }
  return Number.isFinite(x0 + y0 + x1 + y1) ? { x0, y0, x1, y1 } : null;
}

export class FaceTracker {
  #landmarker: FaceLandmarker | null;
  #lastTs = -1;

  private constructor(l: FaceLandmarker) {
    this.#landmarker = l;
  }

  static async create(opts: FaceTrackerOptions): Promise<FaceTracker> {
    const fileset = await FilesetResolver.forVisionTasks(opts.wasmUrl);
    const landmarker = await FaceLandmarker.createFromOptions(fileset, {
      baseOptions: { modelAssetPath: opts.modelUrl, delegate: 'CPU' },
      runningMode: 'VIDEO',
      numFaces: 1,
      outputFaceBlendshapes: true,
      outputFacialTransformationMatrixes: true,
    });
    return new FaceTracker(landmarker);
  }

  /**
   * Tracks one image. Timestamps must increase strictly; a repeated or older timestamp is bumped by 1 ms.
   * Returns null when no face was found.
   */
  detect(image: TexImageSource, timestampMs: number): TrackResult | null {
    if (!this.#landmarker) throw new Error('FaceTracker is closed');
    const ts = timestampMs > this.#lastTs ? timestampMs : this.#lastTs + 1;
    this.#lastTs = ts;
    const result = this.#landmarker.detectForVideo(image, ts);
    const face = trackerFaceFromResult(result);
    if (!face) return null;
    const landmarks = result.faceLandmarks?.[0];
    return { face, values: mapTrackerFace(face), box: landmarkBox(landmarks), points: landmarkPoints(landmarks) };
  }

  close(): void {
    this.#landmarker?.close();
    this.#landmarker = null;
  }
}
