/**
 * Per-avatar calibration of the audio-to-expression model's output: quantile matching per blendshape. The
 * model's output quantiles (model.json "outputQuantiles", over its training speakers) and the avatar's own
 * (AVATAR/audio-calibration.json, over the tracked frames of its dataset; written by
 * `python3 -m train.audio_expression calibrate`) at the same levels give a monotone piecewise-linear map from a
 * model value to the value at the same level of the avatar's range. Blendshapes without both curves pass
 * through unchanged. Pure data after load; validated.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { arr, num, numArray, obj, oneOf, SchemaError } from '../../../shared/src/json-check.js';
import type { AudioExpressionModel } from './expression-model.js';

const AUDIO_CALIBRATION_FILE = 'audio-calibration.json';
const MAX_LEVELS = 101;

/** Levels in [0, 1] (strictly increasing) and, per blendshape name, non-decreasing values at those levels. */
export interface QuantileCurves {
  levels: number[];
  values: Map<string, number[]>;
}

export function parseQuantileCurves(v: unknown, where: string): QuantileCurves {
  const o = obj(v, where);
  const levels = numArray(arr(o.levels, `${where}.levels`, { min: 2 }), `${where}.levels`);
  if (levels.length > MAX_LEVELS) throw new SchemaError(`${where}.levels: at most ${MAX_LEVELS} levels`);
  levels.forEach((l, i) => {
    if (l < 0 || l > 1 || (i > 0 && l <= (levels[i - 1] as number))) throw new SchemaError(`${where}.levels: must increase within [0, 1]`);
  });
  const vals = obj(o.values, `${where}.values`);
  const values = new Map<string, number[]>();
  for (const [name, curve] of Object.entries(vals)) {
    const c = numArray(curve, `${where}.values.${name}`, levels.length);
    c.forEach((x, i) => {
      if (i > 0 && x < (c[i - 1] as number)) throw new SchemaError(`${where}.values.${name}: must not decrease`);
    });
    values.set(name, c);
  }
  return { levels, values };
}

/** Reads AVATAR/audio-calibration.json (null when the avatar has none). Throws SchemaError on a bad file. */
export function readAvatarCalibration(avatarDir: string): QuantileCurves | null {
  const path = join(avatarDir, AUDIO_CALIBRATION_FILE);
  if (!existsSync(path)) return null;
  const doc = obj(JSON.parse(readFileSync(path, 'utf8')) as unknown, path);
  oneOf(doc.format, `${path}: format`, ['dnp-audio-calibration'] as const);
  num(doc.version, `${path}: version`, { int: true, min: 1, max: 1 });
  return parseQuantileCurves(doc, path);
}

/** value → level on `from`, → value on `to` (both monotone, same levels); flat stretches map to their middle. */
function mapThrough(x: number, from: readonly number[], to: readonly number[]): number {
  const n = from.length;
  if (x <= (from[0] as number)) return to[0] as number;
  if (x >= (from[n - 1] as number)) return to[n - 1] as number;
  let i = 1;
  while (i < n - 1 && (from[i] as number) < x) i++;
  const a = from[i - 1] as number;
  const b = from[i] as number;
  const w = b > a ? (x - a) / (b - a) : 0.5;
  return (to[i - 1] as number) + w * ((to[i] as number) - (to[i - 1] as number));
}

export class ExpressionCalibration {
  readonly #maps: Array<{ from: number[]; to: number[] } | null>;

  /** For each output of `model` with curves on both sides, a map; null when nothing can be calibrated. */
  static create(model: AudioExpressionModel, avatar: QuantileCurves): ExpressionCalibration | null {
    const source = model.outputQuantiles;
    if (!source) return null;
    const levelsMatch = source.levels.length === avatar.levels.length && source.levels.every((l, i) => Math.abs(l - (avatar.levels[i] as number)) < 1e-6);
    if (!levelsMatch) throw new SchemaError('audio calibration: the avatar and the model use different quantile levels');
    const maps = model.manifest.outputs.map((name) => {
      const from = source.values.get(name);
      const to = avatar.values.get(name);
      return from && to ? { from, to } : null;
    });
    return maps.some((m) => m !== null) ? new ExpressionCalibration(maps) : null;
  }

  private constructor(maps: Array<{ from: number[]; to: number[] } | null>) {
    this.#maps = maps;
  }

  /** Maps the model's output values (in output order) in place. */
  apply(values: Float32Array): Float32Array {
    for (let k = 0; k < values.length; k++) {
      const m = this.#maps[k];
      if (m) values[k] = mapThrough(values[k] as number, m.from, m.to);
    }
    return values;
  }
}
