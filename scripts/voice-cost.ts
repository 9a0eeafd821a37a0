// CPU cost of one microphone caller's voice path on the server (docs/audio-driven.md): Opus packets of a speech
// clip (default the first 20 s of ../shared/data/speech-english-16k.wav, libopus 32 kbit/s 20 ms) paced in real
// time through VoiceDriver (decode + resample, voice gate, speech features, the audio-to-expression model) and
// VoiceRelay (the voice sent back), as a session runs them. The avatar's render and video encode are not included
// (they cost the same as for a camera caller: docs/evaluation.md). Prints CPU-ms per second of audio.
// Run: nice -n 10 npx tsx scripts/voice-cost.ts [WAV] [SECONDS]
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { DEFAULT_AUDIO_EXPRESSION_DIR } from '../server/src/audio/expression-model.js';
import { VoiceDriver } from '../server/src/audio/voice-driver.js';
import { VoiceModel } from '../server/src/audio/voice-model.js';
import { VoiceRelay } from '../server/src/audio/voice-relay.js';
import { createLogger } from '../server/src/log.js';
import { encodeOpusClip } from '../test/support/opus-clip.js';

const wav = process.argv[2] ?? join(import.meta.dirname, '..', '..', 'shared', 'data', 'speech-english-16k.wav');
const seconds = Number(process.argv[3] ?? '20');
const packets = await encodeOpusClip(wav, seconds);
const log = createLogger('silent');
const model = await VoiceModel.load(process.env.DNP_AUDIO_MODEL ?? DEFAULT_AUDIO_EXPRESSION_DIR, log);
const driver = new VoiceDriver({ predictor: model.createPredictor(join(import.meta.dirname, '..', 'avatars', 'default')), log });
let relayed = 0;
const relay = new VoiceRelay({ delayMs: 150, send: () => relayed++ });
const c0 = process.cpuUsage();
const t0 = performance.now();
for (const [i, p] of packets.entries()) {
  const wait = t0 + i * 20 - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const now = performance.now();
  driver.push({ sequenceNumber: i & 0xffff, timestamp: i * 960, payload: p }, now);
  relay.push(p, i * 960, now);
}
await new Promise((r) => setTimeout(r, 300));
const c = process.cpuUsage(c0);
const wallS = (performance.now() - t0) / 1000;
const audioS = packets.length * 0.02;
const cpuMs = (c.user + c.system) / 1000;
const s = driver.toJSON();
process.stdout.write(
  `${JSON.stringify({
    audioSeconds: audioS,
    cpuMsPerAudioSecond: Math.round((cpuMs / audioS) * 10) / 10,
    percentOfOneCore: Math.round((cpuMs / 10 / wallS) * 10) / 10,
    featureFrames: s.featureFrames,
    modelRuns: s.predictions,
    relayed,
    speechSegments: s.speechSegments,
    machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    load: loadavg().map((x) => Math.round(x * 10) / 10),
  })}\n`,
);
relay.close();
driver.close();
await model.close();
