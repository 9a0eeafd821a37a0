/**
 * Decodes the first audio stream of any file FFmpeg reads (WAV, MP4, WebM, ...) with node-av to 16 kHz mono
 * float PCM in [-1, 1), samples placed by their timestamps from the stream's first one (gaps stay silent).
 * Synchronous node-av calls, as in server/src/prepare/video.ts.
 */
import { Decoder, Demuxer, FilterAPI } from 'node-av/api';
import { AV_LOG_ERROR } from 'node-av/constants';
import { Log, Packet, type Frame } from 'node-av/lib';

Log.setLevel(AV_LOG_ERROR);

export const DECODE_RATE = 16_000;
const AVERROR_EOF = -541478725;

export class AudioInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AudioInputError';
  }
}

export async function decodeAudio16k(path: string): Promise<Float32Array> {
  let input: Demuxer;
  try {
    input = await Demuxer.open(path);
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/^Failed to open input: /, '') : String(err);
    throw new AudioInputError(`cannot read ${path} (FFmpeg: ${why}): not an audio or video file, or a damaged one`);
  }
  let decoder: Decoder | null = null;
  let filter: FilterAPI | null = null;
  const packet = new Packet();
  packet.alloc();
  try {
    const stream = input.audio();
    if (!stream) throw new AudioInputError(`${path} has no audio stream`);
    decoder = await Decoder.create(stream);
    filter = FilterAPI.create(`aresample=${DECODE_RATE},aformat=sample_fmts=flt:channel_layouts=mono`);
    const chunks: Array<{ pos: number | null; data: Float32Array }> = [];
    let origin: number | null = null;
    const take = (frames: Frame[]): void => {
      for (const g of frames) {
        const tb = g.timeBase;
        const t = g.pts !== undefined && tb && tb.den > 0 ? (Number(g.pts) * tb.num) / tb.den : null;
        if (origin === null && t !== null) origin = t;
        const buf = g.toBuffer();
        const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + g.nbSamples * 4));
        chunks.push({ pos: t === null || origin === null ? null : Math.round((t - origin) * DECODE_RATE), data });
        g.free();
      }
    };
    const decodeAndFilter = (p: Packet | null): void => {
      let frames: Frame[];
      try {
        frames = (decoder as Decoder).decodeAllSync(p);
      } catch {
        return; // a damaged packet: leave silence there
      }
      for (const f of frames) {
        take((filter as FilterAPI).processAllSync(f));
        f.free();
      }
    };
    const fc = input.getFormatContext();
    for (;;) {
      const ret = fc.readFrameSync(packet);
      if (ret < 0) {
        if (ret !== AVERROR_EOF) throw new AudioInputError(`${path}: read error ${ret} (truncated or damaged file)`);
        break;
      }
      if (packet.streamIndex === stream.index) {
        packet.timeBase = stream.timeBase;
        decodeAndFilter(packet);
      }
      packet.unref();
    }
    decodeAndFilter(null);
    try {
      take(await filter.processAll(null as unknown as Frame));
    } catch {
      // nothing buffered
    }
    let end = 0;
    let cursor = 0;
    const placed = chunks.map((c) => {
      const pos = c.pos ?? cursor;
      cursor = pos + c.data.length;
      end = Math.max(end, cursor);
      return { pos, data: c.data };
    });
    const out = new Float32Array(end);
    for (const c of placed) if (c.pos >= 0) out.set(c.data.subarray(0, Math.max(0, Math.min(c.data.length, end - c.pos))), c.pos);
    return out;
  } finally {
    packet.free();
    filter?.close();
    decoder?.close();
    await input.close();
  }
}
