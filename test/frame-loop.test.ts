/**
 * The frame loop of sessions and room streams (server/src/session/frame-loop.ts) under fake timers, with a fake
 * target: pacing on the fps grid, latest wins, keepalive re-sends, keyframe throttling, failures, close. And a
 * VideoOutput on a fake sink (no WebRTC): packets, keyframes and render reports.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeRenderReport } from '../shared/src/render-report.js';
import { InlineFrameEncoder } from '../server/src/media/frame-encoder.js';
import { FrameLoop, type FrameLoopOptions } from '../server/src/session/frame-loop.js';
import { VideoOutput, type VideoSink } from '../server/src/session/video-output.js';

/** A target whose frames take `workMs` (fake time) and that records what the loop asked for, and when. */
class FakeTarget {
  frames: number[] = [];
  resends: number[] = [];
  keyframes: number[] = [];
  failures: Array<{ what: string; message: string }> = [];
  workMs = 10;
  failNext = false;
  isWanted = true;

  renderFrame = (): Promise<void> => {
    this.frames.push(Date.now());
    const fail = this.failNext;
    this.failNext = false;
    return new Promise((resolve, reject) => setTimeout(() => (fail ? reject(new Error('render failed (fake)')) : resolve()), this.workMs));
  };
  resendFrame = (): Promise<void> => {
    this.resends.push(Date.now());
    return new Promise((resolve) => setTimeout(resolve, 2));
  };
  requestKeyframe = (): void => {
    this.keyframes.push(Date.now());
  };
  failed = (what: string, err: unknown): void => {
    this.failures.push({ what, message: err instanceof Error ? err.message : String(err) });
  };
  wanted = (): boolean => this.isWanted;
}

function makeLoop(o: Partial<FrameLoopOptions> = {}): { loop: FrameLoop; t: FakeTarget } {
  const t = new FakeTarget();
  const loop = new FrameLoop({ fps: 25, keepaliveMs: 250, keyframeMinIntervalMs: 500, now: () => Date.now(), ...o }, t);
  return { loop, t };
}

const gaps = (xs: number[]): number[] => xs.slice(1).map((x, i) => x - (xs[i] as number));

describe('FrameLoop (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('renders inputs at most at the fps, on a grid, never two frames closer than half an interval', async () => {
    const { loop, t } = makeLoop();
    loop.start(); // the first frame at once
    const feed = setInterval(() => loop.update(), 10); // a caller driving at 100 Hz
    await vi.advanceTimersByTimeAsync(2000);
    clearInterval(feed);
    loop.close();
    // 25 fps for 2 s: 50 frames (+1 for the one at start)
    expect(t.frames.length).toBeGreaterThanOrEqual(49);
    expect(t.frames.length).toBeLessThanOrEqual(51);
    const g = gaps(t.frames);
    expect(Math.min(...g)).toBeGreaterThanOrEqual(20);
    expect(g.reduce((a, b) => a + b, 0) / g.length).toBeCloseTo(40, 0);
    expect(t.resends).toEqual([]); // always something new: no keepalive
    expect(loop.counts.rendered).toBeGreaterThanOrEqual(t.frames.length - 1); // the one in flight at close() is not counted
  });

  it('one late frame does not delay the next ones: the grid catches up (within half an interval)', async () => {
    const { loop, t } = makeLoop();
    loop.start();
    const feed = setInterval(() => loop.update(), 5);
    await vi.advanceTimersByTimeAsync(200);
    t.workMs = 70; // one slow frame (render hiccup)
    await vi.advanceTimersByTimeAsync(40);
    t.workMs = 10;
    await vi.advanceTimersByTimeAsync(760);
    clearInterval(feed);
    loop.close();
    expect(t.frames.length).toBeGreaterThanOrEqual(24); // 25 fps over 1 s despite the late one
    expect(Math.min(...gaps(t.frames))).toBeGreaterThanOrEqual(20);
  });

  it('latest wins: inputs that arrive during a frame give one frame after it, not one each', async () => {
    const { loop, t } = makeLoop();
    t.workMs = 100; // slower than the fps
    loop.start();
    for (let i = 0; i < 10; i++) {
      await vi.advanceTimersByTimeAsync(5);
      loop.update();
    }
    await vi.advanceTimersByTimeAsync(300); // the first frame ends at 100 ms; one more frame for the 10 inputs
    loop.close();
    expect(t.frames.length).toBe(2);
    expect(loop.counts.skippedWhileBusy).toBe(10);
  });

  it('re-sends the last picture every keepaliveMs while nothing new arrives, and not before the first frame', async () => {
    const { loop, t } = makeLoop({ keepaliveMs: 250 });
    t.isWanted = true;
    t.failNext = true; // the first frame fails: nothing to re-send yet
    loop.start();
    await vi.advanceTimersByTimeAsync(600);
    expect(t.failures).toEqual([{ what: 'frame', message: 'render failed (fake)' }]);
    expect(t.resends).toEqual([]);
    loop.update(); // a frame that works
    await vi.advanceTimersByTimeAsync(2000);
    loop.close();
    expect(t.frames.length).toBe(2);
    // checked every keepaliveMs / 2: a re-send 250-375 ms after the last picture
    expect(t.resends.length).toBeGreaterThanOrEqual(5);
    expect(t.resends.length).toBeLessThanOrEqual(8);
    for (const g of gaps([t.frames[1] as number, ...t.resends])) {
      expect(g).toBeGreaterThanOrEqual(250);
      expect(g).toBeLessThanOrEqual(250 + 125 + 12);
    }
  });

  it('keyframes: honoured at once (a re-send), then one deferred keyframe for every request inside the window', async () => {
    const { loop, t } = makeLoop({ keyframeMinIntervalMs: 500, keepaliveMs: 10_000 });
    loop.start();
    await vi.advanceTimersByTimeAsync(50); // the first frame is out
    const t0 = Date.now();
    expect(loop.requestKeyframe()).toBe('honoured');
    expect(t.keyframes).toEqual([t0]);
    await vi.advanceTimersByTimeAsync(5);
    expect(t.resends).toEqual([t0]); // idle: sent again as a keyframe at once
    await vi.advanceTimersByTimeAsync(95);
    expect(loop.requestKeyframe()).toBe('throttled');
    await vi.advanceTimersByTimeAsync(100);
    expect(loop.requestKeyframe()).toBe('throttled'); // shares the deferred one
    expect(t.keyframes.length).toBe(1);
    await vi.advanceTimersByTimeAsync(400);
    expect(t.keyframes).toEqual([t0, t0 + 500]); // one more, at the end of the window
    expect(t.resends.length).toBe(2);
    expect(loop.counts.keyframeRequestsThrottled).toBe(2);
    loop.close();
  });

  it('renders nothing while nobody wants pictures, and starts when somebody does', async () => {
    const { loop, t } = makeLoop();
    t.isWanted = false;
    loop.start();
    loop.update();
    await vi.advanceTimersByTimeAsync(1000);
    expect(t.frames).toEqual([]);
    expect(t.resends).toEqual([]);
    t.isWanted = true;
    loop.update();
    await vi.advanceTimersByTimeAsync(20);
    expect(t.frames.length).toBe(1);
    loop.close();
  });

  it('close(): no frame, re-send or deferred keyframe afterwards; the frame in flight can be awaited; idempotent', async () => {
    const { loop, t } = makeLoop({ keyframeMinIntervalMs: 500 });
    t.workMs = 30;
    loop.start();
    loop.requestKeyframe();
    loop.requestKeyframe(); // deferred
    const inFlight = loop.inFlight;
    expect(inFlight).not.toBeNull();
    loop.close();
    loop.close();
    loop.update();
    await vi.advanceTimersByTimeAsync(2000);
    await inFlight;
    expect(t.frames.length).toBe(1);
    expect(t.resends).toEqual([]);
    expect(t.keyframes.length).toBe(1);
    expect(loop.inFlight).toBeNull();
    expect(loop.requestKeyframe()).toBe('throttled');
    expect(() => new FrameLoop({ fps: 0, keepaliveMs: 1, keyframeMinIntervalMs: 1 }, t)).toThrow(RangeError);
  });
});

describe('VideoOutput on a fake sink', () => {
  class FakeSink implements VideoSink {
    packets: Buffer[] = [];
    reports: Buffer[] = [];
    lastWireTimestamp: number | undefined = undefined;
    open = true;
    writeRtp(rtp: Buffer): void {
      this.packets.push(rtp);
      this.lastWireTimestamp = rtp.readUInt32BE(4);
    }
    sendReport(report: Buffer): boolean {
      if (!this.open) return false;
      this.reports.push(report);
      return true;
    }
  }

  it('sends each picture as RTP, keyframes at start and on request, and a render report with the wire timestamp', async () => {
    const sink = new FakeSink();
    const out = new VideoOutput(sink, new InlineFrameEncoder({ codec: 'vp8', width: 64, height: 64, fps: 25, bitrate: 300_000, maxPacketSize: 1200, rgbInput: true }));
    const rgb = out.picture.rgb as Float32Array;
    rgb.fill(0.5);
    const a = await out.send('rgb', { seq: 7, renderMs: 3.2 });
    expect(a.key).toBe(true);
    expect(a.packets).toBeGreaterThan(0);
    expect(sink.packets.length).toBe(a.packets);
    const r = decodeRenderReport(sink.reports[0] as Buffer);
    expect(r).toMatchObject({ seq: 7, rtpTimestamp: a.rtpTimestamp, renderMs: 3.2 });
    const b = await out.send('yuv420p', null); // a re-send of the converted picture, no report
    expect(b.key).toBe(false);
    expect(sink.reports.length).toBe(1);
    out.requestKeyframe();
    sink.open = false; // the channel closed: the picture still goes, the report does not
    const c = await out.send('yuv420p', { seq: 8, renderMs: 0 });
    expect(c.key).toBe(true);
    expect(sink.reports.length).toBe(1);
    out.testFailNextSend();
    await expect(out.send('yuv420p', null)).rejects.toThrow(/injected encoder failure/);
    expect(out.toJSON()).toMatchObject({ frames: 3, keyframes: 2, keyframeRequests: 1, reports: 1, encoder: { thread: 'main', frames: 3 } });
    out.close();
    out.close();
    await expect(out.send('yuv420p', null)).rejects.toThrow(/closed/);
  });
});
