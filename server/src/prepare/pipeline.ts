/**
 * `dnp prepare`: video → training dataset (shared/src/dataset-schema.ts).
 *
 * Pass 1 decodes the clip to constant-rate RGBA at a bounded tracking resolution and tracks every frame
 * in headless Chromium with the live client's FaceTracker (decode runs ahead of tracking); the audio is
 * decoded on the way. Then short face gaps are interpolated, the clip is checked for enough usable
 * frames and one square crop is computed. Pass 2 decodes again, crops + resizes with FFmpeg, and writes
 * PNG frames (FFmpeg's png encoder on the thread pool, two at once). Everything goes to a temporary folder next to
 * the output, renamed into place at the very end, so an interrupted run never leaves a dataset that looks
 * complete.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { BLENDSHAPE_COUNT } from '../../../shared/src/blendshapes.js';
import { DATASET_ARRAYS, DATASET_FORMAT, DATASET_MINOR_VERSION, DATASET_VERSION, LANDMARKS_ARRAY, parseDatasetManifest, type DatasetArrayName, type DatasetManifest, type SpeechFeaturesSpec } from '../../../shared/src/dataset-schema.js';
import { SpeechModelMissingError } from '../audio/speech-features/index.js';
import { LANDMARK_COUNT } from '../../../shared/src/face-landmarks.js';
import { GAZE_SIZE, POSE_SIZE } from '../../../shared/src/pose.js';
import { computeCrop, type Box, type CropBox } from './crop.js';
import { fillGaps, splitFrames } from './gaps.js';
import { JobPool } from './job-pool.js';
import { encodeNpy } from './npy.js';
import { PROJECT_ROOT, type PrepareOptions } from './options.js';
import { PngEncoder } from './png-writer.js';
import { speechFeaturesFile } from './speech-features-file.js';
import { Progress } from './progress.js';
import { TrackingSession, type TrackedFrame } from './tracking-server.js';
import { AUDIO_RATE, InputError, decodeVideo, probeVideo, type VideoInfo } from './video.js';
import { encodeWav16 } from './wav.js';

/** Longest side of the frames handed to the tracker; larger videos are downscaled for tracking only. */
const TRACK_MAX_SIDE = 960;
/** A clip needs at least this many seconds of usable frames. */
const MIN_VALID_SECONDS = 2;
const TRACKER_NAME = 'mediapipe-face-landmarker';

export interface PrepareTimings {
  totalMs: number;
  setupMs: number;
  trackPassMs: number;
  trackDecodeMs: number;
  /** Sum over frames of the time the page spent in the tracker. */
  trackerMs: number;
  writePassMs: number;
  writeDecodeCropMs: number;
  pngEncodeMs: number;
  fileWriteMs: number;
  finishMs: number;
}

export interface PrepareResult {
  dir: string;
  manifest: DatasetManifest;
  timings: PrepareTimings;
  crop: CropBox;
  validFrames: number;
  interpolatedFrames: number;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function readJsonVersion(path: string): string {
  const v = (JSON.parse(readFileSync(path, 'utf8')) as { version?: unknown }).version;
  return typeof v === 'string' ? v : 'unknown';
}

export function trackingSize(w: number, h: number, maxSide = TRACK_MAX_SIDE): { width: number; height: number } {
  const s = Math.min(1, maxSide / Math.max(w, h));
  return { width: Math.max(2, Math.round(w * s)), height: Math.max(2, Math.round(h * s)) };
}

function defaultFps(info: VideoInfo): number {
  const f = info.nominalRateDiffers ? Math.round(info.avgFps) : Math.round(info.avgFps * 1000) / 1000;
  return Math.min(120, Math.max(1, f || 30));
}

/**
 * Every frame's 478 landmarks (normalised to the tracked image) in output pixels of the crop: flat
 * float32 [n × 478 × 2]; NaN for a frame without tracked landmarks.
 */
export function cropLandmarks(tracked: readonly TrackedFrame[], width: number, height: number, crop: { x: number; y: number; size: number }, size: number): Float32Array {
  const per = LANDMARK_COUNT * 2;
  const out = new Float32Array(tracked.length * per).fill(NaN);
  const s = size / crop.size;
  tracked.forEach((t, i) => {
    const lm = t.found ? t.landmarks : null;
    if (!lm || lm.length !== per) return;
    for (let k = 0; k < per; k += 2) {
      out[i * per + k] = ((lm[k] as number) * width - crop.x) * s;
      out[i * per + k + 1] = ((lm[k + 1] as number) * height - crop.y) * s;
    }
  });
  return out;
}

export async function prepareDataset(opts: PrepareOptions, log: Logger, signal?: AbortSignal): Promise<PrepareResult> {
  const t0 = performance.now();
  const input = resolve(opts.input);
  const out = resolve(opts.out);
  if (!existsSync(input)) throw new InputError(`${opts.input}: no such file`);
  if (!statSync(input).isFile()) throw new InputError(`${opts.input}: not a file`);
  if (existsSync(out) && !opts.force) throw new InputError(`${opts.out} already exists (use --force to replace it)`);
  if (!existsSync(opts.trackerModel)) throw new InputError(`tracker model ${opts.trackerModel}: no such file`);
  const model = readFileSync(opts.trackerModel);
  const modelSha256 = createHash('sha256').update(model).digest('hex');

  const info = await probeVideo(input);
  const fps = opts.fps ?? defaultFps(info);
  if (info.durationSeconds > 0 && opts.startSeconds >= info.durationSeconds) {
    throw new InputError(`--start ${opts.startSeconds} is past the end of ${opts.input} (${info.durationSeconds.toFixed(2)} s)`);
  }
  const maxFrames = opts.maxSeconds !== null ? Math.max(1, Math.floor(opts.maxSeconds * fps + 1e-6)) : Infinity;
  const available = Math.min(opts.maxSeconds ?? Infinity, info.durationSeconds > 0 ? info.durationSeconds - opts.startSeconds : Infinity);
  if (available < MIN_VALID_SECONDS) {
    throw new InputError(
      `${opts.input}: only ${available.toFixed(2)} s of video to use${opts.startSeconds > 0 ? ` after --start ${opts.startSeconds}` : ''}; ` +
        `at least ${MIN_VALID_SECONDS} s with a face are needed to train`,
    );
  }
  const trackSize = trackingSize(info.width, info.height);
  log.info({ input: opts.input, width: info.width, height: info.height, rotation: info.rotation, sourceFps: info.avgFps, fps, durationSeconds: info.durationSeconds, audio: info.hasAudio, tracking: trackSize }, 'source video');

  const tmp = join(dirname(out), `.${basename(out)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(join(tmp, 'frames'), { recursive: true });
  let session: TrackingSession | null = null;
  const onAbort = (): void => session?.abort(new Error('interrupted'));
  signal?.addEventListener('abort', onAbort);
  try {
    const sourceSha = sha256File(input);
    const clientDist = join(PROJECT_ROOT, 'client', 'dist');
    const trackerVersion = readJsonVersion(join(PROJECT_ROOT, 'node_modules', '@mediapipe', 'tasks-vision', 'package.json'));

    // ---- pass 1: decode + track --------------------------------------------------------------------
    session = await TrackingSession.start({
      model,
      clientDist,
      ...(opts.chromium ? { chromiumPath: opts.chromium } : {}),
      onPageLog: (t) => log.debug({ page: t }, 'tracking page'),
      handleSignals: signal === undefined, // with a signal, the caller handles SIGINT and aborts us
    });
    if (signal?.aborted) throw new Error('interrupted');
    const setupMs = performance.now() - t0;
    const estFrames = Number.isFinite(maxFrames) ? maxFrames : Math.max(1, Math.round((info.durationSeconds - opts.startSeconds) * fps));
    const trackBar = new Progress('tracking', estFrames);
    session.onResult = (n) => trackBar.update(n);
    const tp0 = performance.now();
    const scale = trackSize.width !== info.width || trackSize.height !== info.height ? [`scale=${trackSize.width}:${trackSize.height}:flags=area`] : [];
    const active = session;
    let decoded;
    try {
      decoded = await decodeVideo(input, {
        info,
        fps,
        startSeconds: opts.startSeconds,
        maxFrames,
        filters: [...scale, 'format=rgba'],
        audio: true,
        ...(signal ? { signal } : {}),
        onFrame: (i, px, w, h) => active.push(i, px, w, h, Math.round((i * 1000) / fps)),
      });
    } catch (err) {
      active.abort(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
    session.end();
    const tracked: TrackedFrame[] = await session.results();
    trackBar.finish();
    await session.close();
    session = null;
    const trackPassMs = performance.now() - tp0;
    const n = decoded.frameCount;
    if (tracked.length !== n) throw new Error(`tracked ${tracked.length} of ${n} frames`);
    log.info(
      { frames: n, fps, variableFrameRate: decoded.variableFrameRate, decodeErrors: decoded.decodeErrors },
      decoded.variableFrameRate ? `variable frame rate: resampled to a constant ${fps} fps` : `constant frame rate: ${fps} fps`,
    );

    // ---- values, gaps, crop -----------------------------------------------------------------------
    const pose = new Float32Array(n * POSE_SIZE);
    const gaze = new Float32Array(n * GAZE_SIZE);
    const blend = new Float32Array(n * BLENDSHAPE_COUNT);
    const found = new Uint8Array(n);
    const boxes: Box[] = [];
    tracked.forEach((t, i) => {
      if (!t.found || !t.pose || !t.gaze || !t.blendshapes) return;
      found[i] = 1;
      pose.set(t.pose, i * POSE_SIZE);
      gaze.set(t.gaze, i * GAZE_SIZE);
      blend.set(t.blendshapes, i * BLENDSHAPE_COUNT);
      if (t.box) boxes.push({ x0: t.box[0] * info.width, y0: t.box[1] * info.height, x1: t.box[2] * info.width, y1: t.box[3] * info.height });
    });
    const foundCount = found.reduce((a, b) => a + b, 0);
    if (foundCount === 0) throw new InputError(`no face found in any of the ${n} frames of ${opts.input}`);
    const gaps = fillGaps(
      found,
      [
        { data: pose, width: POSE_SIZE },
        { data: gaze, width: GAZE_SIZE },
        { data: blend, width: BLENDSHAPE_COUNT },
      ],
      Math.round(opts.maxGapSeconds * fps),
    );
    const minValid = Math.ceil(MIN_VALID_SECONDS * fps);
    if (gaps.validCount < minValid) {
      throw new InputError(
        `${opts.input}: only ${(gaps.validCount / fps).toFixed(2)} s of usable frames (a face in ${foundCount} of ${n} frames); ` +
          `at least ${MIN_VALID_SECONDS} s are needed to train`,
      );
    }
    log.info({ faceFound: foundCount, interpolated: gaps.interpolatedCount, excluded: gaps.excludedCount }, 'face tracking');
    const crop = computeCrop(boxes, info.width, info.height);
    if (crop.limited) log.warn({ crop }, 'the head with neck and shoulders does not fit in the frame: crop reduced to the frame\'s shorter side');
    else log.info({ crop }, 'crop');

    // ---- pass 2: decode, crop + resize, PNG ----------------------------------------------------------
    const wp0 = performance.now();
    const size = opts.size;
    const flags = crop.size >= size ? 'area' : 'bicubic';
    // Two PNG encoders take turns (thread pool) while the next frames are decoded; files are written 4 at a time.
    const encoders = [await PngEncoder.create(size, size, opts.pngLevel), await PngEncoder.create(size, size, opts.pngLevel)];
    const encoding: Array<Promise<void>> = encoders.map(() => Promise.resolve());
    const writes = new JobPool(4);
    const writeBar = new Progress('frames', n);
    let pngMs = 0;
    let fileMs = 0;
    let written = 0;
    let second;
    try {
      second = await decodeVideo(input, {
        info,
        fps,
        startSeconds: opts.startSeconds,
        maxFrames: n,
        filters: [`crop=${crop.size}:${crop.size}:${crop.x}:${crop.y}`, `scale=${size}:${size}:flags=${flags}`, 'format=rgb24'],
        ...(signal ? { signal } : {}),
        onFrame: async (i, px) => {
          const k = i % encoders.length;
          const png = encoders[k] as PngEncoder;
          await encoding[k]; // this encoder's previous frame (throws its error, if any)
          const job = (async () => {
            const e0 = performance.now();
            const data = await png.encode(px);
            pngMs += performance.now() - e0;
            await writes.add(async () => {
              const w0 = performance.now();
              await writeFile(join(tmp, 'frames', `${String(i).padStart(6, '0')}.png`), data);
              fileMs += performance.now() - w0;
              writeBar.update(++written);
            });
          })();
          job.catch(() => undefined); // awaited (and thrown) on this encoder's next frame or below
          encoding[k] = job;
        },
      });
      await Promise.all(encoding);
      await writes.drain();
    } finally {
      await Promise.allSettled(encoding);
      await writes.drain().catch(() => undefined);
      log.debug({ encoder: encoders[0]?.kind }, 'png encoder');
      for (const e of encoders) e.close();
    }
    writeBar.finish();
    if (second.frameCount !== n) throw new Error(`second decode gave ${second.frameCount} frames, the first ${n}`);
    const writePassMs = performance.now() - wp0;

    // ---- arrays, audio, manifest ---------------------------------------------------------------------
    const f0 = performance.now();
    const data: Record<DatasetArrayName, Float32Array | Uint8Array> = {
      pose,
      gaze,
      blendshapes: blend,
      faceFound: found,
      interpolated: gaps.interpolated,
      valid: gaps.valid,
    };
    const arrays = {} as DatasetManifest['arrays'];
    for (const [name, spec] of Object.entries(DATASET_ARRAYS) as Array<[DatasetArrayName, (typeof DATASET_ARRAYS)[DatasetArrayName]]>) {
      const shape = [n, ...spec.inner];
      await writeFile(join(tmp, spec.file), encodeNpy(data[name], shape));
      arrays[name] = { file: spec.file, dtype: spec.dtype, shape };
    }
    const lmShape = [n, ...LANDMARKS_ARRAY.inner];
    await writeFile(join(tmp, LANDMARKS_ARRAY.file), encodeNpy(cropLandmarks(tracked, info.width, info.height, crop, size), lmShape));
    arrays.landmarks = { file: LANDMARKS_ARRAY.file, dtype: LANDMARKS_ARRAY.dtype, shape: lmShape };
    let audio: DatasetManifest['audio'] = null;
    let speechFeatures: SpeechFeaturesSpec | undefined;
    if (decoded.audio) {
      await writeFile(join(tmp, 'audio.wav'), encodeWav16(decoded.audio, AUDIO_RATE, 1));
      audio = { file: 'audio.wav', sampleRate: AUDIO_RATE, channels: 1, samples: decoded.audio.length };
      try {
        const sf = speechFeaturesFile(decoded.audio);
        await writeFile(join(tmp, sf.spec.file), sf.npy);
        speechFeatures = sf.spec;
      } catch (err) {
        if (!(err instanceof SpeechModelMissingError)) throw err;
        log.warn({ err: err.message }, 'no speech features in this dataset');
      }
    }
    const manifest: DatasetManifest = {
      format: DATASET_FORMAT,
      version: DATASET_VERSION,
      source: {
        file: basename(input),
        sha256: await sourceSha,
        width: info.width,
        height: info.height,
        rotation: info.rotation,
        fps: info.avgFps,
        variableFrameRate: decoded.variableFrameRate,
        startSeconds: opts.startSeconds,
        durationSeconds: info.durationSeconds,
      },
      fps,
      frameCount: n,
      size,
      crop: { x: crop.x, y: crop.y, size: crop.size },
      tracker: { name: TRACKER_NAME, version: trackerVersion, modelSha256 },
      frames: { dir: 'frames', pattern: '%06d.png' },
      arrays,
      audio,
      minorVersion: DATASET_MINOR_VERSION,
      ...(speechFeatures ? { speechFeatures } : {}),
      split: splitFrames(n, opts.testFraction),
      created: new Date().toISOString(),
      tool: `dnp-live ${readJsonVersion(join(PROJECT_ROOT, 'package.json'))}`,
    };
    const checked = parseDatasetManifest(JSON.parse(JSON.stringify(manifest)) as unknown);
    await writeFile(join(tmp, 'dataset.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    if (signal?.aborted) throw new Error('interrupted');
    if (existsSync(out)) {
      const old = `${tmp}.old`;
      await rename(out, old);
      await rename(tmp, out);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, out);
    }
    const finishMs = performance.now() - f0;
    const timings: PrepareTimings = {
      totalMs: performance.now() - t0,
      setupMs,
      trackPassMs,
      trackDecodeMs: decoded.decodeMs,
      trackerMs: tracked.reduce((a, t) => a + t.ms, 0),
      writePassMs,
      writeDecodeCropMs: second.decodeMs,
      pngEncodeMs: pngMs,
      fileWriteMs: fileMs,
      finishMs,
    };
    log.info({ dir: out, frames: n, valid: gaps.validCount, fps: +(n / (timings.totalMs / 1000)).toFixed(1), timings }, 'dataset written');
    return { dir: out, manifest: checked, timings, crop, validFrames: gaps.validCount, interpolatedFrames: gaps.interpolatedCount };
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await session?.close();
    await rm(tmp, { recursive: true, force: true });
  }
}
