/**
 * Real Opus packets for tests: the first `seconds` of a WAV (e.g. ../shared/data/speech-english-16k.wav) decoded,
 * resampled to 48 kHz mono and encoded with libopus (node-av) into 20 ms packets, as a browser would send them.
 */
import { Decoder, Demuxer, Encoder, FilterAPI } from 'node-av/api';
import { FF_ENCODER_LIBOPUS } from 'node-av/constants';
import { Packet, type Frame } from 'node-av/lib';

export const OPUS_FRAME_SAMPLES = 960; // 20 ms at 48 kHz

export async function encodeOpusClip(wavPath: string, seconds: number, bitrate = 32_000): Promise<Buffer[]> {
  const input = await Demuxer.open(wavPath);
  const stream = input.audio();
  if (!stream) {
    await input.close();
    throw new Error(`${wavPath}: no audio stream`);
  }
  const decoder = await Decoder.create(stream);
  const filter = FilterAPI.create(`aresample=48000,aformat=sample_fmts=s16:channel_layouts=mono,asetnsamples=n=${OPUS_FRAME_SAMPLES}:p=1`);
  const encoder = await Encoder.create(FF_ENCODER_LIBOPUS, { bitrate });
  const out: Buffer[] = [];
  const want = Math.round((seconds * 1000) / 20);
  const pkt = new Packet();
  pkt.alloc();
  const take = (frames: Frame[]): void => {
    for (const f of frames) {
      if (out.length < want) for (const p of encoder.encodeAllSync(f)) {
        if (p.data) out.push(Buffer.from(p.data));
        p.free();
      }
      f.free();
    }
  };
  try {
    while (out.length < want && input.getFormatContext().readFrameSync(pkt) >= 0) {
      if (pkt.streamIndex !== stream.index) {
        pkt.unref();
        continue;
      }
      pkt.timeBase = stream.timeBase;
      const frames = decoder.decodeAllSync(pkt);
      pkt.unref();
      for (const f of frames) {
        take(filter.processAllSync(f));
        f.free();
      }
    }
  } finally {
    pkt.free();
    encoder.close();
    filter.close();
    decoder.close();
    await input.close();
  }
  if (out.length === 0) throw new Error(`${wavPath}: no Opus packets came out`);
  return out.slice(0, want);
}
