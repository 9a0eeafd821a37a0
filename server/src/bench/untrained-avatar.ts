/** Makes an untrained avatar with the training package (`python3 -m train export --untrained`), for the bench. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../project-paths.js';

const run = promisify(execFile);

/** Model presets of `train export --untrained` (train/config.py PRESETS): warp = variant W (the default model), cpu = the older small F model. */
export const UNTRAINED_PRESETS = ['warp', 'cpu', 'paper'] as const;
export type UntrainedPreset = (typeof UNTRAINED_PRESETS)[number];

export interface UntrainedAvatarOptions {
  size: number;
  fps: number;
  preset: UntrainedPreset;
  /** avatar name in avatar.json (default `bench-SIZE`) */
  name?: string;
}

export async function exportUntrainedAvatar(out: string, o: UntrainedAvatarOptions): Promise<void> {
  const python = process.env.DNP_PYTHON ?? '/usr/bin/python3';
  const args = ['-m', 'train', 'export', '--untrained', '--preset', o.preset, '--size', String(o.size), '--fps', String(o.fps), '--name', o.name ?? `bench-${o.size}`, '--out', out];
  try {
    await run(python, args, { cwd: PROJECT_ROOT, env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${python} ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}
