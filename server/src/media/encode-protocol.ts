/**
 * Messages between the main thread (media/encode-pool.ts) and an encode worker (media/encode-worker-main.ts).
 * Each stream on a worker has a numeric id; its picture buffers are SharedArrayBuffers both sides see.
 *
 * main → worker
 *   open     { id, options, rgb, yuv }            open an RtpEncoder for a stream (answer: opened | open-error)
 *   encode   { id, seq, source, pts90k, keyframe } convert (rgb) + encode + packetise the stream's picture
 *   bitrate  { id, bps }                           new target bitrate (the encoder re-opens before the next picture)
 *   close    { id }                                free the stream's encoder
 *   exit     {}                                    free everything and end the thread
 *   test-fault { mode }                            tests only: the next encode throws, hangs, or kills the thread
 * worker → main
 *   ready    {}                                    the worker has loaded (sent once, first)
 *   opened   { id, extradata }                     the encoder is open (extradata: its parameter sets, or null)
 *   open-error { id, message }
 *   encoded  { id, seq, encodeMs, key, data, rtp, packets }  `data` (transferred) holds the RTP packets (lengths
 *            in `rtp`) followed by the encoder's packets (`packets`: length, pts90k, key), back to back
 *   encode-error { id, seq, message }
 * Everything the worker sends is checked here before the main thread uses it.
 */
import type { FrameEncoderOptions, PictureSource } from './frame-encoder.js';

export type TestFault = 'throw' | 'hang' | 'crash';

export type ToWorker =
  | { type: 'open'; id: number; options: FrameEncoderOptions; rgb: SharedArrayBuffer | null; yuv: SharedArrayBuffer }
  | { type: 'encode'; id: number; seq: number; source: PictureSource; pts90k: number; keyframe: boolean }
  | { type: 'bitrate'; id: number; bps: number }
  | { type: 'close'; id: number }
  | { type: 'exit' }
  | { type: 'test-fault'; mode: TestFault };

export interface EncodedPacketInfo {
  length: number;
  pts90k: number;
  key: boolean;
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'opened'; id: number; extradata: ArrayBuffer | null }
  | { type: 'open-error'; id: number; message: string }
  | { type: 'encoded'; id: number; seq: number; encodeMs: number; key: boolean; data: ArrayBuffer; rtp: number[]; packets: EncodedPacketInfo[] }
  | { type: 'encode-error'; id: number; seq: number; message: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

function isPacketInfo(v: unknown): v is EncodedPacketInfo {
  return isObject(v) && isCount(v.length) && typeof v.pts90k === 'number' && Number.isFinite(v.pts90k) && typeof v.key === 'boolean';
}

/** A message from an encode worker, checked; null when it is not one we know (or its sizes do not add up). */
export function parseFromWorker(v: unknown): FromWorker | null {
  if (isObject(v) && v.type === 'ready') return { type: 'ready' };
  if (!isObject(v) || !isCount(v.id)) return null;
  const id = v.id;
  switch (v.type) {
    case 'opened':
      return v.extradata === null || v.extradata instanceof ArrayBuffer ? { type: 'opened', id, extradata: v.extradata } : null;
    case 'open-error':
      return typeof v.message === 'string' ? { type: 'open-error', id, message: v.message } : null;
    case 'encode-error':
      return isCount(v.seq) && typeof v.message === 'string' ? { type: 'encode-error', id, seq: v.seq, message: v.message } : null;
    case 'encoded': {
      const { seq, encodeMs, key, data, rtp, packets } = v;
      if (!isCount(seq) || typeof encodeMs !== 'number' || !Number.isFinite(encodeMs) || typeof key !== 'boolean') return null;
      if (!(data instanceof ArrayBuffer) || !Array.isArray(rtp) || !rtp.every(isCount) || !Array.isArray(packets) || !packets.every(isPacketInfo)) return null;
      const total = (rtp as number[]).reduce((a, b) => a + b, 0) + (packets as EncodedPacketInfo[]).reduce((a, p) => a + p.length, 0);
      if (total !== data.byteLength) return null;
      return { type: 'encoded', id, seq, encodeMs, key, data, rtp: rtp as number[], packets: packets as EncodedPacketInfo[] };
    }
    default:
      return null;
  }
}
