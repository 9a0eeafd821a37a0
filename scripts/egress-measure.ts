/**
 * Measures viewers and egress on this machine (docs/egress.md): a real DnpServer with a PatternTap (the real
 * encoder + RTP muxer, Opus from the speech WAV) at the default avatar's size (256², 25 fps); process CPU time
 * (user + system, all threads) and encodes over a window for: the tap alone, 10 WHEP viewers (werift, in this
 * process: their receive + decode cost is included and reported separately), an MP4 recording, and WHIP egress.
 *
 *   npx tsx scripts/egress-measure.ts [--seconds 10]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Mp4Recorder } from '../server/src/egress/mp4-recorder.js';
import { AV_ENCODE_DEFAULTS } from '../server/src/egress/rtmp-egress.js';
import { WhipEgress } from '../server/src/egress/whip-egress.js';
import { parseCommandLine } from '../server/src/cli/args.js';
import { createLogger } from '../server/src/log.js';
import { encodeOpusClip } from '../test/support/opus-clip.js';
import { PatternTap } from '../test/support/pattern-tap.js';
import { metricValue, startTestServer } from '../test/support/server.js';
import { until, WhepClient } from '../test/support/whep-client.js';
import { TestWhipEndpoint } from '../test/support/whip-endpoint.js';

const args = parseCommandLine(process.argv.slice(2), { seconds: { type: 'string' } });
if (args.help) {
  process.stdout.write('Usage: npx tsx scripts/egress-measure.ts [--seconds N]\nMeasures WHEP viewers and egress CPU cost on this machine (see docs/egress.md).\n');
  process.exit(0);
}
const SECONDS = args.int('seconds', 1, 600, 10);
const SPEECH = join(import.meta.dirname, '..', '..', 'shared', 'data', 'speech-english-16k.wav');
const log = createLogger('silent');
const ICE = { additionalHostAddresses: ['127.0.0.1'], publicIp: null, iceServers: [], portRange: null };

async function window(label: string, url: string, tap: PatternTap, extra: () => string = () => ''): Promise<void> {
  const e0 = await metricValue(url, 'dnp_stream_encodes_total{stream="presenter"}');
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const c = process.cpuUsage(c0);
  const wall = (performance.now() - t0) / 1000;
  const e1 = await metricValue(url, 'dnp_stream_encodes_total{stream="presenter"}');
  const cpu = (c.user + c.system) / 1e6;
  process.stdout.write(`${label.padEnd(34)} encodes ${String(e1 - e0).padStart(4)} (${((e1 - e0) / wall).toFixed(1)}/s)  CPU ${((100 * cpu) / wall).toFixed(1)} % of one core  ${extra()}\n`);
  void tap;
}

const dir = mkdtempSync(join(tmpdir(), 'dnp-egress-measure-'));
const ts = await startTestServer(dir);
const tap = new PatternTap({ id: 'presenter', width: 256, height: 256, fps: 25, opus: (await encodeOpusClip(SPEECH, 8)).slice(150), encodeCounter: ts.server.metrics.streamEncodes });
ts.server.taps.register({ room: 'stage', participant: 'presenter', avatar: 'default', tap });
try {
  process.stdout.write(`${new Date().toISOString()}  ${SECONDS} s windows, tap 256x256 VP8 25 fps + Opus\n`);
  await window('tap alone (encode, no receiver)', ts.url, tap);
  const viewers: WhepClient[] = [];
  for (let i = 0; i < 10; i++) viewers.push(await WhepClient.connect({ url: `${ts.url}/whep/stage/presenter` }));
  await Promise.all(viewers.map((v) => v.until(() => v.framesDecoded > 5, 60_000, 'frames')));
  const f0 = viewers.map((v) => v.framesDecoded);
  await window('10 WHEP viewers (incl. their decode)', ts.url, tap, () => `frames decoded per viewer ${viewers.map((v, i) => v.framesDecoded - (f0[i] as number)).join(',')}`);
  await Promise.all(viewers.map((v) => v.stop()));

  const rec = new Mp4Recorder('measure', tap, { ...AV_ENCODE_DEFAULTS, path: join(dir, 'm.mp4') }, log);
  await rec.start();
  await window('MP4 recording (H.264 + AAC)', ts.url, tap, () => `${((rec.bytes * 8) / SECONDS / 1000).toFixed(0)} kbit/s written`);
  await rec.stop();

  const ep = await TestWhipEndpoint.start();
  const whip = new WhipEgress('measure', tap, { url: ep.url, token: null, ice: ICE, iceServers: () => [], backoff: { baseMs: 500, maxMs: 2000, maxAttempts: 0 }, timeoutMs: 10_000 }, log);
  await whip.start();
  await until(() => whip.state === 'live', 20_000, 'whip live');
  await window('WHIP egress (incl. the receiving end)', ts.url, tap, () => `${((whip.bytes * 8) / SECONDS / 1000).toFixed(0)} kbit/s sent`);
  await whip.stop();
  await ep.close();
} finally {
  tap.close();
  await ts.close();
  rmSync(dir, { recursive: true, force: true });
}
// werift leaves timers behind after close: do not wait for them
process.exit(0);
