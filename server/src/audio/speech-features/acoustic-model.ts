/**
 * The pocketsphinx US-English acoustic model (Debian package `pocketsphinx-en-us`, BSD-2), read from
 * /usr/share/pocketsphinx/model/en-us/en-us or from DNP_SPEECH_MODEL_DIR / an explicit directory, with its
 * Gaussians precomputed as pocketsphinx does (gauden_dist_precompute: variances floored at 1e-4, 1/(2σ²)
 * and log normalisers). Loaded once per directory and shared (read-only).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBinaryMdef, parseGaussianFile, parseSendump, type ModelDefinition } from './model-files.js';

export const DEFAULT_SPEECH_MODEL_DIR = '/usr/share/pocketsphinx/model/en-us/en-us';
export const SPEECH_MODEL_ENV = 'DNP_SPEECH_MODEL_DIR';
const VAR_FLOOR = 1e-4;

export interface AcousticModel {
  dir: string;
  mdef: ModelDefinition;
  /** Codebooks (one per CI phone in a PTM model), streams, Gaussians per codebook and stream. */
  nCb: number;
  nFeat: number;
  nDensity: number;
  /** Length of each stream (13, 13, 13) and where it starts in the 39-value feature vector. */
  veclen: number[];
  featOffset: number[];
  /** Per stream f: [cb][density][dim] means and 1/(2σ²), and [cb][density] log normalisers (nats). */
  mean: Float64Array[];
  halfInvVar: Float64Array[];
  logNorm: Float64Array[];
  /** Negated log mixture weights [feat][density][senone] in pocketsphinx's 8-bit log units. */
  mixw: Uint8Array;
}

export class SpeechModelMissingError extends Error {
  constructor(dir: string, file: string) {
    super(
      `speech acoustic model not found: ${join(dir, file)} is missing. Install it with "apt-get install pocketsphinx-en-us", ` +
        `or point ${SPEECH_MODEL_ENV} at a directory holding mdef, means, variances and sendump.`,
    );
    this.name = 'SpeechModelMissingError';
  }
}

/** The model directory to use: the argument, else $DNP_SPEECH_MODEL_DIR, else Debian's path. */
function speechModelDir(dir?: string): string {
  return dir ?? process.env[SPEECH_MODEL_ENV] ?? DEFAULT_SPEECH_MODEL_DIR;
}

const cache = new Map<string, AcousticModel>();

export function loadAcousticModel(dir?: string): AcousticModel {
  const d = speechModelDir(dir);
  const hit = cache.get(d);
  if (hit) return hit;
  const read = (file: string): Buffer => {
    const path = join(d, file);
    if (!existsSync(path)) throw new SpeechModelMissingError(d, file);
    return readFileSync(path);
  };
  const mdef = parseBinaryMdef(read('mdef'), join(d, 'mdef'));
  const means = parseGaussianFile(read('means'), join(d, 'means'));
  const vars = parseGaussianFile(read('variances'), join(d, 'variances'));
  const sendump = parseSendump(read('sendump'), join(d, 'sendump'));
  const where = `acoustic model in ${d}`;
  if (means.nMgau !== vars.nMgau || means.nFeat !== vars.nFeat || means.nDensity !== vars.nDensity || means.data.length !== vars.data.length) throw new Error(`${where}: means and variances differ in shape`);
  if (means.nMgau !== mdef.ciPhones.length) throw new Error(`${where}: ${means.nMgau} codebooks for ${mdef.ciPhones.length} CI phones (not a phonetically-tied model)`);
  if (sendump.nFeat !== means.nFeat || sendump.nDensity !== means.nDensity || sendump.nSen !== mdef.nSen) throw new Error(`${where}: sendump shape ${sendump.nFeat} × ${sendump.nDensity} × ${sendump.nSen} does not match the model`);
  const { nMgau: nCb, nFeat, nDensity, veclen } = means;
  const featOffset = veclen.map((_, f) => veclen.slice(0, f).reduce((a, v) => a + v, 0));
  const mean: Float64Array[] = [];
  const halfInvVar: Float64Array[] = [];
  const logNorm: Float64Array[] = [];
  for (let f = 0; f < nFeat; f++) {
    const len = veclen[f] as number;
    mean.push(new Float64Array(nCb * nDensity * len));
    halfInvVar.push(new Float64Array(nCb * nDensity * len));
    logNorm.push(new Float64Array(nCb * nDensity));
  }
  // File order: [mgau][feat][density][dim].
  let src = 0;
  for (let cb = 0; cb < nCb; cb++) {
    for (let f = 0; f < nFeat; f++) {
      const len = veclen[f] as number;
      const m = mean[f] as Float64Array;
      const h = halfInvVar[f] as Float64Array;
      const ln = logNorm[f] as Float64Array;
      for (let k = 0; k < nDensity; k++) {
        const g = cb * nDensity + k;
        let det = 0;
        for (let i = 0; i < len; i++, src++) {
          const v = Math.max(vars.data[src] as number, VAR_FLOOR);
          m[g * len + i] = means.data[src] as number;
          h[g * len + i] = 1 / (2 * v);
          det += Math.log(1 / Math.sqrt(v * 2 * Math.PI));
        }
        ln[g] = det;
      }
    }
  }
  const model: AcousticModel = { dir: d, mdef, nCb, nFeat, nDensity, veclen, featOffset, mean, halfInvVar, logNorm, mixw: sendump.mixw };
  cache.set(d, model);
  return model;
}
