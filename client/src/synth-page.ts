/**
 * The page `dnp synth` drives in headless Chromium (server/src/synth/renderer.ts): it renders the synthetic
 * presenter for batches of driving vectors and hands back RGB frames as base64. Protocol (page.evaluate):
 *   window.dnpSynth.init(size, framing)            → true
 *   window.dnpSynth.render(values: number[], count) → string[] (base64 RGB24, size × size, one per vector)
 *   window.dnpSynth.grid(values, labels, cols, cell) → PNG data URL: the frames in a labelled grid (docs)
 * values holds count × 60 numbers (pose 6, gaze 2, blendshapes 52 per vector).
 */
import { controlsFromVector, VECTOR_SIZE } from './synth/controls.js';
import { DEFAULT_FRAMING, PALETTE, Presenter, type Framing } from './synth/presenter.js';
import { GlPresenterRenderer } from './synth/webgl.js';

let presenter: Presenter | null = null;
let renderer: GlPresenterRenderer | null = null;

function toBase64(bytes: Uint8Array): string {
  let s = '';
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) s += String.fromCharCode(...bytes.subarray(i, i + step));
  return btoa(s);
}

const api = {
  init(size: number, framing: Framing = DEFAULT_FRAMING): boolean {
    const canvas = document.createElement('canvas');
    document.body.appendChild(canvas);
    presenter = new Presenter(framing);
    renderer = new GlPresenterRenderer(canvas, size, PALETTE.background);
    return true;
  },
  render(values: number[], count: number): string[] {
    if (!presenter || !renderer) throw new Error('dnpSynth.init() first');
    if (values.length !== count * VECTOR_SIZE) throw new Error(`expected ${count * VECTOR_SIZE} values, got ${values.length}`);
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      renderer.draw(presenter.frame(controlsFromVector(values, i * VECTOR_SIZE)));
      out.push(toBase64(renderer.readRgb()));
    }
    return out;
  },
  grid(values: number[], labels: string[], cols: number, cell: number): string {
    if (!renderer) throw new Error('dnpSynth.init() first');
    const size = renderer.size;
    const frames = api.render(values, labels.length);
    const label = 22;
    const c = document.createElement('canvas');
    c.width = cols * cell;
    c.height = Math.ceil(frames.length / cols) * (cell + label);
    const g = c.getContext('2d');
    const tmp = document.createElement('canvas');
    tmp.width = size;
    tmp.height = size;
    const tg = tmp.getContext('2d');
    if (!g || !tg) throw new Error('no 2D canvas');
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, c.width, c.height);
    frames.forEach((b64, i) => {
      const bin = atob(b64);
      const img = tg.createImageData(size, size);
      for (let p = 0; p < size * size; p++) {
        img.data[p * 4] = bin.charCodeAt(p * 3);
        img.data[p * 4 + 1] = bin.charCodeAt(p * 3 + 1);
        img.data[p * 4 + 2] = bin.charCodeAt(p * 3 + 2);
        img.data[p * 4 + 3] = 255;
      }
      tg.putImageData(img, 0, 0);
      const x = (i % cols) * cell, y = Math.floor(i / cols) * (cell + label);
      g.imageSmoothingQuality = 'high';
      g.drawImage(tmp, x, y + label, cell, cell);
      g.fillStyle = '#222222';
      g.font = '13px sans-serif';
      g.fillText(labels[i] ?? '', x + 6, y + 16);
    });
    return c.toDataURL('image/png');
  },
};

(window as unknown as { dnpSynth: typeof api }).dnpSynth = api;

