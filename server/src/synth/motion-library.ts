/**
 * The motion library that drives `dnp synth`: tracked pose, gaze and blendshape sequences of real talking
 * clips (numbers only, no images), quantised and stored in server/src/synth/motion/library.json (see the
 * README there). Format "dnp-synth-motion" version 1:
 *   { "format", "version", "note",
 *     "clips": [ { "name", "fps", "frames",
 *                  "meanTranslation": [tx, ty, tz] (cm, the clip's mean, removed from the stored translation),
 *                  "pose":        base64 int16 LE [frames, 6]: angles in 1e-4 rad, translation − mean in 0.01 cm,
 *                  "gaze":        base64 int16 LE [frames, 2] in 1e-4 rad,
 *                  "blendshapes": base64 uint8 [frames, 52], value × 255 } ] }
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BLENDSHAPE_COUNT } from '../../../shared/src/blendshapes.js';
import { arr, num, obj, str } from '../../../shared/src/json-check.js';
import { GAZE_SIZE, POSE_SIZE } from '../../../shared/src/pose.js';

const MOTION_FORMAT = 'dnp-synth-motion';
const MOTION_VERSION = 1;
export const DEFAULT_MOTION_LIBRARY = join(dirname(fileURLToPath(import.meta.url)), 'motion', 'library.json');

export interface MotionClip {
  name: string;
  fps: number;
  frames: number;
  /** [frames × 6]: pitch, yaw, roll (rad), tx, ty, tz (cm, relative to the clip's mean). */
  pose: Float32Array;
  gaze: Float32Array;
  blendshapes: Float32Array;
}

export interface MotionLibrary {
  clips: MotionClip[];
  note: string;
}

const ANGLE = 1e-4;
const CM = 0.01;

function int16s(b64: string, n: number, what: string): Int16Array {
  const buf = Buffer.from(b64, 'base64');
  if (buf.length !== n * 2) throw new Error(`${what}: expected ${n * 2} bytes, got ${buf.length}`);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = buf.readInt16LE(i * 2);
  return out;
}

/** Parses (and validates) a motion library document. */
export function parseMotionLibrary(v: unknown, where = 'motion library'): MotionLibrary {
  const o = obj(v, where);
  if (o.format !== MOTION_FORMAT || o.version !== MOTION_VERSION) throw new Error(`${where}: not a ${MOTION_FORMAT} v${MOTION_VERSION} document`);
  const clips = arr(o.clips, `${where}: clips`).map((c, k): MotionClip => {
    const p = `${where}: clips[${k}]`;
    const e = obj(c, p);
    const frames = num(e.frames, `${p}.frames`, { int: true, min: 2 });
    const fps = num(e.fps, `${p}.fps`, { min: 1, max: 120 });
    const q = int16s(str(e.pose, `${p}.pose`), frames * POSE_SIZE, `${p}.pose`);
    const pose = new Float32Array(frames * POSE_SIZE);
    for (let i = 0; i < q.length; i++) pose[i] = (q[i] as number) * (i % POSE_SIZE < 3 ? ANGLE : CM);
    const g = int16s(str(e.gaze, `${p}.gaze`), frames * GAZE_SIZE, `${p}.gaze`);
    const gaze = Float32Array.from(g, (x) => x * ANGLE);
    const b = Buffer.from(str(e.blendshapes, `${p}.blendshapes`), 'base64');
    if (b.length !== frames * BLENDSHAPE_COUNT) throw new Error(`${p}.blendshapes: expected ${frames * BLENDSHAPE_COUNT} bytes, got ${b.length}`);
    const blendshapes = Float32Array.from(b, (x) => x / 255);
    return { name: str(e.name, `${p}.name`), fps, frames, pose, gaze, blendshapes };
  });
  if (clips.length === 0) throw new Error(`${where}: no clips`);
  return { clips, note: typeof o.note === 'string' ? o.note : '' };
}

export function loadMotionLibrary(path = DEFAULT_MOTION_LIBRARY): MotionLibrary {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`motion library ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseMotionLibrary(JSON.parse(text) as unknown, path);
}

/** Quantises clips into a library document (the inverse of parseMotionLibrary, up to rounding). */
export function encodeMotionLibrary(clips: ReadonlyArray<MotionClip & { meanTranslation: [number, number, number] }>, note: string): unknown {
  const i16 = (vals: ArrayLike<number>, scale: (i: number) => number): string => {
    const buf = Buffer.alloc(vals.length * 2);
    for (let i = 0; i < vals.length; i++) buf.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round((vals[i] as number) / scale(i)))), i * 2);
    return buf.toString('base64');
  };
  return {
    format: MOTION_FORMAT,
    version: MOTION_VERSION,
    note,
    clips: clips.map((c) => ({
      name: c.name,
      fps: c.fps,
      frames: c.frames,
      meanTranslation: c.meanTranslation.map((x) => Math.round(x * 1000) / 1000),
      pose: i16(c.pose, (i) => (i % POSE_SIZE < 3 ? ANGLE : CM)),
      gaze: i16(c.gaze, () => ANGLE),
      blendshapes: Buffer.from(Array.from(c.blendshapes, (x) => Math.max(0, Math.min(255, Math.round(x * 255))))).toString('base64'),
    })),
  };
}
