/**
 * The FaceLandmarker model bundle the project is built and tested with (MediaPipe "face_landmarker/float16/1").
 * Both the live page and `dnp prepare` must use the same model, or training data and live driving differ.
 */
export const OFFICIAL_TRACKER_MODEL_URL =
  'https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task';
/** SHA-256 of the bundle above (3,758,596 bytes). */
export const TRACKER_MODEL_SHA256 = '64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff';
