// dnp synth's command line: --help, and clear errors with exit status 2 for bad arguments.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeNpy } from '../server/src/prepare/npy.js';
import { UsageError } from '../server/src/cli/args.js';
import { parseSynthArgs } from '../server/src/synth/options.js';
import { runSynthCli } from './support/synth-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'dnp-synth-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('dnp synth options', () => {
  it('parses the defaults and every option', () => {
    const o = parseSynthArgs(['--out', 'x'], {});
    expect(o).toMatchObject({ out: 'x', size: 256, seconds: 60, seed: 1, fps: 25, testFraction: 0.2, vectors: null, force: false });
    const p = parseSynthArgs(['--out=y', '--size', '512', '--seconds', '2.5', '--seed', '9', '--fps', '30', '--test-fraction', '0.1', '--no-landmarks', '--force'], {});
    expect(p).toMatchObject({ out: 'y', size: 512, seconds: 2.5, seed: 9, fps: 30, testFraction: 0.1, trackerModel: null, force: true });
  });

  it.each([
    [[], /--out DIR is required/],
    [['--out'], /--out needs a value/],
    [['--out', 'x', '--size', '300'], /--size: 300 is not one of 256, 512/],
    [['--out', 'x', '--seconds', 'abc'], /--seconds: 'abc' is not a number/],
    [['--out', 'x', '--seconds', '0'], /--seconds: 0 is outside/],
    [['--out', 'x', '--seed', '1.5'], /--seed: '1.5' is not a whole number/],
    [['--out', 'x', '--seed', '-1'], /--seed: -1 is outside/],
    [['--out', 'x', '--fps', '500'], /--fps: 500 is outside 1..120/],
    [['--out', 'x', '--test-fraction', '0.95'], /--test-fraction: 0.95 is outside 0..0.9/],
    [['--out', 'x', '--bogus'], /unknown option --bogus/],
    [['--out', 'x', 'extra'], /unexpected argument 'extra'/],
    [['--out', 'x', '--vectors', '/nonexistent.npy'], /--vectors \/nonexistent.npy: no such file/],
    [['--out', 'x', '--tracker-model', '/nonexistent.task'], /--tracker-model \/nonexistent.task: no such file/],
    [['--out', 'x', '--no-landmarks', '--tracker-model', '/a'], /contradict/],
  ])('rejects %j', (args, message) => {
    expect(() => parseSynthArgs(args as string[], {})).toThrow(UsageError);
    expect(() => parseSynthArgs(args as string[], {})).toThrow(message);
  });
});

describe('dnp synth command', () => {
  it('--help prints the options and exits 0', async () => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['bin/dnp.js', 'synth', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: dnp synth --out DIR/);
    expect(r.stdout).toMatch(/--vectors FILE.npy/);
  });

  it('bad arguments: a clear message and exit status 2', async () => {
    const r = await runSynthCli(['--out', join(dir, 'a'), '--size', '100']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/dnp synth: --size: 100 is not one of 256, 512/);
    expect(r.stderr).toMatch(/dnp synth --help/);
  });

  it('a --vectors file of the wrong shape: exit status 2, naming the expected layout', async () => {
    const bad = join(dir, 'bad.npy');
    writeFileSync(bad, encodeNpy(new Float32Array(3 * 5), [3, 5]));
    const r = await runSynthCli(['--out', join(dir, 'b'), '--vectors', bad, '--no-landmarks']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/expected float32 \[N, 60\]/);
  });

  it('an existing output folder is refused without --force (exit status 2)', async () => {
    const r = await runSynthCli(['--out', dir, '--seconds', '1', '--no-landmarks']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/already exists \(use --force/);
  });
});
