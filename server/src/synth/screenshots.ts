/**
 * Renders the documentation pictures of the synthetic presenter (docs/images/synth-*.png):
 *   npx tsx server/src/synth/screenshots.ts [OUT_DIR=docs/images]
 * synth-neutral.png (512²), synth-controls.png (one control at a time, labelled) and synth-speech.png
 * (mouth shapes). The grids are laid out and labelled with a 2D canvas in the renderer's page (synth-page.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BLENDSHAPE_NAMES } from '../../../shared/src/blendshapes.js';
import { DEFAULT_FRAMING } from '../../../client/src/synth/presenter.js';
import { encodePngRgb } from '../prepare/png.js';
import { PROJECT_ROOT } from '../project-paths.js';
import { SynthRenderer, VECTOR_SIZE } from './renderer.js';

type Controls = Record<string, number>;

function vector(values: Controls): Float32Array {
  const v = new Float32Array(VECTOR_SIZE);
  v[3] = DEFAULT_FRAMING.tx;
  v[4] = DEFAULT_FRAMING.ty;
  v[5] = DEFAULT_FRAMING.tz;
  const names = ['pitch', 'yaw', 'roll', 'tx', 'ty', 'tz', 'gazeYaw', 'gazePitch'];
  for (const [k, x] of Object.entries(values)) {
    const p = names.indexOf(k);
    if (p >= 0) v[p] = (v[p] as number) + x;
    else {
      const b = BLENDSHAPE_NAMES.indexOf(k as (typeof BLENDSHAPE_NAMES)[number]);
      if (b < 0) throw new Error(`unknown control ${k}`);
      v[8 + b] = x;
    }
  }
  return v;
}

const CONTROL_GRID: Array<[string, Controls]> = [
  ['neutral', {}],
  ['jawOpen 1', { jawOpen: 1 }],
  ['jawOpen .6 + mouthClose .6', { jawOpen: 0.6, mouthClose: 0.6 }],
  ['mouthSmile L+R', { mouthSmileLeft: 1, mouthSmileRight: 1 }],
  ['mouthFrown L+R', { mouthFrownLeft: 1, mouthFrownRight: 1 }],
  ['mouthStretch L+R', { mouthStretchLeft: 1, mouthStretchRight: 1 }],
  ['mouthPucker', { mouthPucker: 1 }],
  ['mouthFunnel', { mouthFunnel: 1 }],
  ['cheekPuff', { cheekPuff: 1 }],
  ['mouthSmileLeft', { mouthSmileLeft: 1 }],
  ['eyeBlinkLeft', { eyeBlinkLeft: 1 }],
  ['eyeWide L+R', { eyeWideLeft: 1, eyeWideRight: 1 }],
  ['gaze yaw +0.4', { gazeYaw: 0.4 }],
  ['gaze pitch +0.3', { gazePitch: 0.3 }],
  ['browInnerUp', { browInnerUp: 1 }],
  ['browDown L+R', { browDownLeft: 1, browDownRight: 1 }],
  ['browOuterUp L+R', { browOuterUpLeft: 1, browOuterUpRight: 1 }],
  ['yaw +0.45', { yaw: 0.45 }],
  ['pitch +0.25', { pitch: 0.25 }],
  ['roll +0.25', { roll: 0.25 }],
];

const SPEECH_GRID: Array<[string, Controls]> = [
  ['closed (m, b, p)', { mouthClose: 0.1, mouthPressLeft: 0.4, mouthPressRight: 0.4 }],
  ['open (a)', { jawOpen: 0.75, mouthLowerDownLeft: 0.3, mouthLowerDownRight: 0.3 }],
  ['rounded (o)', { jawOpen: 0.3, mouthFunnel: 0.8, mouthPucker: 0.3 }],
  ['rounded (u)', { mouthPucker: 1, jawOpen: 0.1 }],
  ['wide (i, e)', { jawOpen: 0.2, mouthSmileLeft: 0.5, mouthSmileRight: 0.5, mouthStretchLeft: 0.5, mouthStretchRight: 0.5 }],
  ['teeth (f, v)', { mouthUpperUpLeft: 0.6, mouthUpperUpRight: 0.6, mouthRollLower: 0.5, jawOpen: 0.1 }],
];

async function grid(r: SynthRenderer, cells: Array<[string, Controls]>, cols: number, cell: number): Promise<Buffer> {
  const values = new Float32Array(cells.length * VECTOR_SIZE);
  cells.forEach(([, c], i) => values.set(vector(c), i * VECTOR_SIZE));
  const dataUrl = await r.page.evaluate(
    ([v, labels, cols, cell]) =>
      (globalThis as unknown as { dnpSynth: { grid: (v: number[], l: string[], c: number, s: number) => string } }).dnpSynth.grid(v, labels, cols, cell),
    [Array.from(values), cells.map(([l]) => l), cols, cell] as const,
  );
  if (typeof dataUrl !== 'string' || !dataUrl.startsWith('data:image/png;base64,')) throw new Error('the synth page returned no PNG');
  return Buffer.from(dataUrl.slice('data:image/png;base64,'.length), 'base64');
}

async function main(out: string): Promise<void> {
  const big = await SynthRenderer.start({ size: 512 });
  try {
    const [neutral] = await big.render(vector({}), 1);
    if (!neutral) throw new Error('no frame');
    writeFileSync(join(out, 'synth-neutral.png'), await encodePngRgb(neutral, 512, 512));
  } finally {
    await big.close();
  }
  const r = await SynthRenderer.start({ size: 256 });
  try {
    writeFileSync(join(out, 'synth-controls.png'), await grid(r, CONTROL_GRID, 5, 200));
    writeFileSync(join(out, 'synth-speech.png'), await grid(r, SPEECH_GRID, 6, 200));
  } finally {
    await r.close();
  }
  process.stderr.write(`wrote synth-neutral.png, synth-controls.png, synth-speech.png to ${out}\n`);
}

await main(process.argv[2] ?? join(PROJECT_ROOT, 'docs', 'images'));
