/**
 * Renders the synthetic presenter for driving vectors in headless Chromium (WebGL2; SwiftShader when there
 * is no GPU). The page is client/dist/synth-page.js (client/src/synth-page.ts, built by `npm run build`),
 * injected into a blank page: no server, nothing on the network. One owner: `close()` (idempotent) closes
 * the browser.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { HeadlessChromium } from '../browser/chromium.js';
import { PROJECT_ROOT } from '../project-paths.js';
import { VECTOR_SIZE } from '../../../client/src/synth/controls.js';
import { DEFAULT_FRAMING, type Framing } from '../../../client/src/synth/presenter.js';

export { VECTOR_SIZE };
const SYNTH_PAGE = join(PROJECT_ROOT, 'client', 'dist', 'synth-page.js');

export interface SynthRendererOptions {
  size: number;
  framing?: Framing;
  chromiumPath?: string;
  /** The bundled page script (default client/dist/synth-page.js). */
  pagePath?: string;
  /** See ChromiumLaunchOptions.handleSignals. */
  handleSignals?: boolean;
}

export class SynthRenderer {
  readonly size: number;
  #browser: HeadlessChromium;
  #page: Page;
  #closing: Promise<void> | null = null;

  private constructor(browser: HeadlessChromium, page: Page, size: number) {
    this.#browser = browser;
    this.#page = page;
    this.size = size;
  }

  static async start(opts: SynthRendererOptions): Promise<SynthRenderer> {
    if (!Number.isInteger(opts.size) || opts.size < 16 || opts.size > 2048) throw new RangeError(`bad frame size ${opts.size}`);
    const pagePath = opts.pagePath ?? SYNTH_PAGE;
    if (!existsSync(pagePath)) throw new Error(`the synth page is not built (${pagePath} missing): run \`npm run build\``);
    const script = readFileSync(pagePath, 'utf8');
    const browser = await HeadlessChromium.launch({
      ...(opts.chromiumPath ? { executablePath: opts.chromiumPath } : {}),
      handleSignals: opts.handleSignals ?? true,
    });
    try {
      const page = await browser.page();
      await page.setContent('<!doctype html><meta charset="utf-8"><title>dnp synth</title><body style="margin:0">');
      await page.addScriptTag({ content: script });
      await page.evaluate(
        ([size, framing]) => (globalThis as unknown as { dnpSynth: { init: (s: number, f: Framing) => boolean } }).dnpSynth.init(size, framing),
        [opts.size, opts.framing ?? DEFAULT_FRAMING] as const,
      );
      return new SynthRenderer(browser, page, opts.size);
    } catch (err) {
      await browser.close();
      throw new Error(`could not start the synth renderer: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }

  /** The page, for tools that draw with it (screenshots). */
  get page(): Page {
    return this.#page;
  }

  /**
   * Renders `count` driving vectors (count × 60 numbers: pose 6, gaze 2, blendshapes 52) and returns one
   * packed RGB24 image (size × size, top row first) per vector.
   */
  async render(values: ArrayLike<number>, count: number): Promise<Buffer[]> {
    if (this.#closing) throw new Error('SynthRenderer is closed');
    if (values.length !== count * VECTOR_SIZE) throw new RangeError(`expected ${count * VECTOR_SIZE} values for ${count} vectors, got ${values.length}`);
    const list = Array.from(values, (v) => (Number.isFinite(v) ? v : 0));
    const frames = await this.#page.evaluate(
      ([v, n]) => (globalThis as unknown as { dnpSynth: { render: (v: number[], n: number) => string[] } }).dnpSynth.render(v, n),
      [list, count] as const,
    );
    if (!Array.isArray(frames) || frames.length !== count) throw new Error('synth page returned the wrong number of frames');
    const bytes = this.size * this.size * 3;
    return frames.map((b64, i) => {
      const buf = typeof b64 === 'string' ? Buffer.from(b64, 'base64') : Buffer.alloc(0);
      if (buf.length !== bytes) throw new Error(`synth page frame ${i}: expected ${bytes} bytes, got ${buf.length}`);
      return buf;
    });
  }

  get closed(): boolean {
    return this.#closing !== null;
  }

  close(): Promise<void> {
    if (!this.#closing) this.#closing = this.#browser.close();
    return this.#closing;
  }
}
