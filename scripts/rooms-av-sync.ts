/**
 * A/V sync and mouth-to-ear in Chromium: two headless Chromium pages in a call (fake cameras from the two clips
 * in ../shared/data, fake microphone from the speech WAV) on an in-process server (127.0.0.1, the real avatar
 * and tracker). Once each page shows the other's avatar (≥ 30 frames, ≥ 100 voice packets), every second for
 * --seconds: per tile the A/V offset (voice playout minus video playout from getStats' estimatedPlayoutTimestamp,
 * both on the server's clock through its sender reports), the voice's lag (mouth-to-ear: this page's clock minus
 * the capture time of the voice now playing; page and server share one clock here), the face's lag, and the voice
 * delay the page set (client/src/call-lip-sync.ts). Prints each run's samples, the medians of the last --last
 * seconds and from which second the offset was within ±40 ms three seconds in a row, with the load average. `--lipsync off` opens the pages with ?lipsync=off (the browser's own sync only),
 * `both` runs off then on, each with a fresh server and browsers. `--peer werift`: one Chromium page, and a werift
 * caller (test/support/room-feeder.ts: recorded driving frames, the speech as Opus in real time) as the other
 * participant — half the load of a second browser tracking its camera on a small machine; its voice's capture
 * time is when it was sent.
 *
 *   nice -n 10 npx tsx scripts/rooms-av-sync.ts [--peer chromium|werift] [--lipsync both|on|off] [--seconds 40] [--last 10] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CallStatsSnapshot } from '../client/src/stats/call-stats.js';
import { loadAverage } from '../server/src/bench/machine.js';
import { round } from '../server/src/bench/stats.js';
import { PROJECT_ROOT } from '../server/src/project-paths.js';
import { CALL_OPUS_MAX_BITRATE } from '../server/src/rooms/participant.js';
import { CallPages, tileReady } from '../test/support/call-pages.js';
import { encodeOpusClip } from '../test/support/opus-clip.js';
import { RoomClient } from '../test/support/room-client.js';
import { recordedDriving, RoomFeeder } from '../test/support/room-feeder.js';
import { startTestServer } from '../test/support/server.js';
import { sleep } from '../test/support/wait.js';

const HELP = `rooms-av-sync: the A/V offset and mouth-to-ear of a two-page Chromium call, sampled every second

  nice -n 10 npx tsx scripts/rooms-av-sync.ts [options]

  --avatars DIR    folder of avatar folders to serve; the first avatar is used (default avatars)
  --peer KIND      chromium (two Chromium pages, default) or werift (one page; the other participant a werift
                   caller sending recorded driving frames and the speech WAV as Opus)
  --lipsync MODE   on (the page sets the voice delay), off (?lipsync=off: the browser's sync alone) or both
                   (off, then on; default)
  --seconds N      seconds sampled after both pages show the other's avatar (default 40, 5-600)
  --last N         the medians are over the last N seconds (default 10, at most --seconds)
  --json FILE      also write every sample as JSON
  --help           this text

Needs client/dist (npm run build) and ../shared/data (the clips, the speech WAV, face_landmarker.task).
`;

const DATA = join(PROJECT_ROOT, '..', 'shared', 'data');
const CLIPS = [join(DATA, 'portrait-man-talking.mp4'), join(DATA, 'driver-woman-talking.mp4')];
const SPEECH = join(DATA, 'speech-english-16k.wav');
const MODEL = join(DATA, 'face_landmarker.task');

interface Sample {
  t: number;
  load: number;
  offsetMs: number | null;
  voiceLagMs: number | null;
  faceLagMs: number | null;
  voiceTargetMs: number | null;
  fps: number;
}

interface RunResult {
  peer: 'chromium' | 'werift';
  lipsync: 'on' | 'off';
  pages: {
    samples: Sample[];
    offsetMedianMs: number | null;
    voiceLagMedianMs: number | null;
    faceLagMedianMs: number | null;
    withinGoalShare: number;
    /** the first second of the window that starts three samples in a row within ±40 ms (null: none) */
    inGoalFromS: number | null;
  }[];
  loadAverage: { start: number; end: number };
}

const inGoal = (s: Sample | undefined): boolean => s?.offsetMs != null && Math.abs(s.offsetMs) <= 40;

function inGoalFrom(xs: Sample[]): number | null {
  const i = xs.findIndex((_, k) => inGoal(xs[k]) && inGoal(xs[k + 1]) && inGoal(xs[k + 2]));
  return i < 0 ? null : (xs[i] as Sample).t;
}

function median(xs: number[]): number | null {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? (s[Math.floor(s.length / 2)] as number) : null;
}

function intOption(v: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer ${min}-${max}, got ${JSON.stringify(v)}`);
  return n;
}

async function run(avatarsDir: string, peer: 'chromium' | 'werift', lipsync: 'on' | 'off', seconds: number, last: number): Promise<RunResult> {
  const errors: string[] = [];
  const server = await startTestServer(avatarsDir, { trackerModelPath: MODEL });
  let pages: CallPages | null = null;
  let caller: RoomClient | null = null;
  let feeder: RoomFeeder | null = null;
  try {
    pages = await CallPages.launch({ clips: peer === 'werift' ? CLIPS.slice(0, 1) : CLIPS, speech: SPEECH, onError: (m) => errors.push(m) });
    const call = pages;
    if (peer === 'werift') {
      const avatar = ((await (await fetch(`${server.url}/avatars`)).json()) as { id: string }[])[0]?.id ?? 'default';
      caller = await RoomClient.join({ url: server.url, room: 'sync', avatar, name: 'bob', decode: false, timeoutMs: 60_000 });
      feeder = new RoomFeeder([caller], recordedDriving(DATA), await encodeOpusClip(SPEECH, 10, CALL_OPUS_MAX_BITRATE));
    }
    await call.join(server.url, 'sync', peer === 'werift' ? ['ann'] : ['ann', 'bob'], lipsync === 'off' ? 'lipsync=off' : '');
    for (const p of call.pages) await call.waitFor(p, 'the other avatar and voice', tileReady, 90_000);
    const start = loadAverage();
    const samples: Sample[][] = call.pages.map(() => []);
    const t0 = performance.now();
    for (let k = 1; k <= seconds; k++) {
      await sleep(t0 + k * 1000 - performance.now());
      for (const [i, p] of call.pages.entries()) {
        const s: CallStatsSnapshot = await call.stats(p);
        const tile = s.tiles[0];
        samples[i]?.push({
          t: k,
          load: loadAverage(),
          offsetMs: tile?.avOffsetMs ?? null,
          voiceLagMs: tile?.voiceLagMs ?? null,
          faceLagMs: tile?.faceLagMs ?? null,
          voiceTargetMs: tile?.voiceTargetMs ?? null,
          fps: tile?.fps ?? 0,
        });
      }
    }
    if (errors.length) process.stderr.write(`page errors: ${errors.join(' | ')}\n`);
    const tail = (xs: Sample[], f: (s: Sample) => number | null): number[] => xs.slice(-last).flatMap((s) => (f(s) === null ? [] : [f(s) as number]));
    return {
      peer,
      lipsync,
      loadAverage: { start, end: loadAverage() },
      pages: samples.map((xs) => {
        const offsets = tail(xs, (s) => s.offsetMs);
        return {
          samples: xs,
          offsetMedianMs: median(offsets),
          voiceLagMedianMs: median(tail(xs, (s) => s.voiceLagMs)),
          faceLagMedianMs: median(tail(xs, (s) => s.faceLagMs)),
          withinGoalShare: offsets.length ? offsets.filter((o) => Math.abs(o) <= 40).length / offsets.length : 0,
          inGoalFromS: inGoalFrom(xs),
        };
      }),
    };
  } finally {
    await feeder?.stop();
    await caller?.close();
    await pages?.close();
    await server.close();
  }
}

const fmt = (x: number | null): string => (x === null ? '–' : String(round(x, 0)));

function report(r: RunResult, last: number): void {
  process.stdout.write(`\n${r.peer} peer, lipsync ${r.lipsync} (load average ${r.loadAverage.start} → ${r.loadAverage.end})\n`);
  for (const [i, pg] of r.pages.entries()) {
    process.stdout.write(`  page ${i}: A/V offset ms per second [${pg.samples.map((s) => fmt(s.offsetMs)).join(' ')}]\n`);
    process.stdout.write(`          voice target ms [${pg.samples.map((s) => fmt(s.voiceTargetMs)).join(' ')}]\n`);
    process.stdout.write(
      `          last ${last} s: offset median ${fmt(pg.offsetMedianMs)} ms (${round(pg.withinGoalShare * 100, 0)} % of samples within ±40 ms), ` +
        `mouth-to-ear ${fmt(pg.voiceLagMedianMs)} ms, within ±40 ms 3 s in a row from ${pg.inGoalFromS === null ? 'never' : `${pg.inGoalFromS} s`}, capture-to-eye ${fmt(pg.faceLagMedianMs)} ms, ${fmt(median(pg.samples.slice(-last).map((s) => s.fps)))} fps\n`,
    );
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      avatars: { type: 'string' },
      peer: { type: 'string' },
      lipsync: { type: 'string' },
      seconds: { type: 'string' },
      last: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const modes = { on: ['on'], off: ['off'], both: ['off', 'on'] } as const;
  const mode = values.lipsync ?? 'both';
  if (!Object.hasOwn(modes, mode)) throw new Error(`--lipsync must be on, off or both, got ${JSON.stringify(mode)}`);
  const peer = values.peer ?? 'chromium';
  if (peer !== 'chromium' && peer !== 'werift') throw new Error(`--peer must be chromium or werift, got ${JSON.stringify(peer)}`);
  const seconds = intOption(values.seconds, '--seconds', 40, 5, 600);
  const last = intOption(values.last, '--last', 10, 1, seconds);
  const avatarsDir = values.avatars ?? join(PROJECT_ROOT, 'avatars');
  const results: RunResult[] = [];
  for (const m of modes[mode as keyof typeof modes]) {
    const r = await run(avatarsDir, peer, m, seconds, last);
    report(r, last);
    results.push(r);
  }
  if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 1));
}

main().catch((e: unknown) => {
  process.stderr.write(`rooms-av-sync: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
