/**
 * Egress control: `dnp serve` egress options (validated, env fallbacks), and the EgressManager in a real server:
 * with --record a registered participant stream is recorded by itself (state in /metrics) and the file is
 * finalised when the stream ends; --egress-source picks the streams; start/stop by id.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EGRESS_FLAGS } from '../server/src/cli/egress-options.js';
import { UsageError } from '../server/src/cli/args.js';
import { resolveServeOptions } from '../server/src/cli/serve-options.js';
import { help } from '../server/src/cli/serve.js';
import { EGRESS_CONFIG_DEFAULTS } from '../server/src/egress/egress-manager.js';
import { decodeMedia } from './support/media-file.js';
import { PatternTap } from './support/pattern-tap.js';
import { metricValue, startTestServer, type TestServer } from './support/server.js';
import { until } from './support/whep-client.js';

describe('dnp serve egress options', () => {
  const resolve = (argv: string[], env: NodeJS.ProcessEnv = {}) => resolveServeOptions(argv, env, '/srv');

  it('parses every egress option, flags over env', () => {
    const o = resolve(['--egress-rtmp', 'rtmp://live.example.com/app/key', '--egress-whip', 'https://whip.example.com/ingest', '--egress-whip-token', 'abc', '--record', 'rec', '--egress-source', 'stage/presenter', '--egress-allow', 'rtmp://live.example.com/app/,https://whip.example.com/', '--egress-bitrate', '2M', '--max-whep-viewers', '7'], { DNP_EGRESS_RTMP: 'rtmp://other/x' });
    expect(o.egress?.rtmpUrl).toBe('rtmp://live.example.com/app/key');
    expect(o.egress?.whipUrl).toBe('https://whip.example.com/ingest');
    expect(o.egress?.whipToken).toBe('abc');
    expect(o.egress?.recordDir).toBe('/srv/rec');
    expect(o.egress?.source).toEqual({ room: 'stage', participant: 'presenter' });
    expect(o.egress?.allowedUrls).toEqual(['rtmp://live.example.com/app/', 'https://whip.example.com/']);
    expect(o.egress?.encode.videoBitrate).toBe(2_000_000);
    expect(o.maxWhepViewers).toBe(7);
    const e = resolve([], { DNP_RECORD_DIR: '/data/rec', DNP_EGRESS_SOURCE: 'stage' });
    expect(e.egress?.recordDir).toBe('/data/rec');
    expect(e.egress?.source).toEqual({ room: 'stage', participant: '*' });
    expect(resolve([]).egress).toEqual(EGRESS_CONFIG_DEFAULTS);
  });

  it('--help and the README list every egress option and its variable', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    for (const [flag, { env }] of Object.entries(EGRESS_FLAGS)) {
      expect(help).toContain(`--${flag}`);
      expect(help).toContain(env);
      expect(readme).toContain(`\`--${flag}`);
      expect(readme).toContain(env);
    }
  });

  it('refuses bad values, naming the option', () => {
    const bad: Array<[string[], RegExp]> = [
      [['--egress-rtmp', 'http://x/y'], /--egress-rtmp: not an rtmp/],
      [['--egress-whip', 'ftp://x/y'], /--egress-whip: .* http/],
      [['--egress-whip-token', 'abc'], /--egress-whip-token needs --egress-whip/],
      [['--egress-source', 'a/b/c'], /--egress-source/],
      [['--egress-source', 'bad room'], /--egress-source/],
      [['--egress-allow', 'rtmp://'], /--egress-allow/],
      [['--egress-bitrate', 'fast'], /--egress-bitrate/],
      [['--max-whep-viewers', '-1'], /--max-whep-viewers/],
    ];
    for (const [argv, msg] of bad) expect(() => resolve(argv), argv.join(' ')).toThrow(UsageError);
    for (const [argv, msg] of bad) expect(() => resolve(argv), argv.join(' ')).toThrow(msg);
  });
});

describe('EgressManager in a server', () => {
  let dir: string;
  let recordDir: string;
  let ts: TestServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnp-egress-mgr-'));
    recordDir = mkdtempSync(join(tmpdir(), 'dnp-egress-rec-'));
    ts = await startTestServer(dir, { egress: { ...EGRESS_CONFIG_DEFAULTS, recordDir, source: { room: 'stage', participant: '*' }, encode: { ...EGRESS_CONFIG_DEFAULTS.encode, videoBitrate: 300_000 } } });
  });

  afterAll(async () => {
    await ts?.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(recordDir, { recursive: true, force: true });
  });

  it('records a matching stream by itself, finalised when the stream ends; other rooms are left alone', async () => {
    const egress = ts.server.egress;
    if (!egress) throw new Error('no egress manager');
    const other = new PatternTap({ id: 'other' });
    const tap = new PatternTap({ id: 'presenter' });
    try {
      ts.server.taps.register({ room: 'lobby', participant: 'x', avatar: 'default', tap: other });
      ts.server.taps.register({ room: 'stage', participant: 'presenter', avatar: 'default', tap });
      expect(egress.list().map((e) => [e.room, e.kind])).toEqual([['stage', 'mp4']]);
      const id = egress.list()[0]?.id as string;
      await until(() => egress.list()[0]?.state === 'live', 10_000, 'recording live');
      expect(await metricValue(ts.url, `dnp_egress_state{egress="${id}",kind="mp4",state="live"}`)).toBe(1);
      await new Promise((r) => setTimeout(r, 1500));
      tap.close(); // the participant leaves: the recording is finalised
      await until(() => egress.size === 0, 10_000, 'recording stopped');
      expect(await metricValue(ts.url, `dnp_egress_state{egress="${id}",kind="mp4",state="stopped"}`)).toBe(1);
      expect(await metricValue(ts.url, `dnp_egress_bytes_total{egress="${id}",kind="mp4"}`)).toBeGreaterThan(1000);
      const files = readdirSync(recordDir);
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(/^stage-presenter-.*\.mp4$/);
      const m = await decodeMedia(join(recordDir, files[0] as string));
      expect(m.videoFrames).toBeGreaterThan(20);
      expect(m.audioCodec).toBe('aac');
    } finally {
      tap.close();
      other.close();
    }
  }, 60_000);

  it('start and stop by id; an unknown id is refused', async () => {
    const egress = ts.server.egress;
    if (!egress) throw new Error('no egress manager');
    const tap = new PatternTap({ id: 'p2' });
    try {
      const entry = { room: 'lobby', participant: 'p2', avatar: 'default', tap };
      ts.server.taps.register(entry);
      const e = egress.start(entry, { kind: 'mp4' });
      await until(() => e.state === 'live', 10_000, 'live');
      expect(await egress.stop('nope')).toBe(false);
      expect(await egress.stop(e.id, 'other-room')).toBe(false);
      expect(await egress.stop(e.id, 'lobby')).toBe(true);
      expect(e.state).toBe('stopped');
      expect(() => egress.start(entry, { kind: 'rtmp', url: 'http://bad' })).toThrow(/rtmp/);
      expect(egress.urlAllowed('rtmp://anything/')).toBe(false);
    } finally {
      tap.close();
    }
  }, 30_000);
});
