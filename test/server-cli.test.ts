/** `dnp serve` as a user runs it: option validation, the no-avatar hint, start, serve, stop on SIGTERM. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveServeOptions } from '../server/src/cli/serve-options.js';
import { makeUntrainedAvatar, REPO_ROOT } from './support/test-avatar.js';
import { startServeChild } from './support/serve-child.js';

const DNP = join(REPO_ROOT, 'bin', 'dnp.js');

function dnp(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [DNP, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('dnp (the command dispatcher)', () => {
  it('lists its commands with --help and exits 0', () => {
    const r = dnp(['--help']);
    expect(r.status).toBe(0);
    for (const c of ['serve', 'prepare', 'train', 'bench']) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
  });

  it('answers an unknown command with the list and exit 2, and no command with the list and exit 1', () => {
    const bad = dnp(['serv']);
    expect(bad.stderr).toContain("dnp: unknown command 'serv'");
    expect(bad.stderr).toContain('Commands:');
    expect(bad.status).toBe(2);
    const none = dnp([]);
    expect(none.stdout).toContain('Usage: dnp <command>');
    expect(none.status).toBe(1);
  });

  it('gives --help for every command', () => {
    for (const c of ['serve', 'prepare', 'train', 'bench']) {
      const r = dnp([c, '--help']);
      expect(r.status, c).toBe(0);
      expect(r.stdout, c).toMatch(new RegExp(`Usage: dnp ${c}`));
    }
  });
});

describe('dnp serve (command line)', () => {
  let tmp: string;

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'dnp-cli-'));
  });
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('--help lists every option', () => {
    const r = dnp(['serve', '--help']);
    expect(r.status).toBe(0);
    for (const o of ['--avatars', '--port', '--host', '--device', '--threads', '--encode-workers', '--render-workers', '--max-fps', '--vp8-cpu-used', '--codec', '--ice-host', '--public-ip', '--ice-servers', '--tracker-model', '--log-level']) {
      expect(r.stdout).toContain(o);
    }
  });

  it('rejects a bad option with a clear error (exit 2)', () => {
    const r = dnp(['serve', '--port', '99999']);
    expect(r.stderr).toMatch(/--port: 99999 is outside 0\.\.65535/);
    expect(r.status).toBe(2);
  });

  it('validates every option (flags over environment over defaults)', () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['--device', 'tpu'], {}, /--device: 'tpu' is not one of cpu, webgpu, cuda/],
      [[], { DNP_DEVICE: 'gpu' }, /--device: 'gpu' is not one of/],
      [['--ice-servers', '[{"urls":"stun:x"'], {}, /--ice-servers: not valid JSON/],
      [['--ice-servers', '[{"urls":"http://x"}]'], {}, /--ice-servers\[0\]\.urls: 'http:\/\/x' must start with stun:/],
      [['--public-ip', 'example.org'], {}, /--public-ip: 'example\.org' is not an IPv4 address/],
      [['--ice-host', '127.0.0.1,nope'], {}, /--ice-host: 'nope' is not an IP address/],
      [['--ice-ports', '5000-4000'], {}, /--ice-ports: the upper port must be above the lower one/],
      [['--bitrate', 'fast'], {}, /--bitrate: 'fast' is not a bitrate/],
      [['--threads', '1.5'], {}, /--threads: '1\.5' is not a whole number/],
      [['--codec', 'av1'], {}, /--codec: 'av1' is not one of vp8, h264/],
      [['--log-level', 'loud'], {}, /--log-level: 'loud' is not one of/],
      [['--host', 'my host'], {}, /--host: 'my host' is not an IP address/],
      [['--frobnicate'], {}, /unknown option --frobnicate/],
      [['--threads'], {}, /--threads needs a value/],
      [['--encode-workers', '-1'], {}, /--encode-workers: -1 is outside 0\.\.64/],
      [['--render-workers', '0'], {}, /--render-workers: 0 is outside 1\.\.64/],
      [[], { DNP_ENCODE_WORKERS: 'many' }, /--encode-workers: 'many' is not a whole number/],
      [['--max-fps', '0'], {}, /--max-fps: 0 is outside 1\.\.240/],
      [['--vp8-cpu-used', '17'], {}, /--vp8-cpu-used: 17 is outside 0\.\.16/],
      [[], { DNP_VP8_CPU_USED: '4.5' }, /--vp8-cpu-used: '4\.5' is not a whole number/],
      [[], { DNP_MAX_FPS: 'fast' }, /--max-fps: 'fast' is not a number/],
      [['stray'], {}, /unexpected argument 'stray'/],
    ];
    for (const [args, env, msg] of cases) {
      expect(() => resolveServeOptions(args, env, '/srv')).toThrow(msg);
    }
    const o = resolveServeOptions(['--port=9000', '--avatars', 'av', '--ice-host', '10.0.0.2', '--ice-host', '127.0.0.1', '--bitrate', '1.5M'], { PORT: '1', DNP_DEVICE: 'webgpu', LOG_LEVEL: 'debug', DNP_ICE_SERVERS: '[{"urls":["turn:t.example:3478"],"username":"u","credential":"c"}]' }, '/srv');
    expect(o.port).toBe(9000);
    expect(o.host).toBe('127.0.0.1');
    expect(o.avatarsDir).toBe('/srv/av');
    expect(o.device).toBe('webgpu');
    expect(o.logLevel).toBe('debug');
    expect(o.bitrate).toBe(1_500_000);
    expect(o.ice.additionalHostAddresses).toEqual(['10.0.0.2', '127.0.0.1']);
    expect(o.ice.iceServers).toEqual([{ urls: ['turn:t.example:3478'], username: 'u', credential: 'c' }]);
    const d = resolveServeOptions([], {}, '/srv');
    expect([d.port, d.device, d.defaultCodec, d.threads, d.trackerModelPath, d.ice.iceServers, d.ice.publicIp]).toEqual([8080, 'cpu', 'vp8', 1, null, [], null]);
    expect(d.encodeWorkers).toBeUndefined(); // auto: half the cores
    expect(d.renderWorkers).toBeUndefined(); // auto: one per core, at most 4
    expect(resolveServeOptions(['--render-workers', 'auto'], {}, '/srv').renderWorkers).toBeUndefined();
    expect(resolveServeOptions([], { DNP_RENDER_WORKERS: '2' }, '/srv').renderWorkers).toBe(2);
    expect(resolveServeOptions(['--encode-workers', 'auto'], {}, '/srv').encodeWorkers).toBeUndefined();
    expect(resolveServeOptions([], { DNP_ENCODE_WORKERS: '0' }, '/srv').encodeWorkers).toBe(0);
    expect(resolveServeOptions(['--encode-workers=3'], { DNP_ENCODE_WORKERS: '0' }, '/srv').encodeWorkers).toBe(3);
    expect(d.maxFps).toBeNull(); // each avatar's own rate
    expect(d.vp8CpuUsed).toBe(8);
    expect(resolveServeOptions([], { DNP_VP8_CPU_USED: '16' }, '/srv').vp8CpuUsed).toBe(16);
    expect(resolveServeOptions(['--vp8-cpu-used', '12'], { DNP_VP8_CPU_USED: '16' }, '/srv').vp8CpuUsed).toBe(12);
    expect(resolveServeOptions([], { DNP_MAX_FPS: '25' }, '/srv').maxFps).toBe(25);
    expect(resolveServeOptions(['--max-fps', '12.5'], { DNP_MAX_FPS: '25' }, '/srv').maxFps).toBe(12.5);
  });

  it('without an avatar says how to make one and exits non-zero', () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    const r = dnp(['serve', '--avatars', empty]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('No usable avatar');
    expect(r.stderr).toContain('python3 -m train export --untrained');
  });

  it('serves an avatar folder and stops cleanly on SIGTERM', async () => {
    const dir = join(tmp, 'one');
    await makeUntrainedAvatar(dir, { size: 128 }); // a single avatar folder is accepted too
    const serve = await startServeChild(['--avatars', dir, '--port', '0', '--log-level', 'warn']);
    const url = serve.url;
    try {
      const health = (await (await fetch(`${url}/healthz`)).json()) as { ok: boolean; avatars: number };
      expect(health).toMatchObject({ ok: true, avatars: 1 });
      const avatars = (await (await fetch(`${url}/avatars`)).json()) as Array<{ id: string }>;
      expect(avatars.map((a) => a.id)).toEqual(['one']);
    } finally {
      expect(await serve.stop()).toBe(0);
    }
  });
});
