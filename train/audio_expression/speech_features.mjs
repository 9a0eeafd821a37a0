// Speech feature frames for many WAVs in one Node process (node startup and tsx compile once), with the very
// functions `dnp speech-features` and the live server use: decodeAudio16k + extractSpeechFeatures
// (server/src/audio/). Writes [T, DIM] float32 .npy files.
// Usage: node train/audio_expression/speech_features.mjs IN1.wav OUT1.npy [IN2.wav OUT2.npy ...]
import { writeFileSync } from 'node:fs';
import { register } from 'tsx/esm/api';

register();
const args = process.argv.slice(2);
if (args.length === 0 || args.length % 2 !== 0 || args[0] === '--help' || args[0] === '-h') {
  process.stderr.write('usage: node train/audio_expression/speech_features.mjs IN.wav OUT.npy [IN2.wav OUT2.npy ...]\n');
  process.exit(args[0] === '--help' || args[0] === '-h' ? 0 : 2);
}
const { decodeAudio16k } = await import('../../server/src/audio/decode-audio.ts');
const { extractSpeechFeatures } = await import('../../server/src/audio/speech-features/index.ts');
const { encodeNpy } = await import('../../server/src/prepare/npy.ts');
for (let i = 0; i < args.length; i += 2) {
  const wav = args[i];
  const npy = args[i + 1];
  if (wav === undefined || npy === undefined) throw new Error('arguments come in IN.wav OUT.npy pairs'); // checked above
  const pcm = await decodeAudio16k(wav);
  const f = extractSpeechFeatures(pcm);
  writeFileSync(npy, encodeNpy(f.data, [f.frames, f.dim]));
}
