/**
 * Builds server/src/synth/motion/library.json from `dnp prepare` datasets of real talking clips:
 *   npx tsx server/src/synth/build-motion-library.ts OUT.json DATASET_DIR…
 * Keeps the runs of valid (tracked, not interpolated) frames at least 2 s long, removes each run's mean
 * translation, and quantises (motion-library.ts). Only driving numbers are kept, never pixels.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { BLENDSHAPE_COUNT } from '../../../shared/src/blendshapes.js';
import { parseDatasetManifest } from '../../../shared/src/dataset-schema.js';
import { GAZE_SIZE, POSE_SIZE } from '../../../shared/src/pose.js';
import { encodeMotionLibrary, type MotionClip } from './motion-library.js';
import { readNpyFile } from '../prepare/npy.js';

function main(argv: string[]): void {
  const [out, ...dirs] = argv;
  if (!out || dirs.length === 0) {
    process.stderr.write('usage: build-motion-library OUT.json DATASET_DIR…\n');
    process.exitCode = 2;
    return;
  }
  const clips: Array<MotionClip & { meanTranslation: [number, number, number] }> = [];
  const sources: string[] = [];
  for (const dir of dirs) {
    const m = parseDatasetManifest(JSON.parse(readFileSync(join(dir, 'dataset.json'), 'utf8')) as unknown);
    const pose = readNpyFile(join(dir, m.arrays.pose.file)).data;
    const gaze = readNpyFile(join(dir, m.arrays.gaze.file)).data;
    const bs = readNpyFile(join(dir, m.arrays.blendshapes.file)).data;
    const valid = readNpyFile(join(dir, m.arrays.valid.file)).data;
    const interp = readNpyFile(join(dir, m.arrays.interpolated.file)).data;
    const n = m.frameCount;
    sources.push(`${m.source.file} (${n} frames at ${m.fps} fps)`);
    let k = 0;
    while (k < n) {
      while (k < n && !(valid[k] === 1 && interp[k] === 0)) k++;
      const s = k;
      while (k < n && valid[k] === 1 && interp[k] === 0) k++;
      const len = k - s;
      if (len < 2 * m.fps) continue;
      const p = Float32Array.from(pose.subarray(s * POSE_SIZE, k * POSE_SIZE));
      const mean = [0, 1, 2].map((c) => {
        let sum = 0;
        for (let i = 0; i < len; i++) sum += p[i * POSE_SIZE + 3 + c] as number;
        return sum / len;
      }) as [number, number, number];
      for (let i = 0; i < len; i++) for (let c = 0; c < 3; c++) p[i * POSE_SIZE + 3 + c] = (p[i * POSE_SIZE + 3 + c] as number) - (mean[c] as number);
      clips.push({
        name: `${basename(m.source.file)}@${s}`,
        fps: m.fps,
        frames: len,
        meanTranslation: mean,
        pose: p,
        gaze: Float32Array.from(gaze.subarray(s * GAZE_SIZE, k * GAZE_SIZE)),
        blendshapes: Float32Array.from(bs.subarray(s * BLENDSHAPE_COUNT, k * BLENDSHAPE_COUNT)),
      });
    }
  }
  const note = `Tracked with MediaPipe FaceLandmarker by dnp prepare from: ${sources.join('; ')}.`;
  writeFileSync(out, `${JSON.stringify(encodeMotionLibrary(clips, note))}\n`);
  process.stderr.write(`wrote ${clips.length} clips, ${clips.reduce((a, c) => a + c.frames, 0)} frames to ${out}\n`);
}

main(process.argv.slice(2));
