/** Paths inside the project folder that commands fall back to when no option names them. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root folder (holding package.json). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where the FaceLandmarker model is looked for when neither --tracker-model nor DNP_TRACKER_MODEL is given. */
export const DEFAULT_TRACKER_MODEL = join(PROJECT_ROOT, 'models', 'face_landmarker.task');
