/**
 * Reads a media file or stream (node-av Demuxer: a path, or an rtmp:// URL with `listen`) and decodes it: video
 * frames (count, first / last pts in seconds, size) and audio (samples, RMS level), for egress tests.
 */
import { Decoder, Demuxer } from 'node-av/api';
import { Packet, type Frame } from 'node-av/lib';

export interface DecodedMedia {
  videoCodec: string | null;
  audioCodec: string | null;
  width: number;
  height: number;
  videoFrames: number;
  keyframes: number;
  firstVideoS: number;
  lastVideoS: number;
  audioSamples: number;
  audioRate: number;
  audioRms: number;
  /** Largest absolute sample (digital silence: 0). */
  audioPeak: number;
}

export interface DecodeOptions {
  /** Demuxer options (e.g. { listen: '1' } for an RTMP server). */
  options?: Record<string, string>;
  /** Stop after this many video frames. */
  maxVideoFrames?: number;
  signal?: AbortSignal;
}

export async function decodeMedia(input: string, o: DecodeOptions = {}): Promise<DecodedMedia> {
  const demux = await Demuxer.open(input, { options: o.options ?? {}, signal: o.signal });
  const out: DecodedMedia = { videoCodec: null, audioCodec: null, width: 0, height: 0, videoFrames: 0, keyframes: 0, firstVideoS: NaN, lastVideoS: NaN, audioSamples: 0, audioRate: 0, audioRms: 0, audioPeak: 0 };
  const vs = demux.video();
  const as = demux.audio();
  const vdec = vs ? await Decoder.create(vs) : null;
  const adec = as ? await Decoder.create(as) : null;
  out.videoCodec = vdec?.getCodec().name ?? null;
  out.audioCodec = adec?.getCodec().name ?? null;
  let sumSq = 0;
  const pkt = new Packet();
  pkt.alloc();
  const takeVideo = (frames: Frame[]): void => {
    if (!vs) return;
    const tb = vs.timeBase.num / vs.timeBase.den;
    for (const f of frames) {
      const t = Number(f.pts) * tb;
      if (out.videoFrames === 0) out.firstVideoS = t;
      out.lastVideoS = t;
      out.videoFrames++;
      if (f.keyFrame) out.keyframes++;
      out.width = f.width;
      out.height = f.height;
      f.free();
    }
  };
  const takeAudio = (frames: Frame[]): void => {
    for (const f of frames) {
      out.audioRate = f.sampleRate;
      out.audioSamples += f.nbSamples;
      const d = f.data?.[0];
      if (d) for (let i = 0; i + 4 <= Math.min(d.length, f.nbSamples * 4); i += 4) {
        const x = d.readFloatLE(i); // fltp: plane 0
        sumSq += x * x;
        out.audioPeak = Math.max(out.audioPeak, Math.abs(x));
      }
      f.free();
    }
  };
  try {
    const fmt = demux.getFormatContext();
    while ((await fmt.readFrame(pkt)) >= 0) {
      if (vs && pkt.streamIndex === vs.index && vdec) {
        pkt.timeBase = vs.timeBase;
        takeVideo(await vdec.decodeAll(pkt));
      } else if (as && pkt.streamIndex === as.index && adec) {
        pkt.timeBase = as.timeBase;
        takeAudio(await adec.decodeAll(pkt));
      }
      pkt.unref();
      if (o.maxVideoFrames && out.videoFrames >= o.maxVideoFrames) break;
    }
    if (vdec) takeVideo(await vdec.decodeAll(null));
    if (adec) takeAudio(await adec.decodeAll(null));
  } finally {
    pkt.free();
    vdec?.close();
    adec?.close();
    await demux.close();
  }
  out.audioRms = out.audioSamples ? Math.sqrt(sumSq / out.audioSamples) : 0;
  return out;
}
