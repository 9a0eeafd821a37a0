/**
 * Accumulates the reconstruction figures of one method (the avatar or a baseline) over the test frames:
 * whole-frame / mouth / eyes L1, PSNR and SSIM (means of per-frame values), sharpness (mean gradient
 * magnitude of the picture vs the truth, over the frame and the face box) and temporal stability (the
 * frame-to-frame difference of the pictures vs that of the truth, over consecutive test frames).
 */
import { frameDifference, meanGradient, regionScores, ssimMap, ssimStats, type Box, type RegionScores, type SsimStats } from './image-metrics.js';
import type { RgbImage } from './image.js';
import type { FrameRegions } from './regions.js';
import type { MethodScores, Scores } from './report-schema.js';

class Mean {
  sum = 0;
  n = 0;
  add(x: number): void {
    if (Number.isFinite(x)) {
      this.sum += x;
      this.n++;
    }
  }
  get value(): number {
    return this.n ? this.sum / this.n : NaN;
  }
}

class ScoreMean {
  l1 = new Mean();
  psnr = new Mean();
  ssim = new Mean();
  add(s: RegionScores | null): void {
    if (!s) return;
    this.l1.add(s.l1);
    this.psnr.add(s.psnr);
    this.ssim.add(s.ssim);
  }
  result(): Scores | null {
    return this.l1.n ? { l1: this.l1.value, psnr: this.psnr.value, ssim: this.ssim.value, frames: this.l1.n } : null;
  }
}

export interface FrameResult {
  whole: RegionScores;
  mouth: RegionScores | null;
  eyes: RegionScores | null;
}

export class MethodAccumulator {
  #whole = new ScoreMean();
  #mouth = new ScoreMean();
  #eyes = new ScoreMean();
  #gradFrame = { render: new Mean(), truth: new Mean() };
  #gradFace = { render: new Mean(), truth: new Mean() };
  #temporal = { render: new Mean(), truth: new Mean(), gap: new Mean() };
  #prev: { frame: number; picture: RgbImage; truth: RgbImage } | null = null;
  #frames = 0;

  #cached: SsimStats | null = null;

  /**
   * Adds test frame `frame` (indices must increase); returns its scores. `truth` may come with its SSIM
   * statistics (shared by the methods); `picture` is the method's output (a repeated picture object, like the
   * mean frame, has its statistics computed once).
   */
  add(frame: number, picture: RgbImage, truth: RgbImage | SsimStats, regions: FrameRegions): FrameResult {
    this.#frames++;
    const truthStats = 'channels' in truth ? truth : ssimStats(truth);
    const pictureStats = this.#cached?.image === picture ? this.#cached : ssimStats(picture);
    this.#cached = pictureStats;
    truth = truthStats.image;
    const map = ssimMap(pictureStats, truthStats);
    const whole = regionScores(picture, truth, map) as RegionScores;
    const mouth = regionScores(picture, truth, map, regions.mouth);
    const eyes = regionScores(picture, truth, map, regions.eyes);
    this.#whole.add(whole);
    this.#mouth.add(mouth);
    this.#eyes.add(eyes);
    this.#gradFrame.render.add(meanGradient(picture));
    this.#gradFrame.truth.add(meanGradient(truth));
    const face: Box | undefined = regions.face[0];
    if (face) {
      this.#gradFace.render.add(meanGradient(picture, face));
      this.#gradFace.truth.add(meanGradient(truth, face));
    }
    const prev = this.#prev;
    if (prev && prev.frame === frame - 1) {
      const dr = frameDifference(prev.picture, picture);
      const dt = frameDifference(prev.truth, truth);
      this.#temporal.render.add(dr);
      this.#temporal.truth.add(dt);
      this.#temporal.gap.add(Math.abs(dr - dt));
    }
    this.#prev = { frame, picture, truth };
    return { whole, mouth, eyes };
  }

  result(): MethodScores {
    const sharp = (g: { render: Mean; truth: Mean }): { render: number; truth: number; ratio: number } | null =>
      g.render.n && g.truth.value > 0 ? { render: g.render.value, truth: g.truth.value, ratio: g.render.value / g.truth.value } : null;
    const t = this.#temporal;
    return {
      frames: this.#frames,
      whole: this.#whole.result() ?? { l1: NaN, psnr: NaN, ssim: NaN, frames: 0 },
      mouth: this.#mouth.result(),
      eyes: this.#eyes.result(),
      sharpness: { frame: sharp(this.#gradFrame) ?? { render: NaN, truth: NaN, ratio: NaN }, face: sharp(this.#gradFace) },
      temporal: t.render.n
        ? { pairs: t.render.n, renderDiff: t.render.value, truthDiff: t.truth.value, ratio: t.truth.value > 0 ? t.render.value / t.truth.value : null, meanAbsGap: t.gap.value }
        : null,
    };
  }
}
