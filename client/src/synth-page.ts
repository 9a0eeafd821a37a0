/**
 * The page `dnp synth` drives in headless Chromium (server/src/synth/renderer.ts): it renders the synthetic
 * presenter for batches of driving vectors and hands back RGB frames as base64. Protocol (page.evaluate):
 *   window.dnpSynth.init(size, framing)            → true
 *   window.dnpSynth.render(values: number[], count) → string[] (base64 RGB24, size × size, one per vector)
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
};

(window as unknown as { dnpSynth: typeof api }).dnpSynth = api;

