/** report.md: the report as Markdown tables, with the pictures linked. Pure: report → text. */
import { KEY_BLENDSHAPES, type ControlStats } from './controllability.js';
import { METHODS, type EvalReport, type Method, type Scores, type Sharpness } from './report-schema.js';

const METHOD_NAMES: Record<Method, string> = { avatar: 'avatar', meanFrame: 'mean training frame', nearestNeighbour: 'nearest neighbour' };

export function fmt(x: number | null | undefined, digits = 2): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

function scoreCells(s: Scores | null): string[] {
  return s ? [fmt(s.l1), fmt(s.psnr), fmt(s.ssim, 3)] : ['–', '–', '–'];
}

function sharpCells(s: Sharpness | null): string[] {
  return s ? [fmt(s.render), fmt(s.truth), fmt(s.ratio)] : ['–', '–', '–'];
}

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function controlTable(cols: Array<{ name: string; s: ControlStats | null }>): string {
  const head = ['', ...cols.map((c) => c.name)];
  const row = (label: string, f: (s: ControlStats) => string): string[] => [label, ...cols.map((c) => (c.s ? f(c.s) : '–'))];
  const rows = [
    row('frames with a face / frames', (s) => `${s.tracked} / ${s.frames}`),
    row('head rotation error, mean (°)', (s) => fmt(s.pose?.meanDeg)),
    row('head rotation error, median (°)', (s) => fmt(s.pose?.medianDeg)),
    row('pitch / yaw / roll MAE (°)', (s) => (s.pose ? `${fmt(s.pose.pitchMaeDeg)} / ${fmt(s.pose.yawMaeDeg)} / ${fmt(s.pose.rollMaeDeg)}` : '–')),
    row('pitch / yaw / roll gain (1 = turns as far as driven)', (s) => {
      const g = s.pose?.gain;
      return g ? `${fmt(g.pitch)} / ${fmt(g.yaw)} / ${fmt(g.roll)}` : '–';
    }),
    row('gaze error, mean (°)', (s) => fmt(s.gaze?.meanDeg)),
  ];
  return table(head, rows);
}

function blendTable(cols: Array<{ name: string; s: ControlStats | null }>): string {
  const first = cols.find((c) => c.s)?.s;
  const head = ['blendshape', 'driving std', ...cols.flatMap((c) => [`${c.name} MAE`, `${c.name} r`])];
  const rows = KEY_BLENDSHAPES.map((b) => [
    b,
    fmt(first?.blendshapes[b]?.drivingStd, 3),
    ...cols.flatMap((c) => [fmt(c.s?.blendshapes[b]?.mae, 3), fmt(c.s?.blendshapes[b]?.r, 2)]),
  ]);
  return table(head, rows);
}

export function renderMarkdown(r: EvalReport): string {
  const out: string[] = [];
  const t = r.avatar.training;
  out.push(`# Evaluation: ${r.avatar.name}`, '');
  out.push(
    `- avatar: \`${r.avatar.dir}\` (${r.avatar.width}×${r.avatar.height}${t.preset ? `, preset ${t.preset}` : ''}${t.variant ? `, variant ${t.variant}` : ''}${t.iterations !== null ? `, ${t.iterations} iterations` : ''})`,
    `- dataset: \`${r.dataset.dir}\` (v${r.dataset.version}, ${r.dataset.source}, ${r.dataset.frameCount} frames at ${r.dataset.fps} fps, ${r.dataset.trainFrames} training / ${r.dataset.testFrames} test frames valid)`,
    ...(r.avatar.trainedOn && !r.avatar.trainedOn.sameSource
      ? [`- **warning:** the avatar was trained on another recording (${r.avatar.trainedOn.sourceFile}), not this dataset's source`]
      : []),
    `- evaluated: ${r.options.frames.length} test frames (${r.options.frames[0]}…${r.options.frames[r.options.frames.length - 1]}); regions from ${r.regions.source === 'dataset' ? 'the dataset\'s landmarks' : 'the ground truth, tracked'} (${r.regions.framesWithFace} frames with a face)`,
    `- ${r.created}, ${r.tool}, ${fmt(r.seconds, 1)} s`,
    '',
  );
  out.push('## Reconstruction', '', 'L1 on 0-255, PSNR in dB (100 = identical), SSIM. Mouth: outer lips; eyes: both eye contours; boxes padded.', '');
  out.push(
    table(
      ['method', 'L1', 'PSNR', 'SSIM', 'mouth L1', 'mouth PSNR', 'mouth SSIM', 'eyes L1', 'eyes PSNR', 'eyes SSIM'],
      METHODS.map((m) => [METHOD_NAMES[m], ...scoreCells(r.reconstruction[m].whole), ...scoreCells(r.reconstruction[m].mouth), ...scoreCells(r.reconstruction[m].eyes)]),
    ),
    '',
  );
  out.push('## Sharpness', '', 'Mean gradient magnitude of the luma (0-255 per pixel); ratio = picture / ground truth (1 = as sharp as the truth).', '');
  out.push(
    table(
      ['method', 'frame: picture', 'frame: truth', 'frame: ratio', 'face: picture', 'face: truth', 'face: ratio'],
      METHODS.map((m) => [METHOD_NAMES[m], ...sharpCells(r.reconstruction[m].sharpness.frame), ...sharpCells(r.reconstruction[m].sharpness.face)]),
    ),
    '',
  );
  out.push('## Temporal stability', '', 'Mean absolute difference between consecutive test frames (0-255): the pictures vs the ground truth.', '');
  out.push(
    table(
      ['method', 'pairs', 'picture diff', 'truth diff', 'ratio', 'mean |gap|'],
      METHODS.map((m) => {
        const s = r.reconstruction[m].temporal;
        return [METHOD_NAMES[m], s ? String(s.pairs) : '0', fmt(s?.renderDiff), fmt(s?.truthDiff), fmt(s?.ratio), fmt(s?.meanAbsGap)];
      }),
    ),
    '',
  );
  if (r.controllability) {
    const cols = [
      { name: 'render', s: r.controllability.render },
      { name: 'ground truth', s: r.controllability.groundTruth },
    ];
    out.push('## Controllability', '', 'The renders and the ground-truth frames re-tracked with the `dnp prepare` tracker and compared with the driving vectors. The ground-truth column is the tracker\'s own noise floor on these crops.', '');
    out.push(controlTable(cols), '', blendTable(cols), '');
  } else {
    out.push('## Controllability', '', 'Not measured (`--no-retrack`).', '');
  }
  if (r.crossReenactment) {
    const c = r.crossReenactment;
    out.push('## Cross-reenactment', '', `Driver: \`${c.driver.dir}\` (${c.driver.source}), ${c.driver.frames} frames, retargeted through neutral calibration (driver neutral = median of its valid frames; avatar neutral from avatar.json). Figures compare the re-tracked renders with the retargeted vectors.`, '');
    if (c.render) {
      const cols = [{ name: 'render', s: c.render }];
      out.push(controlTable(cols), '', blendTable(cols), '');
    } else {
      out.push('Not re-tracked (`--no-retrack`).', '');
    }
  }
  out.push('## Pictures', '', 'Strips: ground truth | render | error map (×4; boxes: mouth green, eyes cyan, face grey) | nearest neighbour.', '');
  for (const s of r.files.strips) out.push(`![${s}](${s})`, '');
  if (r.files.plot) out.push(`jawOpen over the test frames: driving (blue), render re-tracked (red), ground truth re-tracked (grey, dashed).`, '', `![jawOpen](${r.files.plot})`, '');
  if (r.files.crossStrips.length) {
    out.push('Cross-reenactment strips: driver frame | render.', '');
    for (const s of r.files.crossStrips) out.push(`![${s}](${s})`, '');
  }
  if (r.files.crossPlot) out.push(`![jawOpen, cross-reenactment](${r.files.crossPlot})`, '');
  return `${out.join('\n').trimEnd()}\n`;
}
