/**
 * In-process decoding with node-av: probing a video (size after rotation, frame rate, audio) and
 * decoding it to constant-frame-rate frames converted by an FFmpeg filter chain (rotation first), plus
 * optionally its audio as 16 kHz mono 16-bit. Uses node-av's low-level read loop with its synchronous
 * calls: its async packet generators rely on Promise.withResolvers, which Node 20 lacks, and each async
 * call is a thread-pool round trip.
 */
import { Decoder, Demuxer, FilterAPI } from 'node-av/api';
import { AV_LOG_ERROR, AV_PKT_DATA_DISPLAYMATRIX, AVSEEK_FLAG_BACKWARD } from 'node-av/constants';
import { Log, Packet, type Frame, type Stream } from 'node-av/lib';
import { CfrResampler } from './frame-timing.js';

Log.setLevel(AV_LOG_ERROR);

export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

export interface VideoInfo {
  /** Frame size after applying the rotation metadata. */
  width: number;
  height: number;
  /** Clockwise rotation applied (0, 90, 180, 270). */
  rotation: number;
  /** The stream's average frame rate (frames per second). */
  avgFps: number;
  /** True when the container's nominal and average frame rates disagree (a hint of variable frame rate). */
  nominalRateDiffers: boolean;
  durationSeconds: number;
  /** Time (seconds) of the stream's first frame: time 0 of the clip. */
  startTime: number;
  hasAudio: boolean;
}

/** Display-matrix rotation (as FFmpeg's av_display_rotation_get + CLI autorotate) → clockwise degrees. */
export function rotationFromDisplayMatrix(m: Buffer | null): number {
  if (!m || m.length < 36) return 0;
  const fp = (i: number): number => m.readInt32LE(i * 4) / 65536;
  const s0 = Math.hypot(fp(0), fp(3));
  const s1 = Math.hypot(fp(1), fp(4));
  if (s0 === 0 || s1 === 0) return 0;
  const ccw = -((Math.atan2(fp(1) / s1, fp(0) / s0) * 180) / Math.PI);
  let theta = -Math.round(ccw);
  theta -= 360 * Math.floor(theta / 360 + 0.9 / 360);
  const snapped = Math.round(theta / 90) * 90;
  return Math.abs(snapped - theta) < 1 ? snapped % 360 : 0;
}

/** FFmpeg filters that apply a clockwise rotation (empty for 0). */
export function rotationFilters(rotation: number): string[] {
  switch (rotation) {
    case 90:
      return ['transpose=clock'];
    case 180:
      return ['hflip', 'vflip'];
    case 270:
      return ['transpose=cclock'];
    default:
      return [];
  }
}

function rationalToNumber(r: { num: number; den: number } | null | undefined): number {
  return r && r.den > 0 && r.num > 0 ? r.num / r.den : 0;
}

async function openInput(path: string): Promise<{ input: Demuxer; video: Stream; audio: Stream | undefined }> {
  let input: Demuxer;
  try {
    input = await Demuxer.open(path);
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/^Failed to open input: /, '') : String(err);
    throw new InputError(`cannot read ${path} as a video (FFmpeg: ${why}): not a video file, or a damaged or truncated one`);
  }
  const video = input.video();
  if (!video) {
    const what = input.audio() ? 'it holds only audio' : 'no stream FFmpeg can decode';
    await input.close();
    throw new InputError(`${path} has no video stream (${what})`);
  }
  return { input, video, audio: input.audio() };
}

export async function probeVideo(path: string): Promise<VideoInfo> {
  const { input, video, audio } = await openInput(path);
  try {
    const cp = video.codecpar;
    if (!(cp.width > 0 && cp.height > 0)) throw new InputError(`${path}: the video stream has no frame size (unsupported or damaged)`);
    const rotation = rotationFromDisplayMatrix(cp.getCodedSideData(AV_PKT_DATA_DISPLAYMATRIX));
    const swap = rotation === 90 || rotation === 270;
    const avg = rationalToNumber(video.avgFrameRate);
    const nominal = rationalToNumber(video.rFrameRate);
    const tb = rationalToNumber(video.timeBase);
    const st = video.startTime;
    const startTime = typeof st === 'bigint' && st > -(2n ** 62n) ? Number(st) * tb : 0;
    const dur = video.duration > 0n ? Number(video.duration) * tb : input.duration;
    return {
      width: swap ? cp.height : cp.width,
      height: swap ? cp.width : cp.height,
      rotation,
      avgFps: avg > 0 ? avg : nominal,
      nominalRateDiffers: avg > 0 && nominal > 0 && Math.abs(avg - nominal) / nominal > 0.01,
      durationSeconds: Number.isFinite(dur) && dur > 0 ? dur : 0,
      startTime: Number.isFinite(startTime) ? startTime : 0,
      hasAudio: audio !== undefined,
    };
  } finally {
    await input.close();
  }
}

export interface DecodeOptions {
  info: VideoInfo;
  fps: number;
  startSeconds: number;
  maxFrames: number;
  /** Filters applied after rotation, e.g. `scale=640:480,format=rgba`. Must not change the frame count. */
  filters: string[];
  /** Called once per output frame, in order; awaited (back-pressure). The buffer is packed pixels. */
  onFrame: (index: number, pixels: Buffer, width: number, height: number) => Promise<void> | void;
  /** When set, the audio is decoded to 16 kHz mono s16 and placed relative to output frame 0. */
  audio?: boolean;
  signal?: AbortSignal;
}

export interface DecodeResult {
  frameCount: number;
  variableFrameRate: boolean;
  decodeErrors: number;
  /** 16 kHz mono samples aligned to frame 0, length round(frameCount / fps × 16000); null without audio. */
  audio: Int16Array | null;
  /** Time spent decoding + converting (ms), for the timing report. */
  decodeMs: number;
}

export const AUDIO_RATE = 16_000;

class AudioCollector {
  #decoder: Decoder;
  #filter: FilterAPI;
  #chunks: Array<{ pos: number; data: Int16Array }> = [];
  #origin: number;
  #tb: number;

  private constructor(decoder: Decoder, filter: FilterAPI, origin: number, tb: number) {
    this.#decoder = decoder;
    this.#filter = filter;
    this.#origin = origin;
    this.#tb = tb;
  }

  static async create(stream: Stream, origin: number): Promise<AudioCollector> {
    const decoder = await Decoder.create(stream);
    const filter = FilterAPI.create(`aresample=${AUDIO_RATE},aformat=sample_fmts=s16:channel_layouts=mono`);
    return new AudioCollector(decoder, filter, origin, rationalToNumber(stream.timeBase));
  }

  async packet(p: Packet | null): Promise<void> {
    let frames: Frame[];
    try {
      frames = this.#decoder.decodeAllSync(p);
    } catch {
      return; // a damaged audio packet: leave silence there
    }
    for (const f of frames) {
      const t = Number(f.pts) * this.#tb;
      const out = this.#filter.processAllSync(f);
      f.free();
      this.#take(out, t);
    }
  }

  #take(frames: Frame[], fallbackTime: number): void {
    for (const g of frames) {
      const gtb = rationalToNumber(g.timeBase);
      const t = g.pts !== undefined && gtb > 0 ? Number(g.pts) * gtb : fallbackTime;
      const buf = g.toBuffer();
      const data = new Int16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + g.nbSamples * 2));
      this.#chunks.push({ pos: Math.round((t - this.#origin) * AUDIO_RATE), data });
      g.free();
    }
  }

  async finish(samples: number): Promise<Int16Array> {
    await this.packet(null);
    try {
      const rest = await this.#filter.processAll(null as unknown as Frame);
      this.#take(rest, 0);
    } catch {
      // nothing buffered
    }
    const out = new Int16Array(samples);
    for (const c of this.#chunks) {
      for (let k = 0; k < c.data.length; k++) {
        const i = c.pos + k;
        if (i >= 0 && i < samples) out[i] = c.data[k] as number;
      }
    }
    return out;
  }

  close(): void {
    this.#filter.close();
    this.#decoder.close();
  }
}

/** Decodes the clip once. Throws InputError when no frame could be decoded. */
export async function decodeVideo(path: string, opts: DecodeOptions): Promise<DecodeResult> {
  const t0 = performance.now();
  let waitMs = 0;
  const { input, video, audio: audioStream } = await openInput(path);
  const packet = new Packet();
  packet.alloc();
  let decoder: Decoder | null = null;
  let filter: FilterAPI | null = null;
  let audio: AudioCollector | null = null;
  let decodeErrors = 0;
  const tb = rationalToNumber(video.timeBase);
  const origin = opts.info.startTime + opts.startSeconds;
  const sampler = new CfrResampler(opts.fps, origin, opts.maxFrames);
  const filterDesc = [...rotationFilters(opts.info.rotation), ...opts.filters].join(',');
  // The previous source frame (kept until we know how many output frames it fills) and its conversion.
  let prev: Frame | null = null;
  let prevConverted: { pixels: Buffer; width: number; height: number } | null = null;

  const emit = async (count: number): Promise<void> => {
    if (count === 0 || !prev) return;
    if (!prevConverted) {
      filter ??= FilterAPI.create(filterDesc);
      const out = filter.processAllSync(prev);
      const g = out[0];
      if (!g || out.length !== 1) throw new Error(`filter "${filterDesc}" returned ${out.length} frames for one`);
      prevConverted = { pixels: g.toBuffer(), width: g.width, height: g.height };
      for (const x of out) x.free();
    }
    for (let k = 0; k < count; k++) {
      const index = sampler.next - count + k;
      const w0 = performance.now();
      await opts.onFrame(index, prevConverted.pixels, prevConverted.width, prevConverted.height);
      waitMs += performance.now() - w0;
    }
  };
  const onDecoded = async (frames: Frame[]): Promise<void> => {
    for (const f of frames) {
      if (sampler.done) {
        f.free();
        continue;
      }
      const ts = f.bestEffortTimestamp ?? f.pts;
      const t = Number(ts) * tb;
      const n = sampler.push(t);
      await emit(n);
      prev?.free();
      prev = f;
      prevConverted = null;
    }
  };

  try {
    decoder = await Decoder.create(video);
    if (opts.audio && audioStream) audio = await AudioCollector.create(audioStream, origin);
    if (opts.startSeconds > 0) await input.seek(origin, -1, AVSEEK_FLAG_BACKWARD);
    const fc = input.getFormatContext();
    let readErrorSeen = false;
    while (!sampler.done) {
      if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new Error('aborted');
      const ret = fc.readFrameSync(packet);
      if (ret < 0) {
        readErrorSeen = ret !== -541478725; // AVERROR_EOF
        break;
      }
      if (packet.streamIndex === video.index) {
        packet.timeBase = video.timeBase;
        let frames: Frame[] = [];
        try {
          frames = decoder.decodeAllSync(packet);
        } catch {
          decodeErrors++;
        }
        packet.unref();
        await onDecoded(frames);
        // The sync calls avoid a thread-pool round trip per call (costly on busy cores); yield to the
        // event loop once per video packet so I/O (e.g. the tracker's HTTP requests) keeps flowing.
        await new Promise<void>((r) => setImmediate(r));
      } else if (audio && audioStream && packet.streamIndex === audioStream.index) {
        packet.timeBase = audioStream.timeBase;
        await audio.packet(packet);
        packet.unref();
      } else {
        packet.unref();
      }
    }
    if (!sampler.done) {
      try {
        await onDecoded(decoder.decodeAllSync(null));
      } catch {
        decodeErrors++;
      }
      const med = sampler.medianDelta ?? 1 / (opts.info.avgFps || opts.fps);
      await emit(sampler.finish(med));
    }
    const frameCount = sampler.next;
    if (frameCount === 0) {
      throw new InputError(
        `${path}: no video frame could be decoded${readErrorSeen || decodeErrors > 0 ? ' (the file is damaged or truncated)' : ''}` +
          (opts.startSeconds > 0 ? ` after --start ${opts.startSeconds}` : ''),
      );
    }
    const samples = Math.round((frameCount / opts.fps) * AUDIO_RATE);
    const audioOut = audio ? await audio.finish(samples) : null;
    return { frameCount, variableFrameRate: sampler.variableFrameRate, decodeErrors, audio: audioOut, decodeMs: performance.now() - t0 - waitMs };
  } finally {
    (prev as Frame | null)?.free();
    (filter as FilterAPI | null)?.close();
    decoder?.close();
    audio?.close();
    packet.free();
    await input.close();
  }
}
