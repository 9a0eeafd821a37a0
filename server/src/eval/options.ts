/** `dnp eval` command line: parsing, validation and the help text. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { flagOptions, parseCommandLine, usageError, valueOptions } from '../cli/args.js';
import { PROJECT_ROOT } from '../project-paths.js';

export const EVAL_HELP = `Usage: dnp eval --avatar AVATAR_DIR --data DATASET_DIR --out REPORT_DIR [options]

Evaluates an avatar on the held-out (test split, valid) frames of the dataset it was trained on, against
two baselines (the mean training frame, nearest neighbour by driving vector), and writes REPORT_DIR/report.json,
REPORT_DIR/report.md, picture strips (truth | render | error map | nearest neighbour) and a jawOpen plot.

Options:
  --avatar DIR          avatar folder (avatar.json + avatar.onnx)                        (required)
  --data DIR            dataset folder from 'dnp prepare' (v1 or v2)                     (required)
  --out DIR             report folder (created; files in it are replaced)                (required)
  --driver DIR          another person's dataset: cross-reenactment through neutral calibration
  --driver-frames N     most driver frames to use (its first N valid ones)              (default 300)
  --no-retrack          skip re-tracking the renders (no controllability figures, no plot); faster.
                        A v1 dataset (no landmarks) still has its ground truth tracked for the regions
  --max-frames N        evaluate at most N test frames (evenly spread; default all)
  --strips N            picture strips to write                                          (default 6)
  --threads N           ONNX Runtime threads                                             (default 1)
  --batch N             frames per model run                                             (default 8)
  --tracker-model PATH  face_landmarker.task  (default $DNP_TRACKER_MODEL, else models/face_landmarker.task)
  --chromium PATH       Chromium binary (default $DNP_CHROMIUM, else /usr/bin/chromium)
  -h, --help            this text

Exit status: 0 done, 1 failed, 2 bad command line or inputs (missing files, an avatar and dataset that do not
match). Progress bars go to stderr. Details: docs/evaluation.md.
`;

export interface EvalOptions {
  avatar: string;
  data: string;
  out: string;
  driver: string | null;
  driverFrames: number;
  retrack: boolean;
  maxFrames: number | null;
  strips: number;
  threads: number;
  batch: number;
  trackerModel: string;
  chromium: string | null;
}

function defaultTrackerModel(): string {
  const env = process.env.DNP_TRACKER_MODEL;
  return env && env.length > 0 ? env : join(PROJECT_ROOT, 'models', 'face_landmarker.task');
}

const OPTIONS = { ...valueOptions('avatar', 'data', 'out', 'driver', 'driver-frames', 'max-frames', 'strips', 'threads', 'batch', 'tracker-model', 'chromium'), ...flagOptions('no-retrack') };

export function parseEvalArgs(argv: string[]): EvalOptions {
  const cl = parseCommandLine(argv, OPTIONS);
  const avatar = cl.str('avatar');
  const data = cl.str('data');
  const out = cl.str('out');
  const driver = cl.str('driver');
  if (!avatar) usageError('--avatar AVATAR_DIR is required');
  if (!data) usageError('--data DATASET_DIR is required');
  if (!out) usageError('--out REPORT_DIR is required');
  return {
    avatar: resolve(avatar),
    data: resolve(data),
    out: resolve(out),
    driver: driver ? resolve(driver) : null,
    driverFrames: cl.int('driver-frames', 2, 100_000, 300),
    retrack: !cl.flag('no-retrack'),
    maxFrames: cl.int('max-frames', 1, 1_000_000) ?? null,
    strips: cl.int('strips', 0, 100, 6),
    threads: cl.int('threads', 1, 256, 1),
    batch: cl.int('batch', 1, 256, 8),
    trackerModel: resolve(cl.str('tracker-model') ?? defaultTrackerModel()),
    chromium: cl.str('chromium') ?? null,
  };
}

/** Whether the tracker model is needed: re-tracking, a v1 dataset's regions, or cross-reenactment. */
export function checkTrackerModel(path: string): void {
  if (!existsSync(path)) {
    usageError(
      `tracker model ${path}: no such file. Give --tracker-model PATH, set DNP_TRACKER_MODEL, or download it to models/face_landmarker.task (see README)`,
    );
  }
}
