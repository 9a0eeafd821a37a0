/** `dnp idle-motion --avatar DIR --data DATASET`: stores the avatar's own idle motion (server/src/audio/idle-motion.ts). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractIdleMotion, IDLE_MOTION_FILE, parseIdleMotion } from '../audio/idle-motion.js';
import { readAvatarManifest } from '../avatars/registry.js';
import { loadDataset } from '../eval/dataset-reader.js';
import { EvalInputError } from '../eval/errors.js';
import { parseCommandLine, UsageError, usageError, valueOptions } from './args.js';

export const help = `Usage: dnp idle-motion --avatar DIR --data DATASET [--seconds S]

Writes DIR/${IDLE_MOTION_FILE}: the head pose, gaze and eye blendshapes (blinks) of the first S seconds of the
dataset's training frames. A microphone-only caller's avatar moves its head, eyes and eyelids with this motion
(played forwards and backwards) while the voice drives the mouth; without the file the server uses a gentle
generated motion and says so in its log.

Options:
  --avatar DIR     the avatar folder (holds avatar.json)
  --data DATASET   the dataset the avatar was trained on (a folder written by 'dnp prepare' or 'dnp synth')
  --seconds S      how much of the training frames to keep (default 60; at least 2 s of frames are needed)
  --help           this text
`;

const OPTIONS = valueOptions('avatar', 'data', 'seconds');

function parse(argv: string[]): { avatar: string; data: string; seconds: number } {
  const cl = parseCommandLine(argv, OPTIONS);
  const avatar = cl.str('avatar');
  const data = cl.str('data');
  if (!avatar || !data) usageError('--avatar and --data are required');
  return { avatar, data, seconds: cl.num('seconds', 2, 600, 60) };
}

export async function run(argv: string[]): Promise<number> {
  try {
    const opts = parse(argv);
    readAvatarManifest(opts.avatar); // a real avatar folder
    const doc = extractIdleMotion(loadDataset(opts.data), opts.seconds);
    const file = join(opts.avatar, IDLE_MOTION_FILE);
    const m = parseIdleMotion(doc, file); // what the server will read back
    writeFileSync(file, `${JSON.stringify(doc)}\n`);
    process.stderr.write(`dnp idle-motion: wrote ${file} (${m.seconds.toFixed(1)} s)\n`);
    return 0;
  } catch (err) {
    const usage = err instanceof UsageError;
    process.stderr.write(`dnp idle-motion: ${err instanceof Error ? err.message : String(err)}\n${usage ? "\nRun 'dnp idle-motion --help' for the options.\n" : ''}`);
    return usage || err instanceof EvalInputError ? 2 : 1;
  }
}
