/**
 * `npm run eval:ablation -- --data DATASET_DIR --budget MINUTES [--variants A,B,C,F] [--out DIR] …`:
 * trains each variant with `dnp train --variant X --max-minutes BUDGET` (equal wall-clock time), evaluates it
 * with `dnp eval`, and writes OUT/ablation.md (a table like the paper's Table 5) and OUT/ablation.json.
 * Each variant's avatar goes to OUT/X/avatar and its report to OUT/X/report.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { commaList, flagOptions, parseCommandLine, UsageError, usageError, valueOptions } from '../cli/args.js';
import { PROJECT_ROOT } from '../project-paths.js';
import { fmt } from './report-markdown.js';
import { parseEvalReport, type EvalReport } from './report-schema.js';

const ABLATION_HELP = `Usage: npm run eval:ablation -- --data DATASET_DIR --budget MINUTES [options]

Trains each variant for the same wall-clock budget ('dnp train --variant X --max-minutes MINUTES'), evaluates
each with 'dnp eval', and writes OUT/ablation.md (variant, iterations, PSNR, SSIM, L1, mouth PSNR, jawOpen r)
and OUT/ablation.json.

Options:
  --data DIR            dataset folder from 'dnp prepare'                               (required)
  --budget MINUTES      training time per variant                                      (required)
  --variants LIST       comma-separated variants                                       (default A,B,C,F)
  --out DIR             output folder: OUT/X/avatar, OUT/X/report, OUT/ablation.md     (default ablation)
  --preset P            training preset passed to dnp train      (default: cpu for A-F, warp for W)
  --threads N           torch threads for training                                      (default: dnp train's)
  --no-retrack          evaluate without re-tracking (faster; no jawOpen r)
  --tracker-model PATH  passed to dnp eval
  -h, --help            this text
`;

export interface AblationOptions {
  data: string;
  budget: number;
  variants: string[];
  out: string;
  preset: string | null;
  threads: number | null;
  retrack: boolean;
  trackerModel: string | null;
}

const OPTIONS = { ...valueOptions('data', 'budget', 'variants', 'out', 'preset', 'threads', 'tracker-model'), ...flagOptions('no-retrack') };

export function parseAblationArgs(argv: string[]): AblationOptions {
  const cl = parseCommandLine(argv, OPTIONS);
  const data = cl.str('data');
  if (!data) usageError('--data DATASET_DIR is required');
  const budget = cl.num('budget', 0, Infinity);
  if (budget === undefined) usageError('--budget MINUTES is required');
  if (budget === 0) usageError('--budget must be above 0 minutes');
  const v = cl.str('variants') ?? 'A,B,C,F';
  const variants = commaList(v);
  if (variants.length === 0 || variants.some((x) => !/^[A-Z]$/.test(x))) usageError(`--variants expects letters like A,B,C,F (got '${v}')`);
  if (new Set(variants).size !== variants.length) usageError('--variants lists a variant twice');
  const trackerModel = cl.str('tracker-model');
  return {
    data: resolve(data),
    budget,
    variants,
    out: resolve(cl.str('out') ?? 'ablation'),
    preset: cl.str('preset') ?? null,
    threads: cl.int('threads', 1, Infinity) ?? null,
    retrack: !cl.flag('no-retrack'),
    trackerModel: trackerModel ? resolve(trackerModel) : null,
  };
}

/** The preset a variant is trained with unless --preset says otherwise: the paper's model (cpu) for A-F. */
function defaultPreset(variant: string): string {
  return variant === 'W' ? 'warp' : 'cpu';
}

/** Runs `node bin/dnp.js ARGS` with stderr passed through; resolves with its exit code. */
function dnp(args: string[]): Promise<number> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'dnp.js'), ...args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', rej);
    child.once('exit', (code, signal) => res(code ?? (signal === 'SIGINT' ? 130 : 143)));
  });
}

export interface AblationRow {
  variant: string;
  iterations: number | null;
  report: EvalReport;
}

export function ablationMarkdown(rows: readonly AblationRow[], o: { data: string; budget: number }): string {
  const lines = [
    `# Ablation: equal training time`,
    '',
    `Dataset \`${o.data}\`, ${o.budget} min of training per variant (\`dnp train --max-minutes\`), scored by \`dnp eval\` on the test frames.`,
    '',
    '| variant | iterations | PSNR | SSIM | L1 | mouth PSNR | jawOpen r |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const a = r.report.reconstruction.avatar;
    const jaw = r.report.controllability?.render.blendshapes.jawOpen?.r;
    lines.push(`| ${r.variant} | ${r.iterations ?? '–'} | ${fmt(a.whole.psnr)} | ${fmt(a.whole.ssim, 3)} | ${fmt(a.whole.l1)} | ${fmt(a.mouth?.psnr)} | ${fmt(jaw)} |`);
  }
  const first = rows[0]?.report;
  if (first) {
    const nn = first.reconstruction.nearestNeighbour;
    const mf = first.reconstruction.meanFrame;
    lines.push(`| nearest neighbour | – | ${fmt(nn.whole.psnr)} | ${fmt(nn.whole.ssim, 3)} | ${fmt(nn.whole.l1)} | ${fmt(nn.mouth?.psnr)} | – |`);
    lines.push(`| mean training frame | – | ${fmt(mf.whole.psnr)} | ${fmt(mf.whole.ssim, 3)} | ${fmt(mf.whole.l1)} | ${fmt(mf.mouth?.psnr)} | – |`);
  }
  return `${lines.join('\n')}\n`;
}

async function runAblation(o: AblationOptions): Promise<{ rows: AblationRow[]; markdown: string }> {
  if (!existsSync(join(o.data, 'dataset.json'))) usageError(`--data ${o.data}: no dataset.json`);
  await mkdir(o.out, { recursive: true });
  const rows: AblationRow[] = [];
  for (const variant of o.variants) {
    const avatar = join(o.out, variant, 'avatar');
    const reportDir = join(o.out, variant, 'report');
    process.stderr.write(`eval:ablation: variant ${variant}: training for ${o.budget} min\n`);
    const trainArgs = ['train', '--data', o.data, '--out', avatar, '--variant', variant, '--max-minutes', String(o.budget), '--no-progress'];
    trainArgs.push('--preset', o.preset ?? defaultPreset(variant));
    if (o.threads !== null) trainArgs.push('--threads', String(o.threads));
    const tc = await dnp(trainArgs);
    if (tc !== 0) throw new Error(`dnp train --variant ${variant} failed (exit ${tc})`);
    process.stderr.write(`eval:ablation: variant ${variant}: evaluating\n`);
    const evalArgs = ['eval', '--avatar', avatar, '--data', o.data, '--out', reportDir];
    if (!o.retrack) evalArgs.push('--no-retrack');
    if (o.trackerModel) evalArgs.push('--tracker-model', o.trackerModel);
    const ec = await dnp(evalArgs);
    if (ec !== 0) throw new Error(`dnp eval of variant ${variant} failed (exit ${ec})`);
    const report = parseEvalReport(JSON.parse(readFileSync(join(reportDir, 'report.json'), 'utf8')) as unknown, join(reportDir, 'report.json'));
    rows.push({ variant, iterations: report.avatar.training.iterations, report });
  }
  const markdown = ablationMarkdown(rows, o);
  await writeFile(join(o.out, 'ablation.md'), markdown);
  const summary = rows.map((r) => ({
    variant: r.variant,
    iterations: r.iterations,
    psnr: r.report.reconstruction.avatar.whole.psnr,
    ssim: r.report.reconstruction.avatar.whole.ssim,
    l1: r.report.reconstruction.avatar.whole.l1,
    mouthPsnr: r.report.reconstruction.avatar.mouth?.psnr ?? null,
    jawOpenR: r.report.controllability?.render.blendshapes.jawOpen?.r ?? null,
    report: join(r.variant, 'report', 'report.json'),
  }));
  await writeFile(join(o.out, 'ablation.json'), `${JSON.stringify({ format: 'dnp-ablation', version: 1, data: o.data, budgetMinutes: o.budget, rows: summary }, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
  return { rows, markdown };
}

/** Entry point of scripts/eval-ablation.js. */
export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(ABLATION_HELP);
    return 0;
  }
  try {
    const o = parseAblationArgs(argv);
    const { markdown } = await runAblation(o);
    process.stdout.write(markdown);
    process.stderr.write(`eval:ablation: wrote ${join(o.out, 'ablation.md')}\n`);
    return 0;
  } catch (err) {
    const usage = err instanceof UsageError;
    process.stderr.write(`eval:ablation: ${err instanceof Error ? err.message : String(err)}\n${usage ? "\nRun 'npm run eval:ablation -- --help' for the options.\n" : ''}`);
    return usage ? 2 : 1;
  }
}
