/**
 * One bench caller: an RtcClient joined to the server, a driving loop at `rateHz` (its own phase, so several
 * callers do not send in lock-step) and measurement windows. In a window it records when each driving frame was
 * sent, when each video frame was decoded (by RTP timestamp), and the render reports, and from those it computes:
 * fps received (decoded) and rendered, end-to-end latency (driving frame sent → the video frame carrying it
 * decoded, matched by render report seq + RTP timestamp), render and encode ms, uplink and downlink bytes.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { DrivingValues } from '../../../shared/src/driving-values.js';
import type { VideoCodecName } from '../../../shared/src/signaling.js';
import { mapTrackerFace } from '../../../shared/src/tracker-mapping.js';
import { encodeDrivingFrame } from '../../../shared/src/wire.js';
import { RtcClient } from './rtc-client.js';
import { round, summarise, type Summary } from './stats.js';

export interface CallerWindow {
  seconds: number;
  drivingSent: number;
  /** video frames decoded by the caller per second (what it received) */
  fpsReceived: number;
  /** render reports of freshly rendered frames per second (re-sent keepalive pictures excluded) */
  fpsRendered: number;
  latencyMs: Summary;
  renderMs: Summary;
  encodeMs: Summary;
  framesIncomplete: number;
  uplinkPayloadBytes: number;
  downlinkBytes: number;
  /** session errors the server sent during the window (e.g. render-failed) */
  errors: string[];
  /** raw samples, for aggregates over several callers */
  samples: { latencyMs: number[]; renderMs: number[]; encodeMs: number[] };
}

interface Report {
  seq: number;
  ts: number;
  renderMs: number;
  encodeMs: number;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function roundSummary(s: Summary): Summary {
  return { n: s.n, median: round(s.median, 1), p90: round(s.p90, 1), max: round(s.max, 1) };
}

/** Recorded MediaPipe tracker output (frames[].blendshapes/matrix) as driving values, or synthetic motion when missing. */
export function loadDriving(file: string | null): { values: DrivingValues[]; source: string } {
  if (file && existsSync(file)) {
    const json = JSON.parse(readFileSync(file, 'utf8')) as { frames?: Array<{ faces?: number; blendshapes?: number[]; matrix?: number[] }> };
    const values = (json.frames ?? [])
      .filter((f) => (f.faces ?? 0) > 0 && Array.isArray(f.blendshapes) && Array.isArray(f.matrix))
      .map((f) => mapTrackerFace({ blendshapes: f.blendshapes as number[], matrix: f.matrix as number[] }));
    if (values.length > 0) return { values, source: `${file} (${values.length} tracked frames, looped)` };
  }
  const values: DrivingValues[] = [];
  for (let i = 0; i < 300; i++) {
    const t = i / 30;
    const b = new Float32Array(52);
    b[25] = 0.5 + 0.5 * Math.sin(2 * Math.PI * 2 * t); // jawOpen, talking-like
    b[9] = b[10] = i % 90 < 4 ? 1 : 0; // blinks
    values.push({ pose: Float32Array.from([0.1 * Math.sin(t), 0.2 * Math.sin(0.7 * t), 0.05 * Math.sin(1.3 * t), 0, 0, -45]), gaze: Float32Array.from([0.1 * Math.sin(0.5 * t), 0]), blendshapes: b });
  }
  return { values, source: 'synthetic head motion and talking (no tracker file)' };
}

export class CallerRig {
  private loop: Promise<void> | null = null;
  private driving = false;
  private closed = false;
  private seq = 0;
  private measuring = false;
  /** decode times are collected from beginWindow until result() (late frames of the window included) */
  private collecting = false;
  private sentAt = new Map<number, number>();
  /** rtp timestamp → first decode time (kept for the window and the moments after it, for late frames) */
  private decodedAt = new Map<number, number>();
  private reports: Report[] = [];
  private decodedInWindow = 0;
  private windowStart = 0;
  private windowEnd = 0;
  private base = { up: 0, down: 0, incomplete: 0, errors: 0 };
  private end = { up: 0, down: 0, incomplete: 0, errors: 0 };

  private constructor(
    readonly index: number,
    readonly client: RtcClient,
  ) {
    client.onFrame = (f) => {
      if (!this.collecting) return;
      if (!this.decodedAt.has(f.rtpTimestamp)) this.decodedAt.set(f.rtpTimestamp, f.decodedAt);
      if (this.measuring) this.decodedInWindow++;
    };
    client.onReport = (r) => {
      if (this.measuring) this.reports.push({ seq: r.seq, ts: r.rtpTimestamp, renderMs: r.renderMs, encodeMs: r.encodeMs });
    };
  }

  static async connect(index: number, url: string, avatar: string, codec: VideoCodecName): Promise<CallerRig> {
    return new CallerRig(index, await RtcClient.connect({ url, avatar, codec }));
  }

  /** Starts sending driving frames at `rateHz`, the first one after `phaseMs`. */
  startDriving(values: readonly DrivingValues[], rateHz: number, phaseMs: number): void {
    if (this.loop || this.closed || values.length === 0) return;
    this.driving = true;
    const period = 1000 / rateHz;
    this.loop = (async () => {
      let next = performance.now() + phaseMs;
      await sleep(phaseMs);
      while (this.driving && !this.closed) {
        const v = values[this.seq % values.length] as DrivingValues;
        this.seq++;
        const now = performance.now();
        try {
          this.client.send(encodeDrivingFrame({ seq: this.seq, captureMs: Math.floor(now), faceFound: true, pose: v.pose, gaze: v.gaze, blendshapes: v.blendshapes }));
        } catch {
          // the channel closed under us (the server ended the session): the window reports it through errors / fps
        }
        if (this.measuring) this.sentAt.set(this.seq, now);
        next += period;
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait);
        else next = performance.now(); // fell behind (a busy machine): do not burst to catch up
      }
    })();
  }

  beginWindow(): void {
    this.sentAt.clear();
    this.decodedAt.clear();
    this.reports = [];
    this.decodedInWindow = 0;
    const s = this.client.stats;
    this.base = { up: s.bytesSent, down: s.rtpBytes, incomplete: s.framesIncomplete, errors: this.client.sessionErrors.length };
    this.windowStart = performance.now();
    this.measuring = true;
    this.collecting = true;
  }

  endWindow(): void {
    if (!this.measuring) return;
    this.measuring = false;
    this.windowEnd = performance.now();
    const s = this.client.stats;
    this.end = { up: s.bytesSent, down: s.rtpBytes, incomplete: s.framesIncomplete, errors: this.client.sessionErrors.length };
  }

  /** The last window's numbers (call a few hundred ms after endWindow, so that late frames are matched). */
  result(): CallerWindow {
    const secs = Math.max(1e-3, (this.windowEnd - this.windowStart) / 1000);
    const latencies: number[] = [];
    const seenSeq = new Set<number>();
    for (const r of this.reports) {
      if (r.renderMs === 0 || seenSeq.has(r.seq)) continue; // re-sent pictures carry an old seq
      const sent = this.sentAt.get(r.seq);
      const dec = this.decodedAt.get(r.ts);
      if (sent === undefined || dec === undefined) continue;
      seenSeq.add(r.seq);
      latencies.push(dec - sent);
    }
    const rendered = this.reports.filter((r) => r.renderMs > 0);
    const renderMs = rendered.map((r) => r.renderMs);
    const encodeMs = rendered.map((r) => r.encodeMs);
    this.decodedAt.clear();
    this.collecting = false;
    return {
      seconds: round(secs, 2),
      drivingSent: this.sentAt.size,
      fpsReceived: round(this.decodedInWindow / secs, 1),
      fpsRendered: round(rendered.length / secs, 1),
      latencyMs: roundSummary(summarise(latencies)),
      renderMs: roundSummary(summarise(renderMs)),
      encodeMs: roundSummary(summarise(encodeMs)),
      framesIncomplete: this.end.incomplete - this.base.incomplete,
      uplinkPayloadBytes: this.end.up - this.base.up,
      downlinkBytes: this.end.down - this.base.down,
      errors: this.client.sessionErrors.slice(this.base.errors, this.end.errors),
      samples: { latencyMs: latencies, renderMs, encodeMs },
    };
  }

  /** Stops driving and closes the client. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.driving = false;
    this.measuring = false;
    this.collecting = false;
    await this.loop;
    await this.client.close();
  }
}
