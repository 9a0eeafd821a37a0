/** Makes an untrained avatar with the training package (`python3 -m train export --untrained`), for the bench. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../project-paths.js';

const run = promisify(execFile);

export async function exportUntrainedAvatar(out: string, size: number, fps: number): Promise<void> {
  const python = process.env.DNP_PYTHON ?? '/usr/bin/python3';
  const args = ['-m', 'train', 'export', '--untrained', '--preset', 'cpu', '--size', String(size), '--fps', String(fps), '--name', `bench-${size}`, '--out', out];
  try {
    await run(python, args, { cwd: PROJECT_ROOT, env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${python} ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}
