/**
 * Reference numbers from pocketsphinx's own tools (Debian sphinxbase-utils / pocketsphinx), produced at test
 * time from a WAV written to a temporary folder: sphinx_fe's cepstra with the en-us model's front-end
 * parameters (noise and silence removal off, as in our front end).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeWav16 } from '../../server/src/prepare/wav.js';

export const SPHINX_FE_ARGS = ['-lowerf', '130', '-upperf', '6800', '-nfilt', '25', '-transform', 'dct', '-lifter', '22', '-remove_noise', 'no', '-remove_silence', 'no'];

export function toInt16(pcm: Float32Array): Int16Array {
  const s = new Int16Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) s[i] = Math.max(-32768, Math.min(32767, Math.round((pcm[i] as number) * 32768)));
  return s;
}

/** Writes `pcm` as a 16-bit WAV in `dir` and returns its path. */
export function writeTestWav(dir: string, name: string, pcm: Float32Array): string {
  const path = join(dir, name);
  writeFileSync(path, encodeWav16(toInt16(pcm), 16_000, 1));
  return path;
}

/** Reads a Sphinx feature file (int32 count, then float32 values, native little-endian) as [frames][13]. */
export function readSphinxMfc(path: string, dim = 13): Float32Array[] {
  const b = readFileSync(path);
  const count = b.readInt32LE(0);
  if (count * 4 + 4 !== b.length) throw new Error(`${path}: header says ${count} values, file has ${(b.length - 4) / 4}`);
  const rows: Float32Array[] = [];
  for (let t = 0; t < count / dim; t++) {
    const r = new Float32Array(dim);
    for (let i = 0; i < dim; i++) r[i] = b.readFloatLE(4 + (t * dim + i) * 4);
    rows.push(r);
  }
  return rows;
}

/** sphinx_fe on a WAV; returns its cepstra [frames][13]. Throws naming the Debian package when it is missing. */
export function sphinxFeCepstra(wavPath: string, outPath: string): Float32Array[] {
  try {
    execFileSync('sphinx_fe', ['-i', wavPath, '-o', outPath, '-mswav', 'yes', '-ofmt', 'sphinx', ...SPHINX_FE_ARGS], { stdio: 'pipe' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('sphinx_fe not found: apt-get install sphinxbase-utils');
    throw err;
  }
  return readSphinxMfc(outPath);
}

export const POCKETSPHINX_MODEL = '/usr/share/pocketsphinx/model/en-us';

/** Writes cepstra [frames][13] as a Sphinx feature file. */
export function writeSphinxMfc(path: string, rows: readonly Float32Array[], dim = 13): void {
  const b = Buffer.alloc(4 + rows.length * dim * 4);
  b.writeInt32LE(rows.length * dim, 0);
  rows.forEach((r, t) => {
    for (let i = 0; i < dim; i++) b.writeFloatLE(r[i] as number, 4 + (t * dim + i) * 4);
  });
  writeFileSync(path, b);
}

/**
 * pocketsphinx_batch on a cepstra file `<dir>/<id>.mfc` (batch CMN, the model's feat.params), every senone
 * scored (-compallsen) and dumped (-senlogdir); the search (phone loop, narrow beams) only has to run.
 * Returns pocketsphinx's senone scores per frame: negated, relative to the frame's best, 8-bit log units.
 */
export function pocketsphinxSenoneScores(dir: string, id: string): Int16Array[] {
  writeFileSync(join(dir, `${id}.ctl`), `${id}\n`);
  const senDir = join(dir, `${id}-sen`);
  execFileSync('mkdir', ['-p', senDir]);
  const args = ['-hmm', join(POCKETSPHINX_MODEL, 'en-us'), '-allphone', join(POCKETSPHINX_MODEL, 'en-us-phone.lm.bin'), '-beam', '1e-3', '-pbeam', '1e-3',
    '-ctl', join(dir, `${id}.ctl`), '-cepdir', dir, '-cepext', '.mfc', '-senlogdir', senDir, '-compallsen', 'yes'];
  try {
    execFileSync('pocketsphinx_batch', args, { stdio: 'pipe' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('pocketsphinx_batch not found: apt-get install pocketsphinx pocketsphinx-en-us');
    throw err;
  }
  const b = readFileSync(join(senDir, '000000000.sen'));
  let p = b.indexOf('endhdr\n', 0, 'latin1') + 7;
  if (b.readUInt32LE(p) !== 0x11223344) throw new Error('senone dump: unexpected byte order');
  p += 4;
  const frames: Int16Array[] = [];
  while (p < b.length) {
    const n = b.readInt16LE(p);
    p += 2;
    const f = new Int16Array(n);
    for (let i = 0; i < n; i++) f[i] = b.readInt16LE(p + 2 * i);
    p += 2 * n;
    frames.push(f);
  }
  return frames;
}
