/** `dnp eval` command line: parsing, validation and the help text. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
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

export class EvalUsageError extends Error {}

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

function int(v: string | undefined, flag: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v)) throw new EvalUsageError(`${flag} expects a whole number (got '${v}')`);
  const n = Number(v);
  if (n < min || n > max) throw new EvalUsageError(`${flag} must be in ${min}..${max} (got ${n})`);
  return n;
}

export function defaultTrackerModel(): string {
  const env = process.env.DNP_TRACKER_MODEL;
  return env && env.length > 0 ? env : join(PROJECT_ROOT, 'models', 'face_landmarker.task');
}

export function parseEvalArgs(argv: string[]): EvalOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        avatar: { type: 'string' },
        data: { type: 'string' },
        out: { type: 'string' },
        driver: { type: 'string' },
        'driver-frames': { type: 'string' },
        'no-retrack': { type: 'boolean', default: false },
        'max-frames': { type: 'string' },
        strips: { type: 'string' },
        threads: { type: 'string' },
        batch: { type: 'string' },
        'tracker-model': { type: 'string' },
        chromium: { type: 'string' },
      },
    });
  } catch (err) {
    throw new EvalUsageError(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values;
  if (!v.avatar) throw new EvalUsageError('--avatar AVATAR_DIR is required');
  if (!v.data) throw new EvalUsageError('--data DATASET_DIR is required');
  if (!v.out) throw new EvalUsageError('--out REPORT_DIR is required');
  const retrack = v['no-retrack'] !== true;
  return {
    avatar: resolve(v.avatar),
    data: resolve(v.data),
    out: resolve(v.out),
    driver: v.driver ? resolve(v.driver) : null,
    driverFrames: int(v['driver-frames'], '--driver-frames', 2, 100_000, 300),
    retrack,
    maxFrames: v['max-frames'] === undefined ? null : int(v['max-frames'], '--max-frames', 1, 1_000_000, 0),
    strips: int(v.strips, '--strips', 0, 100, 6),
    threads: int(v.threads, '--threads', 1, 256, 1),
    batch: int(v.batch, '--batch', 1, 256, 8),
    trackerModel: resolve(v['tracker-model'] ?? defaultTrackerModel()),
    chromium: v.chromium ?? null,
  };
}

/** Whether the tracker model is needed: re-tracking, a v1 dataset's regions, or cross-reenactment. */
export function checkTrackerModel(path: string): void {
  if (!existsSync(path)) {
    throw new EvalUsageError(
      `tracker model ${path}: no such file. Give --tracker-model PATH, set DNP_TRACKER_MODEL, or download it to models/face_landmarker.task (see README)`,
    );
  }
}
