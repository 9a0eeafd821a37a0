/**
 * Encode worker (worker_threads; started through encode-worker.mjs): converts, encodes and packetises the
 * pictures of the streams the main thread opened on it, so that the main thread only moves packets.
 * Protocol in encode-protocol.ts. One RtpEncoder per stream; the pictures are read from shared memory.
 */
import { parentPort } from 'node:worker_threads';
import type { FromWorker, TestFault, ToWorker } from './encode-protocol.js';
import { encodePicture, type Picture } from './frame-encoder.js';
import { RtpEncoder } from './rtp-encoder.js';

const port = parentPort;
if (!port) throw new Error('encode-worker-main.ts must run in a worker thread');

const streams = new Map<number, { enc: RtpEncoder; picture: Picture }>();
let fault: TestFault | null = null;

function send(m: FromWorker, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(m, transfer);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function encode(m: Extract<ToWorker, { type: 'encode' }>): void {
  const s = streams.get(m.id);
  if (!s) {
    send({ type: 'encode-error', id: m.id, seq: m.seq, message: 'no such stream on this encode worker' });
    return;
  }
  if (fault) {
    const f = fault;
    fault = null;
    if (f === 'throw') {
      send({ type: 'encode-error', id: m.id, seq: m.seq, message: 'injected encoder failure (test)' });
      return;
    }
    if (f === 'crash') throw new Error('injected encode worker crash (test)');
    for (;;) {
      // 'hang': block this thread, as a wedged encoder would (the main side abandons the worker)
    }
  }
  try {
    const f = encodePicture(s.enc, s.picture, m.source, m.pts90k, m.keyframe);
    let total = 0;
    for (const b of f.rtp) total += b.length;
    for (const p of f.packets) total += p.data.length;
    const data = new ArrayBuffer(total);
    const bytes = new Uint8Array(data);
    let at = 0;
    for (const b of f.rtp) {
      bytes.set(b, at);
      at += b.length;
    }
    for (const p of f.packets) {
      bytes.set(p.data, at);
      at += p.data.length;
    }
    send(
      {
        type: 'encoded',
        id: m.id,
        seq: m.seq,
        encodeMs: f.encodeMs,
        key: f.key,
        data,
        rtp: f.rtp.map((b) => b.length),
        packets: f.packets.map((p) => ({ length: p.data.length, pts90k: p.pts90k, key: p.key })),
      },
      [data],
    );
  } catch (err) {
    send({ type: 'encode-error', id: m.id, seq: m.seq, message: message(err) });
  }
}

send({ type: 'ready' });

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'open': {
      try {
        const enc = new RtpEncoder(m.options);
        streams.set(m.id, { enc, picture: { rgb: m.rgb ? new Float32Array(m.rgb) : null, yuv: new Uint8Array(m.yuv) } });
        const x = enc.extradata;
        const extradata = x ? new Uint8Array(x).buffer : null; // a copy of its own, transferred
        send({ type: 'opened', id: m.id, extradata }, extradata ? [extradata] : []);
      } catch (err) {
        send({ type: 'open-error', id: m.id, message: message(err) });
      }
      return;
    }
    case 'encode':
      encode(m);
      return;
    case 'bitrate':
      streams.get(m.id)?.enc.setBitrate(m.bps);
      return;
    case 'close':
      streams.get(m.id)?.enc.close();
      streams.delete(m.id);
      return;
    case 'test-fault':
      fault = m.mode;
      return;
    case 'exit':
      for (const s of streams.values()) s.enc.close();
      streams.clear();
      port.close();
      return;
  }
});
