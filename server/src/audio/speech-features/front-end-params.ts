/**
 * Parameters of the front end of the pocketsphinx US-English acoustic model (Debian `pocketsphinx-en-us`,
 * `feat.params`: -lowerf 130 -upperf 6800 -nfilt 25 -transform dct -lifter 22 -feat 1s_c_d_dd -cmninit ...),
 * with sphinxbase's defaults for the rest (16 kHz, 100 frames/s, 0.025625 s Hamming window, 512-point FFT,
 * pre-emphasis 0.97, unit-area filters rounded to DFT points). Fixed here rather than read from
 * feat.params so that the numbers the model was trained on cannot drift with a file.
 */
export const SAMPLE_RATE = 16_000;
export const FRAME_SHIFT = 160; // samples, 10 ms
export const FRAME_SIZE = 410; // samples, (int)(0.025625 × 16000 + 0.5)
export const FFT_SIZE = 512;
export const PRE_EMPHASIS = 0.97;
export const MEL_FILTERS = 25;
export const LOWER_HZ = 130;
export const UPPER_HZ = 6800;
export const CEPSTRA = 13;
export const LIFTER = 22;
/** Sphinx adds this before the log of each filter energy (fe_sigproc.c LOG_FLOOR). */
export const LOG_FLOOR = 1e-4;
/** The model's initial cepstral mean (feat.params -cmninit). */
export const CMN_INIT: readonly number[] = [41.0, -5.29, -0.12, 5.09, 2.48, -4.07, -1.37, -1.78, -5.08, -2.05, -6.45, -1.42, 1.17];
/** Sphinx works on 16-bit integer samples; float PCM in [-1, 1) is scaled by this. */
export const PCM_SCALE = 32768;
