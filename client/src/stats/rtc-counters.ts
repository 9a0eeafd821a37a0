/**
 * WebRTC getStats() → the few counters the page shows, and bit rates from two snapshots.
 * Works on plain objects (the values of an RTCStatsReport), so it is tested in Node without a browser.
 */
export interface RtcCounters {
  /** ms, the stats timestamp (performance timeline in Chrome) */
  timestampMs: number;
  /** all bytes sent / received on the ICE transport(s): video, data channel, RTCP, DTLS */
  transportBytesSent: number;
  transportBytesReceived: number;
  /** inbound video */
  videoBytesReceived: number;
  framesReceived: number;
  framesDecoded: number;
  framesDropped: number;
  keyFramesDecoded: number;
  packetsLost: number;
  freezeCount: number;
  /** seconds, as reported */
  jitter: number;
  frameWidth: number;
  frameHeight: number;
  decoderImplementation: string;
  codec: string;
  /** driving data channel */
  dataMessagesSent: number;
  dataBytesSent: number;
  dataMessagesReceived: number;
  /** ms, selected candidate pair's current round-trip time (NaN when unknown) */
  rttMs: number;
  /** audio (microphone and both modes): packets of the microphone sent, of the relayed voice received */
  audioPacketsSent: number;
  audioPacketsReceived: number;
  /**
   * estimatedPlayoutTimestamp of the inbound audio and video (ms on the sender's NTP clock, mapped through its
   * sender reports; NaN when absent): their difference is how far the voice plays ahead of the video it was sent with
   */
  audioPlayoutNtpMs: number;
  videoPlayoutNtpMs: number;
}

export interface Rates {
  uplinkKbps: number;
  downlinkKbps: number;
  videoKbps: number;
  decodedFps: number;
}

type StatLike = Record<string, unknown>;

const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const s = (v: unknown): string => (typeof v === 'string' ? v : '');

export function emptyCounters(): RtcCounters {
  return {
    timestampMs: 0,
    transportBytesSent: 0,
    transportBytesReceived: 0,
    videoBytesReceived: 0,
    framesReceived: 0,
    framesDecoded: 0,
    framesDropped: 0,
    keyFramesDecoded: 0,
    packetsLost: 0,
    freezeCount: 0,
    jitter: 0,
    frameWidth: 0,
    frameHeight: 0,
    decoderImplementation: '',
    codec: '',
    dataMessagesSent: 0,
    dataBytesSent: 0,
    dataMessagesReceived: 0,
    rttMs: Number.NaN,
    audioPacketsSent: 0,
    audioPacketsReceived: 0,
    audioPlayoutNtpMs: Number.NaN,
    videoPlayoutNtpMs: Number.NaN,
  };
}

/** Reads the counters out of the stats objects of one getStats() call (`[...report.values()]`). */
export function readRtcCounters(stats: Iterable<StatLike>): RtcCounters {
  const c = emptyCounters();
  const all = [...stats];
  const byId = new Map<string, StatLike>();
  for (const st of all) if (typeof st.id === 'string') byId.set(st.id, st);
  let selectedPair = '';
  for (const st of all) {
    c.timestampMs = Math.max(c.timestampMs, n(st.timestamp));
    switch (st.type) {
      case 'transport':
        c.transportBytesSent += n(st.bytesSent);
        c.transportBytesReceived += n(st.bytesReceived);
        if (typeof st.selectedCandidatePairId === 'string') selectedPair = st.selectedCandidatePairId;
        break;
      case 'outbound-rtp':
        if (st.kind === 'audio') c.audioPacketsSent += n(st.packetsSent);
        break;
      case 'inbound-rtp':
        if (st.kind === 'audio') {
          c.audioPacketsReceived += n(st.packetsReceived);
          if (typeof st.estimatedPlayoutTimestamp === 'number') c.audioPlayoutNtpMs = st.estimatedPlayoutTimestamp;
        }
        if (st.kind !== 'video') break;
        if (typeof st.estimatedPlayoutTimestamp === 'number') c.videoPlayoutNtpMs = st.estimatedPlayoutTimestamp;
        c.videoBytesReceived += n(st.bytesReceived);
        c.framesReceived += n(st.framesReceived);
        c.framesDecoded += n(st.framesDecoded);
        c.framesDropped += n(st.framesDropped);
        c.keyFramesDecoded += n(st.keyFramesDecoded);
        c.packetsLost += n(st.packetsLost);
        c.freezeCount += n(st.freezeCount);
        c.jitter = n(st.jitter);
        c.frameWidth = n(st.frameWidth);
        c.frameHeight = n(st.frameHeight);
        c.decoderImplementation = s(st.decoderImplementation);
        if (typeof st.codecId === 'string') c.codec = s(byId.get(st.codecId)?.mimeType);
        break;
      case 'data-channel':
        c.dataMessagesSent += n(st.messagesSent);
        c.dataBytesSent += n(st.bytesSent);
        c.dataMessagesReceived += n(st.messagesReceived);
        break;
      default:
        break;
    }
  }
  const pair = byId.get(selectedPair);
  if (pair && typeof pair.currentRoundTripTime === 'number') c.rttMs = pair.currentRoundTripTime * 1000;
  return c;
}

/** Rates between two snapshots (the later one second). Zero when no time passed or counters went back (a new peer). */
export function ratesBetween(prev: RtcCounters, cur: RtcCounters): Rates {
  const dt = (cur.timestampMs - prev.timestampMs) / 1000;
  const rate = (a: number, b: number): number => (dt > 0 && b >= a ? (b - a) / dt : 0);
  return {
    uplinkKbps: (rate(prev.transportBytesSent, cur.transportBytesSent) * 8) / 1000,
    downlinkKbps: (rate(prev.transportBytesReceived, cur.transportBytesReceived) * 8) / 1000,
    videoKbps: (rate(prev.videoBytesReceived, cur.videoBytesReceived) * 8) / 1000,
    decodedFps: rate(prev.framesDecoded, cur.framesDecoded),
  };
}
