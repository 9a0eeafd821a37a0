/**
 * `dnp bench encode`: the encode pool alone on the shipped avatar's pictures (scaled to 128²): every stream
 * delivers, the numbers are present and consistent, the step's verdict follows the frame rates; the bilinear
 * plane scaler; the command line's refusals. No wall-clock thresholds (the machine is shared).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatEncodeTable, runEncodeBench, scalePlane, scaleYuv420p } from '../server/src/bench/encode-bench.js';
import { parseEncodeArgs } from '../server/src/cli/bench-encode.js';
import { UsageError } from '../server/src/cli/args.js';
import { createLogger } from '../server/src/log.js';
import { REPO_ROOT } from './support/test-avatar.js';

const DEFAULT_AVATAR = join(REPO_ROOT, 'avatars', 'default');

describe('dnp bench encode', () => {
  it('encodes 1 and 3 paced streams of the avatar on one worker: numbers present and consistent', async () => {
    const r = await runEncodeBench({
      avatar: { kind: 'folder', dir: DEFAULT_AVATAR },
      size: 128, codec: 'vp8', streams: [1, 3], workers: 1, seconds: 1, fps: 10, holdFps: 9, bitrate: 0, frames: 4,
      vp8CpuUsed: 16, stopWhenNotHeld: false,
    }, createLogger('silent'));
    expect(r.size).toBe(128);
    expect(r.workers).toBe(1);
    expect(r.content).toMatch(/rendered at 256x256 and scaled to 128x128/);
    expect(r.bitrate).toBe(200_000); // the server's default for 128² at 10 fps: its floor
    expect(r.vp8CpuUsed).toBe(16);
    expect(formatEncodeTable(r)).toContain('cpu-used 16');
    expect(r.results.map((s) => s.streams)).toEqual([1, 3]);
    for (const s of r.results) {
      expect(s.fpsPerStream.min).toBeGreaterThan(0);
      expect(s.fpsPerStream.min).toBeLessThanOrEqual(s.fpsPerStream.median);
      expect(s.fpsPerStream.median).toBeLessThanOrEqual(10.5); // paced: one picture per tick at most
      expect(s.framesPerSecond).toBeCloseTo(s.fpsPerStream.median * s.streams, -1);
      expect(s.encodeMs.median).toBeGreaterThan(0);
      expect(s.encodeMs.p90).toBeGreaterThanOrEqual(s.encodeMs.median);
      expect(s.kbitPerSecondPerStream).toBeGreaterThan(0);
      expect(s.coresBusy).toBeGreaterThan(0);
      expect(s.held).toBe(s.fpsPerStream.min >= 9);
    }
    expect(r.streamsHeld).toBe(Math.max(0, ...r.results.filter((s) => s.held).map((s) => s.streams)));
  }, 120_000);

  it('scales planes bilinearly: constants stay, a ramp stays a ramp, sizes are right', () => {
    const flat = new Uint8Array(16).fill(77);
    const up = new Uint8Array(64);
    scalePlane(flat, 4, 4, up, 8, 8);
    expect([...new Set(up)]).toEqual([77]);
    const ramp = Uint8Array.from({ length: 4 }, (_, i) => i * 60); // one row: 0 60 120 180
    const wide = new Uint8Array(8);
    scalePlane(ramp, 4, 1, wide, 8, 1);
    expect([...wide]).toEqual([0, 15, 45, 75, 105, 135, 165, 180]);
    const down = new Uint8Array(2);
    scalePlane(ramp, 4, 1, down, 2, 1);
    expect([...down]).toEqual([30, 150]);
    const yuv = scaleYuv420p(new Uint8Array(16 * 16 * 1.5).fill(128), 16, 16, 32, 32);
    expect(yuv.length).toBe(32 * 32 * 1.5);
    expect([...new Set(yuv)]).toEqual([128]);
  });

  it('parses its options and refuses bad ones with the reason', () => {
    const p = parseEncodeArgs(['--streams', '2,4', '--workers', '3', '--size', '512', '--codec', 'h264', '--bitrate', '1.5M', '--all', '--vp8-cpu-used', '12']);
    expect(p.opts).toMatchObject({ streams: [2, 4], workers: 3, size: 512, codec: 'h264', bitrate: 1_500_000, stopWhenNotHeld: false, fps: 25, holdFps: 24, vp8CpuUsed: 12 });
    expect(p.opts.avatar).toEqual({ kind: 'folder', dir: DEFAULT_AVATAR });
    const defaults = parseEncodeArgs(['--preset', 'cpu', '--size', '128']).opts;
    expect(defaults.avatar).toEqual({ kind: 'untrained', preset: 'cpu', size: 128, fps: 25 });
    expect(defaults.streams).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 512]); // a 16-core host held 192 VP8 streams at 256²
    expect(defaults.stopWhenNotHeld).toBe(true);
    expect(defaults.vp8CpuUsed).toBe(8);
    const bad: Array<[string[], RegExp]> = [
      [['--avatar', DEFAULT_AVATAR, '--preset', 'cpu'], /--preset is for an untrained avatar/],
      [['--size', '129'], /not even/],
      [['--fps', '10', '--hold-fps', '12'], /above --fps/],
      [['--codec', 'av1'], /codec/],
      [['--bitrate', 'fast'], /not a bitrate/],
      [['--streams', '0'], /streams/],
      [['--vp8-cpu-used', '17'], /vp8-cpu-used/],
    ];
    for (const [argv, why] of bad) {
      expect(() => parseEncodeArgs(argv)).toThrow(UsageError);
      expect(() => parseEncodeArgs(argv)).toThrow(why);
    }
  });
});
