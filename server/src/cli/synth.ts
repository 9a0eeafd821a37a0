/** `dnp synth --out DIR …`: a dataset of the synthetic presenter (server/src/synth/generate.ts). */
import { createLogger, LOG_LEVELS, type LogLevel } from '../log.js';
import { SynthInputError, synthDataset } from '../synth/generate.js';
import { SYNTH_HELP, parseSynthArgs } from '../synth/options.js';
import { UsageError } from './args.js';

export const help = SYNTH_HELP;

export async function run(argv: string[]): Promise<number> {
  let opts;
  try {
    opts = parseSynthArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`dnp synth: ${err.message}\n\nRun 'dnp synth --help' for the options.\n`);
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
    process.stderr.write(`\ndnp synth: ${sig}: stopping, removing the unfinished dataset\n`);
    abort.abort(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const r = await synthDataset(opts, log, abort.signal);
    const secs = r.totalMs / 1000;
    process.stderr.write(
      `dnp synth: wrote ${r.frames} frames of ${opts.size}x${opts.size} to ${r.dir} in ${secs.toFixed(1)} s ` +
        `(${(r.frames / secs).toFixed(1)} frames/s; rendering ${(r.renderMs / r.frames).toFixed(0)} ms a frame)\n`,
    );
    return 0;
  } catch (err) {
    if (signalled) return signalled === 'SIGINT' ? 130 : 143;
    process.stderr.write(`dnp synth: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof SynthInputError ? 2 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
