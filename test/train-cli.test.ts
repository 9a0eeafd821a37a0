/**
 * `dnp train`: argument validation (pure), the Python command line it builds, the message when Python/PyTorch is
 * missing, and a real two-iteration run on a tiny synthetic dataset through bin/dnp.js.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAvatarManifest } from '../shared/src/avatar-manifest.js';
import { UsageError } from '../server/src/cli/args.js';
import { INSTALL_HINT, parseTrainArgs, pythonArgs, SWITCHES } from '../server/src/cli/train.js';

const ROOT = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'dnp-train-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs bin/dnp.js without blocking the test worker (a blocked worker misses vitest's own calls on a busy machine). */
function dnp(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stderr: string; stdout: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['bin/dnp.js', ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => done({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }));
  });
}

describe('dnp train arguments', () => {
  it('parses the options and builds the python command line', () => {
    const o = parseTrainArgs(['--data', 'ds', '--out', 'av', '--preset', 'paper', '--variant', 'D', '--iterations', '100', '--resume', '--threads', '2', '--int8']);
    expect(o).toMatchObject({ data: 'ds', out: 'av', preset: 'paper', variant: 'D', iterations: 100, resume: true, threads: 2 });
    const a = pythonArgs(o);
    expect(a.slice(0, 5)).toEqual(['-m', 'train', '--threads', '2', 'train']);
    expect(a).toContain('--resume');
    expect(a).toContain('--int8');
    expect(a[a.indexOf('--data') + 1]).toBe(resolve('ds'));
    expect(a[a.indexOf('--variant') + 1]).toBe('D');
    expect(a).not.toContain('--batch');
    expect(a).not.toContain('--output');
  });

  it('passes --init-from-avatar as an absolute path, not with --resume', () => {
    const a = pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--init-from-avatar', 'avatars/default', '--mse-weight', '20']));
    expect(a[a.indexOf('--init-from-avatar') + 1]).toBe(resolve('avatars/default'));
    expect(a).not.toContain('--resume');
    expect(() => parseTrainArgs(['--data', 'ds', '--out', 'av', '--init-from-avatar', 'x', '--resume'])).toThrow(/exclude each other/);
  });

  it('passes the GPU export options (--output yuv420p, --fp16)', () => {
    const a = pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--device', 'cuda', '--output', 'yuv420p', '--fp16']));
    expect(a.slice(a.indexOf('--output'), a.indexOf('--output') + 2)).toEqual(['--output', 'yuv420p']);
    expect(a).toContain('--fp16');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--output', 'nv12'])).toThrow("--output: 'nv12' is not one of rgb, yuv420p");
  });

  it('passes the variant W options (--refs, --no-geometry, --aligned, --eyes, --learned-rotation) and bounds --refs', () => {
    const a = pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--refs', '3', '--no-geometry']));
    expect(a.slice(a.indexOf('--refs'), a.indexOf('--refs') + 2)).toEqual(['--refs', '3']);
    expect(a).toContain('--no-geometry');
    expect(a).not.toContain('--aligned');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--aligned']))).toContain('--aligned');
    expect(a).not.toContain('--eyes');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--eyes']))).toContain('--eyes');
    const off = pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--no-aligned', '--no-eyes']));
    expect(off).toContain('--no-aligned');
    expect(off).toContain('--no-eyes');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--eyes', '--no-eyes'])).toThrow('--eyes and --no-eyes contradict each other');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--mouth']))).toContain('--mouth');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--no-mouth']))).toContain('--no-mouth');
    expect(a).not.toContain('--mouth');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--mouth', '--no-mouth'])).toThrow('--mouth and --no-mouth contradict each other');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--learned-rotation']))).toContain('--learned-rotation');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--no-learned-rotation']))).toContain('--no-learned-rotation');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--dense-geometry']))).toContain('--dense-geometry');
    expect(a).not.toContain('--dense-geometry');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--no-dense-geometry']))).toContain('--no-dense-geometry');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--dense-geometry', '--no-dense-geometry'])).toThrow('--dense-geometry and --no-dense-geometry contradict each other');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--background-gate']))).toContain('--background-gate');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--no-background-gate']))).toContain('--no-background-gate');
    expect(a).not.toContain('--background-gate');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--background-gate', '--no-background-gate'])).toThrow('--background-gate and --no-background-gate contradict each other');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--coarse-motion']))).toContain('--coarse-motion');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--no-coarse-motion']))).toContain('--no-coarse-motion');
    expect(a).not.toContain('--coarse-motion');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--coarse-motion', '--no-coarse-motion'])).toThrow('--coarse-motion and --no-coarse-motion contradict each other');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--learned-reference']))).toContain('--learned-reference');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--no-learned-reference']))).toContain('--no-learned-reference');
    expect(a).not.toContain('--learned-reference');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--learned-reference', '--no-learned-reference'])).toThrow('--learned-reference and --no-learned-reference contradict each other');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--head-outline']))).toContain('--head-outline');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--no-head-outline']))).toContain('--no-head-outline');
    expect(a).not.toContain('--head-outline');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--head-outline', '--no-head-outline'])).toThrow('--head-outline and --no-head-outline contradict each other');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--body-motion']))).toContain('--body-motion');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--no-body-motion']))).toContain('--no-body-motion');
    expect(a).not.toContain('--body-motion');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--body-motion', '--no-body-motion'])).toThrow('--body-motion and --no-body-motion contradict each other');
    expect(a).not.toContain('--learned-rotation');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--learned-rotation', '--no-learned-rotation'])).toThrow('contradict each other');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--aligned=yes'])).toThrow('--aligned takes no value');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av']))).not.toContain('--refs');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--refs', '9'])).toThrow('--refs: 9 is outside 1..8');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--refs', '0'])).toThrow(UsageError);
  });

  it.each([
    ['--mse-weight', '20', ['-2']],
    ['--ema', '0.999', ['1', '-0.5']],
    ['--cond-noise', '0.3', ['-1']],
    ['--hard-frames', '0.5', ['-0.1', '1.5']],
    ['--workers', '2', ['0', '1.5']],
  ])('passes %s (a number in range) and leaves the default to the trainer', (flag, good, bad) => {
    const a = pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', flag, good]));
    expect(a.slice(a.indexOf(flag), a.indexOf(flag) + 2)).toEqual([flag, good]);
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av']))).not.toContain(flag);
    for (const b of bad) expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', flag, b])).toThrow(UsageError);
  });

  it('passes --refine-channels and --refine-layers (positive integers) and leaves the defaults to the trainer', () => {
    const a = pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--refine-channels', '8', '--refine-layers', '2']));
    expect(a.slice(a.indexOf('--refine-channels'), a.indexOf('--refine-channels') + 2)).toEqual(['--refine-channels', '8']);
    expect(a.slice(a.indexOf('--refine-layers'), a.indexOf('--refine-layers') + 2)).toEqual(['--refine-layers', '2']);
    const plain = pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av']));
    expect(plain).not.toContain('--refine-channels');
    expect(plain).not.toContain('--refine-layers');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--refine-channels', '0'])).toThrow(UsageError);
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--refine-layers', '1.5'])).toThrow(UsageError);
  });

  it('passes --landmark-weight (a number >= 0) and leaves the default to the trainer', () => {
    const a = pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--landmark-weight', '0.01']));
    expect(a.slice(a.indexOf('--landmark-weight'), a.indexOf('--landmark-weight') + 2)).toEqual(['--landmark-weight', '0.01']);
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', '--landmark-weight', '0']))).toContain('--landmark-weight');
    expect(pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av']))).not.toContain('--landmark-weight');
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--landmark-weight', '-1'])).toThrow(UsageError);
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', '--landmark-weight', 'lots'])).toThrow(UsageError);
  });

  it.each([
    [['--out', 'a'], '--data DATASET_DIR is required'],
    [['--data', 'd'], '--out AVATAR_DIR is required'],
    [['--data', 'd', '--out', 'a', '--preset', 'huge'], "--preset: 'huge' is not one of warp, cpu, paper"],
    [['--data', 'd', '--out', 'a', '--variant', 'G'], "--variant: 'G' is not one of A, B, C, D, E, F, W"],
    [['--data', 'd', '--out', 'a', '--iterations', '0'], '--iterations: 0 is below 1'],
    [['--data', 'd', '--out', 'a', '--iterations', '1e3'], "--iterations: '1e3' is not a whole number"],
    [['--data', 'd', '--out', 'a', '--bogus'], 'unknown option --bogus'],
  ])('refuses %j', (argv, message) => {
    expect(() => parseTrainArgs(argv)).toThrow(UsageError);
    expect(() => parseTrainArgs(argv)).toThrow(message);
  });
});

describe('dnp train switches', () => {
  it('passes each variant W switch as given, both ways, and nothing when it is absent', () => {
    const none = pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av']));
    for (const f of SWITCHES) {
      const on = pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', `--${f}`]));
      const off = pythonArgs(parseTrainArgs(['--data', 'ds', '--out', 'av', `--no-${f}`]));
      expect(on.filter((x) => x.startsWith('--') && !none.includes(x)), f).toEqual([`--${f}`]);
      expect(off.filter((x) => x.startsWith('--') && !none.includes(x)), f).toEqual([`--no-${f}`]);
      expect(none).not.toContain(`--${f}`);
      expect(none).not.toContain(`--no-${f}`);
      expect(() => parseTrainArgs(['--data', 'd', '--out', 'a', `--no-${f}`, `--${f}`])).toThrow(`--${f} and --no-${f} contradict each other`);
    }
  });

  it('knows the same --NAME / --no-NAME pairs as the Python trainer, and lists each in its help', async () => {
    const py = spawnSync('/usr/bin/python3', ['-m', 'train', 'train', '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(py.status, py.stderr).toBe(0);
    const names = new Set([...py.stdout.matchAll(/(?<![\w-])--([a-z][a-z-]*[a-z])/g)].map((m) => m[1] ?? ''));
    const pairs = [...names].filter((n) => !n.startsWith('no-') && names.has(`no-${n}`)).sort();
    expect(pairs).toEqual([...SWITCHES].sort());
    const help = await dnp(['train', '--help']);
    expect(help.status).toBe(0);
    for (const f of SWITCHES) {
      expect(help.stdout, f).toMatch(new RegExp(`^ +--${f} `, 'm'));
      expect(help.stdout, f).toMatch(new RegExp(`^ +(--no-[a-z-]+, )?--no-${f}[ ,]`, 'm'));
    }
  });
});

describe('dnp train (process)', () => {
  const data = join(tmp, 'ds');
  const out = join(tmp, 'avatar');

  it('says how to install PyTorch when Python is missing', async () => {
    const r = spawnSync('/usr/bin/python3', ['-c', `from train.synth import write_synthetic_dataset; write_synthetic_dataset(${JSON.stringify(data)}, n=16, size=32, n_test=3)`], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const res = await dnp(['train', '--data', data, '--out', out], { DNP_PYTHON: join(tmp, 'no-such-python') });
    expect(res.status).toBe(3);
    expect(res.stderr).toContain(INSTALL_HINT);
    expect(existsSync(out)).toBe(false);
  });

  it('names a folder without dataset.json', async () => {
    const res = await dnp(['train', '--data', tmp, '--out', out]);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/no dataset\.json/);
  });

  it('trains, checkpoints and exports an avatar the server can read', async () => {
    const res = await dnp(['train', '--data', data, '--out', out, '--iterations', '2', '--size', '64', '--eval-every', '1', '--no-progress', '--name', 'CLI test']);
    expect(res.status, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/test PSNR [\d.]+ dB/);
    expect(existsSync(join(out, 'checkpoint.pt'))).toBe(true);
    const m = parseAvatarManifest(JSON.parse(readFileSync(join(out, 'avatar.json'), 'utf8')));
    expect(m.name).toBe('CLI test');
    expect(m.width).toBe(64);
    expect(m.training.provenance).toBe('trained');
    expect(m.training.iterations).toBe(2);
  });
});
