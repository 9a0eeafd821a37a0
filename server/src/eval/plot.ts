/**
 * The report's time plot (e.g. jawOpen: driving vs re-tracked render vs re-tracked ground truth) as an SVG,
 * turned into a PNG by screenshotting it in headless Chromium (server/src/browser/chromium.ts, the browser
 * `dnp prepare` already uses). svgLinePlot is pure; renderSvgPng owns its browser and closes it.
 */
import { writeFile } from 'node:fs/promises';
import { HeadlessChromium } from '../browser/chromium.js';

export interface PlotSeries {
  label: string;
  colour: string;
  /** One value per x; NaN leaves a gap. */
  values: ArrayLike<number>;
  dashed?: boolean;
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** x value of index 0 and step per index (e.g. the frame numbers). */
  x0: number;
  xStep?: number;
  yMin?: number;
  yMax?: number;
  width?: number;
  height?: number;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceStep(span: number, target: number): number {
  const raw = span / Math.max(1, target);
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

export function svgLinePlot(series: readonly PlotSeries[], o: PlotOptions): string {
  const W = o.width ?? 960, H = o.height ?? 360;
  const L = 60, R = 20, T = 40, B = 50;
  const n = Math.max(0, ...series.map((s) => s.values.length));
  const step = o.xStep ?? 1;
  const xMax = o.x0 + Math.max(1, n - 1) * step;
  const yMin = o.yMin ?? 0, yMax = o.yMax ?? 1;
  const px = (x: number): number => L + ((x - o.x0) / (xMax - o.x0)) * (W - L - R);
  const py = (y: number): number => T + (1 - (Math.min(yMax, Math.max(yMin, y)) - yMin) / (yMax - yMin)) * (H - T - B);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(o.title)}</text>`,
  ];
  const ys = niceStep(yMax - yMin, 5);
  for (let y = Math.ceil(yMin / ys) * ys; y <= yMax + 1e-9; y += ys) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${py(y).toFixed(1)}" y2="${py(y).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 6}" y="${(py(y) + 4).toFixed(1)}" text-anchor="end">${+y.toFixed(3)}</text>`);
  }
  const xs = niceStep(xMax - o.x0, 10);
  for (let x = Math.ceil(o.x0 / xs) * xs; x <= xMax + 1e-9; x += xs) {
    parts.push(`<line x1="${px(x).toFixed(1)}" x2="${px(x).toFixed(1)}" y1="${T}" y2="${H - B}" stroke="#eee"/>`);
    parts.push(`<text x="${px(x).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${+x.toFixed(3)}</text>`);
  }
  parts.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#444"/>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(`<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(T + H - B) / 2})">${esc(o.yLabel)}</text>`);
  for (const s of series) {
    let d = '';
    let pen = false;
    for (let i = 0; i < s.values.length; i++) {
      const v = s.values[i] as number;
      if (!Number.isFinite(v)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${px(o.x0 + i * step).toFixed(1)},${py(v).toFixed(1)}`;
      pen = true;
    }
    parts.push(`<path d="${d}" fill="none" stroke="${esc(s.colour)}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`);
  }
  series.forEach((s, k) => {
    const x = L + 12 + k * 230;
    parts.push(`<line x1="${x}" x2="${x + 24}" y1="${T + 14}" y2="${T + 14}" stroke="${esc(s.colour)}" stroke-width="3"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`);
    parts.push(`<text x="${x + 30}" y="${T + 18}">${esc(s.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

const PLOT_WIDTH = 960;
const PLOT_HEIGHT = 360;

/** A jawOpen-style plot over frame numbers as SVG (PLOT_WIDTH × PLOT_HEIGHT); the y range follows the data. */
export function framePlotSvg(frames: readonly number[], series: readonly PlotSeries[], title: string, yLabel = 'jawOpen'): string {
  let top = 0;
  for (const s of series) for (let i = 0; i < s.values.length; i++) if (Number.isFinite(s.values[i] as number)) top = Math.max(top, s.values[i] as number);
  const yMax = Math.min(1, Math.max(0.1, Math.ceil(top * 1.15 * 20) / 20)); // a flat series still shows its wiggles
  return svgLinePlot(series, { title, xLabel: 'frame', yLabel, x0: frames[0] ?? 0, width: PLOT_WIDTH, height: PLOT_HEIGHT, yMin: 0, yMax });
}

/**
 * Screenshots SVGs (each PLOT_WIDTH × PLOT_HEIGHT) in one headless Chromium and writes them as PNG files.
 * The browser is closed before this returns.
 */
export async function writeSvgPngs(plots: ReadonlyArray<{ path: string; svg: string }>, chromiumPath?: string): Promise<void> {
  if (plots.length === 0) return;
  const browser = await HeadlessChromium.launch(chromiumPath ? { executablePath: chromiumPath } : {});
  try {
    const page = await browser.page();
    await page.setViewportSize({ width: PLOT_WIDTH, height: PLOT_HEIGHT });
    for (const p of plots) {
      await page.setContent(`<!doctype html><html><body style="margin:0;background:#fff">${p.svg}</body></html>`);
      await writeFile(p.path, await page.screenshot({ type: 'png', clip: { x: 0, y: 0, width: PLOT_WIDTH, height: PLOT_HEIGHT } }));
    }
  } finally {
    await browser.close();
  }
}
