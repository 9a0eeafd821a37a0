/**
 * The default avatar against its own generator: drives `dnp synth`'s presenter (headless Chromium) and an avatar
 * trained on it with the same driving vectors of a trajectory the training never saw (seed 7 of the trajectory
 * recipe by default; the shipped default was trained on seed 11), and prints the PSNR of each frame and the mean.
 * With --png, writes a picture: generator | avatar | error ×4, one row a frame (avatars/default/PROVENANCE.md);
 * with --controls-png, one control at a time (CONTROLS below) from the neutral face: the generator's row above the
 * avatar's (docs/images/default-avatar-controls.png). With --error-map, writes the root-mean-square error of every pixel
 * over all the frames compared (x4, white = 64 grey levels) and prints the share of the squared error by band of rows.
 * test/default-avatar.test.ts checks the same thing on the same 40 frames (server/src/synth/held-out.ts).
 *
 *   npx tsx scripts/default-vs-generator.ts [--avatar avatars/default] [--frames 40] [--seed 7] [--png FILE] [--rows 4]
 *     [--controls-png FILE] [--error-map FILE]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { normaliseConditioning, parseAvatarManifest } from '../shared/src/avatar-manifest.js';
import { formatMachine, loadAverage, machineInfo } from '../server/src/bench/machine.js';
import { parseCommandLine } from '../server/src/cli/args.js';
import { errorMap, hstack, rgbFromPlanes, vstack, type RgbImage } from '../server/src/eval/image.js';
import { l1AndMse, psnrFromMse } from '../server/src/eval/image-metrics.js';
import { encodePngRgb } from '../server/src/prepare/png.js';
import { PROJECT_ROOT } from '../server/src/project-paths.js';
import { heldOutVectors } from '../server/src/synth/held-out.js';
import { SynthRenderer, VECTOR_SIZE } from '../server/src/synth/renderer.js';
import { drivingVector } from '../test/support/synth-helpers.js';

/** The controls of --controls-png, each alone from the generator's neutral face. */
const CONTROLS: ReadonlyArray<Record<string, number>> = [
  {}, { jawOpen: 0.8 }, { mouthSmileLeft: 1, mouthSmileRight: 1 }, { mouthPucker: 1 }, { gazeYaw: 0.4 },
  { eyeBlinkLeft: 1, eyeBlinkRight: 1 }, { browInnerUp: 1 }, { yaw: 0.4 },
];

const HELP = `default-vs-generator: PSNR of an avatar trained on the synthetic presenter against the generator itself

  npx tsx scripts/default-vs-generator.ts [options]

  --avatar DIR   avatar folder (default avatars/default); must be 256x256 and driven by expression vectors
  --frames N     driving vectors compared, spread evenly over the trajectory (default 40)
  --seed S       trajectory seed (default 7; the shipped default avatar was trained on seed 11)
  --png FILE     also write generator | avatar | error x4 for a few of the frames
  --rows N       frames in the picture (default 4)
  --controls-png FILE
                 also write one control at a time from the neutral face (neutral, jawOpen, smile, pucker, gaze
                 right, blink, browInnerUp, yaw): the generator's row above the avatar's
  --help         this text
`;

async function main(): Promise<void> {
  const cl = parseCommandLine(process.argv.slice(2), { avatar: { type: 'string' }, frames: { type: 'string' }, seed: { type: 'string' }, png: { type: 'string' }, rows: { type: 'string' }, 'controls-png': { type: 'string' }, 'error-map': { type: 'string' } });
  if (cl.help) {
    process.stdout.write(HELP);
    return;
  }
  const dir = cl.str('avatar') ?? join(PROJECT_ROOT, 'avatars', 'default');
  const frames = cl.int('frames', 1, 2000, 40);
  const seed = cl.int('seed', 0, 2 ** 31 - 1, 7);
  const rows = cl.int('rows', 1, 16, 4);
  const png = cl.str('png');
  const controlsPng = cl.str('controls-png');
  const errorPng = cl.str('error-map');
  const m = parseAvatarManifest(JSON.parse(readFileSync(join(dir, 'avatar.json'), 'utf8')), join(dir, 'avatar.json'));
  if (m.width !== 256 || m.height !== 256) throw new Error(`${dir}: the generator comparison is at 256x256, this avatar is ${m.width}x${m.height}`);
  if (m.conditioning.mean.length !== VECTOR_SIZE) throw new Error(`${dir}: expected ${VECTOR_SIZE} driving values, the avatar takes ${m.conditioning.mean.length}`);

  const { picks, vectors: all } = heldOutVectors(frames, seed);
  const synth = await SynthRenderer.start({ size: 256, handleSignals: false });
  const session = await ort.InferenceSession.create(join(dir, 'avatar.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const plane = 256 * 256;
  const normalise = (vectors: Float32Array): Float32Array => normaliseConditioning(m.conditioning, vectors);
  const scores: number[] = [];
  const squared = new Float64Array(plane); // each pixel's squared error, summed over the frames and channels
  let controls: RgbImage | null = null;
  const pictures: RgbImage[] = [];
  const showEvery = Math.max(1, Math.floor(frames / rows));
  try {
    for (let start = 0; start < picks.length; start += 8) {
      const batch = picks.slice(start, start + 8);
      const vectors = all.subarray(start * VECTOR_SIZE, (start + batch.length) * VECTOR_SIZE);
      const truth = await synth.render(vectors, batch.length);
      const out = await session.run({ cond: new ort.Tensor('float32', normalise(vectors), [batch.length, VECTOR_SIZE]) });
      const rgb = out['rgb']?.data as Float32Array;
      batch.forEach((_, i) => {
        const mine = rgbFromPlanes(rgb, i * 3 * plane, 256, 256);
        const gt: RgbImage = { width: 256, height: 256, data: new Uint8Array(truth[i] as Buffer) };
        scores.push(psnrFromMse(l1AndMse(gt, mine).mse));
        if (errorPng) {
          for (let p = 0; p < plane * 3; p++) {
            const d = (gt.data[p] as number) - (mine.data[p] as number);
            const q = Math.floor(p / 3);
            squared[q] = (squared[q] as number) + d * d;
          }
        }
        const k = start + i;
        if (pictures.length < rows && k % showEvery === 0) pictures.push(hstack([gt, mine, errorMap(gt, mine, 4)]));
      });
    }
    if (controlsPng) {
      const vectors = new Float32Array(CONTROLS.length * VECTOR_SIZE);
      CONTROLS.forEach((c, i) => vectors.set(drivingVector(c), i * VECTOR_SIZE));
      const truth = await synth.render(vectors, CONTROLS.length);
      const out = await session.run({ cond: new ort.Tensor('float32', normalise(vectors), [CONTROLS.length, VECTOR_SIZE]) });
      const rgb = out['rgb']?.data as Float32Array;
      controls = vstack([
        hstack(truth.map((t) => ({ width: 256, height: 256, data: new Uint8Array(t) }))),
        hstack(CONTROLS.map((_, i) => rgbFromPlanes(rgb, i * 3 * plane, 256, 256))),
      ]);
    }
  } finally {
    await synth.close();
    await session.release();
  }
  const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
  const sorted = [...scores].sort((a, b) => a - b);
  process.stdout.write(`${dir} against the generator, ${frames} driving vectors of trajectory seed ${seed} (frames ${picks[0]}..${picks[picks.length - 1]})\n`);
  process.stdout.write(`${formatMachine(machineInfo())}, load ${loadAverage().toFixed(2)}\n`);
  process.stdout.write(`PSNR per frame: ${scores.map((s) => s.toFixed(2)).join(' ')}\n`);
  process.stdout.write(`mean ${mean.toFixed(2)} dB, median ${(sorted[Math.floor(sorted.length / 2)] as number).toFixed(2)}, min ${(sorted[0] as number).toFixed(2)}, max ${(sorted[sorted.length - 1] as number).toFixed(2)}\n`);
  if (png) {
    const img = vstack(pictures);
    writeFileSync(png, await encodePngRgb(img.data, img.width, img.height));
    process.stdout.write(`wrote ${png}\n`);
  }
  if (errorPng) {
    const total = squared.reduce((a, b) => a + b, 0);
    const bands = Array.from({ length: 8 }, (_, k) => squared.subarray(k * plane / 8, (k + 1) * plane / 8).reduce((a, b) => a + b, 0) / total);
    process.stdout.write(`share of the squared error by eighth of the rows, top to bottom: ${bands.map((b) => b.toFixed(3)).join(' ')}\n`);
    const rms = new Uint8Array(plane * 3);
    for (let p = 0; p < plane; p++) rms.fill(Math.min(255, Math.round(4 * Math.sqrt((squared[p] as number) / (3 * scores.length)))), 3 * p, 3 * p + 3);
    writeFileSync(errorPng, await encodePngRgb(rms, 256, 256));
    process.stdout.write(`wrote ${errorPng}\n`);
  }
  if (controlsPng && controls) {
    writeFileSync(controlsPng, await encodePngRgb(controls.data, controls.width, controls.height));
    process.stdout.write(`wrote ${controlsPng}\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`default-vs-generator: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
