// Cost of the speech features (docs/speech-features.md): streams a WAV (default: 60 s of speech,
// ../shared/data/speech-english-16k.wav) through SpeechFeatureStream in 20 ms chunks, as the live server
// does, and prints CPU and wall milliseconds per second of audio, the phonetic part on its own, and the
// per-chunk wall time. Run: nice -n 10 npx tsx scripts/speech-features-cost.ts [WAV]
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { decodeAudio16k } from '../server/src/audio/decode-audio.js';
import { loadAcousticModel } from '../server/src/audio/speech-features/acoustic-model.js';
import { SPEECH_FEATURE_DIM, SpeechFeatureStream } from '../server/src/audio/speech-features/index.js';
import { PhonePosteriors } from '../server/src/audio/speech-features/phone-posteriors.js';

const wav = process.argv[2] ?? join(import.meta.dirname, '..', '..', 'shared', 'data', 'speech-english-16k.wav');
const pcm = await decodeAudio16k(wav);
const seconds = pcm.length / 16_000;
const t0 = performance.now();
const model = loadAcousticModel();
const loadMs = performance.now() - t0;

function run(): { cpuMs: number; wallMs: number; chunkMs: number[]; features: Float32Array[] } {
  const s = new SpeechFeatureStream({ model });
  const chunkMs: number[] = [];
  const features: Float32Array[] = [];
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < pcm.length; i += 320) {
    const a = performance.now();
    s.push(pcm.subarray(i, i + 320));
    features.push(s.read());
    chunkMs.push(performance.now() - a);
  }
  s.flush();
  features.push(s.read());
  const c = process.cpuUsage(c0);
  return { cpuMs: (c.user + c.system) / 1000, wallMs: performance.now() - w0, chunkMs, features };
}

run(); // warm-up (JIT)
const r = run();
const phones = new PhonePosteriors(model);
const out = new Float32Array(SPEECH_FEATURE_DIM);
const c0 = process.cpuUsage();
let frames = 0;
for (const f of r.features) {
  for (let k = 0; k < f.length; k += SPEECH_FEATURE_DIM) {
    phones.compute(f.subarray(k, k + 39), out, 39);
    frames++;
  }
}
const pc = process.cpuUsage(c0);
const sorted = [...r.chunkMs].sort((a, b) => a - b);
const q = (p: number): number => sorted[Math.floor(p * (sorted.length - 1))] as number;
const per = (ms: number): string => (ms / seconds).toFixed(1);
console.log(JSON.stringify({
  wav, seconds: +seconds.toFixed(2), frames,
  modelLoadMs: +loadMs.toFixed(0),
  cpuMsPerAudioSecond: +per(r.cpuMs), wallMsPerAudioSecond: +per(r.wallMs),
  phonesCpuMsPerAudioSecond: +per((pc.user + pc.system) / 1000),
  chunkWallMs: { p50: +q(0.5).toFixed(2), p99: +q(0.99).toFixed(2), max: +q(1).toFixed(2) },
  loadAverage: loadavg().map((v) => +v.toFixed(1)),
  date: new Date().toISOString(),
}, null, 1));
