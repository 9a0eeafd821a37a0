/**
 * A fake camera for browser tests: a few seconds of a real video converted to Y4M (raw yuv420p, which
 * Chromium's `--use-file-for-fake-video-capture` plays in a loop as the camera) in a temporary folder.
 * Y4M is raw (~200 KB a frame at 384x360), so keep it short and always close() it.
 * Decoding uses the project's own node-av decoder (server/src/prepare/video.ts).
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeVideo, probeVideo } from '../../server/src/prepare/video.js';

export interface FakeCameraOptions {
  /** seconds of video (default 3) */
  seconds?: number;
  /** frames per second (default 30) */
  fps?: number;
  /** output size (default 384x360); both even */
  width?: number;
  height?: number;
}

export interface FakeCamera {
  /** the .y4m file to pass to --use-file-for-fake-video-capture */
  file: string;
  frames: number;
  width: number;
  height: number;
  fps: number;
  /** removes the temporary folder; idempotent */
  close(): void;
}

export async function makeFakeCamera(video: string, opts: FakeCameraOptions = {}): Promise<FakeCamera> {
  const fps = opts.fps ?? 30;
  const width = opts.width ?? 384;
  const height = opts.height ?? 360;
  const seconds = opts.seconds ?? 3;
  if (width % 2 !== 0 || height % 2 !== 0) throw new RangeError('Y4M 4:2:0 needs an even width and height');
  const dir = mkdtempSync(join(tmpdir(), 'dnp-fake-camera-'));
  const file = join(dir, 'camera.y4m');
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    rmSync(dir, { recursive: true, force: true });
  };
  const frameBytes = width * height * 1.5;
  let fd = -1;
  try {
    fd = openSync(file, 'w');
    writeSync(fd, `YUV4MPEG2 W${width} H${height} F${fps}:1 Ip A1:1 C420jpeg\n`);
    const info = await probeVideo(video);
    const res = await decodeVideo(video, {
      info,
      fps,
      startSeconds: 0,
      maxFrames: Math.round(seconds * fps),
      filters: [`scale=${width}:${height}`, 'format=yuv420p'],
      onFrame: (_i, pixels, w, h) => {
        if (w !== width || h !== height || pixels.byteLength !== frameBytes) {
          throw new Error(`unexpected frame ${w}x${h}, ${pixels.byteLength} bytes (wanted ${width}x${height}, ${frameBytes})`);
        }
        writeSync(fd, 'FRAME\n');
        writeSync(fd, pixels);
      },
    });
    closeSync(fd);
    fd = -1;
    if (res.frameCount === 0) throw new Error(`no frames decoded from ${video}`);
    return { file, frames: res.frameCount, width, height, fps, close };
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    close();
    throw e;
  }
}
