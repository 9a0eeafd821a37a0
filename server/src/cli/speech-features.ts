/** `dnp speech-features`: the speech feature frames of a WAV or a video's audio, as a .npy file (training data). */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AudioInputError, decodeAudio16k, DECODE_RATE } from '../audio/decode-audio.js';
import {
  SPEECH_FEATURE_DIM,
  SPEECH_FEATURE_FIRST_CENTRE_MS,
  SPEECH_FEATURE_HOP_MS,
  SPEECH_FEATURE_LOOKAHEAD_MS,
  SPEECH_MODEL_ENV,
  SpeechModelMissingError,
  extractSpeechFeatures,
} from '../audio/speech-features/index.js';
import { encodeNpy } from '../prepare/npy.js';
import { existingDir, parseCommandLine, UsageError, usageError, valueOptions } from './args.js';

export const help = `Usage: dnp speech-features INPUT --out FILE.npy [options]

Writes the speaker-independent speech features of INPUT (a WAV, or any audio/video file FFmpeg reads; its
first audio stream, resampled to 16 kHz mono) as a float32 .npy of shape [frames, ${SPEECH_FEATURE_DIM}]: one row per
${SPEECH_FEATURE_HOP_MS} ms, the same numbers the live server computes (docs/speech-features.md). Row t is centred
${SPEECH_FEATURE_FIRST_CENTRE_MS} ms + t × ${SPEECH_FEATURE_HOP_MS} ms after the first audio sample (in a video: the audio stream's first
timestamp, which need not be the first video frame's; a \`dnp prepare\` dataset's speech_features.npy is
aligned to its frame 0). Columns 0-38 are 13 cepstra (mean-normalised), deltas and delta-deltas, columns
39-80 the posteriors of the 42 phones of pocketsphinx-en-us.

Options (flag, environment variable, default):
  --out FILE         where to write the .npy (its folder must exist)
  --model-dir DIR    ${SPEECH_MODEL_ENV}   /usr/share/pocketsphinx/model/en-us/en-us: the acoustic model
                                          (Debian package pocketsphinx-en-us)
  --help             this text
`;

const OPTIONS = valueOptions('out', 'model-dir');

function parse(argv: string[]): { input: string; out: string; modelDir: string | undefined } {
  const cl = parseCommandLine(argv, OPTIONS, { maxPositionals: 1 });
  const input = cl.positionals[0];
  const out = cl.str('out');
  const modelDir = cl.str('model-dir');
  if (input === undefined) usageError('no INPUT (a WAV or a video; see --help)');
  if (out === undefined) usageError('--out FILE.npy is required');
  if (!existsSync(input) || !statSync(input).isFile()) usageError(`${input}: no such file`);
  const outDir = dirname(resolve(out));
  if (!existsSync(outDir) || !statSync(outDir).isDirectory()) usageError(`--out: folder ${outDir} does not exist`);
  return { input, out, modelDir: modelDir === undefined ? undefined : existingDir('model-dir', modelDir) };
}

export async function run(argv: string[]): Promise<number> {
  try {
    const { input, out, modelDir } = parse(argv);
    const t0 = performance.now();
    const pcm = await decodeAudio16k(input);
    const t1 = performance.now();
    const { frames, dim, data } = extractSpeechFeatures(pcm, modelDir === undefined ? {} : { model: modelDir });
    const t2 = performance.now();
    writeFileSync(out, encodeNpy(data, [frames, dim]));
    const seconds = pcm.length / DECODE_RATE;
    process.stderr.write(
      `dnp speech-features: ${out}: ${frames} frames × ${dim} from ${seconds.toFixed(2)} s of audio ` +
        `(decode ${(t1 - t0).toFixed(0)} ms, features ${(t2 - t1).toFixed(0)} ms; look-ahead ${SPEECH_FEATURE_LOOKAHEAD_MS.toFixed(1)} ms)\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof AudioInputError || err instanceof SpeechModelMissingError) {
      process.stderr.write(`dnp speech-features: ${err.message}\n`);
      return err instanceof UsageError ? 2 : 1;
    }
    throw err;
  }
}
