/**
 * The speech features of a dataset's audio (`speech_features.npy`, dataset minor version 1): the same
 * extractor the live server streams through, run over the 16-bit audio written to audio.wav, so training
 * reads the numbers the server computes. Row t is centred SPEECH_FEATURE_FIRST_CENTRE_MS + 10t ms after
 * audio sample 0 (= frame 0).
 */
import { SPEECH_FEATURES_FILE, type SpeechFeaturesSpec } from '../../../shared/src/dataset-schema.js';
import {
  SPEECH_FEATURE_FIRST_CENTRE_MS,
  SPEECH_FEATURE_HOP_MS,
  SPEECH_FEATURE_LOOKAHEAD_MS,
  SPEECH_FEATURE_NAMES,
  extractSpeechFeatures,
  type SpeechFeatureOptions,
} from '../audio/speech-features/index.js';
import { encodeNpy } from './npy.js';

/** 16-bit samples as the float PCM the extractor takes (v / 32768, exactly what reading audio.wav gives). */
function int16ToFloat(samples: Int16Array): Float32Array {
  return Float32Array.from(samples, (v) => v / 32768);
}

export function speechFeaturesFile(audio: Int16Array, opts: SpeechFeatureOptions = {}): { npy: Buffer; spec: SpeechFeaturesSpec } {
  const { frames, dim, data } = extractSpeechFeatures(int16ToFloat(audio), opts);
  const shape = [frames, dim];
  return {
    npy: encodeNpy(data, shape),
    spec: {
      file: SPEECH_FEATURES_FILE,
      dtype: 'float32',
      shape,
      rate: 1000 / SPEECH_FEATURE_HOP_MS,
      offsetSeconds: SPEECH_FEATURE_FIRST_CENTRE_MS / 1000,
      lookaheadSeconds: SPEECH_FEATURE_LOOKAHEAD_MS / 1000,
      names: [...SPEECH_FEATURE_NAMES],
    },
  };
}
