/**
 * WhepViewer: one WHEP viewer of one MediaTap (werift). The viewer's offer (recvonly video + audio) is answered
 * with sendonly tracks in one media stream; the tap's shared RTP goes to the video track as is (no encode per
 * viewer) and its Opus packets to the audio track. A PLI from the viewer asks the tap for a keyframe. RTCP from
 * the viewer (receiver reports, REMB) is handed to `onFeedback` for the bandwidth policy.
 */
import { MediaStreamTrack, RTCPeerConnection, RTCRtpCodecParameters, useAbsSendTime, useOPUS, useREMB, useSdesMid, type RtcpPacket } from 'werift';
import type { Logger } from '../log.js';
import { codecParameters, type IceOptions, type IceServerConfig, type PeerState } from '../session/peer.js';
import type { MediaTap, Unsubscribe } from '../stream/media-tap.js';
import { OpusRtpPacketizer } from './opus-rtp.js';

export interface WhepViewerOptions {
  ice: IceOptions;
  iceServers: IceServerConfig[];
  /** How long to wait for host candidates before answering (ms). */
  gatherTimeoutMs?: number;
}

function videoCodec(tap: MediaTap): RTCRtpCodecParameters {
  const base = codecParameters(tap.video.codec);
  return new RTCRtpCodecParameters({ ...base, rtcpFeedback: [...base.rtcpFeedback, useREMB()] });
}

export class WhepViewer {
  readonly pc: RTCPeerConnection;
  private readonly videoTrack: MediaStreamTrack;
  private readonly audioTrack: MediaStreamTrack;
  private readonly unsubs: Unsubscribe[] = [];
  private closed = false;
  readonly stats = { rtpPackets: 0, rtpBytes: 0, opusPackets: 0, keyframeRequests: 0 };
  /** Connection state changes (connected, failed, closed...). */
  onState: ((s: PeerState) => void) | null = null;
  /** Every RTCP packet the viewer sent about the video stream. */
  onFeedback: ((p: RtcpPacket) => void) | null = null;

  constructor(
    readonly id: string,
    readonly tap: MediaTap,
    private readonly opts: WhepViewerOptions,
    private readonly log: Logger,
  ) {
    this.pc = new RTCPeerConnection({
      codecs: { video: [videoCodec(tap)], audio: [useOPUS()] },
      headerExtensions: { video: [useSdesMid(), useAbsSendTime()], audio: [useSdesMid()] },
      iceServers: opts.iceServers,
      iceAdditionalHostAddresses: opts.ice.additionalHostAddresses.length ? opts.ice.additionalHostAddresses : undefined,
      icePortRange: opts.ice.portRange ?? undefined,
      iceUseIpv6: false,
      bundlePolicy: 'max-bundle',
    });
    this.videoTrack = new MediaStreamTrack({ kind: 'video', streamId: tap.id });
    this.audioTrack = new MediaStreamTrack({ kind: 'audio', streamId: tap.id });
    const video = this.pc.addTransceiver(this.videoTrack, { direction: 'sendonly' });
    this.pc.addTransceiver(this.audioTrack, { direction: 'sendonly' });
    video.sender.onPictureLossIndication.subscribe(() => {
      this.stats.keyframeRequests++;
      this.tap.requestKeyframe(`whep viewer ${this.id}: PLI`);
    });
    video.sender.onRtcp.subscribe((p) => this.onFeedback?.(p));
    this.pc.connectionStateChange.subscribe((s) => {
      this.log.debug({ viewer: this.id, state: s }, 'whep viewer connection state');
      if (s === 'connected') this.tap.requestKeyframe(`whep viewer ${this.id}: connected`);
      this.onState?.(s);
    });
  }

  /** Answers the viewer's offer (complete SDP, host candidates gathered) and starts forwarding the tap. */
  async answer(offerSdp: string): Promise<string> {
    if (this.closed) throw new Error('viewer is closed');
    await this.pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    if (this.pc.iceGatheringState !== 'complete') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.opts.gatherTimeoutMs ?? 5000);
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
    if (!sdp || this.closed) throw new Error('no answer (viewer closed while negotiating)');
    this.forward();
    return sdp;
  }

  private forward(): void {
    const opus = new OpusRtpPacketizer();
    this.unsubs.push(
      this.tap.subscribeVideoRtp((rtp) => {
        this.stats.rtpPackets++;
        this.stats.rtpBytes += rtp.length;
        this.videoTrack.writeRtp(rtp);
      }),
      this.tap.subscribeOpus((p) => {
        this.stats.opusPackets++;
        this.audioTrack.writeRtp(opus.packet(p));
      }),
    );
  }

  get connectionState(): string {
    return this.pc.connectionState;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const u of this.unsubs.splice(0)) u();
    this.onState = null;
    this.onFeedback = null;
    try {
      this.videoTrack.stop();
      this.audioTrack.stop();
      await this.pc.close();
    } catch (err) {
      this.log.debug({ viewer: this.id, err: err instanceof Error ? err.message : String(err) }, 'error while closing whep viewer');
    }
  }
}
