/**
 * Render report, version 1 (server → client on the driving data channel, one per video frame sent), so
 * the client can measure end-to-end latency: it matches `rtpTimestamp` with the decoded frame's
 * `requestVideoFrameCallback` metadata and subtracts the driving frame's capture time.
 * Little-endian, 16 bytes:
 *
 * | offset | size | type | field                                                             |
 * |--------|------|------|-------------------------------------------------------------------|
 * | 0      | 1    | u8   | version = 1                                                       |
 * | 1      | 1    | u8   | kind = 0x52 ('R')                                                 |
 * | 2      | 4    | u32  | seq of the driving frame rendered into this video frame           |
 * | 6      | 4    | u32  | RTP timestamp (90 kHz) of the video frame as sent                 |
 * | 10     | 2    | u16  | render time, units of 0.1 ms (saturates at 6553.5 ms)             |
 * | 12     | 2    | u16  | encode time, units of 0.1 ms (saturates)                          |
 * | 14     | 2    | u16  | reserved, 0                                                       |
 *
 * Note: werift rewrites RTP timestamps with a per-track random offset, so the server reports the
 * timestamp as it will appear on the wire (what the receiver sees).
 */
const RENDER_REPORT_VERSION = 1;
const RENDER_REPORT_KIND = 0x52;
export const RENDER_REPORT_BYTES = 16;

export interface RenderReport {
  seq: number;
  rtpTimestamp: number;
  renderMs: number;
  encodeMs: number;
}

const sat = (ms: number): number => Math.max(0, Math.min(65535, Math.round(ms * 10)));

export function encodeRenderReport(r: RenderReport): Uint8Array {
  const out = new Uint8Array(RENDER_REPORT_BYTES);
  const dv = new DataView(out.buffer);
  dv.setUint8(0, RENDER_REPORT_VERSION);
  dv.setUint8(1, RENDER_REPORT_KIND);
  dv.setUint32(2, r.seq >>> 0, true);
  dv.setUint32(6, r.rtpTimestamp >>> 0, true);
  dv.setUint16(10, sat(r.renderMs), true);
  dv.setUint16(12, sat(r.encodeMs), true);
  return out;
}

export function decodeRenderReport(data: ArrayBufferView | ArrayBuffer): RenderReport | null {
  const b = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (b.byteLength !== RENDER_REPORT_BYTES) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint8(0) !== RENDER_REPORT_VERSION || dv.getUint8(1) !== RENDER_REPORT_KIND) return null;
  return { seq: dv.getUint32(2, true), rtpTimestamp: dv.getUint32(6, true), renderMs: dv.getUint16(10, true) / 10, encodeMs: dv.getUint16(12, true) / 10 };
}
