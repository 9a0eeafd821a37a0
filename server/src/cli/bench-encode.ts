/** `dnp bench encode`'s options (bench.ts runs it; the GPU bundle's encode bench parses them here too). */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { EncodeBenchOptions } from '../bench/encode-bench.js';
import { UNTRAINED_PRESETS } from '../bench/untrained-avatar.js';
import { DEFAULT_VP8_CPU_USED } from '../media/vp8-speed.js';
import { PROJECT_ROOT } from '../project-paths.js';
import { VIDEO_CODECS } from '../../../shared/src/signaling.js';
import { avatarDirArg, flagOptions, parseCommandLine, usageError, valueOptions } from './args.js';
import { parseBitrate } from './serve-options.js';

export const encodeHelp = `dnp bench encode: the encoders alone (no WebRTC, no model runs while measuring): how many sessions this
machine's cores can encode, the bound on sessions per machine when a GPU renders. The avatar's pictures are
rendered once on the CPU (a looping path through its conditioning); then for each stream count the server's
encode pool (same encoders, options and default bitrate as a session) is given one picture per stream every
1/fps s; a stream still encoding skips the tick. A step holds when every stream delivers >= --hold-fps.

Options:
  --avatar DIR      avatars/default   whose pictures are encoded; or an untrained one: --preset P --size N
  --size N                       picture size (square, even; default the avatar's; other sizes are scaled)
  --codec C         vp8          vp8 | h264
  --streams LIST    1,2,4,...,512 stream counts, in order (doubling: the ramp stops where one is not held)
  --all                          measure every count (default: stop after the first that does not hold)
  --workers N       cores        encode worker threads (the server's --encode-workers; 0 = inline)
  --seconds N       5            measured seconds per step (after 1 s of warm-up)
  --fps N           25           pictures per second per stream
  --hold-fps F      24           a step holds when every stream delivers at least this
  --bitrate B                    per stream (e.g. 600k); default the server's for the size and rate
  --vp8-cpu-used N  8            libvpx speed for VP8, 0..16 (the server's --vp8-cpu-used)
  --frames N        50           distinct pictures in the loop
  --json                         print one JSON object instead of the table
`;

const ENCODE_OPTIONS = { ...valueOptions('avatar', 'preset', 'size', 'codec', 'streams', 'workers', 'seconds', 'fps', 'hold-fps', 'bitrate', 'vp8-cpu-used', 'frames'), ...flagOptions('json', 'all') };

export function parseEncodeArgs(argv: string[]): { opts: Omit<EncodeBenchOptions, 'onProgress'>; json: boolean } {
  const cl = parseCommandLine(argv, ENCODE_OPTIONS);
  const avatarText = cl.str('avatar');
  if (avatarText !== undefined && cl.given('preset')) usageError('--preset is for an untrained avatar; not with --avatar');
  const shipped = join(PROJECT_ROOT, 'avatars', 'default');
  const untrained = avatarText === undefined && (cl.given('preset') || !existsSync(join(shipped, 'avatar.json')));
  const size = cl.given('size') ? cl.int('size', 16, 2048, 256) : null;
  if (size !== null && size % 2) usageError(`--size: ${size} is not even`);
  const fps = cl.int('fps', 1, 120, 25);
  const holdFps = cl.num('hold-fps', 0.1, 120, Math.min(24, fps));
  if (holdFps > fps) usageError(`--hold-fps ${holdFps} is above --fps ${fps}`);
  const bitrateText = cl.str('bitrate');
  return {
    json: cl.flag('json'),
    opts: {
      avatar: untrained
        ? { kind: 'untrained', preset: cl.oneOf('preset', UNTRAINED_PRESETS, 'warp'), size: size ?? 256, fps }
        : { kind: 'folder', dir: avatarDirArg('avatar', avatarText ?? shipped) },
      size,
      codec: cl.oneOf('codec', VIDEO_CODECS, 'vp8'),
      streams: cl.ints('streams', 1, 1024) ?? [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      workers: cl.int('workers', 0, 256, os.availableParallelism()),
      seconds: cl.int('seconds', 1, 600, 5),
      fps,
      holdFps,
      bitrate: bitrateText === undefined ? 0 : parseBitrate(bitrateText),
      vp8CpuUsed: cl.int('vp8-cpu-used', 0, 16, DEFAULT_VP8_CPU_USED),
      frames: cl.int('frames', 1, 1000, 50),
      stopWhenNotHeld: !cl.flag('all'),
    },
  };
}

