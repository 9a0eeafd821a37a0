/**
 * End-to-end latency: camera frame captured on this page → the avatar frame rendered from it shown on
 * this page. Three events meet here, in any order:
 *   1. the page sends driving frame `seq`, captured at `captureMs` (performance.now()), → noteCapture;
 *   2. the server's render report (render-report.ts) says video frame `rtpTimestamp` was rendered from
 *      driving frame `seq`                                                           → noteReport;
 *   3. requestVideoFrameCallback presents the video frame with metadata.rtpTimestamp at
 *      metadata.presentationTime                                                     → notePresented.
 * When a report and a presented frame share an RTP timestamp, latency = presentationTime − captureMs(seq).
 * Each store is bounded, so lost reports or skipped frames cannot grow memory. A match that would put the
 * presentation before the capture is impossible (a report naming the wrong RTP timestamp); it is counted
 * as `inconsistent` and gives no sample. Pure; no I/O.
 */
export interface LatencySample {
  seq: number;
  rtpTimestamp: number;
  /** presentation time − capture time, ms */
  latencyMs: number;
  /** server-side render and encode time for this frame, from the report */
  renderMs: number;
  encodeMs: number;
}

export interface ReportLike {
  seq: number;
  rtpTimestamp: number;
  renderMs: number;
  encodeMs: number;
}

export interface LatencyMatcherCounters {
  reports: number;
  presented: number;
  matched: number;
  /** matched a report, but the driving frame's capture time was no longer (or never) known */
  unknownSeq: number;
  /** matched, but the frame was shown before its driving frame was captured (a wrong report) */
  inconsistent: number;
}

/** Insertion-ordered map that forgets its oldest entries beyond `limit`. */
class BoundedMap<K, V> {
  readonly #m = new Map<K, V>();
  constructor(readonly limit: number) {}
  set(k: K, v: V): void {
    this.#m.delete(k);
    this.#m.set(k, v);
    while (this.#m.size > this.limit) {
      const oldest = this.#m.keys().next();
      if (oldest.done) break;
      this.#m.delete(oldest.value);
    }
  }
  take(k: K): V | undefined {
    const v = this.#m.get(k);
    if (v !== undefined) this.#m.delete(k);
    return v;
  }
  get(k: K): V | undefined {
    return this.#m.get(k);
  }
  get size(): number {
    return this.#m.size;
  }
}

export class LatencyMatcher {
  readonly #captures: BoundedMap<number, number>;
  readonly #reports: BoundedMap<number, ReportLike>;
  readonly #presented: BoundedMap<number, number>;
  readonly #counters: LatencyMatcherCounters = { reports: 0, presented: 0, matched: 0, unknownSeq: 0, inconsistent: 0 };

  /** `history`: how many recent captures / reports / presented frames are kept for matching. */
  constructor(history = 512) {
    if (!(history >= 1)) throw new RangeError('history must be >= 1');
    this.#captures = new BoundedMap(history);
    this.#reports = new BoundedMap(history);
    this.#presented = new BoundedMap(history);
  }

  noteCapture(seq: number, captureMs: number): void {
    this.#captures.set(seq >>> 0, captureMs);
  }

  noteReport(r: ReportLike): LatencySample | null {
    this.#counters.reports++;
    const rtp = r.rtpTimestamp >>> 0;
    const shownAt = this.#presented.take(rtp);
    if (shownAt === undefined) {
      this.#reports.set(rtp, r);
      return null;
    }
    return this.#match(r, shownAt);
  }

  notePresented(rtpTimestamp: number, presentationTimeMs: number): LatencySample | null {
    this.#counters.presented++;
    const rtp = rtpTimestamp >>> 0;
    const r = this.#reports.take(rtp);
    if (r === undefined) {
      this.#presented.set(rtp, presentationTimeMs);
      return null;
    }
    return this.#match(r, presentationTimeMs);
  }

  counters(): LatencyMatcherCounters {
    return { ...this.#counters };
  }

  #match(r: ReportLike, shownAt: number): LatencySample | null {
    const captured = this.#captures.get(r.seq >>> 0);
    if (captured === undefined) {
      this.#counters.unknownSeq++;
      return null;
    }
    if (shownAt < captured) {
      this.#counters.inconsistent++;
      return null;
    }
    this.#counters.matched++;
    return { seq: r.seq >>> 0, rtpTimestamp: r.rtpTimestamp >>> 0, latencyMs: shownAt - captured, renderMs: r.renderMs, encodeMs: r.encodeMs };
  }
}
