/**
 * Image comparison for the live-server tests: offline renders of an avatar with ORT directly, FFmpeg's
 * own (swscale) yuv420p → RGB conversion of decoded frames (independent of the server's RGB → YUV code),
 * and PSNR.
 */
import {
  AV_PIX_FMT_RGB24,
  AV_PIX_FMT_YUV420P,
  FFmpegError,
  Frame,
  SoftwareScaleContext,
  SWS_POINT,
  type AVPixelFormat,
  type SwsFlags,
} from 'node-av';
import * as ort from 'onnxruntime-node';
import type { AvatarManifest } from '../../shared/src/avatar-manifest.js';

/** Renders raw (un-normalised) conditioning vectors with the avatar's model, as interleaved RGB bytes. */
export class OfflineRenderer {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly manifest: AvatarManifest,
  ) {}

  static async open(modelPath: string, manifest: AvatarManifest): Promise<OfflineRenderer> {
    return new OfflineRenderer(await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'], intraOpNumThreads: 1 }), manifest);
  }

  async render(cond: Float32Array): Promise<Uint8Array> {
    const { mean, std } = this.manifest.conditioning;
    const x = Float32Array.from(cond, (v, i) => (v - (mean[i] as number)) / (std[i] as number));
    const out = await this.session.run({ cond: new ort.Tensor('float32', x, [1, x.length]) });
    const rgb = out.rgb;
    if (!rgb) throw new Error('model has no "rgb" output');
    const data = rgb.data as Float32Array;
    const { width: w, height: h } = this.manifest;
    const n = w * h;
    const img = new Uint8Array(3 * n);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) img[3 * i + c] = Math.round(Math.min(1, Math.max(0, data[c * n + i] as number)) * 255);
    }
    return img;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** Converts one packed image between pixel formats with FFmpeg's swscale (an independent reference). */
export function swsConvert(data: Buffer, width: number, height: number, from: AVPixelFormat, to: AVPixelFormat, flags: SwsFlags): Buffer {
  const frameOf = (format: AVPixelFormat): Frame => {
    const f = new Frame();
    f.alloc();
    f.width = width;
    f.height = height;
    f.format = format;
    FFmpegError.throwIfError(f.allocBuffer(), 'alloc frame');
    return f;
  };
  const src = frameOf(from);
  const dst = frameOf(to);
  const sws = new SoftwareScaleContext();
  try {
    FFmpegError.throwIfError(src.fromBuffer(data), 'fill frame');
    sws.getContext(width, height, from, width, height, to, flags);
    FFmpegError.throwIfError(sws.scaleFrameSync(dst, src), 'scale');
    return dst.toBuffer();
  } finally {
    sws.freeContext();
    src.free();
    dst.free();
  }
}

/** Packed yuv420p → interleaved RGB24 with FFmpeg's swscale (BT.601 limited range, as a browser would). */
export function yuv420pToRgbFfmpeg(yuv: Buffer, width: number, height: number): Uint8Array {
  return new Uint8Array(swsConvert(yuv, width, height, AV_PIX_FMT_YUV420P, AV_PIX_FMT_RGB24, SWS_POINT));
}

/** PSNR in dB between two same-sized 8-bit images (Infinity when identical). */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`images differ in size (${a.length} vs ${b.length})`);
  let se = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    se += d * d;
  }
  const mse = se / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}
