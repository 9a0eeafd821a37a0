/**
 * `dnp bench --callers N`: two Node WebRTC callers on one server and one (untrained, 64²) avatar for a few
 * seconds; every per-caller and aggregate number is present and sane. No wall-clock thresholds (the machine is
 * shared): only checks that hold on any machine that renders at all, and fail when the measurement is broken.
 * Also the CLI's option checks (exit 2).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runCallersBench } from '../server/src/bench/callers-bench.js';
import type { Summary } from '../server/src/bench/stats.js';
import { parseBenchArgs, parseRenderArgs } from '../server/src/cli/bench.js';
import { PROJECT_ROOT } from '../server/src/project-paths.js';

const execFileP = promisify(execFile);

function expectSummary(s: Summary, what: string): void {
  expect(s.n, `${what}: samples`).toBeGreaterThan(0);
  expect(Number.isFinite(s.median) && Number.isFinite(s.p90), `${what}: finite`).toBe(true);
  expect(s.median, `${what}: median`).toBeGreaterThanOrEqual(0);
  expect(s.p90, `${what}: p90 >= median`).toBeGreaterThanOrEqual(s.median);
  expect(s.max, `${what}: max >= p90`).toBeGreaterThanOrEqual(s.p90);
}

describe('dnp bench --callers', () => {
  it('measures two simultaneous callers: per caller and aggregate numbers present and sane (served at --max-fps)', async () => {
    const seconds = 3;
    const maxFps = 20; // the untrained avatar's own rate is 25: the server must send at most 20 a second
    const r = await runCallersBench({
      avatar: { kind: 'untrained', preset: 'warp', size: 64, fps: 25 },
      callers: 2,
      maxCallers: 2,
      seconds,
      warmupSeconds: 1,
      rateHz: 30,
      codec: 'vp8',
      threads: 1,
      drivingFile: null,
      maxFps,
      vp8CpuUsed: 16, // passed to the server as --vp8-cpu-used (a flag it did not know would stop it at start)
      stopFps: 24,
      holdFps: 25,
    });
    expect(r.mode).toBe('fixed');
    expect(r.avatar.fps).toBe(maxFps);
    expect(r.avatar.description).toContain(`${maxFps} fps (its own 25; --max-fps)`);
    expect(r.avatar.size).toBe(64);
    expect(r.avatar.description).toContain('warp');
    expect(r.avatar.flopsPerFrame).toBeGreaterThan(0);
    expect(r.steps).toHaveLength(1);
    const step = r.steps[0]!;
    expect(step.perCaller.map((c) => c.caller)).toEqual([1, 2]);
    for (const c of step.perCaller) {
      expect(c.errors, `caller ${c.caller} session errors`).toEqual([]);
      expect(c.drivingSent, `caller ${c.caller} driving frames sent`).toBeGreaterThan(0);
      expect(c.fpsReceived, `caller ${c.caller} fps received`).toBeGreaterThan(0);
      // An avatar served at 20 fps cannot deliver much more than 20 frames/s (one frame of counting slack).
      expect(c.fpsReceived).toBeLessThanOrEqual(maxFps + 1 / seconds + 0.5);
      expect(c.fpsRendered).toBeGreaterThan(0);
      expectSummary(c.latencyMs, `caller ${c.caller} latency`);
      expect(c.latencyMs.median).toBeGreaterThan(0); // a frame cannot arrive before its driving frame was sent
      expectSummary(c.renderMs, `caller ${c.caller} render ms`);
      expect(c.renderMs.median).toBeGreaterThan(0);
      expectSummary(c.encodeMs, `caller ${c.caller} encode ms`);
      expect(c.downlinkKbps).toBeGreaterThan(0);
      expect(c.uplinkPayloadKbps).toBeGreaterThan(0);
    }
    const a = step.aggregate;
    expect(a.callers).toBe(2);
    const sum = step.perCaller.reduce((s, c) => s + c.fpsReceived, 0);
    expect(a.fpsReceivedTotal).toBeCloseTo(sum, 0);
    expect(a.fpsReceivedMin).toBe(Math.min(...step.perCaller.map((c) => c.fpsReceived)));
    expect(a.latencyMs.n).toBe(step.perCaller.reduce((s, c) => s + c.latencyMs.n, 0));
    expectSummary(a.latencyMs, 'aggregate latency');
    expectSummary(a.renderMs, 'aggregate render');
    expect(a.serverCpuPercentOfOneCore).toBeGreaterThan(0);
    expect(a.mainThreadMsPerFrame).toBeGreaterThan(0);
    expect(a.benchCpuPercentOfOneCore).toBeGreaterThan(0);
    expect(a.sessionErrors).toBe(0);
    expect(r.ramp).toBeNull();
  }, 240_000);

  it('parses --callers, --ramp and the avatar options', () => {
    const f = parseBenchArgs(['--callers', '3', '--size', '128', '--preset', 'cpu', '--server-threads', '2']);
    expect(f.mode).toBe('callers');
    if (f.mode !== 'callers') return;
    expect(f.opts.callers).toBe(3);
    expect(f.opts.avatar).toEqual({ kind: 'untrained', preset: 'cpu', size: 128, fps: 25 });
    expect(f.opts.threads).toBe(2);
    expect(f.opts.seconds).toBe(15);
    expect(f.opts.maxFps).toBeNull();
    expect(f.opts.vp8CpuUsed).toBeNull(); // the server's own default
    const m = parseBenchArgs(['--callers', '2', '--max-fps', '25', '--vp8-cpu-used', '16']);
    expect(m.mode === 'callers' && m.opts.maxFps === 25 && m.opts.vp8CpuUsed === 16).toBe(true);
    const r = parseBenchArgs(['--ramp', '--max-callers', '5']);
    expect(r.mode === 'callers' && r.opts.callers === 'ramp' && r.opts.maxCallers === 5 && r.opts.seconds === 5).toBe(true);
    expect(parseBenchArgs(['--callers', 'max']).mode).toBe('callers');
    const s = parseBenchArgs([]);
    expect(s.mode === 'sizes' && s.opts.preset === 'warp' && s.opts.sizes.join() === '256,512').toBe(true);
  });

  it.each([
    [['--callers', '0'], /--callers: 0 is outside 1\.\.64/],
    [['--callers', 'lots'], /--callers: 'lots' is not a whole number/],
    [['--sizes', '256', '--seconds=2', '--json=yes'], /--json takes no value/],
    [['--callers', '2', '--sizes', '64,128'], /one size/],
    [['--preset', 'huge'], /--preset: 'huge' is not one of warp, cpu, paper/],
    [['--avatar', join(PROJECT_ROOT, 'no-such-avatar')], /is not a folder/],
    [['--avatar', PROJECT_ROOT], /holds no avatar\.json/],
    [['--avatar', PROJECT_ROOT, '--callers', '2'], /holds no avatar\.json/],
    [['--max-callers', '4'], /needs --callers max/],
    [['--ramp', '--stop-fps', '26'], /above --hold-fps/],
    [['--callers', '2', '--max-fps', '0'], /--max-fps: 0 is outside 1\.\.240/],
    [['--callers', '2', '--vp8-cpu-used', '-1'], /--vp8-cpu-used/],
    [['--sizes', '100'], /not a multiple of 64/],
    [['render', '--batches', '1,0'], /--batches: 0 is outside 1\.\.256/],
    [['render', '--batches', '2,2'], /repeats/],
    [['render', '--device', 'tpu'], /--device: 'tpu' is not one of cpu, webgpu, cuda/],
    [['render', '--size', '65'], /not even/],
    [['render', '--runs', '0'], /--runs: 0 is outside/],
    [['render', '--bogus'], /unknown option --bogus/],
  ])('dnp bench %j is refused with a clear message', (args, message) => {
    const parse = (): unknown => (args[0] === 'render' ? parseRenderArgs(args.slice(1)) : parseBenchArgs(args));
    expect(parse).toThrow(message);
  });

  it.each([
    [['--callers', '0'], /--callers: 0 is outside 1\.\.64/],
    [['render', '--device', 'tpu'], /--device: 'tpu' is not one of/],
  ])('the dnp CLI exits 2 on %j', async (args, message) => {
    const res = await execFileP(process.execPath, [join(PROJECT_ROOT, 'bin', 'dnp.js'), 'bench', ...args], { cwd: PROJECT_ROOT }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code?: number; stderr?: string }) => ({ code: e.code ?? -1, stderr: e.stderr ?? '' }),
    );
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
  });
});
