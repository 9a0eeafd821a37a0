/**
 * Driving-frame wire format, version 1 (client → server, one message per tracked camera frame on an
 * unordered, `maxRetransmits: 0` WebRTC data channel). Little-endian, fixed size: 78 bytes.
 *
 * | offset | size | type   | field                                                                  |
 * |--------|------|--------|------------------------------------------------------------------------|
 * | 0      | 1    | u8     | version = 1                                                            |
 * | 1      | 1    | u8     | flags: bit 0 = face found; bits 1-7 must be 0                          |
 * | 2      | 4    | u32    | sequence number (wraps at 2^32)                                        |
 * | 6      | 4    | u32    | capture timestamp, milliseconds on the sender's clock (wraps at 2^32)  |
 * | 10     | 6    | 3×i16  | pitch, yaw, roll in units of 1e-4 rad (range ±π; |value| <= 31416)     |
 * | 16     | 6    | 3×i16  | tx, ty, tz in units of 0.01 cm (range ±327.67 cm)                       |
 * | 22     | 4    | 2×i16  | gaze yaw, gaze pitch in units of 1e-4 rad (|value| <= 15708, ±π/2)     |
 * | 26     | 52   | 52×u8  | blendshapes in MediaPipe order, value × 255 rounded (0..255 ↔ 0..1)    |
 *
 * Quantisation steps: angles 1e-4 rad (0.0057°), translation 0.1 mm, blendshapes 1/255.
 * Payload rate at 30 Hz: 78 B × 30 = 2340 B/s = 18.72 kbit/s (≤ 24 kbit/s). Each message also carries
 * 93 bytes of transport headers (SCTP common header 12 + DATA chunk 16, DTLS 1.2 AES-GCM record 13 + 8 + 16,
 * UDP 8 + IPv4 20), so the IP-level uplink is (78 + 93) × 30 × 8 = 41.0 kbit/s.
 *
 * A decoder rejects (never throws on) anything else: wrong length, unknown version, reserved flag bits
 * set, angles outside their range, a translation of -32768 (outside ±327.67 cm). Encoding rejects NaN/±Infinity and clamps nothing silently: values
 * outside the representable range are an error, except blendshapes, which the tracker may report a hair
 * outside [0, 1] and which are clamped.
 */
import { BLENDSHAPE_COUNT } from './blendshapes.js';
import type { DrivingValues } from './driving-values.js';

const WIRE_VERSION = 1;
export const DRIVING_FRAME_BYTES = 78;
const FLAG_FACE_FOUND = 1;

const ANGLE_SCALE = 1e4;
const TRANSLATION_SCALE = 100;
const MAX_ANGLE_Q = 31416; // round(π × 1e4)
const MAX_GAZE_Q = 15708; // round(π/2 × 1e4)
const OFF_POSE = 10;
const OFF_GAZE = 22;
const OFF_BLEND = 26;

export interface DrivingFrame extends DrivingValues {
  seq: number; // u32
  captureMs: number; // u32, sender clock in ms
  faceFound: boolean;
}

export type DecodeResult =
  | { ok: true; frame: DrivingFrame }
  | { ok: false; error: string };

function checkFinite(name: string, v: number): void {
  if (!Number.isFinite(v)) throw new RangeError(`${name} is not a finite number (${v})`);
}

function quantise(name: string, v: number, scale: number, maxQ: number): number {
  checkFinite(name, v);
  const q = Math.round(v * scale);
  if (q > maxQ || q < -maxQ) throw new RangeError(`${name}=${v} is outside the wire range ±${maxQ / scale}`);
  return q;
}

/** Encodes a frame into a new 78-byte buffer (or `out`). Throws RangeError on non-finite or out-of-range values. */
export function encodeDrivingFrame(f: DrivingFrame, out = new Uint8Array(DRIVING_FRAME_BYTES)): Uint8Array {
  if (out.byteLength < DRIVING_FRAME_BYTES) throw new RangeError('output buffer too small');
  if (f.pose.length !== 6 || f.gaze.length !== 2 || f.blendshapes.length !== BLENDSHAPE_COUNT) {
    throw new RangeError('pose must have 6, gaze 2 and blendshapes 52 values');
  }
  const dv = new DataView(out.buffer, out.byteOffset, DRIVING_FRAME_BYTES);
  dv.setUint8(0, WIRE_VERSION);
  dv.setUint8(1, f.faceFound ? FLAG_FACE_FOUND : 0);
  dv.setUint32(2, f.seq >>> 0, true);
  dv.setUint32(6, Math.floor(f.captureMs) >>> 0, true);
  for (let i = 0; i < 3; i++) {
    dv.setInt16(OFF_POSE + 2 * i, quantise(`pose[${i}]`, f.pose[i] as number, ANGLE_SCALE, MAX_ANGLE_Q), true);
    dv.setInt16(OFF_POSE + 6 + 2 * i, quantise(`pose[${i + 3}]`, f.pose[i + 3] as number, TRANSLATION_SCALE, 32767), true);
  }
  for (let i = 0; i < 2; i++) {
    dv.setInt16(OFF_GAZE + 2 * i, quantise(`gaze[${i}]`, f.gaze[i] as number, ANGLE_SCALE, MAX_GAZE_Q), true);
  }
  for (let i = 0; i < BLENDSHAPE_COUNT; i++) {
    const v = f.blendshapes[i] as number;
    checkFinite(`blendshapes[${i}]`, v);
    dv.setUint8(OFF_BLEND + i, Math.round(Math.min(1, Math.max(0, v)) * 255));
  }
  return out;
}

/** Decodes and validates one message. Never throws. */
export function decodeDrivingFrame(data: ArrayBufferView | ArrayBuffer): DecodeResult {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength !== DRIVING_FRAME_BYTES) {
    return { ok: false, error: `length ${bytes.byteLength}, expected ${DRIVING_FRAME_BYTES}` };
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint8(0);
  if (version !== WIRE_VERSION) return { ok: false, error: `unsupported version ${version}` };
  const flags = dv.getUint8(1);
  if ((flags & ~FLAG_FACE_FOUND) !== 0) return { ok: false, error: `reserved flag bits set (0x${flags.toString(16)})` };
  const pose = new Float32Array(6);
  const gaze = new Float32Array(2);
  const blendshapes = new Float32Array(BLENDSHAPE_COUNT);
  for (let i = 0; i < 3; i++) {
    const q = dv.getInt16(OFF_POSE + 2 * i, true);
    if (q > MAX_ANGLE_Q || q < -MAX_ANGLE_Q) return { ok: false, error: `pose angle ${i} out of range (${q})` };
    pose[i] = q / ANGLE_SCALE;
    const t = dv.getInt16(OFF_POSE + 6 + 2 * i, true);
    // -32768 (-327.68 cm) is outside the format's ±327.67 cm: no encoder produces it
    if (t < -32767) return { ok: false, error: `translation ${i} out of range (${t})` };
    pose[i + 3] = t / TRANSLATION_SCALE;
  }
  for (let i = 0; i < 2; i++) {
    const q = dv.getInt16(OFF_GAZE + 2 * i, true);
    if (q > MAX_GAZE_Q || q < -MAX_GAZE_Q) return { ok: false, error: `gaze angle ${i} out of range (${q})` };
    gaze[i] = q / ANGLE_SCALE;
  }
  for (let i = 0; i < BLENDSHAPE_COUNT; i++) blendshapes[i] = dv.getUint8(OFF_BLEND + i) / 255;
  return {
    ok: true,
    frame: {
      seq: dv.getUint32(2, true),
      captureMs: dv.getUint32(6, true),
      faceFound: (flags & FLAG_FACE_FOUND) !== 0,
      pose,
      gaze,
      blendshapes,
    },
  };
}
