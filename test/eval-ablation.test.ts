// `npm run eval:ablation` end to end on a tiny synthetic dataset (train/synth.py, 64², v1): one variant
// trained for a few seconds (`dnp train --max-minutes`), scored by `dnp eval --no-retrack`, one table.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEvalReport } from '../server/src/eval/report-schema.js';
import { MODEL, ensureClientBuilt } from './support/prepare-helpers.js';
import { PYTHON, REPO_ROOT } from './support/test-avatar.js';

let tmp: string;
let data: string;

beforeAll(() => {
  ensureClientBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'dnp-ablation-test-'));
  data = join(tmp, 'synth');
  execFileSync(PYTHON, ['-c', `from train.synth import write_synthetic_dataset; write_synthetic_dataset(${JSON.stringify(data)}, n=40, size=64, n_test=8)`], { cwd: REPO_ROOT });
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('npm run eval:ablation', () => {
  it('trains a variant for the budget, evaluates it and writes the table', () => {
    const out = join(tmp, 'ablation');
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'eval-ablation.js'), '--data', data, '--budget', '0.05', '--variants', 'A', '--out', out, '--no-retrack', '--tracker-model', MODEL], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, LOG_LEVEL: 'warn', OPENBLAS_NUM_THREADS: '1' },
      timeout: 280_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('stopped by --max-minutes 0.05');
    const md = readFileSync(join(out, 'ablation.md'), 'utf8');
    expect(r.stdout).toContain(md.trim());
    expect(md).toContain('| variant | iterations | PSNR | SSIM | L1 | mouth PSNR | jawOpen r |');
    expect(md).toMatch(/\| A \| \d+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| – \| – \|/);
    expect(md).toContain('| nearest neighbour |');
    const report = parseEvalReport(JSON.parse(readFileSync(join(out, 'A', 'report', 'report.json'), 'utf8')) as unknown);
    expect(report.avatar.training.variant).toBe('A');
    expect(report.options.retrack).toBe(false);
    expect(existsSync(join(out, 'A', 'avatar', 'avatar.onnx'))).toBe(true);
    const summary = JSON.parse(readFileSync(join(out, 'ablation.json'), 'utf8')) as { rows: Array<{ variant: string; iterations: number }> };
    expect(summary.rows.map((x) => x.variant)).toEqual(['A']);
    expect(summary.rows[0]?.iterations).toBeGreaterThan(0);
  }, 300_000);

  it('refuses bad arguments with exit 2', () => {
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'eval-ablation.js'), '--data', data, '--budget', 'soon'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--budget: 'soon' is not a number/);
  });
});
