/**
 * Call-room bench: for each room count K, a fresh `dnp serve` child (127.0.0.1) and K two-person rooms of werift
 * callers (test/support/room-client.ts, receiving without decoding). Every caller sends recorded driving frames
 * (MediaPipe output on a real video) at 30 Hz and its voice (Opus encoded from the speech WAV, 20 ms packets).
 * After a warm-up, for --seconds: per participant the uplink (driving + Opus payload) and downlink (video + Opus
 * payload) bit rates, the frames per second each receives, and the server process's CPU (its own
 * dnp_process_cpu_seconds_total). Prints a Markdown table (docs/calls.md) and, with --json FILE, the raw numbers.
 *
 *   npx tsx scripts/rooms-bench.ts [--avatars avatars/default] [--rooms 1,2,4] [--seconds 20] [--threads 1] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DrivingValues } from '../shared/src/driving-values.js';
import { formatMachine, loadAverage, machineInfo } from '../server/src/bench/machine.js';
import { ServerProcess } from '../server/src/bench/server-process.js';
import { round } from '../server/src/bench/stats.js';
import { PROJECT_ROOT } from '../server/src/project-paths.js';
import { parseCommandLine } from '../server/src/cli/args.js';
import { readFileSync } from 'node:fs';
import { encodeOpusClip } from '../test/support/opus-clip.js';
import { RoomClient } from '../test/support/room-client.js';
import { recordedDriving, RoomFeeder } from '../test/support/room-feeder.js';
import { CALL_OPUS_MAX_BITRATE } from '../server/src/rooms/participant.js';

const HELP = `rooms-bench: how many two-person call rooms this machine serves, and what each participant sends and gets

  npx tsx scripts/rooms-bench.ts [options]

  --avatars DIR   avatar folder (or folder of avatars) to serve; the first is used (default avatars/default)
  --rooms LIST    room counts to measure, comma-separated (default 1,2,4)
  --seconds N     measurement window per room count after a 4 s warm-up (default 20)
  --threads N     the server's --threads (default 1)
  --json FILE     also write the raw numbers as JSON
  --help          this text
`;

const DATA = join(PROJECT_ROOT, '..', 'shared', 'data');

interface Row {
  rooms: number;
  participants: number;
  seconds: number;
  serverCpuPercent: number;
  cpuPercentPerRoom: number;
  uplinkKbps: number;
  uplinkDrivingKbps: number;
  uplinkOpusKbps: number;
  downlinkKbps: number;
  fpsMedian: number;
  fpsMin: number;
  loadAverage: number;
  serverLatencyMs: { median: number; p90: number } | null;
}

const K_LABEL = (k: number): string => `${k} room(s)`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor(s.length / 2)] as number) : Number.NaN;
}

async function measure(k: number, avatarsDir: string, avatar: string, seconds: number, threads: number, driving: DrivingValues[], opus: Buffer[]): Promise<Row> {
  const server = await ServerProcess.start({ avatars: avatarsDir, threads, joinRate: 100_000, maxSessions: 1000 });
  const clients: RoomClient[] = [];
  let feeder: RoomFeeder | null = null;
  try {
    for (let r = 0; r < k; r++) {
      for (const name of ['a', 'b']) clients.push(await RoomClient.join({ url: server.url, room: `bench${r}`, avatar, name, decode: false, timeoutMs: 60_000 }));
    }
    for (let i = 0; i < clients.length; i += 2) {
      await (clients[i] as RoomClient).remote((clients[i + 1] as RoomClient).participantId, 60_000);
      await (clients[i + 1] as RoomClient).remote((clients[i] as RoomClient).participantId, 60_000);
    }
    feeder = new RoomFeeder(clients, driving, opus);
    await sleep(4000);
    const snap = (): { at: number; cpu: Promise<number>; up: number[]; upD: number[]; upO: number[]; down: number[]; frames: number[] } => ({
      at: performance.now(),
      cpu: server.cpuSeconds(),
      up: clients.map((c) => c.stats.drivingBytes + c.stats.opusBytes),
      upD: clients.map((c) => c.stats.drivingBytes),
      upO: clients.map((c) => c.stats.opusBytes),
      down: clients.map((c) => [...c.remotes.values()].reduce((s, r) => s + r.rx.videoBytes + r.rx.opusBytes, 0)),
      frames: clients.map((c) => [...c.remotes.values()].reduce((s, r) => s + r.rx.framesReceived, 0)),
    });
    const a = snap();
    const cpuA = await a.cpu;
    const load0 = loadAverage();
    await sleep(seconds * 1000);
    const b = snap();
    const cpuB = await b.cpu;
    await feeder.stop();
    const dt = (b.at - a.at) / 1000;
    const kbps = (x: number[], y: number[]): number => median(y.map((v, i) => ((v - (x[i] ?? 0)) * 8) / 1000 / dt));
    const fps = b.frames.map((v, i) => (v - (a.frames[i] ?? 0)) / dt);
    const cpuPercent = ((cpuB - cpuA) / dt) * 100;
    return {
      rooms: k,
      participants: clients.length,
      seconds: round(dt, 1),
      serverCpuPercent: round(cpuPercent, 1),
      cpuPercentPerRoom: round(cpuPercent / k, 1),
      uplinkKbps: round(kbps(a.up, b.up), 1),
      uplinkDrivingKbps: round(kbps(a.upD, b.upD), 1),
      uplinkOpusKbps: round(kbps(a.upO, b.upO), 1),
      downlinkKbps: round(kbps(a.down, b.down), 1),
      fpsMedian: round(median(fps), 1),
      fpsMin: round(Math.min(...fps), 1),
      loadAverage: round((load0 + loadAverage()) / 2, 1),
      serverLatencyMs: await server.histogram('dnp_server_latency_ms'),
    };
  } catch (err) {
    throw new Error(`${K_LABEL(k)}: ${err instanceof Error ? err.message : String(err)}; server stderr: ${server.stderr.slice(-2000)}`);
  } finally {
    await feeder?.stop();
    await Promise.all(clients.map((c) => c.close()));
    await server.close();
  }
}

async function main(): Promise<void> {
  const cl = parseCommandLine(process.argv.slice(2), { avatars: { type: 'string' }, rooms: { type: 'string' }, seconds: { type: 'string' }, threads: { type: 'string' }, json: { type: 'string' } });
  if (cl.help) {
    process.stdout.write(HELP);
    return;
  }
  const avatarsDir = cl.str('avatars') ?? join(PROJECT_ROOT, 'avatars', 'default');
  const manifest = JSON.parse(readFileSync(join(avatarsDir, 'avatar.json'), 'utf8')) as { name: string };
  const avatar = avatarsDir.replace(/\/+$/, '').split('/').at(-1) ?? 'default';
  const rooms = cl.ints('rooms', 1, 50) ?? [1, 2, 4];
  const seconds = cl.num('seconds', 2, 600, 20);
  const threads = cl.int('threads', 0, 64, 1);
  const driving = recordedDriving(DATA);
  const opus = await encodeOpusClip(join(DATA, 'speech-english-16k.wav'), 10, CALL_OPUS_MAX_BITRATE); // what a browser sends in a call
  const rows: Row[] = [];
  process.stderr.write(`rooms-bench: ${manifest.name} (${avatar}), ${formatMachine(machineInfo())}\n`);
  for (const k of rooms) {
    const row = await measure(k, avatarsDir, avatar, seconds, threads, driving, opus);
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
  process.stdout.write(
    [
      `| rooms | participants | server CPU (% of a core) | per room | uplink / participant (driving + Opus payload) kbit/s | downlink / participant (video + Opus payload) kbit/s | fps received (median / min) | server latency ms (median / p90) | load average |`,
      `| --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
      ...rows.map(
        (r) =>
          `| ${r.rooms} | ${r.participants} | ${r.serverCpuPercent} | ${r.cpuPercentPerRoom} | ${r.uplinkKbps} (${r.uplinkDrivingKbps} + ${r.uplinkOpusKbps}) | ${r.downlinkKbps} | ${r.fpsMedian} / ${r.fpsMin} | ${r.serverLatencyMs ? `${r.serverLatencyMs.median} / ${r.serverLatencyMs.p90}` : '–'} | ${r.loadAverage} |`,
      ),
    ].join('\n') + '\n',
  );
  const json = cl.str('json');
  if (json) writeFileSync(json, JSON.stringify({ machine: machineInfo(), date: new Date().toISOString(), avatar, rows }, null, 2));
}

main().catch((e: unknown) => {
  process.stderr.write(`rooms-bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
