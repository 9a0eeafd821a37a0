/**
 * Image metrics on 8-bit RGB (values 0-255): L1 (mean absolute difference), PSNR (capped at PSNR_CAP for
 * identical images), SSIM (Wang et al. 2004: 11×11 Gaussian window σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255,
 * per channel then averaged; edge pixels use a replicated border), mean gradient magnitude (sharpness) and
 * frame-to-frame difference (temporal stability). A `box` restricts a metric to a region (whole pixels,
 * [x0, x1) × [y0, y1)); SSIM over a region is the mean of the full frame's SSIM map inside it.
 */
import type { RgbImage } from './image.js';

export const PSNR_CAP = 100;
const C1 = (0.01 * 255) ** 2;
const C2 = (0.03 * 255) ** 2;

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

function check(a: RgbImage, b: RgbImage): void {
  if (a.width !== b.width || a.height !== b.height) throw new RangeError(`image sizes differ: ${a.width}x${a.height} vs ${b.width}x${b.height}`);
}

function fullBox(a: RgbImage): Box {
  return { x0: 0, y0: 0, x1: a.width, y1: a.height };
}

/** Mean absolute difference (0-255) and mean squared error over the box. */
export function l1AndMse(a: RgbImage, b: RgbImage, box: Box = fullBox(a)): { l1: number; mse: number } {
  check(a, b);
  let s1 = 0, s2 = 0, n = 0;
  for (let y = box.y0; y < box.y1; y++) {
    for (let x = box.x0; x < box.x1; x++) {
      const o = (y * a.width + x) * 3;
      for (let c = 0; c < 3; c++) {
        const d = (a.data[o + c] as number) - (b.data[o + c] as number);
        s1 += Math.abs(d);
        s2 += d * d;
      }
      n += 3;
    }
  }
  return n === 0 ? { l1: NaN, mse: NaN } : { l1: s1 / n, mse: s2 / n };
}

/** PSNR in dB for 8-bit images from their MSE; identical images give PSNR_CAP. */
export function psnrFromMse(mse: number): number {
  if (!(mse > 0)) return Number.isNaN(mse) ? NaN : PSNR_CAP;
  return Math.min(PSNR_CAP, 10 * Math.log10((255 * 255) / mse));
}

const WINDOW = (() => {
  const r = 5;
  const w = new Float64Array(2 * r + 1);
  let s = 0;
  for (let k = -r; k <= r; k++) s += w[k + r] = Math.exp(-(k * k) / (2 * 1.5 * 1.5));
  for (let k = 0; k < w.length; k++) w[k] = (w[k] as number) / s;
  return w;
})();

/** Separable Gaussian blur with a replicated border (interior pixels without clamping; rows accumulated whole). */
function blur(src: Float64Array, w: number, h: number, tmp: Float64Array, out: Float64Array): void {
  const r = (WINDOW.length - 1) / 2;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      let s = 0;
      if (x >= r && x < w - r) {
        const base = row + x - r;
        for (let k = 0; k < WINDOW.length; k++) s += (WINDOW[k] as number) * (src[base + k] as number);
      } else {
        for (let k = -r; k <= r; k++) {
          const xx = x + k < 0 ? 0 : x + k >= w ? w - 1 : x + k;
          s += (WINDOW[k + r] as number) * (src[row + xx] as number);
        }
      }
      tmp[row + x] = s;
    }
  }
  out.fill(0);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let k = -r; k <= r; k++) {
      const yy = y + k < 0 ? 0 : y + k >= h ? h - 1 : y + k;
      const wk = WINDOW[k + r] as number;
      const src2 = yy * w;
      for (let x = 0; x < w; x++) out[row + x] = (out[row + x] as number) + wk * (tmp[src2 + x] as number);
    }
  }
}

/**
 * One picture's local statistics for SSIM: per channel, the Gaussian-weighted mean and mean of squares.
 * Computing them once per picture lets several pictures be compared with the same ground truth cheaply.
 */
export interface SsimStats {
  image: RgbImage;
  channels: Array<{ x: Float64Array; mu: Float64Array; sq: Float64Array }>;
}

export function ssimStats(img: RgbImage): SsimStats {
  const w = img.width, h = img.height, n = w * h;
  const tmp = new Float64Array(n);
  const channels: SsimStats['channels'] = [];
  for (let c = 0; c < 3; c++) {
    const x = new Float64Array(n);
    for (let i = 0; i < n; i++) x[i] = img.data[3 * i + c] as number;
    const mu = new Float64Array(n);
    const sq = new Float64Array(n);
    blur(x, w, h, tmp, mu);
    const x2 = new Float64Array(n);
    for (let i = 0; i < n; i++) x2[i] = (x[i] as number) * (x[i] as number);
    blur(x2, w, h, tmp, sq);
    channels.push({ x, mu, sq });
  }
  return { image: img, channels };
}

/** Per-pixel SSIM, averaged over the three channels (float32, width × height); pictures or their stats. */
export function ssimMap(a: RgbImage | SsimStats, b: RgbImage | SsimStats): Float32Array {
  const sa = 'channels' in a ? a : ssimStats(a);
  const sb = 'channels' in b ? b : ssimStats(b);
  check(sa.image, sb.image);
  const w = sa.image.width, h = sa.image.height, n = w * h;
  const out = new Float32Array(n);
  const prod = new Float64Array(n), sab = new Float64Array(n), tmp = new Float64Array(n);
  for (let c = 0; c < 3; c++) {
    const ca = sa.channels[c] as SsimStats['channels'][number];
    const cb = sb.channels[c] as SsimStats['channels'][number];
    for (let i = 0; i < n; i++) prod[i] = (ca.x[i] as number) * (cb.x[i] as number);
    blur(prod, w, h, tmp, sab);
    for (let i = 0; i < n; i++) {
      const m1 = ca.mu[i] as number, m2 = cb.mu[i] as number;
      const v1 = (ca.sq[i] as number) - m1 * m1, v2 = (cb.sq[i] as number) - m2 * m2, cov = (sab[i] as number) - m1 * m2;
      const s = ((2 * m1 * m2 + C1) * (2 * cov + C2)) / ((m1 * m1 + m2 * m2 + C1) * (v1 + v2 + C2));
      out[i] = (out[i] as number) + s / 3;
    }
  }
  return out;
}

/** Mean of a per-pixel map over a box. */
function meanOver(map: Float32Array, width: number, box: Box): number {
  let s = 0, n = 0;
  for (let y = box.y0; y < box.y1; y++) for (let x = box.x0; x < box.x1; x++, n++) s += map[y * width + x] as number;
  return n === 0 ? NaN : s / n;
}

export function ssim(a: RgbImage, b: RgbImage, box: Box = fullBox(a)): number {
  return meanOver(ssimMap(a, b), a.width, box);
}

export interface RegionScores {
  l1: number;
  psnr: number;
  ssim: number;
}

/**
 * L1, PSNR and SSIM over one or more boxes taken together (pixel-weighted), with a precomputed SSIM map of
 * the whole frame. Null for an empty list.
 */
export function regionScores(a: RgbImage, b: RgbImage, map: Float32Array, boxes: readonly Box[] = [fullBox(a)]): RegionScores | null {
  let n = 0, s1 = 0, s2 = 0, ss = 0;
  for (const box of boxes) {
    const px = Math.max(0, box.x1 - box.x0) * Math.max(0, box.y1 - box.y0);
    if (px === 0) continue;
    const { l1, mse } = l1AndMse(a, b, box);
    s1 += l1 * px;
    s2 += mse * px;
    ss += meanOver(map, a.width, box) * px;
    n += px;
  }
  if (n === 0) return null;
  return { l1: s1 / n, psnr: psnrFromMse(s2 / n), ssim: ss / n };
}

/**
 * Mean gradient magnitude of the luma (0.299 R + 0.587 G + 0.114 B), forward differences, over the pixels
 * of the box whose right and lower neighbours are inside it. A sharp picture scores higher than a blurred one.
 */
export function meanGradient(img: RgbImage, box: Box = fullBox(img)): number {
  const luma = (x: number, y: number): number => {
    const o = (y * img.width + x) * 3;
    return 0.299 * (img.data[o] as number) + 0.587 * (img.data[o + 1] as number) + 0.114 * (img.data[o + 2] as number);
  };
  let s = 0, n = 0;
  for (let y = box.y0; y < box.y1 - 1; y++) {
    for (let x = box.x0; x < box.x1 - 1; x++) {
      const l = luma(x, y);
      const dx = luma(x + 1, y) - l;
      const dy = luma(x, y + 1) - l;
      s += Math.sqrt(dx * dx + dy * dy);
      n++;
    }
  }
  return n === 0 ? NaN : s / n;
}

/** Mean absolute difference (0-255) between two consecutive frames of one sequence. */
export function frameDifference(prev: RgbImage, next: RgbImage): number {
  return l1AndMse(prev, next).l1;
}

/** Pearson correlation; null when either series is constant or shorter than 2. */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number | null {
  const n = Math.min(a.length, b.length);
  if (n < 2) return null;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] as number;
    mb += b[i] as number;
  }
  ma /= n;
  mb /= n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = (a[i] as number) - ma, db = (b[i] as number) - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (!(saa > 1e-12) || !(sbb > 1e-12)) return null;
  return sab / Math.sqrt(saa * sbb);
}
