/** Streams PCM through a SpeechFeatureStream in a cycle of chunk sizes, reading as it goes, as the live server does. */
import { SpeechFeatureStream } from '../../server/src/audio/speech-features/index.js';

export function streamInChunks(pcm: Float32Array, sizes: readonly number[], readEvery = 1): Float32Array {
  const s = new SpeechFeatureStream();
  const parts: Float32Array[] = [];
  for (let pos = 0, k = 0; pos < pcm.length; k++) {
    const n = sizes[k % sizes.length] as number;
    s.push(pcm.subarray(pos, pos + n));
    pos += n;
    if (k % readEvery === 0) parts.push(s.read());
  }
  s.flush();
  parts.push(s.read());
  return concatFloat32(parts);
}

export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Whether two float arrays hold the same bytes. */
export function sameBytes(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
