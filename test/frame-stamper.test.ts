// FrameStamper (server/src/media/frame-stamper.ts): presentation times always increase, the first frame and every
// requested one is a keyframe, and a failed encode keeps the keyframe request. On a real VP8 encoder.
import { afterEach, describe, expect, it } from 'vitest';
import { InlineFrameEncoder } from '../server/src/media/frame-encoder.js';
import { FrameStamper } from '../server/src/media/frame-stamper.js';

describe('FrameStamper', () => {
  let enc: InlineFrameEncoder | null = null;
  afterEach(() => {
    enc?.close();
    enc = null;
  });

  it('stamps increasing 90 kHz times, keyframes first and on request, and keeps a request across a failed encode', async () => {
    enc = new InlineFrameEncoder({ codec: 'vp8', width: 64, height: 64, fps: 25, bitrate: 300_000, maxPacketSize: 1200, rgbInput: true });
    enc.picture.rgb?.fill(0.5);
    const s = new FrameStamper();
    expect(s.wantsKeyframe).toBe(true);
    const a = await s.encode(enc, 'rgb', 10);
    expect(a).toMatchObject({ pts90: 900, keyRequested: true });
    expect(a.frame.key).toBe(true);
    expect(s.wantsKeyframe).toBe(false);
    const b = await s.encode(enc, 'rgb', 10); // same time again: one tick later
    expect(b.pts90).toBe(901);
    expect(b.keyRequested).toBe(false);
    expect(b.frame.key).toBe(false);
    const c = await s.encode(enc, 'rgb', 5); // a clock that went back: still increasing
    expect(c.pts90).toBe(902);

    s.requestKeyframe();
    enc.close(); // the encoder fails: the keyframe request stays for the next frame
    await expect(s.encode(enc, 'rgb', 40)).rejects.toThrow();
    expect(s.wantsKeyframe).toBe(true);
    enc = new InlineFrameEncoder({ codec: 'vp8', width: 64, height: 64, fps: 25, bitrate: 300_000, maxPacketSize: 1200, rgbInput: true });
    enc.picture.rgb?.fill(0.3);
    const d = await s.encode(enc, 'rgb', 80);
    expect(d).toMatchObject({ pts90: 7200, keyRequested: true });
    expect(d.frame.key).toBe(true);
  });
});
