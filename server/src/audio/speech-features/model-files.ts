/**
 * Parsers for the files of a Sphinx semi-continuous / phonetically-tied acoustic model, as pocketsphinx
 * 0.8+5prealpha reads them: Sphinx-3 Gaussian parameter files (`means`, `variances`: "s3" text header,
 * 0x11223344 byte-order magic, n_mgau × n_feat × n_density × veclen float32), the 8-bit mixture-weight dump
 * (`sendump`, negated log weights in pocketsphinx's 8-bit log units), and the binary model definition
 * (`mdef`, "BMDF": phone names and senone sequences). Every length is checked against the file size; errors
 * name the file.
 */

export interface GaussianFile {
  nMgau: number;
  nFeat: number;
  nDensity: number;
  veclen: number[];
  /** [mgau][feat][density][dim], flattened. */
  data: Float32Array;
}

const S3_MAGIC = 0x11223344;

function fail(where: string, what: string): never {
  throw new Error(`${where}: ${what}`);
}

export function parseGaussianFile(b: Buffer, where: string): GaussianFile {
  if (b.toString('latin1', 0, 3) !== 's3\n') fail(where, 'not a Sphinx-3 parameter file (no "s3" header)');
  const end = b.indexOf('endhdr\n', 0, 'latin1');
  if (end < 0) fail(where, 'header has no "endhdr"');
  let p = end + 7;
  if (p + 16 > b.length) fail(where, 'truncated');
  if (b.readUInt32LE(p) !== S3_MAGIC) fail(where, 'unexpected byte order (big-endian files are not supported)');
  p += 4;
  const nMgau = b.readInt32LE(p);
  const nFeat = b.readInt32LE(p + 4);
  const nDensity = b.readInt32LE(p + 8);
  p += 12;
  if (nMgau <= 0 || nFeat <= 0 || nFeat > 8 || nDensity <= 0 || p + 4 * nFeat + 4 > b.length) fail(where, `bad dimensions ${nMgau} × ${nFeat} × ${nDensity}`);
  const veclen: number[] = [];
  for (let f = 0; f < nFeat; f++) veclen.push(b.readInt32LE(p + 4 * f));
  p += 4 * nFeat;
  const total = b.readInt32LE(p);
  p += 4;
  const expected = nMgau * nDensity * veclen.reduce((a, v) => a + v, 0);
  if (total !== expected) fail(where, `holds ${total} values, dimensions say ${expected}`);
  if (p + 4 * total > b.length) fail(where, 'truncated data');
  const data = new Float32Array(total);
  for (let i = 0; i < total; i++) data[i] = b.readFloatLE(p + 4 * i);
  return { nMgau, nFeat, nDensity, veclen, data };
}

export interface SenoneDump {
  nFeat: number;
  nDensity: number;
  nSen: number;
  /** Negated log mixture weights, [feat][density][senone], 8-bit log units. */
  mixw: Uint8Array;
}

export function parseSendump(b: Buffer, where: string): SenoneDump {
  let p = 0;
  const readStr = (): string | null => {
    if (p + 4 > b.length) fail(where, 'truncated header');
    const n = b.readInt32LE(p);
    p += 4;
    if (n === 0) return null;
    if (n < 0 || n > 999 || p + n > b.length) fail(where, 'bad header string length (not a little-endian sendump?)');
    const s = b.toString('latin1', p, p + n - 1);
    p += n;
    return s;
  };
  let nFeat = 0;
  let nClust = 0;
  for (let s = readStr(); s !== null; s = readStr()) {
    const m = /^(\w+) (\d+)$/.exec(s);
    if (m?.[1] === 'feature_count') nFeat = Number(m[2]);
    if (m?.[1] === 'cluster_count') nClust = Number(m[2]);
  }
  if (nClust !== 0) fail(where, `clustered (4-bit) mixture weights are not supported (cluster_count ${nClust})`);
  if (nFeat <= 0) fail(where, 'no feature_count in header');
  if (p + 8 > b.length) fail(where, 'truncated');
  const nDensity = b.readInt32LE(p);
  const nSen = b.readInt32LE(p + 4);
  p += 8;
  const size = nFeat * nDensity * nSen;
  if (nDensity <= 0 || nSen <= 0 || p + size !== b.length) fail(where, `size ${b.length} does not match ${nFeat} × ${nDensity} × ${nSen} weights`);
  return { nFeat, nDensity, nSen, mixw: new Uint8Array(b.subarray(p, p + size)) };
}

export interface ModelDefinition {
  ciPhones: string[];
  nEmitState: number;
  nCiSen: number;
  nSen: number;
  /** The emitting-state senones of each CI phone, [phone][state]. */
  ciSenones: Int32Array;
  /** The CI phone (= codebook in a PTM model) of every senone. */
  sen2ci: Int16Array;
}

/** Binary mdef (bin_mdef.c): magic "BMDF", version, format text, 10 int32 counts, CI names, CD tree, phones, senone sequences. */
export function parseBinaryMdef(b: Buffer, where: string): ModelDefinition {
  if (b.length < 12 || b.toString('latin1', 0, 4) !== 'BMDF') fail(where, 'not a binary model definition (no "BMDF"; text mdef files are not supported)');
  const hlen = b.readInt32LE(8);
  let p = 12 + hlen;
  if (hlen < 0 || p + 40 > b.length) fail(where, 'truncated header');
  const [nCiphone, nPhone, nEmitState, nCiSen, nSen, , nSseq, , nCdTree] = Array.from({ length: 10 }, (_, i) => b.readInt32LE(p + 4 * i)) as number[] as [number, number, number, number, number, number, number, number, number, number];
  p += 40;
  if (nEmitState <= 0 || nCiphone <= 0 || nCiSen !== nCiphone * nEmitState) fail(where, `unsupported topology (${nCiphone} CI phones, ${nEmitState} states, ${nCiSen} CI senones)`);
  const base = p;
  const ciPhones: string[] = [];
  for (let i = 0; i < nCiphone; i++) {
    const e = b.indexOf(0, p);
    if (e < 0) fail(where, 'truncated phone names');
    ciPhones.push(b.toString('latin1', p, e));
    p = e + 1;
  }
  p = base + (((p - base) + 3) & ~3);
  p += 8 * nCdTree; // cd_tree_t { int16 ctx; int16 n_down; int32 pid/down }
  const phoneStart = p; // mdef_entry_t { int32 ssid; int32 tmat; uint8 info[4] }
  p += 12 * nPhone;
  if (p + 4 > b.length) fail(where, 'truncated phone table');
  const sseqSize = b.readInt32LE(p);
  p += 4;
  if (sseqSize !== nSseq * nEmitState || p + 2 * sseqSize > b.length) fail(where, 'bad senone sequence table');
  const sseqAt = (ssid: number, state: number): number => b.readUInt16LE(p + 2 * (ssid * nEmitState + state));
  const sen2ci = new Int16Array(nSen).fill(-1);
  const ciSenones = new Int32Array(nCiphone * nEmitState);
  for (let i = 0; i < nPhone; i++) {
    const ssid = b.readInt32LE(phoneStart + 12 * i);
    // A CI phone is its own base; a CD phone's base is in its info bytes (wpos, ctx[0] = base).
    const ci = i < nCiphone ? i : (b[phoneStart + 12 * i + 9] as number);
    for (let s = 0; s < nEmitState; s++) {
      const sen = sseqAt(ssid, s);
      if (sen >= nSen || ci >= nCiphone) fail(where, `phone ${i} refers to senone ${sen} / base ${ci} out of range`);
      if (i < nCiphone) ciSenones[i * nEmitState + s] = sen;
      if (sen2ci[sen] === -1) sen2ci[sen] = ci;
    }
  }
  return { ciPhones, nEmitState, nCiSen, nSen, ciSenones, sen2ci };
}
