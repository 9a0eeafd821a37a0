// Robustness of the speech features (docs/speech-features.md) to an Opus round trip (libopus, 20 ms packets,
// as a browser sends them, decoded by the server's OpusDecoder) and to a −12 dB gain change, on 20 s of
// speech; frames after the first 2 s (the live CMN settling). Run:
//   nice -n 10 npx tsx scripts/speech-features-robustness.ts [BITRATE]      (default 32000)
import { join } from 'node:path';
import { decodeAudio16k } from '../server/src/audio/decode-audio.js';
import { OpusDecoder } from '../server/src/audio/opus-decoder.js';
import { SPEECH_FEATURE_DIM as D, extractSpeechFeatures } from '../server/src/audio/speech-features/index.js';
import { encodeOpusClip } from '../test/support/opus-clip.js';
import { concatFloat32 } from '../test/support/speech-stream.js';

const WAV = join(import.meta.dirname, '..', '..', 'shared', 'data', 'speech-english-16k.wav');
const SECONDS = 20;
const SETTLE = 200; // frames skipped while the live CMN settles
const bitrate = Number(process.argv[2] ?? 32000);
type Features = ReturnType<typeof extractSpeechFeatures>;

/** Samples by which `b` lags `a` (0..40 ms), by cross-correlation over 2 s. */
function lagOf(a: Float32Array, b: Float32Array): number {
  let best = 0;
  let bestC = -Infinity;
  for (let lag = 0; lag < 640; lag++) {
    let c = 0;
    for (let i = 16_000; i < 48_000; i++) c += (a[i] as number) * (b[i + lag] ?? 0);
    if (c > bestC) [bestC, best] = [c, lag];
  }
  return best;
}

function pearson(x: Features, y: Features, col: number, T: number): number {
  let sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  const n = T - SETTLE;
  for (let t = SETTLE; t < T; t++) {
    const u = x.data[t * D + col] as number;
    const v = y.data[t * D + col] as number;
    sx += u; sy += v; sxx += u * u; syy += v * v; sxy += u * v;
  }
  return (sxy - (sx * sy) / n) / Math.sqrt((sxx - (sx * sx) / n) * (syy - (sy * sy) / n));
}

function argmaxPhone(f: Features, t: number): number {
  let best = 39;
  for (let p = 40; p < D; p++) if ((f.data[t * D + p] as number) > (f.data[t * D + best] as number)) best = p;
  return best;
}

function compare(name: string, x: Features, y: Features): void {
  const T = Math.min(x.frames, y.frames);
  let agree = 0;
  let l1 = 0;
  for (let t = SETTLE; t < T; t++) {
    if (argmaxPhone(x, t) === argmaxPhone(y, t)) agree++;
    for (let p = 39; p < D; p++) l1 += Math.abs((x.data[t * D + p] as number) - (y.data[t * D + p] as number));
  }
  const r = Array.from({ length: 13 }, (_, i) => pearson(x, y, i, T));
  console.log(`${name}: ${T - SETTLE} frames; same best phone ${(agree / (T - SETTLE)).toFixed(3)}; mean L1 distance of the phone posteriors ${(l1 / (T - SETTLE)).toFixed(3)} (0..2); cepstra c0..c12 r ${r.map((v) => v.toFixed(2)).join(' ')}`);
}

const clean = (await decodeAudio16k(WAV)).subarray(0, SECONDS * 16_000);
const dec = new OpusDecoder();
const opus = concatFloat32((await encodeOpusClip(WAV, SECONDS, bitrate)).map((p) => dec.decode(p).pcm));
dec.close();
const lag = lagOf(clean, opus);
const aligned = opus.subarray(lag, lag + clean.length - 1000);
const ref = extractSpeechFeatures(clean.subarray(0, aligned.length));
console.log(`Opus ${bitrate} bit/s, codec delay ${lag} samples`);
compare(`opus ${bitrate / 1000}k`, ref, extractSpeechFeatures(aligned));
compare('gain -12 dB', ref, extractSpeechFeatures(clean.subarray(0, aligned.length).map((v) => v * 0.25)));
