// Opus round trip for training-data augmentation: a WAV goes through libopus (48 kHz, 20 ms frames, the
// codec a WebRTC caller's microphone arrives in) and back to 16 kHz mono 16-bit PCM, with node-av (FFmpeg).
// Usage: node train/audio_expression/opus_roundtrip.mjs IN.wav OUT.wav [BITRATE_BPS]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decoder, Demuxer, Encoder, FilterAPI, Muxer } from 'node-av/api';
import { AV_LOG_ERROR, FF_ENCODER_LIBOPUS, FF_ENCODER_PCM_S16LE } from 'node-av/constants';
import { Log } from 'node-av/lib';

const [inPath, outPath, bitrateArg] = process.argv.slice(2);
if (!inPath || !outPath || inPath === '-h' || inPath === '--help') {
  process.stderr.write('usage: node train/audio_expression/opus_roundtrip.mjs IN.wav OUT.wav [BITRATE_BPS (default 24000)]\n');
  process.exit(inPath === '-h' || inPath === '--help' ? 0 : 2);
}
const bitrate = Number(bitrateArg ?? 24000);
if (!Number.isInteger(bitrate) || bitrate < 6000 || bitrate > 510000) {
  process.stderr.write(`bitrate must be an integer 6000-510000 (got ${bitrateArg})\n`);
  process.exit(2);
}
Log.setLevel(AV_LOG_ERROR);
// node-av's async generators use Promise.withResolvers, which Node 20 lacks (see server/src/prepare/video.ts).
// (lib ES2022 here: the polyfill's target is typed by hand rather than by lib ES2024, which Node 20 lacks.)
const PromiseCtor = /** @type {PromiseConstructor & { withResolvers?: unknown }} */ (Promise);
if (typeof PromiseCtor.withResolvers !== 'function') {
  PromiseCtor.withResolvers = function withResolvers() {
    /** @type {(value: unknown) => void} */
    let resolve = () => {};
    /** @type {(reason?: unknown) => void} */
    let reject = () => {};
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}

/**
 * Decodes `src`'s audio through `filterSpec` and encodes it with `codec` into `dst`.
 * @param {string} src @param {string} dst @param {string} filterSpec
 * @param {Parameters<typeof Encoder.create>[0]} codec @param {Parameters<typeof Encoder.create>[1]} encoderOptions
 */
async function transcode(src, dst, filterSpec, codec, encoderOptions) {
  const input = await Demuxer.open(src);
  const owned = [];
  try {
    const stream = input.audio();
    if (!stream) throw new Error(`${src}: no audio stream`);
    const decoder = await Decoder.create(stream);
    owned.push(decoder);
    const filter = FilterAPI.create(filterSpec);
    owned.push(filter);
    const encoder = await Encoder.create(codec, encoderOptions);
    owned.push(encoder);
    const output = await Muxer.open(dst);
    owned.push(output);
    const index = output.addStream(encoder);
    for await (const packet of encoder.packets(filter.frames(decoder.frames(input.packets(stream.index))))) {
      if (!packet) continue;
      await output.writePacket(packet, index);
      packet.free();
    }
  } finally {
    for (const o of owned.reverse()) await o.close();
    await input.close();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'dnp-opus-'));
try {
  const ogg = join(dir, 'voice.ogg');
  await transcode(inPath, ogg, 'aresample=48000,aformat=sample_fmts=s16:channel_layouts=mono,asetnsamples=n=960:p=1', FF_ENCODER_LIBOPUS, {
    bitrate,
    options: { application: 'voip', frame_duration: '20' },
  });
  await transcode(ogg, outPath, 'aresample=16000,aformat=sample_fmts=s16:channel_layouts=mono', FF_ENCODER_PCM_S16LE, {});
} finally {
  if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
}
