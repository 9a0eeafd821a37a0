/** The shared option parser of every dnp command (server/src/cli/args.ts). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commaList, envOptions, existingDir, existingFile, flagOptions, int, intList, intOneOf, num, oneOf, parseCommandLine, UsageError, valueOptions } from '../server/src/cli/args.js';

const SPEC = {
  port: { type: 'string', env: 'PORT' },
  name: { type: 'string' },
  force: { type: 'boolean' },
} as const;

const dir = mkdtempSync(join(tmpdir(), 'dnp-cli-args-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseCommandLine', () => {
  it('reads --x v, --x=v, flags, positionals and --help', () => {
    const cl = parseCommandLine(['--port', '9000', '--name=a=b', '--force', 'in.mp4', '-h'], SPEC, { maxPositionals: 1 });
    expect(cl.int('port', 0, 65535)).toBe(9000);
    expect(cl.str('name')).toBe('a=b');
    expect(cl.flag('force')).toBe(true);
    expect(cl.positionals).toEqual(['in.mp4']);
    expect(cl.help).toBe(true);
    expect([cl.given('port'), cl.given('force')]).toEqual([true, true]);
    const none = parseCommandLine([], SPEC);
    expect([none.flag('force'), none.help, none.given('port'), none.str('name')]).toEqual([false, false, false, undefined]);
  });

  it('takes a negative number as a value, but not another option', () => {
    expect(parseCommandLine(['--port', '-1'], SPEC).str('port')).toBe('-1');
    expect(() => parseCommandLine(['--port', '--force'], SPEC)).toThrow(/^--port needs a value$/);
    expect(parseCommandLine(['--port=--x'], SPEC).str('port')).toBe('--x');
  });

  it('gives the last of a repeated option, or all of them joined with commas', () => {
    expect(parseCommandLine(['--name', 'a', '--name', 'b'], SPEC).str('name')).toBe('b');
    expect(parseCommandLine(['--name', 'a', '--name', 'b'], SPEC, { joinRepeated: true }).str('name')).toBe('a,b');
  });

  it('falls back to the environment variable, then to the default; the flag wins', () => {
    expect(parseCommandLine([], SPEC, { env: { PORT: '81' } }).int('port', 0, 65535, 8080)).toBe(81);
    expect(parseCommandLine([], SPEC, { env: { PORT: '' } }).int('port', 0, 65535, 8080)).toBe(8080);
    expect(parseCommandLine(['--port=82'], SPEC, { env: { PORT: '81' } }).int('port', 0, 65535, 8080)).toBe(82);
    expect(parseCommandLine([], SPEC, { env: { PORT: 'x' } }).given('port')).toBe(false);
    expect(() => parseCommandLine([], SPEC, { env: { PORT: '70000' } }).int('port', 0, 65535, 8080)).toThrow('--port: 70000 is outside 0..65535');
  });

  it.each([
    [['--bogus'], /^unknown option --bogus \(see --help\)$/],
    [['--bogus=1'], /^unknown option --bogus /],
    [['-x'], /^unknown option -x /],
    [['--port'], /^--port needs a value$/],
    [['--force=yes'], /^--force takes no value$/],
    [['stray'], /^unexpected argument 'stray'/],
    [['--name', 'a', 'b'], /^unexpected argument 'b'/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseCommandLine(argv, SPEC)).toThrow(UsageError);
    expect(() => parseCommandLine(argv, SPEC)).toThrow(message);
  });

  it('builds option tables', () => {
    expect({ ...valueOptions('a', 'b'), ...flagOptions('c'), ...envOptions({ d: 'D' }) }).toEqual({ a: { type: 'string' }, b: { type: 'string' }, c: { type: 'boolean' }, d: { type: 'string', env: 'D' } });
  });

  it('takes what follows -- as positionals', () => {
    expect(parseCommandLine(['--', '--force'], SPEC, { maxPositionals: 1 }).positionals).toEqual(['--force']);
  });
});

describe('typed value checks', () => {
  it('accepts good values', () => {
    expect(int('n', ' 7', 0, 10)).toBe(7);
    expect(int('n', '-3', -5, 10)).toBe(-3);
    expect(num('x', '0.5', 0, 1)).toBe(0.5);
    expect(num('x', '.25', 0, 1)).toBe(0.25);
    expect(num('lr', '3e-4', 0, 1)).toBe(0.0003);
    expect(oneOf('codec', 'h264', ['vp8', 'h264'] as const)).toBe('h264');
    expect(intOneOf('size', '512', [256, 512] as const)).toBe(512);
    expect(commaList(' a, b,,c ')).toEqual(['a', 'b', 'c']);
    expect(intList('batches', '1, 8,32', 1, 256)).toEqual([1, 8, 32]);
    const file = join(dir, 'f.txt');
    writeFileSync(file, 'x');
    expect(existingFile('in', file)).toBe(file);
    expect(existingDir('dir', dir)).toBe(dir);
  });

  it.each([
    [() => int('threads', '1.5', 0, 64), "--threads: '1.5' is not a whole number"],
    [() => int('threads', '', 0, 64), "--threads: '' is not a whole number"],
    [() => int('port', '99999', 0, 65535), '--port: 99999 is outside 0..65535'],
    [() => num('fps', 'abc', 1, 120), "--fps: 'abc' is not a number"],
    [() => num('fps', '1e3', 1, 120), '--fps: 1000 is outside 1..120'],
    [() => num('fps', '0x10', 1, 120), "--fps: '0x10' is not a number"],
    [() => int('iterations', '0', 1, Infinity), '--iterations: 0 is below 1'],
    [() => num('test-fraction', '0.95', 0, 0.9), '--test-fraction: 0.95 is outside 0..0.9'],
    [() => oneOf('device', 'tpu', ['cpu', 'cuda'] as const), "--device: 'tpu' is not one of cpu, cuda"],
    [() => intOneOf('size', '300', [256, 512] as const), '--size: 300 is not one of 256, 512'],
    [() => intOneOf('size', 'big', [256, 512] as const), "--size: 'big' is not a whole number"],
    [() => intList('batches', '1,0', 1, 256), '--batches: 0 is outside 1..256'],
    [() => intList('batches', '2,2', 1, 256), '--batches: 2,2 repeats a value'],
    [() => existingFile('vectors', join(dir, 'none.npy')), `--vectors ${join(dir, 'none.npy')}: no such file`],
    [() => existingFile('vectors', dir), `--vectors ${dir}: no such file`],
    [() => existingDir('avatar', join(dir, 'none')), `--avatar ${join(dir, 'none')} is not a folder`],
  ])('refuses bad values, naming the option (%#)', (check, message) => {
    expect(check).toThrow(UsageError);
    expect(check).toThrow(message);
  });
});
