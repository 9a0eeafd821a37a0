/** Helpers for the `dnp synth` tests: page build check, the CLI as a child process, image regions of the presenter. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../server/src/project-paths.js';
import { VECTOR_SIZE } from '../../client/src/synth/controls.js';
import { projectToPixel } from '../../client/src/synth/camera.js';
import { DEFAULT_FRAMING, Presenter } from '../../client/src/synth/presenter.js';
import { transformPoint, type Vec3 } from '../../client/src/synth/mat4.js';
import { controlsFromVector } from '../../client/src/synth/controls.js';
import { BLENDSHAPE_NAMES } from '../../shared/src/blendshapes.js';
import { EYE, MOUTH } from '../../client/src/synth/head-shape.js';
import { lookTargets } from '../../server/src/synth/trajectory.js';
import { EYE_CENTRES } from '../../client/src/synth/presenter.js';

export const ROOT = PROJECT_ROOT;
export const TRACKER_MODEL = join(ROOT, '..', 'shared', 'data', 'face_landmarker.task');

/** Builds client/dist when the synth page is missing or older than its sources. */
export function ensureSynthPageBuilt(): void {
  const out = join(ROOT, 'client', 'dist', 'synth-page.js');
  const dir = join(ROOT, 'client', 'src', 'synth');
  const sources = [join(ROOT, 'client', 'src', 'synth-page.ts'), join(ROOT, 'client', 'src', 'prepare-page.ts'), ...readdirSync(dir).map((f) => join(dir, f))];
  const stale = !existsSync(out) || !existsSync(join(ROOT, 'client', 'dist', 'prepare-page.js')) || sources.some((s) => statSync(s).mtimeMs > statSync(out).mtimeMs);
  if (stale) {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-client.js')], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`client build failed: ${r.stderr}`);
  }
}

export interface CliResult {
  code: number | null;
  stderr: string;
}

/** Runs `node bin/dnp.js synth ARGS`. */
export function runSynthCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'dnp.js'), 'synth', ...args], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/** A neutral driving vector at the framing's reference translation, with named values set; a gaze also sets the
 * eyeLook* blendshapes that agree with it, as the tracker's and the dataset's vectors do (the generator reads gaze). */
export function drivingVector(values: Record<string, number> = {}): Float32Array {
  const v = new Float32Array(VECTOR_SIZE);
  v[3] = DEFAULT_FRAMING.tx;
  v[4] = DEFAULT_FRAMING.ty;
  v[5] = DEFAULT_FRAMING.tz;
  const poseNames = ['pitch', 'yaw', 'roll', 'tx', 'ty', 'tz', 'gazeYaw', 'gazePitch'];
  for (const [k, x] of Object.entries(values)) {
    const p = poseNames.indexOf(k);
    if (p >= 0) v[p] = (p >= 3 && p <= 5 ? (v[p] as number) : 0) + x;
    else {
      const b = BLENDSHAPE_NAMES.indexOf(k as (typeof BLENDSHAPE_NAMES)[number]);
      if (b < 0) throw new Error(`unknown control ${k}`);
      v[8 + b] = x;
    }
  }
  if ('gazeYaw' in values || 'gazePitch' in values) for (const [i, x] of lookTargets(v[6] as number, v[7] as number)) v[i] = x;
  return v;
}

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** Pixel box around head-space rectangle [x0, x1] × [y0, y1] at depth z, for the neutral pose. */
export function headBox(size: number, x0: number, x1: number, y0: number, y1: number, z: number): Box {
  const p = new Presenter();
  const m = p.headMatrix(controlsFromVector(drivingVector()));
  const a = projectToPixel(transformPoint(m, [x0, y1, z] as Vec3), size);
  const b = projectToPixel(transformPoint(m, [x1, y0, z] as Vec3), size);
  return { x0: Math.floor(Math.min(a[0], b[0])), y0: Math.floor(Math.min(a[1], b[1])), x1: Math.ceil(Math.max(a[0], b[0])), y1: Math.ceil(Math.max(a[1], b[1])) };
}

/** Mean absolute difference (0-255) of two RGB24 images inside a box. */
export function boxDiff(a: Buffer, b: Buffer, size: number, box: Box): number {
  let s = 0, n = 0;
  for (let y = Math.max(0, box.y0); y < Math.min(size, box.y1); y++) {
    for (let x = Math.max(0, box.x0); x < Math.min(size, box.x1); x++) {
      for (let c = 0; c < 3; c++) {
        const i = (y * size + x) * 3 + c;
        s += Math.abs((a[i] as number) - (b[i] as number));
        n++;
      }
    }
  }
  return n ? s / n : 0;
}

export type PresenterRegion = 'eyeRight' | 'eyeLeft' | 'browRight' | 'browLeft' | 'mouth' | 'cheekLeft' | 'face';

/** Fixed boxes of the presenter's face regions at the neutral pose, in a `size`² frame. */
export function presenterRegions(size: number): Record<PresenterRegion, Box> {
  const eyeZ = (EYE_CENTRES[1][2] as number) + EYE.radius;
  return {
    eyeRight: headBox(size, -EYE.x - 1.6, -EYE.x + 1.6, EYE.y - 1.1, EYE.y + 1.0, eyeZ),
    eyeLeft: headBox(size, EYE.x - 1.6, EYE.x + 1.6, EYE.y - 1.1, EYE.y + 1.0, eyeZ),
    browRight: headBox(size, -5.0, -0.9, 2.6, 4.5, eyeZ),
    browLeft: headBox(size, 0.9, 5.0, 2.6, 4.5, eyeZ),
    mouth: headBox(size, -3.6, 3.6, MOUTH.seamY - 3.0, MOUTH.seamY + 1.3, 10),
    cheekLeft: headBox(size, 3.4, 6.8, MOUTH.seamY - 1.5, MOUTH.seamY + 1.5, 8),
    face: headBox(size, -6, 6, -8, 5, 8),
  };
}

/** Pixels of an RGB24 image inside a box that `keep` accepts: how many, and their mean x. */
export function pixelsWhere(img: Buffer, size: number, box: Box, keep: (r: number, g: number, b: number) => boolean): { count: number; meanX: number } {
  let s = 0, n = 0;
  for (let y = Math.max(0, box.y0); y < Math.min(size, box.y1); y++) {
    for (let x = Math.max(0, box.x0); x < Math.min(size, box.x1); x++) {
      const i = (y * size + x) * 3;
      if (keep(img[i] as number, img[i + 1] as number, img[i + 2] as number)) {
        s += x;
        n++;
      }
    }
  }
  return { count: n, meanX: s / Math.max(1, n) };
}

/** Pixels of an RGB24 image inside a box whose R+G+B is below `sumBelow`: how many, and their mean x. */
export function darkPixels(img: Buffer, size: number, box: Box, sumBelow: number): { count: number; meanX: number } {
  return pixelsWhere(img, size, box, (r, g, b) => r + g + b < sumBelow);
}
