/**
 * Peer: the server side of one WebRTC connection (werift). The server offers one sendonly video
 * transceiver and the negotiated data channel (label 'driving', id 0, unordered, maxRetransmits 0);
 * the caller answers. Host candidates are gathered before the offer is sent (no server-side trickle);
 * the caller may trickle its own candidates.
 *
 * Audio (PeerMediaOptions.audio): an Opus transceiver besides the video — 'recvonly' for a caller's microphone
 * (each received packet goes to onAudioRtp subscribers), 'sendonly' / 'sendrecv' for a relayed voice
 * (sendAudioRtp). Video and audio sent by one peer share one MediaStream (same msid), so a browser syncs them;
 * every sender's RTCP sender reports are corrected (media/sender-reports.ts). Without options the peer is the
 * single-user mirror it always was: video sendonly + data channel.
 */
import { MediaStream, MediaStreamTrack, RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket, type RTCDataChannel, type RTCRtpSender, type RTCRtpTransceiver } from 'werift';
import { DATA_CHANNEL_ID, DATA_CHANNEL_LABEL, type IceCandidate, type VideoCodecName } from '../../../shared/src/signaling.js';
import type { Logger } from '../log.js';
import { fixSenderReports } from '../media/sender-reports.js';

export interface IceServerConfig {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface IceOptions {
  /** Extra host addresses to gather on (e.g. 127.0.0.1, which werift leaves out by default). */
  additionalHostAddresses: string[];
  /** The server's public address behind a 1:1 NAT: advertised next to each host candidate. */
  publicIp: string | null;
  /** STUN/TURN servers (empty by default: no public STUN anywhere). */
  iceServers: IceServerConfig[];
  /** UDP port range [min, max] for ICE, or null for any. */
  portRange: [number, number] | null;
}

const RTCP_FB = [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }];

export function codecParameters(codec: VideoCodecName): RTCRtpCodecParameters {
  return codec === 'vp8'
    ? new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, rtcpFeedback: RTCP_FB })
    : new RTCRtpCodecParameters({
        mimeType: 'video/H264',
        clockRate: 90000,
        rtcpFeedback: RTCP_FB,
        parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
      });
}

/**
 * Opus as WebRTC negotiates it (RFC 7587: 48 kHz, two channels in the SDP whatever is sent). `maxAverageBitrate`
 * (bit/s) asks the sender to stay below it (fmtp maxaveragebitrate; a browser's encoder follows it).
 */
export function opusParameters(maxAverageBitrate?: number): RTCRtpCodecParameters {
  const cap = maxAverageBitrate ? `;maxaveragebitrate=${Math.round(maxAverageBitrate)}` : '';
  return new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, parameters: `minptime=10;useinbandfec=1${cap}` });
}

export const OPUS_CLOCK_RATE = 48000;
export const VIDEO_CLOCK_RATE = 90000;

export type AudioDirection = 'recvonly' | 'sendonly' | 'sendrecv';

export interface PeerMediaOptions {
  /** An Opus transceiver (default: none). */
  audio?: AudioDirection | null;
  /** The negotiated 'driving' data channel (default true). */
  dataChannel?: boolean;
  /** id of the MediaStream holding the video and audio this peer sends (default: a random one). */
  streamId?: string;
  /**
   * RTP time "now" of the sent video / audio in the timestamps written to the tracks, when the owner stamps both
   * from one clock: sender reports then map that clock to wall-clock time (default: from the last packet sent).
   */
  videoRtpNow?: () => number;
  audioRtpNow?: () => number;
  /** Opus bit rate the remote sender is asked to stay below (bit/s; default: the sender's choice). */
  opusMaxBitrate?: number;
}

/** One Opus packet as received: the RTP payload is the Opus packet itself (RFC 7587). */
export interface ReceivedOpus {
  payload: Buffer;
  timestamp: number;
  sequence: number;
  /** performance.now() on arrival */
  arrivedAt: number;
}

export type PeerState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

/** Adds a copy of each UDP host candidate with `publicIp` in place of its address. */
export function addPublicIpCandidates(sdp: string, publicIp: string): string {
  const lines = sdp.split('\r\n');
  const out: string[] = [];
  for (const line of lines) {
    out.push(line);
    const m = /^a=candidate:(\S+) (\d+) (udp|UDP) (\d+) (\S+) (\d+) typ host(.*)$/.exec(line);
    if (m && m[5] !== publicIp) {
      const prio = Math.max(1, Number(m[4]) - 1);
      out.push(`a=candidate:${m[1]}p ${m[2]} ${m[3]} ${prio} ${publicIp} ${m[6]} typ host${m[7] ?? ''}`);
    }
  }
  return out.join('\r\n');
}

export class Peer {
  readonly pc: RTCPeerConnection;
  readonly track: MediaStreamTrack;
  readonly sender: RTCRtpSender;
  readonly stream: MediaStream;
  /** The negotiated data channel, or null when the options left it out. */
  readonly dataChannel: RTCDataChannel | null;
  /** The Opus track sent (sendonly / sendrecv audio), or null. */
  readonly audioTrack: MediaStreamTrack | null = null;
  readonly audioSender: RTCRtpSender | null = null;
  private readonly audioTransceiver: RTCRtpTransceiver | null = null;
  private readonly audioListeners = new Set<(p: ReceivedOpus) => void>();
  private audioSeq = 0;
  private readonly log: Logger;
  private readonly publicIp: string | null;
  private closed = false;
  private remoteSet = false;
  private readonly pendingCandidates: IceCandidate[] = [];
  private candidatesAdded = 0;
  private candidatesIgnored = 0;
  /** Called once per state change. */
  onState: ((s: PeerState) => void) | null = null;
  /** The caller asked for a keyframe (PLI / FIR). */
  onKeyframeRequest: (() => void) | null = null;

  constructor(codec: VideoCodecName, ice: IceOptions, log: Logger, media: PeerMediaOptions = {}) {
    this.log = log;
    this.publicIp = ice.publicIp;
    const audio = media.audio ?? null;
    this.pc = new RTCPeerConnection({
      codecs: { video: [codecParameters(codec)], audio: audio ? [opusParameters(media.opusMaxBitrate)] : [] },
      iceServers: ice.iceServers,
      iceAdditionalHostAddresses: ice.additionalHostAddresses.length ? ice.additionalHostAddresses : undefined,
      icePortRange: ice.portRange ?? undefined,
      iceUseIpv6: false,
      bundlePolicy: 'max-bundle',
      // Advertised SCTP max-message-size: driving frames are 78 bytes; well-behaved callers send nothing bigger.
      maxMessageSize: 16 * 1024,
    });
    this.track = new MediaStreamTrack({ kind: 'video' });
    this.stream = media.streamId ? new MediaStream({ id: media.streamId }) : new MediaStream();
    const transceiver = this.pc.addTransceiver(this.track, { direction: 'sendonly', streams: [this.stream] });
    this.sender = fixSenderReports(transceiver.sender, { clockRate: VIDEO_CLOCK_RATE, rtpNow: media.videoRtpNow });
    this.sender.onPictureLossIndication.subscribe(() => this.onKeyframeRequest?.());
    if (audio) {
      const sends = audio !== 'recvonly';
      this.audioTrack = sends ? new MediaStreamTrack({ kind: 'audio' }) : null;
      this.audioTransceiver = this.pc.addTransceiver(this.audioTrack ?? 'audio', { direction: audio, streams: [this.stream] });
      this.audioSender = sends ? fixSenderReports(this.audioTransceiver.sender, { clockRate: OPUS_CLOCK_RATE, rtpNow: media.audioRtpNow }) : null;
      if (audio !== 'sendonly') {
        this.audioTransceiver.onTrack.subscribe((track) => {
          track.onReceiveRtp.subscribe((rtp) => this.deliverAudio(rtp));
        });
      }
    }
    this.dataChannel =
      media.dataChannel === false ? null : this.pc.createDataChannel(DATA_CHANNEL_LABEL, { negotiated: true, id: DATA_CHANNEL_ID, ordered: false, maxRetransmits: 0 });
    this.pc.connectionStateChange.subscribe((s) => {
      this.log.debug({ state: s }, 'peer connection state');
      this.onState?.(s);
    });
  }

  /** The negotiated data channel (throws when the peer was made without one). */
  get channel(): RTCDataChannel {
    if (!this.dataChannel) throw new Error('this peer has no data channel');
    return this.dataChannel;
  }

  /** Every Opus packet received from the remote side (recvonly / sendrecv audio); returns the unsubscribe. */
  onAudioRtp(cb: (p: ReceivedOpus) => void): () => void {
    this.audioListeners.add(cb);
    return () => this.audioListeners.delete(cb);
  }

  private deliverAudio(rtp: RtpPacket): void {
    if (this.closed || rtp.payload.length === 0) return;
    const p: ReceivedOpus = { payload: rtp.payload, timestamp: rtp.header.timestamp, sequence: rtp.header.sequenceNumber, arrivedAt: performance.now() };
    for (const cb of this.audioListeners) cb(p);
  }

  /**
   * Sends one Opus packet (20 ms normally) with the given RTP timestamp (48 kHz); sequence numbers are this
   * peer's own. A peer without a sending audio track ignores it.
   */
  sendOpus(payload: Buffer, timestamp: number): void {
    const track = this.audioTrack;
    if (!track || this.closed) return;
    this.audioSeq = (this.audioSeq + 1) & 0xffff;
    track.writeRtp(new RtpPacket(new RtpHeader({ payloadType: 111, sequenceNumber: this.audioSeq, timestamp: timestamp >>> 0 }), payload));
  }

  /** Creates the offer, waits for host candidates and returns the complete SDP. */
  async createOffer(timeoutMs = 5000): Promise<string> {
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    if (this.pc.iceGatheringState !== 'complete') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        const sub = this.pc.iceGatheringStateChange.subscribe((s) => {
          if (s === 'complete') done();
        });
        function done(): void {
          clearTimeout(timer);
          sub.unSubscribe();
          resolve();
        }
      });
    }
    const sdp = this.pc.localDescription?.sdp;
    if (!sdp) throw new Error('no local description after createOffer');
    return this.publicIp ? addPublicIpCandidates(sdp, this.publicIp) : sdp;
  }

  async setAnswer(sdp: string): Promise<void> {
    if (this.closed) throw new Error('peer is closed');
    if (this.remoteSet) throw new Error('answer already received');
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
    this.remoteSet = true;
    for (const c of this.pendingCandidates.splice(0)) await this.addCandidate(c);
  }

  /** Adds a caller candidate; mDNS (.local) candidates are ignored (never resolved by the server). */
  async addCandidate(c: IceCandidate): Promise<void> {
    if (this.closed) return;
    if (!this.remoteSet) {
      if (this.pendingCandidates.length < 64) this.pendingCandidates.push(c);
      return;
    }
    if (c.candidate === '' || /\s\S+\.local\s/.test(c.candidate)) {
      this.candidatesIgnored++;
      return;
    }
    try {
      await this.pc.addIceCandidate({ candidate: c.candidate, sdpMid: c.sdpMid ?? undefined, sdpMLineIndex: c.sdpMLineIndex ?? undefined });
      this.candidatesAdded++;
    } catch (err) {
      this.candidatesIgnored++;
      this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'caller ICE candidate ignored');
    }
  }

  /** RTP timestamp of the last packet as it went on the wire (werift adds a per-track random offset). */
  get lastWireTimestamp(): number | undefined {
    return (this.sender as unknown as { timestamp?: number }).timestamp;
  }

  toJSON(): { state: string; candidatesAdded: number; candidatesIgnored: number } {
    return { state: this.pc.connectionState, candidatesAdded: this.candidatesAdded, candidatesIgnored: this.candidatesIgnored };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onState = null;
    this.onKeyframeRequest = null;
    this.audioListeners.clear();
    try {
      this.track.stop();
      this.audioTrack?.stop();
      await this.pc.close();
    } catch (err) {
      this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'error while closing peer');
    }
  }
}
