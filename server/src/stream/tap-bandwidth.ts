/**
 * TapBandwidth: the bandwidth policy of the server's shared encodes. Every WebRTC receiver of a tap (WHEP viewers,
 * room feeds) hands its video sender's RTCP to a BitrateController per tap: receiver
 * reports give the fraction lost, REMB a receiver's estimate. Once a second the controller's target, if it
 * changed, goes to the tap (MediaTap.setVideoBitrate → VideoEncoder.setBitrate). Policy details in
 * bitrate-controller.ts and docs/egress.md. dnp_stream_bitrate_bps{stream} shows the target,
 * dnp_stream_bitrate_changes_total{stream,direction} the changes.
 */
import { Counter, Gauge } from 'prom-client';
import { ReceiverEstimatedMaxBitrate, RtcpPayloadSpecificFeedback, RtcpRrPacket, RtcpSrPacket, type RtcpPacket } from 'werift';
import type { Metrics } from '../metrics.js';
import { BitrateController, type ReceiverFeedback } from './bitrate-controller.js';
import type { MediaTap, Unsubscribe } from './media-tap.js';

/** The floor: a picture the avatar still reads at (bit/s). */
export const MIN_STREAM_BITRATE = 150_000;

/** What one video RTCP packet says about one receiver (for the sender with SSRC `ssrc`). */
export function feedbackFromRtcp(p: RtcpPacket, ssrc: number): ReceiverFeedback | null {
  if (p instanceof RtcpRrPacket || p instanceof RtcpSrPacket) {
    const r = p.reports.find((x) => x.ssrc === ssrc);
    return r ? { fractionLost: r.fractionLost / 256 } : null;
  }
  if (p instanceof RtcpPayloadSpecificFeedback && p.feedback instanceof ReceiverEstimatedMaxBitrate) {
    return { rembBps: Number(p.feedback.bitrate) };
  }
  return null;
}

/** The server's policy, by its Metrics (a room Feed finds it without more plumbing). */
const byMetrics = new WeakMap<Metrics, TapBandwidth>();

interface TapState {
  controller: BitrateController;
  receivers: number;
  timer: NodeJS.Timeout;
}

export class TapBandwidth {
  private readonly taps = new Map<MediaTap, TapState>();
  private readonly bitrate: Gauge<'stream'>;
  private readonly changes: Counter<'stream' | 'direction'>;

  constructor(metrics: Metrics) {
    this.bitrate = new Gauge({ name: 'dnp_stream_bitrate_bps', help: 'target bitrate of a shared encode set by the bandwidth policy (bit/s)', labelNames: ['stream'], registers: [metrics.registry] });
    this.changes = new Counter({ name: 'dnp_stream_bitrate_changes_total', help: 'bitrate changes of a shared encode by the bandwidth policy', labelNames: ['stream', 'direction'], registers: [metrics.registry] });
    byMetrics.set(metrics, this);
  }

  /** The policy of the server that owns `metrics`, if it has one. */
  static of(metrics: Metrics): TapBandwidth | undefined {
    return byMetrics.get(metrics);
  }

  /**
   * Feeds one receiver's RTCP (via `subscribe`) into its tap's controller; returns the detach function. A tap
   * without setVideoBitrate is left alone.
   */
  attach(tap: MediaTap, receiverId: string, ssrc: () => number, subscribe: (cb: (p: RtcpPacket) => void) => void): Unsubscribe {
    if (!tap.setVideoBitrate || !tap.videoBitrate || tap.closed) return () => {};
    let st = this.taps.get(tap);
    if (!st) {
      const start = tap.videoBitrate();
      const controller = new BitrateController({ minBps: Math.min(MIN_STREAM_BITRATE, start), maxBps: start, startBps: start });
      const timer = setInterval(() => this.tick(tap), 1000);
      st = { controller, receivers: 0, timer };
      this.taps.set(tap, st);
      this.bitrate.set({ stream: tap.id }, start);
      tap.onClosed(() => this.forget(tap));
    }
    const state = st;
    state.receivers++;
    let attached = true;
    subscribe((p) => {
      if (!attached) return;
      const fb = feedbackFromRtcp(p, ssrc());
      if (fb) state.controller.feedback(receiverId, fb, performance.now());
    });
    return () => {
      if (!attached) return;
      attached = false;
      state.controller.removeReceiver(receiverId);
      state.receivers--;
    };
  }

  private tick(tap: MediaTap): void {
    const st = this.taps.get(tap);
    if (!st) return;
    const before = st.controller.target;
    const next = st.controller.update(performance.now());
    if (next === null) return;
    tap.setVideoBitrate?.(next);
    this.bitrate.set({ stream: tap.id }, next);
    this.changes.inc({ stream: tap.id, direction: next < before ? 'down' : 'up' });
  }

  /** The controller of a tap (tests, stats). */
  controllerOf(tap: MediaTap): BitrateController | undefined {
    return this.taps.get(tap)?.controller;
  }

  private forget(tap: MediaTap): void {
    const st = this.taps.get(tap);
    if (!st) return;
    clearInterval(st.timer);
    this.taps.delete(tap);
    this.bitrate.remove({ stream: tap.id });
  }

  close(): void {
    for (const tap of [...this.taps.keys()]) this.forget(tap);
  }
}
