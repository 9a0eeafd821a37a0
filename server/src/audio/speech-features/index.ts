/** Speaker-independent speech features (see docs/speech-features.md): streaming and offline, same numbers. */
export {
  SpeechFeatureStream,
  extractSpeechFeatures,
  SPEECH_FEATURE_DIM,
  SPEECH_FEATURE_HOP_MS,
  SPEECH_FEATURE_NAMES,
  SPEECH_FEATURE_LOOKAHEAD_MS,
  SPEECH_FEATURE_FIRST_CENTRE_MS,
} from './stream.js';
export { SPEECH_MODEL_ENV, SpeechModelMissingError } from './acoustic-model.js';
export type { SpeechFeatureOptions } from './stream.js';
