/**
 * Peer: the server side of one WebRTC connection (werift). The server offers one sendonly video
 * transceiver and the negotiated data channel (label 'driving', id 0, unordered, maxRetransmits 0);
 * the caller answers. Host candidates are gathered before the offer is sent (no server-side trickle);
 * the caller may trickle its own candidates.
 */
import { MediaStreamTrack, RTCPeerConnection, RTCRtpCodecParameters, type RTCDataChannel, type RTCRtpSender } from 'werift';
import { DATA_CHANNEL_ID, DATA_CHANNEL_LABEL, type IceCandidate, type VideoCodecName } from '../../../shared/src/signaling.js';
import type { Logger } from '../log.js';

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
  readonly channel: RTCDataChannel;
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

  constructor(codec: VideoCodecName, ice: IceOptions, log: Logger) {
    this.log = log;
    this.publicIp = ice.publicIp;
    this.pc = new RTCPeerConnection({
      codecs: { video: [codecParameters(codec)], audio: [] },
      iceServers: ice.iceServers,
      iceAdditionalHostAddresses: ice.additionalHostAddresses.length ? ice.additionalHostAddresses : undefined,
      icePortRange: ice.portRange ?? undefined,
      iceUseIpv6: false,
      bundlePolicy: 'max-bundle',
      // Advertised SCTP max-message-size: driving frames are 78 bytes; well-behaved callers send nothing bigger.
      maxMessageSize: 16 * 1024,
    });
    this.track = new MediaStreamTrack({ kind: 'video' });
    const transceiver = this.pc.addTransceiver(this.track, { direction: 'sendonly' });
    this.sender = transceiver.sender;
    this.sender.onPictureLossIndication.subscribe(() => this.onKeyframeRequest?.());
    this.channel = this.pc.createDataChannel(DATA_CHANNEL_LABEL, { negotiated: true, id: DATA_CHANNEL_ID, ordered: false, maxRetransmits: 0 });
    this.pc.connectionStateChange.subscribe((s) => {
      this.log.debug({ state: s }, 'peer connection state');
      this.onState?.(s);
    });
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
    try {
      this.track.stop();
      await this.pc.close();
    } catch (err) {
      this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'error while closing peer');
    }
  }
}
