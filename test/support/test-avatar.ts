/**
 * Untrained avatars for transport tests: `python3 -m train export --untrained` (random smooth weights,
 * the real model architecture and export path). They do not look like anyone; tests that use them check
 * transport and rendering fidelity, never likeness.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAvatarManifest, type AvatarManifest } from '../../shared/src/avatar-manifest.js';
import { PROJECT_ROOT } from '../../server/src/project-paths.js';

const run = promisify(execFile);
export const REPO_ROOT = PROJECT_ROOT;
/** Debian's python3 with torch (not a pyenv python3 earlier on PATH). */
export const PYTHON = process.env.DNP_PYTHON ?? '/usr/bin/python3';

export interface UntrainedAvatarOptions {
  size?: number;
  fps?: number;
  name?: string;
  seed?: number;
  /** more `train export` options, e.g. ['--yuv'] or ['--fp16'] */
  exportArgs?: string[];
}

export interface TestAvatar {
  dir: string;
  manifest: AvatarManifest;
  modelPath: string;
}

/** Writes an untrained avatar (avatar.onnx + avatar.json) into `dir` and returns its parsed manifest. */
export async function makeUntrainedAvatar(dir: string, opts: UntrainedAvatarOptions = {}): Promise<TestAvatar> {
  const size = opts.size ?? 256;
  const args = ['-m', 'train', 'export', '--untrained', '--preset', 'cpu', '--size', String(size), '--fps', String(opts.fps ?? 25), '--name', opts.name ?? `untrained-${size}`, '--out', dir];
  if (opts.seed !== undefined) args.push('--seed', String(opts.seed));
  args.push(...(opts.exportArgs ?? []));
  try {
    await run(PYTHON, args, { cwd: REPO_ROOT, env: { ...process.env, OPENBLAS_NUM_THREADS: '1' }, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`making an untrained avatar failed (${PYTHON} ${args.join(' ')}): ${e.stderr || e.message}`);
  }
  const file = join(dir, 'avatar.json');
  const manifest = parseAvatarManifest(JSON.parse(readFileSync(file, 'utf8')), file);
  return { dir, manifest, modelPath: join(dir, manifest.model.file) };
}
