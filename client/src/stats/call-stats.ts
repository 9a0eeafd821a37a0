/**
 * Per-tile statistics of a call (DOM-free, so Node tests can use it): what one remote participant's peer
 * receives — decoded frames, bit rate, voice packets — and the A/V offset: how far that participant's voice plays
 * ahead of (+) or behind (−) their avatar's lips here, from the inbound audio and video estimatedPlayoutTimestamp
 * (both on the server's clock through its RTCP sender reports).
 */
import { ratesBetween, readRtcCounters, type RtcCounters } from './rtc-counters.js';

export interface TileStats {
  framesDecoded: number;
  fps: number;
  width: number;
  height: number;
  /** all bytes received on this participant's peer (video + voice + RTCP), kbit/s */
  downlinkKbps: number;
  audioPacketsReceived: number;
  audioBytesReceived: number;
  /** voice playout minus video playout, ms; null until both are known */
  avOffsetMs: number | null;
  /**
   * How long ago (ms, by this page's clock) the voice / the face now playing was captured, on the sender reports'
   * clock (the server's wall clock): mouth-to-ear and capture-to-eye when the page and the server share one clock
   * (a test on one machine); across machines it also holds the clocks' difference. Null until known.
   */
  voiceLagMs: number | null;
  faceLagMs: number | null;
  /** the inbound video and audio jitter-buffer delays (ms, mean since the start), null until known */
  videoJitterBufferMs: number | null;
  audioJitterBufferMs: number | null;
  /** the inbound audio's and video's mean jitter-buffer delay since the last sample (ms), null until two samples */
  audioJitterBufferRecentMs: number | null;
  videoJitterBufferRecentMs: number | null;
}

export type CallState = 'loading' | 'idle' | 'joining' | 'in-call' | 'error';

export interface CallTileStats extends TileStats {
  participant: string;
  name: string;
  /** the voice delay the page set (jitterBufferTarget, ms; client/src/call-lip-sync.ts), null when none */
  voiceTargetMs: number | null;
}

/** What window.dnpCall.stats() returns (client/src/call-page.ts). */
export interface CallStatsSnapshot {
  state: CallState;
  message: string;
  room: string;
  participantId: string;
  muted: boolean;
  framesSent: number;
  /** the caller's own peer: all bytes sent (driving + microphone + RTCP), kbit/s */
  uplinkKbps: number;
  tiles: CallTileStats[];
}

export interface TileSample {
  counters: RtcCounters;
  stats: TileStats;
  /** the inbound audio's and video's cumulative jitterBufferDelay (s) and jitterBufferEmittedCount */
  jitter: Record<'audio' | 'video', Jitter | null>;
}

type StatLike = Record<string, unknown>;

interface Jitter {
  delayS: number;
  emitted: number;
}

/** The mean jitter-buffer delay (ms) between two cumulative readings, null without a new sample or on nonsense. */
function recentJitterMs(now: Jitter | null, prev: Jitter | null | undefined): number | null {
  if (!now || !prev || now.emitted <= prev.emitted) return null;
  const ms = ((now.delayS - prev.delayS) / (now.emitted - prev.emitted)) * 1000;
  return Number.isFinite(ms) && ms >= 0 ? ms : null;
}

/** Milliseconds from the NTP epoch (1900) to the Unix epoch (1970): estimatedPlayoutTimestamp is NTP time. */
const NTP_UNIX_OFFSET_MS = 2_208_988_800_000;

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * Reads one getStats() of a remote participant's peer; `prev` (the last sample) gives the rates, `nowUnixMs` (this
 * page's wall clock when the stats were taken; absent: no lags) the voice's and face's lag.
 */
export function readTileStats(all: Iterable<StatLike>, prev: TileSample | null, nowUnixMs?: number): TileSample {
  const list = [...all];
  const counters = readRtcCounters(list);
  const rates = prev ? ratesBetween(prev.counters, counters) : { downlinkKbps: 0, decodedFps: 0 };
  let audioPlayout: number | null = null;
  let videoPlayout: number | null = null;
  let audioPackets = 0;
  let audioBytes = 0;
  let videoJb: number | null = null;
  let audioJb: number | null = null;
  const jitter: TileSample['jitter'] = { audio: null, video: null };
  for (const st of list) {
    if (st.type !== 'inbound-rtp') continue;
    const jb = num(st.jitterBufferDelay);
    const emitted = num(st.jitterBufferEmittedCount);
    const meanJb = jb !== null && emitted ? (jb / emitted) * 1000 : null;
    if ((st.kind === 'audio' || st.kind === 'video') && jb !== null && emitted !== null) jitter[st.kind] = { delayS: jb, emitted };
    if (st.kind === 'audio') {
      audioPlayout = num(st.estimatedPlayoutTimestamp);
      audioPackets += num(st.packetsReceived) ?? 0;
      audioBytes += num(st.bytesReceived) ?? 0;
      audioJb = meanJb;
    } else if (st.kind === 'video') {
      videoPlayout = num(st.estimatedPlayoutTimestamp);
      videoJb = meanJb;
    }
  }
  const lag = (ntpMs: number | null): number | null => (ntpMs !== null && nowUnixMs !== undefined && Number.isFinite(nowUnixMs) ? nowUnixMs - (ntpMs - NTP_UNIX_OFFSET_MS) : null);
  return {
    counters,
    jitter,
    stats: {
      framesDecoded: counters.framesDecoded,
      fps: rates.decodedFps,
      width: counters.frameWidth,
      height: counters.frameHeight,
      downlinkKbps: rates.downlinkKbps,
      audioPacketsReceived: audioPackets,
      audioBytesReceived: audioBytes,
      avOffsetMs: audioPlayout !== null && videoPlayout !== null ? audioPlayout - videoPlayout : null,
      voiceLagMs: lag(audioPlayout),
      faceLagMs: lag(videoPlayout),
      videoJitterBufferMs: videoJb,
      audioJitterBufferMs: audioJb,
      audioJitterBufferRecentMs: recentJitterMs(jitter.audio, prev?.jitter.audio),
      videoJitterBufferRecentMs: recentJitterMs(jitter.video, prev?.jitter.video),
    },
  };
}

/** One line for a tile: "25 fps · 180 kbit/s · voice +12 ms". */
export function tileStatsLine(s: TileStats): string {
  const parts = [`${s.fps.toFixed(0)} fps`, `${s.downlinkKbps.toFixed(0)} kbit/s`];
  if (s.avOffsetMs !== null) parts.push(`voice ${s.avOffsetMs >= 0 ? '+' : '−'}${Math.abs(s.avOffsetMs).toFixed(0)} ms`);
  return parts.join(' · ');
}
