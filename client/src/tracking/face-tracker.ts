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

export interface TrackResult {
  face: TrackerFace;
  values: DrivingValues;
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
    return { face, values: mapTrackerFace(face) };
  }

  close(): void {
    this.#landmarker?.close();
    this.#landmarker = null;
  }
}
