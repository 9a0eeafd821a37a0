/** `dnp prepare INPUT --out DIR …`: a person's video → training dataset (server/src/prepare/pipeline.ts). */
import { createLogger, LOG_LEVELS, type LogLevel } from '../log.js';
import { PREPARE_HELP, parsePrepareArgs } from '../prepare/options.js';
import { UsageError } from './args.js';
import { prepareDataset } from '../prepare/pipeline.js';

export const help = PREPARE_HELP;

export async function run(argv: string[]): Promise<number> {
  let opts;
  try {
    opts = parsePrepareArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`dnp prepare: ${err.message}\n\nRun 'dnp prepare --help' for the options.\n`);
      return 2;
    }
    throw err;
  }
  const envLevel = process.env.LOG_LEVEL;
  const level: LogLevel = (LOG_LEVELS as readonly string[]).includes(envLevel ?? '') ? (envLevel as LogLevel) : 'info';
  const log = createLogger(level, process.stderr);
  const abort = new AbortController();
  let signalled: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled) return;
    signalled = sig;
    process.stderr.write(`\ndnp prepare: ${sig}: stopping, removing the unfinished dataset\n`);
    abort.abort(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const r = await prepareDataset(opts, log, abort.signal);
    const secs = r.timings.totalMs / 1000;
    process.stderr.write(
      `dnp prepare: wrote ${r.manifest.frameCount} frames (${r.validFrames} usable, ${r.interpolatedFrames} interpolated) to ${r.dir} ` +
        `in ${secs.toFixed(1)} s (${(r.manifest.frameCount / secs).toFixed(1)} frames/s)\n`,
    );
    return 0;
  } catch (err) {
    if (signalled) return signalled === 'SIGINT' ? 130 : 143;
    process.stderr.write(`dnp prepare: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
