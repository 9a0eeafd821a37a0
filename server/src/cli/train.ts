/**
 * `dnp train --data DIR --out AVATAR_DIR …`: trains an avatar with the Python package in train/ (PyTorch) and
 * exports avatar.onnx + avatar.json at the end. Spawns `/usr/bin/python3 -m train train …` (override the
 * interpreter with $DNP_PYTHON) from the repository root and passes its output (progress bar included) through.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { PROJECT_ROOT } from '../project-paths.js';
import { flagOptions, oneOf, parseCommandLine, UsageError, usageError, valueOptions } from './args.js';

const DEFAULT_PYTHON = '/usr/bin/python3';
export const INSTALL_HINT = 'apt-get install python3-torch libopenblas0-pthread python3-numpy python3-pil';

export const help = `Usage: dnp train --data DATASET_DIR --out AVATAR_DIR [options]

Trains a Dynamic Neural Portraits model on a dataset folder written by 'dnp prepare', saves
AVATAR_DIR/checkpoint.pt (every --checkpoint-every iterations and at the end) and exports
AVATAR_DIR/avatar.onnx + AVATAR_DIR/avatar.json for 'dnp serve'. Runs '${DEFAULT_PYTHON} -m train train'.

Options:
  --data DIR              dataset folder (dataset.json, frames/, *.npy)               (required)
  --out DIR               avatar folder to write                                      (required)
  --preset warp|cpu|paper model: warp = variant W, a real reference frame warped by the driving
                          vector (sharp, cheapest on a CPU); cpu = the paper's model, small;
                          paper = the paper's model, paper-sized for a GPU            (default warp)
  --variant A..F|W        A-F: the paper's ablation variants (F is its full model); W: the
                          deformation model                      (default: W for warp, F otherwise)
  --refs K                variant W: reference frames warped (1 = the near-neutral frame; 2+ add the
                          open mouth, the closed eyes, the head turned either way, the wide mouth)  (default 1)
  --no-geometry           variant W: learn the rigid head motion from the pose alone instead of a camera
                          and face points fitted to the dataset's landmarks (default: fitted)
  --aligned               variant W, one reference: expression maps laid out on the reference's head and
                          carried by the rigid head motion, so expressions move with the head  (default)
  --eyes                  variant W, one reference: an eye layer, a full-resolution change of colour
                          over both eyes drawn from the eye and brow controls and gaze and carried by
                          the head motion (lids that close, sharp irises); needs landmarks (dataset v2)
                          and a size of 128, 256, 512 or 1024                           (default)
  --no-aligned, --no-eyes variant W: without the head-aligned maps / without the eye layer (both are
                          also left out with --refs above 1)
  --mouth                 variant W, one reference: a mouth layer of the same kind over the lips and below
                          them, drawn from the jaw and mouth controls (teeth, an open mouth's interior);
                          needs landmarks (dataset v2) and a size of 128, 256, 512 or 1024
  --no-mouth              variant W: no mouth layer                                     (default)
  --learned-rotation      variant W with the fitted geometry: the learned correction of the head motion
                          may rotate and shear it too, not only shift and scale it
  --no-learned-rotation   variant W: the learned correction only shifts and scales the head  (default)
  --dense-geometry        variant W with the fitted geometry, one reference: the head moves by the
                          geometry's dense warp (a thin-plate spline through the fitted face points), not
                          only its affine: the nose and cheeks of a turned head move as a 3D head's do  (default)
  --no-dense-geometry     variant W: the geometry moves the head by its affine only (~1 ms a frame less)
  --background-gate       variant W: the expression flow is multiplied by a learned map that starts closed
                          where the training clip never changes (the background), so that held-out
                          expressions do not drag the background's edges
  --no-background-gate    variant W: no background gate                                 (default)
  --coarse-motion         variant W, one reference: the warp's displacement is composed on the flow grid
                          and up-sampled once (~0.5 ms a frame less at 256x256 on one thread)  (default)
  --no-coarse-motion      variant W: the displacement's parts are composed at full resolution (the graph
                          before 1 Dec 2026)
  --learned-reference     variant W, one reference: the reference frame's colours are learned too (a change
                          added to each pixel, from zero), so that training sharpens what the bilinear warp
                          blurs and cleans the frame's own noise; folded into the graph (no render cost)
  --no-learned-reference  variant W: the reference frame's colours are the frame's     (default)
  --head-outline          variant W with the dense warp: its spline also goes through points of the head's
                          outline above the face (placed from the fitted face points), so that a turned
                          head's hair and skull outline move as an outline does, not as far as the forehead
                          (off by default: it lost 0.2 dB on the man's clip, docs/training.md)
  --no-head-outline       variant W: the dense warp goes through the face points only   (default)
  --body-motion           variant W with coarse motion: the body below the head moves by its own affine,
                          linear in the whole head pose (translation and roll too), weighted by a learned
                          map started on what moves in the clip outside the face: shoulders that follow
                          the head partly (no render cost to speak of); with --init-from-avatar, added
                          to an avatar made without it, starting at zero
  --no-body-motion        variant W: the body moves only as a fraction of the head's motion  (default)
  --refine-channels N     variant W: channels of the refinement network at half resolution (the default
                          avatar has 16: a little more detail, ~2.4 ms more a frame)  (default 8)
  --refine-layers N       variant W: its 3x3 convolutions before the output one        (default 2)
  --landmark-weight X     variant W: weight of the landmark term: where the model reads each face landmark
                          of a frame should be that landmark in the reference (per pixel of mean
                          distance; needs landmarks, one reference; 0 = off)          (default 0.05)
  --mse-weight X          variant W: weight of a squared-error term beside the L1 terms (large errors,
                          such as an edge a pixel off, count more, as in PSNR; 0 = off)  (default 20)
  --ema DECAY             keep an exponential moving average of the weights (e.g. 0.999: about the last
                          1000 iterations); the average is evaluated, checkpointed and exported; 0 = off
                                                                                      (default 0)
  --cond-noise SIGMA      add Gaussian noise of SIGMA standard deviations to each training batch's gaze
                          and blendshape values (not the pose); 0 = off                (default 0)
  --hard-frames F         draw training frames by how badly the model draws them: each frame's
                          probability is (1 - F) / n + F x its recent squared error / their sum;
                          0 = every frame equally often                                (default 0)
  --iterations N          total training iterations                                   (default 20000)
  --max-minutes M         stop training after M minutes of wall-clock time, then checkpoint and
                          export as usual (equal-time comparisons, e.g. npm run eval:ablation)
  --resume                continue AVATAR_DIR/checkpoint.pt (same dataset and configuration)
  --init-from-avatar DIR  go on training a variant W avatar folder whose checkpoint is gone (e.g. the
                          shipped default): its weights and configuration read back from DIR, a fresh
                          optimiser; --data must hold the frames it was trained on
  --batch N               frames per iteration                                        (preset default)
  --size N                output size in pixels                                       (default: the dataset's)
  --lr X                  initial learning rate (decays exponentially to X/10)
  --eval-every N          iterations between held-out PSNR checks                    (default 500)
  --checkpoint-every N    iterations between checkpoints                              (default 1000)
  --name TEXT             avatar display name                                         (default: source file name)
  --seed N                random seed                                                 (default 0)
  --device cpu|cuda       (default: cuda when PyTorch sees one)
  --threads N             torch CPU threads (OPENBLAS_NUM_THREADS is set to 1); with --workers, per
                          worker                                         (default 2; 1 with --workers)
  --workers N             CPU: spread the training over N processes, each drawing an equal share of
                          every batch (the batch must be a multiple of N); the same training, faster:
                          2 workers on 2 cores ran 1.1x the iterations of 2 threads (docs/training.md);
                          on a GPU the run stays in one process
                                                                                      (default 1)
  --no-export             only write the checkpoint
  --int8                  also try an int8 model for CPU; it becomes avatar.onnx only if faster
                          and <= 0.2 dB PSNR worse on held-out frames (fp32 kept as avatar.fp32.onnx)
  --no-amp                no mixed precision on CUDA
  --output rgb|yuv420p    model output: float RGB (default) or yuv420p bytes (colour conversion in the graph)
  --fp16                  weights and compute in float16, for GPU providers (checked against float32)
  --no-progress           periodic log lines instead of a progress bar

Environment: DNP_PYTHON (the Python interpreter, default ${DEFAULT_PYTHON}).
Needs PyTorch for that Python: ${INSTALL_HINT}
`;

/** Variant W's on/off switches: each is an option pair --NAME / --no-NAME, passed on to Python as given. */
export const SWITCHES = ['aligned', 'eyes', 'mouth', 'learned-rotation', 'dense-geometry', 'background-gate', 'coarse-motion', 'learned-reference', 'head-outline', 'body-motion'] as const;
export type Switch = (typeof SWITCHES)[number];
const NO_SWITCHES = SWITCHES.map((f) => `no-${f}` as const);

export interface TrainOptions {
  data: string;
  out: string;
  preset?: 'warp' | 'cpu' | 'paper';
  variant?: 'A' | 'B' | 'C' | 'D' | 'E' | 'F' | 'W';
  refs?: number;
  refineChannels?: number;
  refineLayers?: number;
  noGeometry?: boolean;
  /** Variant W's on/off switches as given: true for --NAME, false for --no-NAME, absent for the preset's choice. */
  switches: Partial<Record<Switch, boolean>>;
  landmarkWeight?: number;
  mseWeight?: number;
  ema?: number;
  condNoise?: number;
  hardFrames?: number;
  iterations?: number;
  maxMinutes?: number;
  resume: boolean;
  initFromAvatar?: string;
  batch?: number;
  size?: number;
  lr?: number;
  evalEvery?: number;
  checkpointEvery?: number;
  name?: string;
  seed?: number;
  device?: 'cpu' | 'cuda';
  threads?: number;
  workers?: number;
  noExport: boolean;
  noProgress: boolean;
  int8: boolean;
  noAmp: boolean;
  output?: 'rgb' | 'yuv420p';
  fp16?: boolean;
}

const OPTIONS = { ...valueOptions('data', 'out', 'preset', 'variant', 'refs', 'refine-channels', 'refine-layers', 'landmark-weight', 'mse-weight', 'ema', 'cond-noise', 'hard-frames', 'iterations', 'max-minutes', 'batch', 'size', 'lr', 'eval-every', 'checkpoint-every', 'name', 'seed', 'device', 'threads', 'workers', 'output', 'init-from-avatar'), ...flagOptions(...SWITCHES, ...NO_SWITCHES), ...flagOptions('no-geometry', 'resume', 'no-export', 'no-progress', 'int8', 'no-amp', 'fp16') };

/** Parses and validates `dnp train` arguments (pure: the data folder is checked by checkDataDir). */
export function parseTrainArgs(argv: string[]): TrainOptions {
  const cl = parseCommandLine(argv, OPTIONS);
  const data = cl.str('data');
  const out = cl.str('out');
  if (!data) usageError('--data DATASET_DIR is required');
  if (!out) usageError('--out AVATAR_DIR is required');
  const size = cl.int('size', 16, Infinity);
  if (size !== undefined && size % 2) usageError('--size must be even');
  const positive = (name: 'lr' | 'max-minutes'): number | undefined => {
    const x = cl.num(name, 0, Infinity);
    if (x === 0) usageError(`--${name} must be above 0`);
    return x;
  };
  const name = cl.str('name');
  if (name !== undefined && name.trim() === '') usageError('--name must not be empty');
  const switches: Partial<Record<Switch, boolean>> = {};
  for (const f of SWITCHES) {
    const on = cl.flag(f);
    const off = cl.flag(`no-${f}`);
    if (on && off) usageError(`--${f} and --no-${f} contradict each other`);
    if (on || off) switches[f] = on;
  }
  if (cl.flag('resume') && cl.str('init-from-avatar') !== undefined) usageError('--resume and --init-from-avatar exclude each other');
  const optional = <T extends string>(n: 'preset' | 'variant' | 'device' | 'output', allowed: readonly T[]): T | undefined => {
    const v = cl.str(n);
    return v === undefined ? undefined : oneOf(n, v, allowed);
  };
  return {
    data,
    out,
    preset: optional('preset', ['warp', 'cpu', 'paper'] as const),
    variant: optional('variant', ['A', 'B', 'C', 'D', 'E', 'F', 'W'] as const),
    refs: cl.int('refs', 1, 8),
    refineChannels: cl.int('refine-channels', 1, 256),
    refineLayers: cl.int('refine-layers', 1, 16),
    noGeometry: cl.flag('no-geometry'),
    switches,
    landmarkWeight: cl.num('landmark-weight', 0, Infinity),
    mseWeight: cl.num('mse-weight', 0, Infinity),
    ema: cl.num('ema', 0, 0.999999),
    condNoise: cl.num('cond-noise', 0, 10),
    hardFrames: cl.num('hard-frames', 0, 1),
    iterations: cl.int('iterations', 1, Infinity),
    maxMinutes: positive('max-minutes'),
    resume: cl.flag('resume'),
    initFromAvatar: cl.str('init-from-avatar'),
    batch: cl.int('batch', 1, Infinity),
    size,
    lr: positive('lr'),
    evalEvery: cl.int('eval-every', 1, Infinity),
    checkpointEvery: cl.int('checkpoint-every', 1, Infinity),
    name,
    seed: cl.int('seed', 0, Infinity),
    device: optional('device', ['cpu', 'cuda'] as const),
    threads: cl.int('threads', 1, Infinity),
    workers: cl.int('workers', 1, Infinity),
    noExport: cl.flag('no-export'),
    noProgress: cl.flag('no-progress'),
    int8: cl.flag('int8'),
    noAmp: cl.flag('no-amp'),
    output: optional('output', ['rgb', 'yuv420p'] as const),
    fp16: cl.flag('fp16'),
  };
}

/** The argument list for `python3 -m train …` (global options first, then the `train` sub-command's). */
export function pythonArgs(o: TrainOptions): string[] {
  const a = ['-m', 'train'];
  if (o.threads !== undefined) a.push('--threads', String(o.threads));
  a.push('train', '--data', resolve(o.data), '--out', resolve(o.out));
  const opt = (flag: string, val: string | number | undefined): void => {
    if (val !== undefined) a.push(flag, String(val));
  };
  opt('--preset', o.preset);
  opt('--variant', o.variant);
  opt('--refs', o.refs);
  if (o.noGeometry) a.push('--no-geometry');
  for (const f of SWITCHES) {
    const v = o.switches[f];
    if (v !== undefined) a.push(v ? `--${f}` : `--no-${f}`);
  }
  opt('--refine-channels', o.refineChannels);
  opt('--refine-layers', o.refineLayers);
  opt('--landmark-weight', o.landmarkWeight);
  opt('--mse-weight', o.mseWeight);
  opt('--ema', o.ema);
  opt('--cond-noise', o.condNoise);
  opt('--hard-frames', o.hardFrames);
  opt('--iterations', o.iterations);
  opt('--max-minutes', o.maxMinutes);
  opt('--batch', o.batch);
  opt('--size', o.size);
  opt('--lr', o.lr);
  opt('--eval-every', o.evalEvery);
  opt('--checkpoint-every', o.checkpointEvery);
  opt('--name', o.name);
  opt('--seed', o.seed);
  opt('--device', o.device);
  opt('--workers', o.workers);
  if (o.resume) a.push('--resume');
  if (o.initFromAvatar !== undefined) a.push('--init-from-avatar', resolve(o.initFromAvatar));
  if (o.noExport) a.push('--no-export');
  if (o.noProgress) a.push('--no-progress');
  if (o.int8) a.push('--int8');
  if (o.noAmp) a.push('--no-amp');
  opt('--output', o.output);
  if (o.fp16) a.push('--fp16');
  return a;
}

/** Throws UsageError unless DIR holds a dataset.json. */
export function checkDataDir(dir: string): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) usageError(`--data ${dir}: not a folder`);
  if (!existsSync(resolve(dir, 'dataset.json'))) usageError(`--data ${dir}: no dataset.json (write one with 'dnp prepare')`);
}

/** null when Python, PyTorch, numpy and Pillow import; else a message naming the install command. */
export function checkPython(python: string): string | null {
  const r = spawnSync(python, ['-c', 'import torch, numpy, PIL'], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? `Python not found at ${python}. Install it with PyTorch: ${INSTALL_HINT}`
      : `could not run ${python}: ${r.error.message}`;
  }
  if (r.status !== 0) {
    const missing = /No module named '([^']+)'/.exec(r.stderr)?.[1];
    return `${missing ? `the Python module '${missing}' is missing` : `PyTorch failed to load (${r.stderr.trim().split('\n').pop() ?? ''})`} for ${python}. Install: ${INSTALL_HINT}`;
  }
  return null;
}

export async function run(argv: string[]): Promise<number> {
  let opts: TrainOptions;
  try {
    opts = parseTrainArgs(argv);
    checkDataDir(opts.data);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`dnp train: ${err.message}\n\nRun 'dnp train --help' for the options.\n`);
      return 2;
    }
    throw err;
  }
  const python = process.env.DNP_PYTHON || DEFAULT_PYTHON;
  const problem = checkPython(python);
  if (problem) {
    process.stderr.write(`dnp train: ${problem}\n`);
    return 3;
  }
  const child: ChildProcess = spawn(python, pythonArgs(opts), {
    cwd: PROJECT_ROOT,
    stdio: 'inherit',
    env: { ...process.env, OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1' },
  });
  // The child owns the training; forward Ctrl-C / SIGTERM so it saves its checkpoint and exits.
  const forward = (sig: NodeJS.Signals): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    return await new Promise<number>((resolveExit) => {
      child.once('error', (err) => {
        process.stderr.write(`dnp train: could not start ${python}: ${err.message}\n`);
        resolveExit(1);
      });
      child.once('exit', (code, signal) => resolveExit(code ?? (signal === 'SIGINT' ? 130 : 143)));
    });
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
}
