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

/** A neutral driving vector at the framing's reference translation, with named values set. */
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
