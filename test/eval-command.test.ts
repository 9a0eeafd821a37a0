// `dnp eval` end to end on a small real dataset (the first 2.5 s of the man video, prepared as v2) with an
// untrained avatar: report.json (validated), report.md, strips and plots; re-tracking; cross-reenactment;
// a broken (constant) avatar scoring below nearest neighbour; a v1 dataset; clear errors (exit 2).
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../server/src/log.js';
import { parsePrepareArgs } from '../server/src/prepare/options.js';
import { prepareDataset } from '../server/src/prepare/pipeline.js';
import { pngSize } from '../server/src/prepare/png.js';
import { parseEvalReport, type EvalReport } from '../server/src/eval/report-schema.js';
import { decodePng } from '../server/src/eval/png-decode.js';
import { EvalInputError } from '../server/src/eval/errors.js';
import { UsageError } from '../server/src/cli/args.js';
import { parseEvalArgs } from '../server/src/eval/options.js';
import { checkInputs, runEval } from '../server/src/eval/run-eval.js';
import { decodeVideo, probeVideo } from '../server/src/prepare/video.js';
import { copyAsVersion1, makeConstantAvatar, runEvalCli } from './support/eval-fixtures.js';
import { DATA, MODEL, ensureClientBuilt } from './support/prepare-helpers.js';
import { makeUntrainedAvatar } from './support/test-avatar.js';

const MAN = join(DATA, 'portrait-man-talking.mp4');
let tmp: string;
let data: string;
let avatar: string;
let broken: string;

beforeAll(async () => {
  ensureClientBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'dnp-eval-test-'));
  data = join(tmp, 'man');
  avatar = join(tmp, 'untrained');
  broken = join(tmp, 'constant');
  await prepareDataset(parsePrepareArgs([MAN, '--out', data, '--max-seconds', '2.5', '--tracker-model', MODEL]), createLogger('warn', process.stderr));
  await makeUntrainedAvatar(avatar, { size: 256, fps: 30 });
  await makeConstantAvatar(avatar, broken, 256);
}, 300_000);
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function report(dir: string): EvalReport {
  return parseEvalReport(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as unknown);
}

describe('dnp eval', () => {
  let full: EvalReport;

  it('scores an avatar with re-tracking and cross-reenactment; writes a valid report, Markdown, strips and plots', async () => {
    const out = join(tmp, 'report');
    const r = await runEvalCli(['--avatar', avatar, '--data', data, '--out', out, '--driver', data, '--driver-frames', '30', '--tracker-model', MODEL]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/dnp eval: 15 test frames: PSNR [\d.]+ dB/);
    expect(r.stderr).toMatch(/render .*15\/15 frames/); // progress bars on stderr
    full = report(out);
    expect(full.options.frames).toEqual(Array.from({ length: 15 }, (_, k) => 60 + k));
    expect(full.dataset.version).toBe(2);
    expect(full.regions).toMatchObject({ source: 'dataset', framesWithFace: 15 });
    const { avatar: av, meanFrame, nearestNeighbour: nn } = full.reconstruction;
    for (const m of [av, meanFrame, nn]) {
      expect(m.frames).toBe(15);
      expect(m.mouth?.frames).toBe(15);
      expect(m.eyes?.frames).toBe(15);
      expect(m.temporal?.pairs).toBe(14);
    }
    // an untrained avatar is no likeness: nearest neighbour (a real frame of the same person) beats it
    expect(nn.whole.psnr).toBeGreaterThan(av.whole.psnr);
    expect(nn.sharpness.frame.ratio).toBeGreaterThan(0.8);
    expect(meanFrame.temporal?.renderDiff).toBe(0);
    // the tracker's own noise floor on the ground truth is small; the driving values come back
    const gt = full.controllability?.groundTruth;
    expect(gt?.tracked).toBe(15);
    expect(gt?.pose?.meanDeg).toBeLessThan(3);
    // the truth turns as far as it is driven (it is where the driving values came from): gains near 1 where the
    // angle moves, null where it hardly does (loosely: 15 frames of small motion, tracked again from a cold start)
    const gains = Object.values(gt?.pose?.gain ?? {});
    expect(gains).toHaveLength(3);
    for (const v of gains) if (v !== null) expect(Math.abs(v - 1)).toBeLessThan(0.5);
    expect(gt?.gaze?.meanDeg).toBeLessThan(5);
    expect(gt?.blendshapes.jawOpen?.mae).toBeLessThan(0.05);
    expect(full.controllability?.render.frames).toBe(15);
    // cross-reenactment (the clip drives itself here, through the calibration): 30 retargeted frames, strips of driver | render
    expect(full.crossReenactment?.driver.frames).toBe(30);
    expect(full.crossReenactment?.render?.frames).toBe(30);
    expect(full.files.strips).toHaveLength(6);
    expect(full.files.crossStrips).toHaveLength(6);
    for (const f of full.files.strips) expect(pngSize(readFileSync(join(out, f)))).toEqual({ width: 4 * 256 + 3 * 4, height: 256 });
    for (const f of full.files.crossStrips) expect(pngSize(readFileSync(join(out, f)))).toEqual({ width: 2 * 256 + 4, height: 256 });
    expect(pngSize(readFileSync(join(out, 'jaw-open.png')))).toEqual({ width: 960, height: 360 });
    expect(existsSync(join(out, 'jaw-open-cross.png'))).toBe(true);
    // the strip's first panel is the ground-truth frame, exactly
    const strip = decodePng(readFileSync(join(out, 'strips', 'frame-000060.png')));
    const truth = decodePng(readFileSync(join(data, 'frames', '000060.png')));
    for (const y of [0, 100, 255]) {
      expect(Buffer.from(strip.data.subarray(y * strip.width * 3, (y * strip.width + 256) * 3)).equals(Buffer.from(truth.data.subarray(y * 256 * 3, (y + 1) * 256 * 3)))).toBe(true);
    }
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    for (const s of ['## Reconstruction', '| avatar |', '| nearest neighbour |', '| mean training frame |', '## Sharpness', '## Temporal stability', '## Controllability', '| jawOpen |', '| eyeBlinkLeft |', '## Cross-reenactment', '![jawOpen](jaw-open.png)']) {
      expect(md).toContain(s);
    }
  }, 300_000); // ~25 s on an idle 2-core machine; several times that beside training jobs

  it('decodes the dataset\'s FFmpeg-written PNG frames like FFmpeg does', async () => {
    const file = join(data, 'frames', '000030.png');
    let want: Buffer | null = null;
    await decodeVideo(file, { info: await probeVideo(file), fps: 1, startSeconds: 0, maxFrames: 1, filters: ['format=rgb24'], onFrame: (_i, px) => void (want = Buffer.from(px)) });
    expect(want).not.toBeNull();
    expect(Buffer.from(decodePng(readFileSync(file)).data).equals(want as unknown as Buffer)).toBe(true);
  });

  it('a broken avatar (constant picture) scores worse than nearest neighbour, with no motion and little detail', async () => {
    const out = join(tmp, 'broken');
    await runEval(parseEvalArgs(['--avatar', broken, '--data', data, '--out', out, '--no-retrack', '--strips', '2']), createLogger('warn', process.stderr));
    const rep = report(out);
    const av = rep.reconstruction.avatar;
    const nn = rep.reconstruction.nearestNeighbour;
    expect(av.whole.psnr).toBeLessThan(nn.whole.psnr - 3);
    expect(av.whole.ssim).toBeLessThan(nn.whole.ssim);
    expect(av.whole.l1).toBeGreaterThan(nn.whole.l1);
    expect(av.mouth?.psnr ?? 0).toBeLessThan(nn.mouth?.psnr ?? 0);
    expect(av.sharpness.frame.render).toBe(0);
    expect(av.temporal?.renderDiff).toBe(0);
    expect(rep.controllability).toBeNull();
    expect(rep.files.plot).toBeNull();
    expect(rep.files.strips).toHaveLength(2);
    // the same baselines as the first run: they do not depend on the avatar (same normalisation)
    expect(rep.reconstruction.meanFrame.whole.psnr).toBeCloseTo(full.reconstruction.meanFrame.whole.psnr, 6);
  }, 200_000);

  it('reads a version 1 dataset: the ground truth is tracked for the regions', async () => {
    const v1 = join(tmp, 'man-v1');
    copyAsVersion1(data, v1);
    const out = join(tmp, 'v1');
    await runEval(parseEvalArgs(['--avatar', avatar, '--data', v1, '--out', out, '--no-retrack', '--strips', '0', '--tracker-model', MODEL]), createLogger('warn', process.stderr));
    const rep = report(out);
    expect(rep.dataset.version).toBe(1);
    expect(rep.regions).toMatchObject({ source: 'tracked-ground-truth', framesWithFace: 15 });
    // the tracked boxes are (nearly) the prepared ones: the same mouth figures within a small margin
    expect(Math.abs((rep.reconstruction.avatar.mouth?.psnr ?? 0) - (full.reconstruction.avatar.mouth?.psnr ?? 0))).toBeLessThan(0.5);
    expect(rep.reconstruction.avatar.whole.psnr).toBeCloseTo(full.reconstruction.avatar.whole.psnr, 6);
  }, 200_000);

  it('the report validator refuses a damaged report, naming the field', () => {
    const good = JSON.parse(readFileSync(join(tmp, 'report', 'report.json'), 'utf8')) as Record<string, unknown>;
    const bad = (edit: (r: Record<string, any>) => void): unknown => {
      const r = structuredClone(good) as Record<string, any>;
      edit(r);
      return r;
    };
    expect(() => parseEvalReport(bad((r) => (r.version = 2)))).toThrow(/version/);
    expect(() => parseEvalReport(bad((r) => (r.reconstruction.avatar.whole.psnr = 'high')))).toThrow(/reconstruction\.avatar\.whole\.psnr/);
    expect(() => parseEvalReport(bad((r) => delete r.reconstruction.nearestNeighbour))).toThrow(/reconstruction\.nearestNeighbour/);
    expect(() => parseEvalReport(bad((r) => (r.files.strips = ['../../etc/passwd'])))).toThrow(/files\.strips\[0\]/);
    expect(() => parseEvalReport(bad((r) => r.perFrame.pop()))).toThrow(/perFrame/);
    expect(() => parseEvalReport(bad((r) => delete r.controllability.render.blendshapes.jawOpen))).toThrow(/blendshapes\.jawOpen/);
  });

  it('refuses an avatar and a dataset that do not match, missing files and bad arguments (exit 2)', async () => {
    const out = join(tmp, 'err');
    const small = join(tmp, 'small-manifest');
    cpSync(avatar, small, { recursive: true });
    const m = JSON.parse(readFileSync(join(small, 'avatar.json'), 'utf8')) as Record<string, any>;
    m.width = 128;
    m.height = 128;
    m.model.outputs[0].shape = ['batch', 3, 128, 128];
    writeFileSync(join(small, 'avatar.json'), JSON.stringify(m));
    const cases: Array<[string[], RegExp]> = [
      [['--avatar', small, '--data', data, '--out', out], /renders 128x128 but the dataset's frames are 256x256/],
      [['--avatar', join(tmp, 'nope'), '--data', data, '--out', out], /--avatar .*nope: no such folder/],
      [['--avatar', avatar, '--data', join(tmp, 'nope'), '--out', out], /--data .*nope: no such folder/],
      [['--avatar', avatar, '--data', data], /--out REPORT_DIR is required/],
      [['--avatar', avatar, '--data', data, '--out', out, '--strips', 'many'], /--strips: 'many' is not a whole number/],
      [['--avatar', avatar, '--data', data, '--out', out, '--tracker-model', join(tmp, 'none.task')], /tracker model .*none\.task: no such file/],
    ];
    const sixtyOne = join(tmp, 'sixty-one');
    cpSync(avatar, sixtyOne, { recursive: true });
    const m61 = JSON.parse(readFileSync(join(sixtyOne, 'avatar.json'), 'utf8')) as Record<string, any>;
    m61.model.inputs[0].shape = ['batch', 61];
    writeFileSync(join(sixtyOne, 'avatar.json'), JSON.stringify(m61));
    cases.push([['--avatar', sixtyOne, '--data', data, '--out', out], /inputs\[0\]\.shape\[1\]: is 61/]);
    const noModel = join(tmp, 'no-model');
    cpSync(avatar, noModel, { recursive: true });
    rmSync(join(noModel, 'avatar.onnx'));
    cases.push([['--avatar', noModel, '--data', data, '--out', out], /avatar\.onnx is missing/]);
    for (const [args, message] of cases) {
      // in-process: the same checks the command runs before any work (the CLI turns them into exit 2)
      expect(() => checkInputs(parseEvalArgs(args)), args.join(' ')).toThrow(message);
      try {
        checkInputs(parseEvalArgs(args));
      } catch (err) {
        expect(err instanceof EvalInputError || err instanceof UsageError).toBe(true);
      }
    }
    for (const [args, message] of [cases[0], cases[3]] as Array<[string[], RegExp]>) {
      const r = await runEvalCli(args);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    const help = await runEvalCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: dnp eval --avatar AVATAR_DIR --data DATASET_DIR --out REPORT_DIR');
  });
});
