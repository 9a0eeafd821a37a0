/** `dnp eval --avatar DIR --data DIR --out DIR …`: scores an avatar against its dataset (server/src/eval/). */
import { createLogger, LOG_LEVELS, type LogLevel } from '../log.js';
import { EvalInputError } from '../eval/errors.js';
import { EVAL_HELP, parseEvalArgs } from '../eval/options.js';
import { UsageError } from './args.js';
import { runEval } from '../eval/run-eval.js';
import { fmt } from '../eval/report-markdown.js';

export const help = EVAL_HELP;

export async function run(argv: string[]): Promise<number> {
  const envLevel = process.env.LOG_LEVEL;
  const level: LogLevel = (LOG_LEVELS as readonly string[]).includes(envLevel ?? '') ? (envLevel as LogLevel) : 'info';
  const log = createLogger(level, process.stderr);
  try {
    const opts = parseEvalArgs(argv);
    const r = await runEval(opts, log);
    const a = r.reconstruction.avatar.whole;
    const nn = r.reconstruction.nearestNeighbour.whole;
    process.stderr.write(
      `dnp eval: ${r.options.frames.length} test frames: PSNR ${fmt(a.psnr)} dB, SSIM ${fmt(a.ssim, 3)}, L1 ${fmt(a.l1)} ` +
        `(nearest neighbour ${fmt(nn.psnr)} dB); wrote ${opts.out}/report.json and report.md in ${fmt(r.seconds, 1)} s\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof EvalInputError) {
      process.stderr.write(`dnp eval: ${err.message}\n${err instanceof UsageError ? "\nRun 'dnp eval --help' for the options.\n" : ''}`);
      return 2;
    }
    process.stderr.write(`dnp eval: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
