/**
 * Bounded shutdown and no leaks: a hung model run is abandoned (worker terminated and replaced, its frames
 * fail with the reason) so close() always returns; native encoder/muxer contexts are freed when construction
 * fails half-way; `dnp serve` stops cleanly on SIGTERM during a live session (callers told, exit 0, no
 * process left behind).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CodecContext, FormatContext } from 'node-av';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { RtcClient } from '../server/src/bench/rtc-client.js';
import { createLogger } from '../server/src/log.js';
import { VideoEncoder } from '../server/src/media/video-encoder.js';
import { Renderer } from '../server/src/render/renderer.js';
import { RtpEncoder } from '../server/src/media/rtp-encoder.js';
import { makeUntrainedAvatar, REPO_ROOT, type TestAvatar } from './support/test-avatar.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let tmp: string;
let avatar: TestAvatar;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'dnp-shutdown-'));
  avatar = await makeUntrainedAvatar(join(tmp, 'avatars', 'a'), { size: 128 });
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('renderer: a hung model run', () => {
  const make = (runTimeoutMs: number): Promise<Renderer> =>
    Renderer.create('a', avatar.modelPath, avatar.manifest, { device: 'cpu', threads: 1, maxBatch: 2, runTimeoutMs }, createLogger('silent'));
  const cond = (): Float32Array => Float32Array.from(avatar.manifest.conditioning.mean);

  for (const mode of ['silent', 'spin'] as const) {
    it(`(${mode}) is abandoned after the timeout, fails with the reason, and the worker is replaced`, async () => {
      const r = await make(400);
      try {
        let hung = 0;
        r.onHung = () => hung++;
        r.testFaultNextRun(mode);
        const t0 = performance.now();
        await expect(r.render(cond(), () => 1)).rejects.toThrow(/did not finish within 400 ms; the render worker was terminated and is being replaced/);
        expect(performance.now() - t0).toBeLessThan(3000);
        expect(hung).toBe(1);
        expect(r.toJSON().hung).toBe(1);
        // the replacement renders (the request waits for it to load the model)
        expect(await r.render(cond(), (rgb) => rgb.length)).toBe(3 * 128 * 128);
        expect(await r.render(cond(), () => 'again')).toBe('again');
      } finally {
        await r.close();
      }
    }, 60_000);
  }

  it('close() returns within a bounded time while a run blocks the worker thread, failing that run', async () => {
    const r = await make(60_000);
    r.testFaultNextRun('spin');
    const pending = r.render(cond(), () => 1);
    const failed = pending.then(
      () => null,
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    await sleep(100);
    const t0 = performance.now();
    await r.close();
    expect(performance.now() - t0).toBeLessThan(6000); // 2 s for the run + 2 s for the worker to exit + terminate
    expect(await failed).toMatch(/closed during a model run/);
    await r.close(); // idempotent
    await expect(r.render(cond(), () => 1)).rejects.toThrow(/closed/);
  }, 30_000);
});

describe('native contexts are freed when construction fails half-way', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('VideoEncoder: an encoder that does not open frees its codec context', () => {
    const freed = vi.spyOn(CodecContext.prototype, 'freeContext');
    // libx264 refuses odd sizes for yuv420p at open time, after the context was allocated and configured
    expect(() => new VideoEncoder({ codec: 'h264', width: 255, height: 255, fps: 25, bitrate: 300_000 })).toThrow(/open libx264/);
    expect(freed).toHaveBeenCalledTimes(1);
  });

  it('RtpEncoder (what VideoOutput and a room stream encode with): when the RTP muxer fails, the encoder and the muxer contexts are freed', () => {
    const encoderClosed = vi.spyOn(VideoEncoder.prototype, 'close');
    const codecFreed = vi.spyOn(CodecContext.prototype, 'freeContext');
    const fmtFreed = vi.spyOn(FormatContext.prototype, 'freeContext');
    vi.spyOn(FormatContext.prototype, 'newStream').mockImplementation(() => {
      throw new Error('injected: no stream');
    });
    expect(() => new RtpEncoder({ codec: 'vp8', width: 64, height: 64, fps: 25, bitrate: 200_000, maxPacketSize: 1200 })).toThrow(/injected: no stream/);
    expect(fmtFreed).toHaveBeenCalledTimes(1);
    expect(encoderClosed).toHaveBeenCalledTimes(1);
    expect(codecFreed).toHaveBeenCalledTimes(1);
  });
});

/** Child processes of `pid` (direct), from ps: pid and command line. */
function childProcesses(pid: number): Array<{ pid: number; cmd: string }> {
  try {
    return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /^\s*(\d+)\s+(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ pid: Number(m[1]), cmd: m[2] as string }));
  } catch {
    return []; // ps exits 1 when there are none
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('dnp serve: SIGTERM during a live session', () => {
  let child: ChildProcess | null = null;

  afterEach(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child = null;
  });

  it('tells the caller, closes everything and exits 0 within the bound, leaving no process behind', async () => {
    const proc = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'dnp.js'), 'serve', '--avatars', join(tmp, 'avatars'), '--port', '0', '--log-level', 'info'], {
      cwd: REPO_ROOT,
      env: { ...process.env, DNP_ICE_HOSTS: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let stderr = '';
    let stdout = '';
    proc.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no URL within 60 s: ${stderr}`)), 60_000);
      proc.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /open (http:\/\/127\.0\.0\.1:\d+)\//.exec(stderr);
        if (m) {
          clearTimeout(t);
          resolve(m[1] as string);
        }
      });
      proc.once('exit', (code) => reject(new Error(`dnp serve exited (${code}) before listening: ${stderr}`)));
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
      proc.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
    );

    const client = await RtcClient.connect({ url, avatar: 'a' });
    try {
      for (let i = 0; i < 100 && client.stats.framesDecoded < 3; i++) await sleep(50);
      expect(client.stats.framesDecoded).toBeGreaterThanOrEqual(3); // live
      const children = childProcesses(proc.pid as number); // e.g. tsx's esbuild service, when it transformed files
      const disconnected = new Promise<void>((resolve) => client.socket.once('disconnect', () => resolve()));

      const t0 = performance.now();
      proc.kill('SIGTERM');
      const { code, signal, at } = await exited;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(at - t0).toBeLessThan(10_000);
      await disconnected;
      expect(client.shutdownNotices).toEqual(['the server is shutting down (SIGTERM)']);
      // a child may take a moment to see its parent's pipes close; one still there after 3 s is an orphan
      for (let i = 0; i < 30 && children.some((c) => alive(c.pid)); i++) await sleep(100);
      for (const c of children) expect(alive(c.pid), `child process ${c.pid} (${c.cmd}) outlived the server`).toBe(false);
      expect(stdout).toMatch(/"msg":"dnp server closed"/);
      expect(stdout).toMatch(/"reason":"server-close"/); // the session was closed by the shutdown
      expect(stdout).not.toMatch(/handles still open|did not finish in time/);
    } finally {
      await client.close();
    }
  }, 90_000);
});
