/**
 * Correct RTCP sender reports (SR) from werift 0.24.4 senders.
 *
 * werift's `ntpTime()` (packages/webrtc/src/utils.ts) splits the Unix-based seconds as a decimal string and writes
 * the digits after the point as an integer into the 32-bit NTP fraction: 12.25 s becomes fraction 25 / 2^32 s
 * instead of 0.25 s, so every SR's NTP time is 0 to 1 s early, differently for each packet. A browser aligns the
 * audio and video of one stream through these reports; with werift's values lips and voice drift apart by up to a
 * second (../shared/notes/audio-path.md). See docs/upstream/werift-sender-report.md for the upstream fix.
 *
 * `fixSenderReports(sender)` corrects one sender at run time, without touching werift's files: werift stores the
 * NTP and RTP time of the last packet sent on the sender (`ntpTimestamp`, `rtpTimestamp`) and its RTCP loop copies
 * both into each SR. We replace the two fields by accessors: writes from werift are recorded (the RTP timestamp,
 * the moment of sending), reads return NTP = now and RTP = the RTP time of that same instant — either from the
 * track's own clock (`rtpNow`, when the owner has one shared by audio and video) or extrapolated from the last
 * packet sent (last RTP timestamp + elapsed x clock rate).
 */
import type { RTCRtpSender } from 'werift';

/** Milliseconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01). */
export const NTP_UNIX_OFFSET_MS = 2_208_988_800_000;
const TWO_32 = 2 ** 32;

/** The 64-bit NTP timestamp (RFC 3550 §4: seconds since 1900 . 32-bit binary fraction) of a Unix time in ms. */
export function ntpFromUnixMs(unixMs: number): bigint {
  const ms = unixMs + NTP_UNIX_OFFSET_MS;
  const sec = Math.floor(ms / 1000);
  const frac = Math.min(TWO_32 - 1, Math.floor(((ms - sec * 1000) / 1000) * TWO_32));
  return (BigInt(sec % TWO_32) << 32n) | BigInt(frac);
}

/** The Unix time in ms of a 64-bit NTP timestamp (the inverse of ntpFromUnixMs, to ~1 µs). */
export function unixMsFromNtp(ntp: bigint): number {
  const sec = Number(ntp >> 32n);
  const frac = Number(ntp & 0xffffffffn);
  return sec * 1000 + (frac / TWO_32) * 1000 - NTP_UNIX_OFFSET_MS;
}

/** Wall-clock Unix time in ms with sub-ms resolution (the clock werift means to use). */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface SenderReportOptions {
  /** RTP clock rate of the sender's codec (90000 video, 48000 Opus). */
  clockRate: number;
  /**
   * The track's RTP time now, in the timestamps the owner writes (before werift's per-sender offset), when the
   * owner stamps packets from a clock of its own; absent = extrapolated from the last packet sent.
   */
  rtpNow?: () => number;
  /** Wall clock in Unix ms (tests inject one). */
  now?: () => number;
}

/** The fields of werift's RTCRtpSender this fix reads and replaces. */
interface SenderFields {
  ntpTimestamp: bigint;
  rtpTimestamp: number;
  timestampOffset?: number;
}

const FIXED = Symbol('dnp.senderReportsFixed');

/**
 * Makes every sender report `sender` sends from now on carry NTP = now and the matching RTP time. Idempotent
 * (a second call on the same sender does nothing). Returns the sender.
 */
export function fixSenderReports<S extends RTCRtpSender>(sender: S, opts: SenderReportOptions): S {
  const target = sender as unknown as SenderFields & { [FIXED]?: true };
  if (target[FIXED]) return sender;
  const now = opts.now ?? wallClockMs;
  const perMs = opts.clockRate / 1000;
  let lastRtp: number | null = null;
  let lastSentMs = 0;
  // One SR reads ntpTimestamp twice (the report, then the value it remembers for round-trip times) and
  // rtpTimestamp once, synchronously: all reads within one tick see the same instant.
  let snapshotMs: number | null = null;
  const instant = (): number => {
    if (snapshotMs === null) {
      snapshotMs = now();
      queueMicrotask(() => (snapshotMs = null));
    }
    return snapshotMs;
  };
  Object.defineProperty(target, 'ntpTimestamp', {
    configurable: true,
    enumerable: true,
    get: () => ntpFromUnixMs(instant()),
    // werift writes its (wrong) NTP time right before the RTP timestamp of each packet sent: only the moment counts
    set: () => {
      lastSentMs = now();
    },
  });
  Object.defineProperty(target, 'rtpTimestamp', {
    configurable: true,
    enumerable: true,
    get: (): number => {
      const t = instant();
      if (opts.rtpNow) return (Math.round(opts.rtpNow()) + (target.timestampOffset ?? 0)) >>> 0;
      if (lastRtp === null) return 0;
      return (lastRtp + Math.round((t - lastSentMs) * perMs)) >>> 0;
    },
    set: (v: number) => {
      lastRtp = v;
    },
  });
  Object.defineProperty(target, FIXED, { value: true });
  return sender;
}
