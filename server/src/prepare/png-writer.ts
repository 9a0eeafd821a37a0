/**
 * Lossless PNG encoding of the dataset frames. FFmpeg's own `png` encoder (through node-av,
 * compression_level 1, prediction "up") was measured faster than the node:zlib encoder in png.ts
 * (256²: 2.1 vs 3.6 ms a frame; 512²: 8.9 vs 11.2 ms, same file sizes), so it is used; png.ts is the
 * fallback when this FFmpeg build has no png encoder. One frame is encoded on the thread pool while the
 * next one is decoded. Options are set through `configure` (passing `options` to Encoder.create crashes
 * node-av at garbage collection, see shared/notes/media-path.md).
 */
import { Encoder } from 'node-av/api';
import { AV_PIX_FMT_RGB24, FF_ENCODER_PNG } from 'node-av/constants';
import { Frame } from 'node-av/lib';
import { encodePngRgb } from './png.js';

export class PngEncoder {
  #encoder: Encoder | null;
  #level: number;
  #width: number;
  #height: number;

  private constructor(encoder: Encoder | null, width: number, height: number, level: number) {
    this.#encoder = encoder;
    this.#width = width;
    this.#height = height;
    this.#level = level;
  }

  static async create(width: number, height: number, level = 1): Promise<PngEncoder> {
    let enc: Encoder | null = null;
    try {
      enc = await Encoder.create(FF_ENCODER_PNG, {
        configure: (ctx) => {
          ctx.setOption('compression_level', String(level));
          ctx.setOption('pred', 'up');
          ctx.setOption('threads', '1'); // no frame threading: one packet back per frame
        },
      });
    } catch {
      enc = null; // no png encoder in this FFmpeg build: use the zlib one
    }
    return new PngEncoder(enc, width, height, level);
  }

  /** Which encoder is in use (for the log). */
  get kind(): 'ffmpeg' | 'zlib' {
    return this.#encoder ? 'ffmpeg' : 'zlib';
  }

  /** Encodes packed RGB24 pixels. Calls must not overlap (await each). */
  async encode(rgb: Buffer): Promise<Buffer> {
    if (rgb.length !== this.#width * this.#height * 3) throw new RangeError(`expected ${this.#width}x${this.#height} RGB24`);
    if (!this.#encoder) return encodePngRgb(rgb, this.#width, this.#height, { level: this.#level });
    const frame = Frame.fromVideoBuffer(rgb, { width: this.#width, height: this.#height, format: AV_PIX_FMT_RGB24, timeBase: { num: 1, den: 1 }, pts: 0n });
    try {
      const packets = await this.#encoder.encodeAll(frame);
      if (packets.length !== 1) throw new Error(`png encoder returned ${packets.length} packets for one frame`);
      const pk = packets[0]!;
      const data = pk.data;
      if (!data) throw new Error('png encoder returned an empty packet');
      const out = Buffer.from(data);
      for (const p of packets) p.free();
      return out;
    } finally {
      frame.free();
    }
  }

  close(): void {
    this.#encoder?.close();
    this.#encoder = null;
  }
}
