/**
 * Drives an avatar with a clip's audio alone through the live path (decodeAudio16k → extractSpeechFeatures →
 * AudioExpressionStream → the avatar's calibration), renders it with a still head (the avatar's neutral pose,
 * gaze and other blendshapes), re-tracks the renders with the `dnp prepare` tracker and scores the rendered
 * jawOpen, mouthClose, mouthFunnel and mouthPucker against the clip's own tracked values: Pearson r and the lag
 * of the cross-correlation peak at the video frame rate. Prints one JSON line. docs/audio-driven.md.
 *
 * Usage: npx tsx scripts/audio-driven-eval.ts --avatar avatars/default --data data-local/talking/lp-d11 \
 *          --tracker-model ../shared/data/face_landmarker.task [--model assets/audio-expression]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCommandLine } from '../server/src/cli/args.js';
import { decodeAudio16k } from '../server/src/audio/decode-audio.js';
import { ExpressionCalibration, readAvatarCalibration } from '../server/src/audio/expression-calibration.js';
import { AudioExpressionModel, DEFAULT_AUDIO_EXPRESSION_DIR } from '../server/src/audio/expression-model.js';
import { extractSpeechFeatures, SPEECH_FEATURE_DIM, SPEECH_FEATURE_HOP_MS } from '../server/src/audio/speech-features/index.js';
import { AvatarModel } from '../server/src/eval/avatar-model.js';
import { retrack } from '../server/src/eval/retrack.js';
import type { RgbImage } from '../server/src/eval/image.js';
import { readNpyFile } from '../server/src/prepare/npy.js';
import { PROJECT_ROOT } from '../server/src/project-paths.js';
import { blendshapeIndex, BLENDSHAPE_COUNT, type BlendshapeName } from '../shared/src/blendshapes.js';
import { CONDITIONING_SIZE } from '../shared/src/driving-values.js';
import { GAZE_SIZE, POSE_SIZE } from '../shared/src/pose.js';

const HELP =
  'usage: npx tsx scripts/audio-driven-eval.ts --avatar DIR --data DATASET --tracker-model PATH [--model DIR] [--no-calibration] [--drive audio|tracked]\n' +
  '  --drive tracked: the clip\'s own tracked mouth values instead of the audio (the ceiling of the render + re-track chain)';
const cl = parseCommandLine(process.argv.slice(2), { avatar: { type: 'string' }, data: { type: 'string' }, 'tracker-model': { type: 'string' }, model: { type: 'string' }, 'no-calibration': { type: 'boolean' }, drive: { type: 'string' } });
if (cl.help) {
  console.log(HELP);
  process.exit(0);
}
const a = { avatar: cl.str('avatar'), data: cl.str('data'), 'tracker-model': cl.str('tracker-model'), model: cl.str('model'), 'no-calibration': cl.flag('no-calibration'), drive: cl.oneOf('drive', ['audio', 'tracked'] as const, 'audio') };
if (!a.avatar || !a.data || !a['tracker-model']) {
  console.error(HELP);
  process.exit(2);
}
const SCORED: BlendshapeName[] = ['jawOpen', 'mouthClose', 'mouthFunnel', 'mouthPucker'];
const B = POSE_SIZE + GAZE_SIZE;

function pearson(x: number[], y: number[]): number {
  const n = x.length;
  const mx = x.reduce((s, v) => s + v, 0) / n;
  const my = y.reduce((s, v) => s + v, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += ((x[i] as number) - mx) * ((y[i] as number) - my);
    sxx += ((x[i] as number) - mx) ** 2;
    syy += ((y[i] as number) - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}

/** r at zero lag and the lag (frames; > 0: `pred` late) maximising r within ±maxLag, over frames where ok. */
function score(pred: number[], ref: number[], ok: boolean[], maxLag: number): { r: number; lag: number } {
  const at = (k: number) => {
    const xs: number[] = [], ys: number[] = [];
    for (let t = 0; t < ref.length; t++) if (t + k >= 0 && t + k < pred.length && ok[t] && ok[t + k]) (xs.push(pred[t + k] as number), ys.push(ref[t] as number));
    return xs.length >= 10 ? pearson(xs, ys) : -2;
  };
  let best = -3, lag = 0;
  for (let k = -maxLag; k <= maxLag; k++) {
    const r = at(k);
    if (r > best) (best = r), (lag = k);
  }
  return { r: at(0), lag };
}

const expr = await AudioExpressionModel.load(a.model ?? DEFAULT_AUDIO_EXPRESSION_DIR, { features: { dim: SPEECH_FEATURE_DIM, hopMs: SPEECH_FEATURE_HOP_MS } });
const avatar = await AvatarModel.load(a.avatar);
try {
  const meta = JSON.parse(readFileSync(join(a.data, 'dataset.json'), 'utf8')) as { fps: number };
  const truth = readNpyFile(join(a.data, 'blendshapes.npy'));
  const valid = readNpyFile(join(a.data, 'valid.npy'));
  const n = truth.shape[0] as number;
  // The voice → mouth values every 10 ms (frame t stands for manifest.features.frameCentreMs + 10 t ms).
  const feats = extractSpeechFeatures(await decodeAudio16k(join(a.data, 'audio.wav')));
  const stream = expr.stream();
  const grid: Float32Array[] = [];
  for (let t = 0; t < feats.frames; t++) {
    const y = await stream.push(feats.data.subarray(t * feats.dim, (t + 1) * feats.dim));
    if (y) grid.push(Float32Array.from(y));
  }
  grid.push(...(await stream.flush()));
  const curves = a['no-calibration'] || a.drive === 'tracked' ? null : readAvatarCalibration(a.avatar);
  const cal = curves ? ExpressionCalibration.create(expr, curves) : null;
  for (const y of grid) cal?.apply(y);
  // Driving vectors at the video frames: the avatar's neutral face with the predicted mouth.
  const m = avatar.manifest;
  const neutral = [...m.neutral.pose, ...m.neutral.gaze, ...m.neutral.blendshapes];
  const driving = new Float32Array(n * CONDITIONING_SIZE);
  const centre = expr.manifest.features.frameCentreMs;
  for (let j = 0; j < n; j++) {
    driving.set(neutral, j * CONDITIONING_SIZE);
    const g = Math.min(Math.max(((j * 1000) / meta.fps - centre) / expr.manifest.features.hopMs, 0), grid.length - 1);
    const g0 = Math.floor(g), g1 = Math.min(g0 + 1, grid.length - 1), w = g - g0;
    expr.outputIndex.forEach((bi, k) => {
      driving[j * CONDITIONING_SIZE + B + bi] =
        a.drive === 'tracked'
          ? (truth.data[j * BLENDSHAPE_COUNT + bi] as number)
          : (1 - w) * ((grid[g0] as Float32Array)[k] as number) + w * ((grid[g1] as Float32Array)[k] as number);
    });
  }
  const renders: RgbImage[] = [];
  await avatar.render(driving, (_k, img) => void renders.push(img));
  const rt = await retrack({ model: readFileSync(a['tracker-model']), clientDist: join(PROJECT_ROOT, 'client', 'dist') }, n, (k) => renders[k] as RgbImage, meta.fps, 'retrack');
  const out: Record<string, unknown> = { avatar: a.avatar, data: a.data, drive: a.drive, frames: n, fps: meta.fps, calibrated: cal !== null, facesFound: rt.found.reduce((s, v) => s + v, 0) };
  const ok = Array.from({ length: n }, (_, j) => valid.data[j] === 1 && rt.found[j] === 1);
  const maxLag = Math.round((200 * meta.fps) / 1000);
  for (const name of SCORED) {
    const bi = blendshapeIndex(name);
    const ref = Array.from({ length: n }, (_, j) => truth.data[j * BLENDSHAPE_COUNT + bi] as number);
    const rendered = Array.from({ length: n }, (_, j) => rt.cond[j * CONDITIONING_SIZE + B + bi] as number);
    const drive = Array.from({ length: n }, (_, j) => driving[j * CONDITIONING_SIZE + B + bi] as number);
    const s = score(rendered, ref, ok, maxLag);
    out[name] = { renderedVsTracked: { r: s.r, lagMs: (s.lag * 1000) / meta.fps }, drivingVsTracked: score(drive, ref, ok, maxLag).r, renderedVsDriving: score(rendered, drive, ok, 0).r };
  }
  console.log(JSON.stringify(out));
} finally {
  await expr.close();
  await avatar.close();
}
