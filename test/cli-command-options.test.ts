/** Command lines of the small dnp commands (token, speech-features, idle-motion) and the GPU bundle's bench, run in-process: exit codes and messages. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { run as idleMotion } from '../server/src/cli/idle-motion.js';
import { run as speechFeatures } from '../server/src/cli/speech-features.js';
import { run as token } from '../server/src/cli/token.js';
import { parseGpuBenchArgs } from '../server/src/bench/gpu-bundle-bench.js';

const SECRET = 'x'.repeat(32);
const dir = mkdtempSync(join(tmpdir(), 'dnp-cli-commands-'));
const wav = join(dir, 'in.wav');
writeFileSync(wav, 'not really a wav');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

/** Runs a command, returning its exit code and what it wrote. */
async function capture(run: (argv: string[]) => Promise<number>, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
  const code = await run(argv);
  vi.restoreAllMocks();
  return { code, out, err };
}

describe('dnp token options', () => {
  it('takes --x=v and --x v, the secret from DNP_TOKEN_SECRET, and builds the link', async () => {
    vi.stubEnv('DNP_TOKEN_SECRET', SECRET);
    vi.stubEnv('PORT', '');
    const r = await capture(token, ['--host=::1', '--port', '9000', '--ttl', '10m']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^\S+\nhttp:\/\/\[::1\]:9000\/\?token=\S+\n$/);
  });

  it.each([
    [['--port', '0'], /--port: 0 is outside 1\.\.65535/],
    [['--port', 'http'], /--port: 'http' is not a whole number/],
    [['--host', 'my host'], /--host: 'my host' is not an IP address/],
    [['--ttl', '31d'], /--ttl: .* is outside/],
    [['--bogus'], /unknown option --bogus/],
    [['--avatar'], /--avatar needs a value/],
    [['stray'], /unexpected argument 'stray'/],
  ])('refuses %j with exit 2', async (argv, message) => {
    vi.stubEnv('DNP_TOKEN_SECRET', SECRET);
    const r = await capture(token, argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it('without a secret says where to give it', async () => {
    vi.stubEnv('DNP_TOKEN_SECRET', '');
    const r = await capture(token, []);
    expect([r.code, r.err.includes('DNP_TOKEN_SECRET')]).toEqual([2, true]);
  });
});

describe('dnp speech-features and dnp idle-motion options', () => {
  it.each([
    [[], /no INPUT/],
    [[wav], /--out FILE\.npy is required/],
    [[wav, wav, '--out', join(dir, 'x.npy')], /unexpected argument/],
    [[wav, '--out'], /--out needs a value/],
    [[wav, '--out', join(dir, 'x.npy'), '--model-dir', join(dir, 'none')], /--model-dir .* is not a folder/],
    [[wav, '--out=x.npy', '--bogus'], /unknown option --bogus/],
  ])('speech-features refuses %j with exit 2', async (argv, message) => {
    const r = await capture(speechFeatures, argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it.each([
    [['--avatar', dir], /--avatar and --data are required/],
    [['--avatar', dir, '--data', dir, '--seconds', 'long'], /--seconds: 'long' is not a number/],
    [['--avatar', dir, '--data', dir, '--seconds=700'], /--seconds: 700 is outside 2\.\.600/],
    [['--avatar', dir, '--data', dir, '--frames', '3'], /unknown option --frames/],
  ])('idle-motion refuses %j with exit 2', async (argv, message) => {
    const r = await capture(idleMotion, argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });
});

describe('GPU bundle bench options (node bench.mjs)', () => {
  it('has defaults, reads lists and --help', () => {
    expect(parseGpuBenchArgs(['--avatars', 'a'])).toEqual({ avatars: 'a', devices: ['torch', 'webgpu', 'cuda', 'cpu'], batches: [1, 8, 32], sizes: null, runs: 10, threads: 0, cpuMaxBatch: 8, cpuMaxSize: 512, out: 'results.json' });
    expect(parseGpuBenchArgs(['--avatars=a', '--devices', 'cpu', '--batches', '1,4', '--sizes=256', '--runs', '3', '--threads', '2', '--out', 'r.json'])).toMatchObject({ devices: ['cpu'], batches: [1, 4], sizes: [256], runs: 3, threads: 2, out: 'r.json' });
    expect(parseGpuBenchArgs(['--help'])).toBe('help');
  });

  it.each([
    [[], /--avatars DIR is required/],
    [['--avatars', 'a', '--devices', 'cpu,tpu'], /--devices: 'tpu' is not one of/],
    [['--avatars', 'a', '--batches', '0'], /--batches: 0 is outside 1\.\.4096/],
    [['--avatars', 'a', '--runs'], /--runs needs a value/],
    [['--avatars', 'a', '--bogus', '1'], /unknown option --bogus/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseGpuBenchArgs(argv)).toThrow(message);
  });
});
